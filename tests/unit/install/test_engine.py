"""The install engine with a scripted BMC, for paths a simulator cannot force on cue: an install request lost on
the wire, a lease lost in the middle of a BMC task, resuming without a recorded task, retries of the connect step.
Everything else is covered end to end in ``tests/integration/test_install_worker.py``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from flasher.bmc import (
    BMC,
    BMCComponent,
    BMCInterruptedError,
    BMCRequestUnansweredError,
    BMCTaskFailedError,
    BMCTimeoutError,
    BMCUnreachableError,
    TaskHandle,
    TaskProgress,
    UpdateCapabilities,
)
from flasher.checksum import Checksum
from flasher.config import Settings
from flasher.install.engine import InstallEngine
from flasher.install.plan import Decision, InstallPlan, PlannedInstall
from flasher.install.state import SENDING, InstallState, PriorItem, StopReason
from flasher.store.store import CachedImage
from flasher.task.fence import LeaseLostError
from flasher.task.model import ComponentStatus, FirmwareAction, InstallMode
from flasher.task.run import Outcome

RUNNING = TaskProgress("Running", 50, "OK", (), False, False, False)
AWAITING = TaskProgress("Pending", 10, "OK", ("Task successfully scheduled.",), False, False, True)
DONE = TaskProgress("Completed", 100, "OK", (), True, True, False)


class ScriptedBMC:
    """A BMC with ``versions`` by slug; an install completes to the version in ``targets`` when followed."""

    base_url = "http://bmc.test"

    def __init__(self, versions: dict[str, str], targets: dict[str, str], *, power: str = "On") -> None:
        self.versions = dict(versions)
        self.targets = targets
        self.power = power
        self.calls: list[str] = []
        self.install_errors: list[Exception] = []
        self.running: list[str] = []  # slugs whose task runs on the BMC
        self.other_jobs: list[str] = []  # tasks under way that are not firmware installs
        self.awaiting: set[str] = set()  # slugs whose task waits for a host reset
        self.during_task: Callable[[], None] = lambda: None
        self.staging: set[str] = set()  # slugs a finished task only stages until a host reset (HPE System ROM)
        self.staged: dict[str, str] = {}  # slug -> version that activates at the next host reset
        self.host_off_slugs: set[str] = set()  # slugs installed only with the host off (OpenBMC BIOS)
        self.started_staged: list[bool] = []  # wait_for_task's start_staged, per call

    def __enter__(self) -> ScriptedBMC:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.calls.append("close")

    def _component(self, slug: str) -> BMCComponent:
        return BMCComponent(
            slug, f"/fw/{slug}", slug, slug.upper(), self.versions[slug], True, None, None, None, None, None
        )

    def firmware_inventory(self, *, reuse: bool = False) -> list[BMCComponent]:
        return [self._component(slug) for slug in self.versions]

    def update_capabilities(self) -> UpdateCapabilities:
        return UpdateCapabilities(False, (), "/push", None, ())

    def install(self, component: BMCComponent, **_: Any) -> TaskHandle:
        self.calls.append(f"install {component.slug}")
        self.running.append(component.slug)  # the request reached the BMC, whatever the answer
        if self.install_errors:
            raise self.install_errors.pop(0)
        return TaskHandle(f"/tasks/{component.slug}", "multipart")

    def running_tasks(self) -> list[TaskHandle]:
        # Installs say what started them (Payload.TargetUri: an install method); other jobs are "unknown".
        return [TaskHandle(f"/tasks/{slug}", "multipart") for slug in self.running] + [
            TaskHandle(f"/jobs/{name}", "unknown") for name in self.other_jobs
        ]

    def wait_for_task(
        self,
        handle: TaskHandle,
        *,
        timeout: float,
        on_progress: Callable[[TaskProgress], None] | None = None,
        keep_going: Callable[[], bool] | None = None,
        return_on_awaiting_reset: bool = True,
        start_staged: bool = True,
    ) -> TaskProgress:
        slug = handle.uri.rsplit("/", 1)[-1]
        self.calls.append(f"follow {slug}")
        self.started_staged.append(start_staged)
        self.during_task()
        if keep_going is not None and not keep_going():
            raise BMCInterruptedError("stopped following")
        if on_progress is not None:
            on_progress(RUNNING)
        if slug in self.awaiting and return_on_awaiting_reset:
            return AWAITING
        if slug in self.running:
            self.running.remove(slug)
            if slug in self.staging:
                self.staged[slug] = self.targets[slug]
            else:
                self.versions[slug] = self.targets[slug]
        return DONE

    def stages_until_host_reset(self, component: BMCComponent) -> bool:
        return component.slug in self.staging

    def needs_host_off(self, component: BMCComponent) -> bool:
        return component.slug in self.host_off_slugs

    def wait_for_version(self, component: BMCComponent, version: str, *, timeout: float) -> BMCComponent:
        if self.versions[component.slug] != version:
            raise BMCTimeoutError(f"{component.slug} reports {self.versions[component.slug]}, expected {version}")
        return self._component(component.slug)

    def power_state(self, *, recent: bool = False) -> str:
        return self.power

    def apply_reset(self, *, wait: bool = True, timeout: float = 300.0) -> str:
        # As the driver decides it: power on a host that is off or powering off, else a warm reset.
        return self.set_power("on" if self.power in ("Off", "PoweringOff") else "reset")

    def set_power(self, action: str, *, wait: bool = True, timeout: float = 300.0) -> str:
        self.calls.append(f"power {action}")
        self.power = "Off" if action in ("off", "soft") else "On"
        if action in ("reset", "on"):
            self.awaiting.clear()
            self.versions.update(self.staged)
            self.staged.clear()
        return self.power

    def reset_bmc(self, *, wait: bool = True, timeout: float = 900.0) -> None:
        self.calls.append("reset_bmc")


class Reporter:
    """Records messages; ``lost`` makes every fence check (and write) fail; ``stop`` is the stop reason."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.lost = False
        self.stop: StopReason | None = None
        self.persisted: list[dict[str, str | None]] = []  # each write-ahead: bmcTask by component
        self.persist_lands = True

    def fence(self) -> None:
        if self.lost:
            raise LeaseLostError("lease lost")

    def stop_reason(self) -> StopReason | None:
        self.fence()
        return self.stop

    def report(
        self,
        state: InstallState,
        message: str | None = None,
        *,
        component: str | None = None,
        replace_last: bool = False,
    ) -> None:
        self.fence()
        if message is not None:
            self.messages.append(f"[{component}] {message}" if component else message)

    def persist(self, state: InstallState) -> bool:
        self.fence()
        self.persisted.append({s.item.component: s.bmc_task for s in state.items})
        return self.persist_lands


