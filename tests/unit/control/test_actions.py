"""Server-control actions against an in-memory BMC: messages, waits, repeats, timeouts, fence checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from flasher.bmc import BMCAuthError, BMCNotSupportedError, BMCUnreachableError
from flasher.config import ControlSettings
from flasher.control import ActionFailedError, ActionRun, perform
from flasher.control.waits import restart_window
from flasher.task.fence import LeaseLostError
from flasher.task.model import BOOT_DEVICES, ControlAction, ServerControlTask, parse_server_control_task

POLL = 0.01


class FakeBMC:
    """A host whose power state follows a script: after a power request, each read shows the next state of the
    request's script and then stays on the last. Errors queued in ``errors[method]`` are raised first."""

    SCRIPTS: dict[str, list[str]] = {
        "on": ["PoweringOn", "On"],
        "off": ["On", "Off"],
        "soft": ["On", "On", "Off"],
        "cycle": ["On", "Off", "On"],
        "reset": ["On", "Off", "On"],
    }

    def __init__(self, state: str = "On", *, lands: bool = True, shows_off: bool = True) -> None:
        self.state = state
        self.lands = lands
        self.shows_off = shows_off
        self.script: list[str] = []
        self.calls: list[tuple[Any, ...]] = []
        self.errors: dict[str, list[BaseException]] = {}
        self.boot: tuple[str, bool, bool] | None = None

    def _fail_first(self, method: str) -> None:
        queued = self.errors.get(method)
        if queued:
            raise queued.pop(0)

    def power_state(self) -> str:
        self.calls.append(("power_state",))
        self._fail_first("power_state")
        if self.script:
            self.state = self.script.pop(0)
        return self.state

    def set_power(self, action: str, *, wait: bool = True, timeout: float = 300.0) -> str:
        self.calls.append(("set_power", action, wait))
        self._fail_first("set_power")
        if not self.lands:
            return self.state
        script = list(self.SCRIPTS[action])
        if action in ("cycle", "reset") and not self.shows_off:
            script = ["On"]
        if (action, self.state) in (("on", "On"), ("off", "Off"), ("soft", "Off")):
            script = [self.state]
        self.script = script
        return self.state

    def set_boot_device(self, target: str, *, persistent: bool = False, uefi: bool = True) -> None:
        self.calls.append(("set_boot_device", target, persistent, uefi))
        self._fail_first("set_boot_device")
        self.boot = (target, persistent, uefi)

    def reset_bmc(self, *, wait: bool = True, timeout: float = 900.0) -> None:
        self.calls.append(("reset_bmc", wait, timeout))
        self._fail_first("reset_bmc")

    def writes(self) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] != "power_state"]


class Recorder:
    """``progress`` and ``guard`` of an action run; ``guard`` checks the order of guards and writes."""

    def __init__(self, bmc: FakeBMC, fail_guard: Callable[[], None] | None = None) -> None:
        self.bmc = bmc
        self.messages: list[str] = []
        self.guards = 0
        self.guarded_writes: list[int] = []
        self.fail_guard = fail_guard

    def progress(self, text: str) -> None:
        self.messages.append(text)

    def guard(self) -> None:
        if self.fail_guard is not None:
            self.fail_guard()
        self.guards += 1
        self.guarded_writes.append(len(self.bmc.writes()))


def action_run(bmc: FakeBMC, recorder: Recorder | None = None, **timeouts: float) -> tuple[ActionRun, Recorder]:
    recorder = recorder or Recorder(bmc)
    settings = ControlSettings(**{"power_timeout": 2.0, "bmc_reset_timeout": 2.0, "boot_timeout": 1.0, **timeouts})
    run = ActionRun(bmc=bmc, timeouts=settings, poll=POLL, progress=recorder.progress, guard=recorder.guard)
    return run, recorder


def task(action: str, parameter: str | None = None, **extra: Any) -> ServerControlTask:
    data: dict[str, Any] = {"action": action, **extra}
    if parameter is not None:
        data["action_parameter"] = parameter
    return parse_server_control_task(data)


# -- power ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["On", "Off"])
def test_get_power_state_reports_the_state_in_flipflops_words(state: str) -> None:
    bmc = FakeBMC(state)
    run, recorder = action_run(bmc)
    assert perform(task("get_power_state"), run) == f"identified current power state: {state.lower()}"
    assert bmc.writes() == [] and recorder.guards == 0


@pytest.mark.parametrize(
    ("start", "parameter", "end"),
    [
        ("Off", "on", "On"),
        ("On", "off", "Off"),
        ("On", "soft", "Off"),
        ("On", "cycle", "On"),
        ("On", "reset", "On"),
        ("On", "on", "On"),
        ("Off", "off", "Off"),
    ],
)
def test_set_power_state_waits_for_the_target_and_writes_flipflops_messages(
    start: str, parameter: str, end: str
) -> None:
    bmc = FakeBMC(start)
    run, recorder = action_run(bmc)
    final = perform(task("set_power_state", parameter), run)
    assert final == f"server power state set successful: {parameter}"
    assert recorder.messages == [f"identified current power state: {start.lower()}"]
    assert bmc.writes() == [("set_power", parameter, False)]
    assert bmc.state == end and not bmc.script  # the whole transition was read to its end
    assert recorder.guarded_writes == [0]  # the fence was checked right before the one write