class Images:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "image.bin"
        self.path.write_bytes(b"image")

    def fetch(self, item: PlannedInstall, *, on_progress: Any, deadline: float) -> CachedImage:
        return CachedImage(self.path, Checksum.parse(item.checksum), 5)

    def publish(self, image: CachedImage, filename: str) -> str | None:
        return None

    def unpublish(self, url: str) -> None:
        pass

    def check(self, item: PlannedInstall) -> str:
        return "cached"

    def pull_scheme(self) -> str | None:
        return None


def _item(slug: str, installed: str, target: str, **extra: Any) -> PlannedInstall:
    return PlannedInstall(
        component=slug,
        component_uuid=f"u-{slug}",
        component_name=slug.upper(),
        installed_version=installed,
        version=target,
        image_url=f"http://repo/{slug}.bin",
        checksum="sha256:" + "a" * 64,
        decision=Decision.INSTALL,
        reason="upgrade",
        **extra,
    )


def _engine(
    bmc: ScriptedBMC | Callable[[], BMC], reporter: Reporter, tmp_path: Path, *items: PlannedInstall, **kw: Any
) -> InstallEngine:
    plan = InstallPlan(server_uuid="s", mode=InstallMode.PREDEFINED_FIRMWARE, items=items)
    connect = bmc if callable(bmc) and not isinstance(bmc, ScriptedBMC) else (lambda: cast(BMC, bmc))
    return InstallEngine(
        plan,
        connect=connect,
        images=Images(tmp_path),
        reporter=reporter,
        settings=kw.pop("settings", Settings()),
        sleep=lambda _s: None,
        **kw,
    )