def test_a_cycle_waits_to_see_the_host_go_off_and_come_back() -> None:
    bmc = FakeBMC("On")
    run, _ = action_run(bmc)
    perform(task("set_power_state", "cycle"), run)
    reads = [c for c in bmc.calls if c == ("power_state",)]
    assert len(reads) >= 4  # settle read, then On (not yet), Off, On


def test_a_cycle_of_a_host_that_is_off_powers_it_on() -> None:
    bmc = FakeBMC("Off")
    run, recorder = action_run(bmc)
    final = perform(task("set_power_state", "cycle"), run)
    assert final == "server powered on successfully"
    assert recorder.messages == ["identified current power state: off", "server was powered off, powering on"]
    assert bmc.writes() == [("set_power", "on", False)]


def test_a_restart_that_never_shows_off_ends_after_the_restart_window() -> None:
    bmc = FakeBMC("On", shows_off=False)
    run, _ = action_run(bmc)
    assert perform(task("set_power_state", "reset"), run) == "server power state set successful: reset"
    reads = [c for c in bmc.calls if c == ("power_state",)]
    assert len(reads) >= restart_window(POLL, 2.0) / POLL / 2  # it kept reading On for the window


def test_a_change_in_progress_settles_before_the_request() -> None:
    bmc = FakeBMC("On")
    bmc.script = ["PoweringOff", "PoweringOff", "Off"]
    run, recorder = action_run(bmc)
    perform(task("set_power_state", "on"), run)
    assert recorder.messages == ["identified current power state: off"]
    assert bmc.writes() == [("set_power", "on", False)]


def test_a_power_change_that_never_lands_fails_with_a_clear_timeout() -> None:
    bmc = FakeBMC("On", lands=False)
    run, _ = action_run(bmc, power_timeout=0.2)
    with pytest.raises(ActionFailedError) as failed:
        perform(task("set_power_state", "off"), run)
    assert str(failed.value) == (
        "error setting power state off: the BMC reports power state On after 0.2 s, expected Off"
    )


def test_reads_ride_out_a_5xx_burst() -> None:
    bmc = FakeBMC("Off")
    bmc.errors["power_state"] = [BMCUnreachableError("read the BMC's System: the BMC answered HTTP 503")] * 3
    run, _ = action_run(bmc)
    assert perform(task("set_power_state", "on"), run) == "server power state set successful: on"


def test_a_bmc_that_never_answers_fails_naming_its_error() -> None:
    bmc = FakeBMC("Off")
    bmc.errors["power_state"] = [BMCUnreachableError("read the BMC's System: the BMC answered HTTP 500")] * 1000
    run, _ = action_run(bmc, power_timeout=0.1)
    with pytest.raises(ActionFailedError) as failed:
        perform(task("get_power_state"), run)
    message = str(failed.value)
    assert message.startswith("error identifying current power state: the BMC did not answer for 0.1 s")
    assert "HTTP 500" in message


def test_an_idempotent_power_write_is_sent_again_after_no_answer_each_time_behind_the_fence() -> None:
    bmc = FakeBMC("On")
    bmc.errors["set_power"] = [BMCUnreachableError("power off: the BMC answered HTTP 502")] * 2
    run, recorder = action_run(bmc)
    assert perform(task("set_power_state", "off"), run) == "server power state set successful: off"
    assert [c for c in bmc.writes()] == [("set_power", "off", False)] * 3
    assert recorder.guards == 3


@pytest.mark.parametrize("parameter", ["cycle", "reset"])
def test_a_restart_is_sent_once_even_without_an_answer(parameter: str) -> None:
    bmc = FakeBMC("On")
    bmc.errors["set_power"] = [BMCUnreachableError(f"power {parameter}: the BMC answered HTTP 502")]
    run, _ = action_run(bmc)
    with pytest.raises(
        ActionFailedError, match=f"error setting power state {parameter}: power {parameter}: .*HTTP 502"
    ):
        perform(task("set_power_state", parameter), run)
    assert bmc.writes() == [("set_power", parameter, False)]


def test_the_bmcs_refusal_is_the_error() -> None:
    bmc = FakeBMC("On")
    bmc.errors["set_power"] = [
        BMCNotSupportedError(
            "power soft: the BMC allows On, ForceOff", bmc_messages=("GracefulShutdown is not supported",)
        )
    ]
    run, _ = action_run(bmc)
    with pytest.raises(ActionFailedError) as failed:
        perform(task("set_power_state", "soft"), run)
    assert "error setting power state soft: power soft: the BMC allows On, ForceOff" in str(failed.value)
    assert "BMC says: GracefulShutdown is not supported" in str(failed.value)


def test_a_lost_lease_stops_before_the_write() -> None:
    bmc = FakeBMC("On")

    def lost() -> None:
        raise LeaseLostError("lease of task t-1 lost")

    run, _ = action_run(bmc, Recorder(bmc, fail_guard=lost))
    with pytest.raises(LeaseLostError):
        perform(task("set_power_state", "off"), run)
    assert bmc.writes() == []


# -- BMC reset ------------------------------------------------------------------------------------------------------
def test_power_cycle_bmc_waits_for_the_bmc_within_the_reset_timeout() -> None:
    bmc = FakeBMC()
    run, recorder = action_run(bmc, bmc_reset_timeout=42.0)
    assert perform(task("power_cycle_bmc"), run) == "BMC power cycled successfully"
    assert bmc.writes() == [("reset_bmc", True, 42.0)]
    assert recorder.guarded_writes == [0]


def test_power_cycle_bmc_failure_carries_the_bmcs_error_and_is_not_repeated() -> None:
    bmc = FakeBMC()
    bmc.errors["reset_bmc"] = [BMCUnreachableError("reset the BMC: the BMC did not answer: connection refused")]
    run, _ = action_run(bmc)
    with pytest.raises(ActionFailedError) as failed:
        perform(task("power_cycle_bmc"), run)
    assert str(failed.value) == "error power cycling BMC: reset the BMC: the BMC did not answer: connection refused"
    assert len(bmc.writes()) == 1


# -- boot device ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", BOOT_DEVICES)
@pytest.mark.parametrize(("persistent", "efi"), [(False, False), (True, True), (True, False)])
def test_set_next_boot_device_passes_every_device_and_mode(device: str, persistent: bool, efi: bool) -> None:
    bmc = FakeBMC()
    run, recorder = action_run(bmc)
    t = task(
        "set_next_boot_device",
        device,
        set_next_boot_device_persistent=persistent,
        set_next_boot_device_efi=efi,
    )
    assert perform(t, run) == f"next boot device set successfully: {device}"
    assert bmc.boot == (device, persistent, efi)
    how = ("persistent" if persistent else "once") + ", " + ("EFI" if efi else "legacy")
    assert recorder.messages == [f"setting next boot device to: {device} ({how})"]


def test_a_boot_override_is_sent_again_after_a_5xx() -> None:
    bmc = FakeBMC()
    bmc.errors["set_boot_device"] = [BMCUnreachableError("set the boot device to Pxe: the BMC answered HTTP 503")]
    run, recorder = action_run(bmc)
    perform(task("set_next_boot_device", "pxe"), run)
    assert len(bmc.writes()) == 2 and recorder.guards == 2


@pytest.mark.parametrize(
    "error",
    [
        BMCNotSupportedError(
            "set the boot device to Usb: the BMC has no such value", bmc_messages=("Usb not in list",)
        ),
        BMCAuthError("set the boot device to Pxe: the BMC refused the credentials (HTTP 401)"),
    ],
)
def test_a_refused_boot_override_fails_with_the_bmcs_words(error: Exception) -> None:
    bmc = FakeBMC()
    bmc.errors["set_boot_device"] = [error]
    run, _ = action_run(bmc)
    with pytest.raises(ActionFailedError) as failed:
        perform(task("set_next_boot_device", "usb"), run)
    assert str(failed.value) == f"error setting next boot device: {error}"
    assert len(bmc.writes()) == 1


def test_pxe_boot_persistent_sets_pxe_persistent_efi_then_powers_on() -> None:
    bmc = FakeBMC("Off")
    run, recorder = action_run(bmc)
    assert perform(task("pxe_boot_persistent"), run) == "server power state set successful: on"
    assert bmc.writes() == [("set_boot_device", "pxe", True, True), ("set_power", "on", False)]
    assert recorder.messages == [
        "setting next boot device to: pxe (persistent, EFI)",
        "next boot device set successfully: pxe",
        "identified current power state: off",
    ]
    assert bmc.state == "On"


# -- what the model would refuse --------------------------------------------------------------------------------------
def test_an_unknown_action_fails_listing_the_valid_ones() -> None:
    bad = ServerControlTask.model_construct(action="reboot", action_parameter=None)  # type: ignore[arg-type]
    run, _ = action_run(FakeBMC())
    with pytest.raises(ActionFailedError) as failed:
        perform(bad, run)
    assert str(failed.value) == "unsupported action: reboot (valid: " + ", ".join(a.value for a in ControlAction) + ")"


def test_an_unknown_parameter_fails_listing_the_valid_ones() -> None:
    bad = ServerControlTask.model_construct(action=ControlAction.SET_POWER_STATE, action_parameter="hibernate")
    bmc = FakeBMC()
    run, _ = action_run(bmc)
    with pytest.raises(ActionFailedError) as failed:
        perform(bad, run)
    assert (
        str(failed.value) == "set_power_state: parameter 'hibernate' is not valid (valid: on, off, soft, cycle, reset)"
    )
    assert bmc.calls == []