def test_an_install_request_without_an_answer_is_followed_on_the_bmc_not_sent_again(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    bmc.install_errors.append(BMCRequestUnansweredError("no answer; the install may have started"))
    result = _engine(bmc, Reporter(), tmp_path, _item("bios", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert [c for c in bmc.calls if c.startswith(("install", "follow"))] == ["install bios", "follow bios"]
    assert result.versions == {"u-bios": "2"}


def test_an_unanswered_install_request_without_a_bmc_task_fails_and_is_never_sent_again(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    bmc.install_errors.append(BMCRequestUnansweredError("no answer; the install may have started"))
    bmc.running_tasks = lambda: []  # type: ignore[method-assign]  # a BMC without a TaskService
    result = _engine(bmc, Reporter(), tmp_path, _item("bios", "1", "2")).run()
    assert result.outcome is Outcome.FAILED
    assert [c for c in bmc.calls if c.startswith("install")] == ["install bios"]
    assert "not sent again" in (result.error or "")


def test_an_install_request_that_never_reached_the_bmc_is_sent_again(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    bmc.install_errors.append(BMCUnreachableError("connection refused"))
    bmc.running = []
    original = bmc.install

    def install(component: BMCComponent, **kw: Any) -> TaskHandle:
        if bmc.install_errors:  # refused: the BMC never saw it
            bmc.calls.append(f"install {component.slug}")
            raise bmc.install_errors.pop(0)
        return original(component, **kw)

    bmc.install = install  # type: ignore[method-assign]
    result = _engine(bmc, Reporter(), tmp_path, _item("bios", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert [c for c in bmc.calls if c.startswith("install")] == ["install bios", "install bios"]


def test_a_lease_lost_while_the_bmc_flashes_stops_at_once_without_touching_power(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1", "bios": "1"}, {"bmc": "2", "bios": "2"})
    reporter = Reporter()
    bmc.during_task = lambda: setattr(reporter, "lost", True)
    plan = (_item("bmc", "1", "2", pre_actions=(FirmwareAction.POWER_OFF_HOST,)), _item("bios", "1", "2"))
    result = _engine(bmc, reporter, tmp_path, *plan).run()
    assert result.outcome is Outcome.LOST
    assert bmc.calls == ["power soft", "install bmc", "follow bmc", "close"]  # the host is not powered back on
    assert bmc.power == "Off"


def test_the_install_request_carries_the_fence_and_a_lease_lost_before_its_second_request_stops_at_once(
    tmp_path: Path,
) -> None:
    # A Supermicro X13 verifies the upload for minutes before StartUpdate: the driver asks the fence in between.
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    reporter = Reporter()
    asked: list[bool] = []

    def install(component: BMCComponent, *, keep_going: Callable[[], bool], **_: Any) -> TaskHandle:
        bmc.calls.append(f"install {component.slug}")
        asked.append(keep_going())
        reporter.lost = True  # the lease is lost while the BMC verifies the upload
        asked.append(keep_going())
        raise BMCInterruptedError("the image was pushed, but StartUpdate was not sent")

    bmc.install = install  # type: ignore[method-assign,assignment]
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2")).run()
    assert asked == [True, False]
    assert result.outcome is Outcome.LOST, result
    assert [c for c in bmc.calls if c.startswith(("install", "follow", "power"))] == ["install bios"]


def test_a_post_action_power_off_leaves_the_host_off_and_a_reset_for_the_bios_replaces_reset_host(
    tmp_path: Path,
) -> None:
    bmc = ScriptedBMC({"bios": "1", "nic": "1"}, {"bios": "2", "nic": "2"})
    bmc.awaiting.add("bios")
    bios = _item("bios", "1", "2", post_actions=(FirmwareAction.RESET_HOST,))
    nic = _item("nic", "1", "2", post_actions=(FirmwareAction.POWER_OFF_HOST,))
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, bios, nic).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert [c for c in bmc.calls if c.startswith("power")] == ["power reset", "power soft"]
    assert bmc.power == "Off"
    assert "[bios] the BMC applies 2 at the next host reset: resetting the host" in reporter.messages


def test_a_cancel_at_the_safe_point_restores_the_power_a_pre_action_changed(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1", "bios": "1"}, {"bmc": "2", "bios": "2"})
    reporter = Reporter()
    bmc.during_task = lambda: setattr(reporter, "stop", StopReason.CANCEL)
    plan = (_item("bmc", "1", "2", pre_actions=(FirmwareAction.POWER_OFF_HOST,)), _item("bios", "1", "2"))
    result = _engine(bmc, reporter, tmp_path, *plan).run()
    assert result.outcome is Outcome.CANCELLED
    assert [c for c in bmc.calls if c.startswith(("power", "install"))] == ["power soft", "install bmc", "power on"]
    assert result.state is not None
    assert [s.status for s in result.state.items] == [ComponentStatus.INSTALLED, ComponentStatus.PENDING]


def test_resuming_a_write_ahead_without_a_recorded_task_follows_the_bmcs_running_install(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    bmc.running.append("bios")  # the earlier owner's install: its write-ahead landed, the task's URI did not
    prior = {"u-bios": PriorItem(ComponentStatus.ACTIVE, bmc_task=SENDING)}
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2"), prior=prior, initial_power="Off").run()
    assert result.outcome is Outcome.SUCCESS, result
    assert "install bios" not in bmc.calls and "follow bios" in bmc.calls
    assert "[bios] following BMC task /tasks/bios of an earlier attempt" in reporter.messages
    assert bmc.calls[-2:] == ["power off", "close"]  # back to the power state the first attempt found


def test_every_install_is_recorded_in_the_attribute_before_it_is_sent(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1", "bios": "1"}, {"bmc": "2", "bios": "2"})
    reporter = Reporter()
    seen: list[list[dict[str, str | None]]] = []
    install = bmc.install

    def recorded_install(component: BMCComponent, **kw: Any) -> TaskHandle:
        seen.append(list(reporter.persisted))  # what had landed when the request went out
        return install(component, **kw)

    bmc.install = recorded_install  # type: ignore[method-assign]
    result = _engine(bmc, reporter, tmp_path, _item("bmc", "1", "2"), _item("bios", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert seen == [
        [{"bmc": SENDING, "bios": None}],
        [{"bmc": SENDING, "bios": None}, {"bmc": "/tasks/bmc", "bios": SENDING}],
    ]
    assert result.state is not None and [s.bmc_task for s in result.state.items] == ["/tasks/bmc", "/tasks/bios"]


def test_an_install_whose_write_ahead_does_not_land_is_not_sent(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    reporter = Reporter()
    reporter.persist_lands = False  # the inventory is down past steps.inventory_write's timeout
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2")).run()
    assert result.outcome is Outcome.FAILED, result
    assert not [c for c in bmc.calls if c.startswith("install")]
    assert "did not take the record of the bios install about to be sent" in (result.error or "")
    assert result.state is not None and result.state.items[0].bmc_task is None


def test_an_install_its_write_ahead_recorded_is_applied_by_the_host_reset_it_waits_for(tmp_path: Path) -> None:
    # An attempt that lost its lease (Redis lost its data) after it sent the BIOS install, before the attribute had
    # the BMC's task: its write-ahead is there, the BIOS waits for a host reset on the BMC.
    bmc = ScriptedBMC({"bios": "1", "nic": "1"}, {"bios": "2", "nic": "2"})
    bmc.running.append("bios")
    bmc.awaiting.add("bios")
    prior = {"u-bios": PriorItem(ComponentStatus.ACTIVE, bmc_task=SENDING)}
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2"), _item("nic", "1", "2"), prior=prior).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert [c for c in bmc.calls if c.startswith(("install", "follow", "power"))] == [
        "follow bios",  # no second BIOS install: the one under way is applied by the host reset it waits for
        "power reset",
        "follow bios",
        "install nic",  # the BMC's tasks are listed again first: none under way
        "follow nic",
    ]
    assert any(
        "install(s) under way that this task sent and did not record (/tasks/bios)" in m for m in reporter.messages
    )
    assert "[bios] installed 2 by the earlier attempt's BMC task (confirmed by the BMC)" in reporter.messages


@pytest.mark.parametrize("prior_status", [None, ComponentStatus.ACTIVE], ids=["not-started", "active-no-write-ahead"])
def test_a_pending_install_flasher_did_not_send_is_never_applied_by_it(
    tmp_path: Path, prior_status: ComponentStatus | None
) -> None:
    # An operator staged a BIOS outside flasher: it waits on the BMC for a host reset. No write-ahead of this task
    # says it could be flasher's (active without one: the earlier attempt died before it sent anything).
    bmc = ScriptedBMC({"bios": "1", "nic": "1"}, {"bios": "2", "nic": "2"})
    bmc.running.append("bios")
    bmc.awaiting.add("bios")
    prior = {"u-bios": PriorItem(prior_status)} if prior_status is not None else None
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2"), _item("nic", "1", "2"), prior=prior).run()
    assert result.outcome is Outcome.FAILED, result
    assert [c for c in bmc.calls if c.startswith(("install", "follow", "power"))] == ["follow bios"]  # no reset
    assert bmc.started_staged == [False]  # nor a StartUpdate for it
    assert "that flasher did not send waiting to be applied (/tasks/bios" in (result.error or "")
    assert "reset the host" in (result.error or "")
    assert result.state is not None
    assert [s.status for s in result.state.items] == [ComponentStatus.FAILED, ComponentStatus.PENDING]


def test_an_install_flasher_did_not_send_is_waited_for_and_then_this_one_goes_on(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1", "bios": "1"}, {"bmc": "2", "bios": "2"})
    bmc.running.append("bmc")  # someone else's BMC update, running on its own
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert [c for c in bmc.calls if c.startswith(("install", "follow", "power"))] == [
        "follow bmc",
        "install bios",
        "follow bios",
    ]
    assert bmc.started_staged == [False, True]  # only flasher's own task may be started
    assert any("install(s) under way that flasher did not send (/tasks/bmc)" in m for m in reporter.messages)


def test_a_task_under_way_for_another_component_ends_before_this_one_is_installed(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1", "bios": "1"}, {"bmc": "2", "bios": "2"})
    bmc.running.append("bmc")  # not in this task's plan
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS, result
    calls = [c for c in bmc.calls if c.startswith(("install", "follow"))]
    assert calls == ["follow bmc", "install bios", "follow bios"]
    assert "[bios] the BMC reports 1 after those tasks: installing" in reporter.messages


def test_a_task_under_way_that_is_not_a_firmware_install_is_left_alone(tmp_path: Path) -> None:
    # A BIOS settings job waiting for a reboot, or a task whose BMC does not say what started it: following it
    # could reset the host for a change nobody asked flasher for.
    bmc = ScriptedBMC({"bmc": "1"}, {"bmc": "2"})
    bmc.other_jobs.append("JID_settings")
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bmc", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert [c for c in bmc.calls if c.startswith(("install", "follow", "power reset"))] == ["install bmc", "follow bmc"]
    assert any(
        "not firmware installs as far as it says (/jobs/JID_settings): left alone" in m for m in reporter.messages
    )


def test_a_task_under_way_that_fails_on_its_own_has_ended_and_this_install_goes_on(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1", "bios": "1"}, {"bmc": "2", "bios": "2"})
    bmc.running.append("bmc")
    follow = bmc.wait_for_task

    def wait_for_task(handle: TaskHandle, **kw: Any) -> TaskProgress:
        if handle.uri == "/tasks/bmc":
            bmc.running.remove("bmc")
            raise BMCTaskFailedError("task /tasks/bmc ended Exception: image rejected")
        return follow(handle, **kw)

    bmc.wait_for_task = wait_for_task  # type: ignore[method-assign]
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert "install bios" in bmc.calls
    assert any("BMC task /tasks/bmc ended without success" in m for m in reporter.messages)


@pytest.mark.parametrize(("failures", "outcome"), [(2, Outcome.SUCCESS), (3, Outcome.RETRY)])
def test_connect_is_retried_under_its_policy(tmp_path: Path, failures: int, outcome: Outcome) -> None:
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    tries: list[int] = []

    def connect() -> BMC:
        tries.append(1)
        if len(tries) <= failures:
            raise BMCUnreachableError("connection refused")
        return cast(BMC, bmc)

    result = _engine(connect, Reporter(), tmp_path, _item("bios", "1", "2")).run()
    assert result.outcome is outcome and len(tries) == min(failures + 1, 3)
    if outcome is Outcome.RETRY:
        assert result.error == "BMC unreachable: connection refused" and bmc.calls == []


def test_a_resumed_task_waits_for_a_bmc_restarting_into_its_new_firmware(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "2"}, {"bmc": "2"})
    tries: list[int] = []

    def connect() -> BMC:
        tries.append(1)
        if len(tries) <= 6:  # more than the connect policy's 3 attempts
            raise BMCUnreachableError("connection refused")
        return cast(BMC, bmc)

    prior = {"u-bmc": PriorItem(ComponentStatus.ACTIVE, bmc_task="/tasks/bmc")}
    result = _engine(connect, Reporter(), tmp_path, _item("bmc", "1", "2"), prior=prior).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert len(tries) == 7 and "install bmc" not in bmc.calls
    assert result.state is not None and result.state.items[0].message.startswith("installed 2 by the earlier attempt")


def test_require_host_powered_off_shuts_the_host_down_before_each_component_and_restores_it(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1", "bios": "1"}, {"bmc": "2", "bios": "2"})
    bmc.awaiting.add("bios")  # the BIOS is applied at a host reset: the host is powered on for it
    reporter = Reporter()
    items = (_item("bmc", "1", "2"), _item("bios", "1", "2"))
    result = _engine(bmc, reporter, tmp_path, *items, host_off=True).run()
    assert result.outcome is Outcome.SUCCESS, result
    steps = [c for c in bmc.calls if c.startswith(("install", "power"))]
    # Off before the BMC's install; the BIOS install starts with the host off; the reset powers it on to apply
    # the BIOS; the start state (On) is restored at the end (it is On already: nothing to do).
    assert steps == ["power soft", "install bmc", "install bios", "power on"]
    assert bmc.power == "On"
    assert "[bmc] host powered off for the install (power Off)" in reporter.messages


def test_without_require_host_powered_off_the_host_stays_on(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1"}, {"bmc": "2"})
    result = _engine(bmc, Reporter(), tmp_path, _item("bmc", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS
    assert [c for c in bmc.calls if c.startswith("power")] == []


# -- vendor rules the driver reports (HPE staged System ROM, OpenBMC host-off BIOS) ---------------------------------
def test_a_staged_image_is_activated_by_a_host_reset_and_confirmed_by_its_version(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    bmc.staging.add("bios")  # the task ends Completed, the version stays 1 until the host resets
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert [c for c in bmc.calls if c.startswith(("install", "follow", "power"))] == [
        "install bios",
        "follow bios",
        "power reset",
    ]
    assert "[bios] the BMC staged 2 (it still runs 1); it activates at the next host reset: resetting the host" in (
        reporter.messages
    )
    assert result.versions == {"u-bios": "2"}


def test_a_staged_image_is_not_reset_twice_by_a_reset_host_post_action(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    bmc.staging.add("bios")
    item = _item("bios", "1", "2", post_actions=(FirmwareAction.RESET_HOST,))
    result = _engine(bmc, Reporter(), tmp_path, item).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert [c for c in bmc.calls if c.startswith("power")] == ["power reset"]


def test_with_staged_firmware_wait_the_host_is_left_alone_and_an_inactive_image_fails(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    bmc.staging.add("bios")
    settings = Settings(bmc={"staged_firmware": "wait"})
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2"), settings=settings).run()
    assert result.outcome is Outcome.FAILED, result
    assert "2 is staged but not active" in str(result.error)
    assert [c for c in bmc.calls if c.startswith("power")] == []
    assert any("waiting for one (bmc.staged_firmware: wait)" in m for m in reporter.messages)


def test_a_staged_image_an_earlier_attempt_left_is_activated_by_a_host_reset_not_installed_again(
    tmp_path: Path,
) -> None:
    # The earlier attempt's task completed (the image is staged) and it died before the reset: the old ROM runs.
    bmc = ScriptedBMC({"bios": "1"}, {"bios": "2"})
    bmc.staging.add("bios")
    bmc.staged["bios"] = "2"
    reads: list[bool] = []  # reuse, per reading
    inventory = bmc.firmware_inventory

    def counted_inventory(*, reuse: bool = False) -> list[BMCComponent]:
        reads.append(reuse)
        return inventory(reuse=reuse)

    bmc.firmware_inventory = counted_inventory  # type: ignore[method-assign]
    prior = {"u-bios": PriorItem(ComponentStatus.ACTIVE, bmc_task="/tasks/bios")}
    reporter = Reporter()
    result = _engine(bmc, reporter, tmp_path, _item("bios", "1", "2"), prior=prior).run()
    assert result.outcome is Outcome.SUCCESS, result
    assert [c for c in bmc.calls if c.startswith(("install", "follow", "power"))] == ["follow bios", "power reset"]
    assert "[bios] host reset to activate 2 (power On)" in reporter.messages
    assert result.versions == {"u-bios": "2"}
    # Read from the BMC for the plan, then once after the earlier task (the staged-activation path decides on that
    # reading too); the end's reading reuses the confirmation's.
    assert reads == [False, False, True]


def test_a_staging_bmc_that_activated_at_once_needs_no_reset(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1"}, {"bmc": "2"})  # not a staging component: the version changes with the task
    result = _engine(bmc, Reporter(), tmp_path, _item("bmc", "1", "2")).run()
    assert result.outcome is Outcome.SUCCESS
    assert [c for c in bmc.calls if c.startswith("power")] == []


def test_a_component_the_bmc_installs_only_with_the_host_off_gets_it_off_and_the_power_back(tmp_path: Path) -> None:
    bmc = ScriptedBMC({"bmc": "1", "bios": "1"}, {"bmc": "2", "bios": "2"})
    bmc.host_off_slugs.add("bios")
    reporter = Reporter()
    items = (_item("bmc", "1", "2"), _item("bios", "1", "2"))
    result = _engine(bmc, reporter, tmp_path, *items).run()
    assert result.outcome is Outcome.SUCCESS, result
    steps = [c for c in bmc.calls if c.startswith(("install", "power"))]
    assert steps == ["install bmc", "power soft", "install bios", "power on"]  # only the BIOS; On restored
    assert "[bios] powering the host off first (the BMC updates it only with the host off)" in reporter.messages
