"""The server-control actions of metal-toolbox flipflop, against one BMC.

============================  =============================================================================
action (``action_parameter``)  what is done, and what ends it
============================  =============================================================================
``get_power_state``           read ``PowerState``; ``identified current power state: on``
``set_power_state`` (on, off,  read and report the state (waiting out ``PoweringOn``/``PoweringOff``), send the
soft, cycle, reset)           ``ResetType`` (:mod:`flasher.bmc.power`), wait until the host reads ``On``
                              (on, cycle, reset) or ``Off`` (off, soft); ``cycle`` of a host that is off
                              powers it on (flipflop: ``server was powered off, powering on``)
``power_cycle_bmc``           ``Manager.Reset``; wait until the BMC went away and answers again
``set_next_boot_device``      ``Boot.BootSourceOverrideTarget`` = the device, ``Continuous`` when
(pxe, disk, cdrom, bios, usb,  ``set_next_boot_device_persistent`` else ``Once``, ``UEFI`` when
diag, floppy, none,           ``set_next_boot_device_efi`` else ``Legacy``; the target is read back
remote_drive, sd_card,
utilities)
``pxe_boot_persistent``       ``set_next_boot_device`` pxe, persistent, EFI; then ``set_power_state`` on
``provision`` (a boot         the boot profile, PXE once, ``set_power_state`` cycle, then wait for the booted
profile, optional)            machine's callback (:mod:`flasher.control.provision`)
============================  =============================================================================

Timeouts come from ``settings.control``: ``power_timeout`` for each power read, settle and wait,
``bmc_reset_timeout`` for the BMC reset, ``boot_timeout`` for the boot override. Messages:
:mod:`flasher.control.messages`.

Repeats: ``on``, ``off``, ``soft`` and the boot override are idempotent, so a write the BMC answered with no
answer or a 5xx is sent again while the timeout allows. ``cycle``, ``reset`` and the BMC reset are not (the
first request may have landed), so they are sent once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from loguru import logger
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from flasher.bmc import BMCError, BMCUnreachableError
from flasher.config import ControlSettings
from flasher.control import messages
from flasher.control.waits import OFF, ON, read_power_state, restart_window, settled_power_state, wait_for_power
from flasher.task.model import ACTION_PARAMETERS, ControlAction, ServerControlTask

#: The host state each ``set_power_state`` parameter ends in.
POWER_TARGETS: dict[str, str] = {"on": ON, "off": OFF, "soft": OFF, "cycle": ON, "reset": ON}
#: Parameters that may be sent again after a write that got no answer (sending them twice does no harm).
IDEMPOTENT_POWER: frozenset[str] = frozenset({"on", "off", "soft"})


class ControlBMC(Protocol):
    """What the actions need of a BMC (:class:`flasher.bmc.BMC` has it)."""

    def power_state(self) -> str: ...

    def set_power(self, action: str, *, wait: bool = True, timeout: float = 300.0) -> str: ...

    def set_boot_device(self, target: str, *, persistent: bool = False, uefi: bool = True) -> None: ...

    def reset_bmc(self, *, wait: bool = True, timeout: float = 900.0) -> None: ...


class ActionFailedError(Exception):
    """The action failed; ``str()`` is the status message and error, flipflop-worded:
    ``error setting next boot device: BMC http://...: ... (BMC says: ...)``."""


@dataclass
class ActionRun:
    """One action run: the BMC, the timeouts, and how to report.

    ``progress(text)`` writes a status message (fenced; may raise the writer's errors). ``guard()`` runs before
    every request that changes something on the BMC: the fence check, and the runner's cancel/shutdown check
    while nothing was changed yet. ``poll`` is the seconds between power state reads.
    """

    bmc: ControlBMC
    timeouts: ControlSettings
    poll: float
    progress: Callable[[str], None]
    guard: Callable[[], None]
    sleep: Callable[[float], None] = field(default=time.sleep)

    # -- reads and writes -------------------------------------------------------------------------------------

    def read_state(self, *, settle: bool = False) -> str:
        """The host's power state (retried while the BMC does not answer); with ``settle``, once it is not
        changing. Raises :class:`ActionFailedError` ("error identifying current power state: ...")."""
        read = settled_power_state if settle else read_power_state
        try:
            return read(self.bmc.power_state, timeout=self.timeouts.power_timeout, poll=self.poll, sleep=self.sleep)
        except BMCError as exc:
            raise ActionFailedError(messages.failure(messages.ERR_IDENTIFY_POWER, exc)) from exc

    def _write(self, what: str, send: Callable[[], object], *, repeatable: bool, timeout: float) -> None:
        """``guard()`` then ``send()``; a repeatable write that got no answer is sent again (each time after a
        new ``guard()``) until ``timeout`` s. BMC errors propagate."""
        if not repeatable:
            self.guard()
            send()
            return
        retrying = Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(self.poll),
            retry=retry_if_exception_type(BMCUnreachableError),
            reraise=True,
            sleep=self.sleep,
            before_sleep=lambda state: logger.warning(
                "{}: no good answer from the BMC, sending again: {}",
                what,
                state.outcome.exception() if state.outcome else "",
            ),
        )
        for attempt in retrying:
            with attempt:
                self.guard()
                send()

    def power(self, parameter: str, current: str) -> str:
        """Send power ``parameter`` to a host that reads ``current`` and wait for its target state; returns
        the state read last. Raises :class:`~flasher.bmc.BMCError`."""
        target = POWER_TARGETS[parameter]
        timeout = self.timeouts.power_timeout
        self._write(
            f"power {parameter}",
            lambda: self.bmc.set_power(parameter, wait=False),
            repeatable=parameter in IDEMPOTENT_POWER,
            timeout=timeout,
        )
        window = restart_window(self.poll, timeout) if parameter in ("cycle", "reset") and current == ON else 0.0
        return wait_for_power(
            self.bmc.power_state, target, timeout=timeout, poll=self.poll, restart_window=window, sleep=self.sleep
        )

    # -- the actions ------------------------------------------------------------------------------------------

    def get_power_state(self) -> str:
        """``get_power_state``; returns the final message."""
        return messages.identified_power_state(messages.power_word(self.read_state()))

    def set_power_state(self, parameter: str) -> str:
        """``set_power_state`` with ``parameter`` (one of :data:`~flasher.task.model.POWER_STATES`); returns the final
        message. Raises :class:`ActionFailedError`."""
        current = self.read_state(settle=True)
        word = messages.power_word(current)
        self.progress(messages.identified_power_state(word))
        if parameter == "cycle" and "off" in word:
            self.progress(messages.POWERED_OFF_POWERING_ON)
            try:
                self.power("on", current)
            except BMCError as exc:
                raise ActionFailedError(messages.failure(messages.ERR_POWER_ON_FROM_OFF, exc)) from exc
            return messages.POWERED_ON
        try:
            self.power(parameter, current)
        except BMCError as exc:
            raise ActionFailedError(messages.failure(messages.error_setting_power(parameter), exc)) from exc
        return messages.power_state_set(parameter)

    def power_cycle_bmc(self) -> str:
        """``power_cycle_bmc``: restart the BMC and wait until it answers again; returns the final message."""
        timeout = self.timeouts.bmc_reset_timeout
        try:
            self._write(
                "BMC reset", lambda: self.bmc.reset_bmc(wait=True, timeout=timeout), repeatable=False, timeout=timeout
            )
        except BMCError as exc:
            raise ActionFailedError(messages.failure(messages.ERR_POWER_CYCLE_BMC, exc)) from exc
        return messages.BMC_POWER_CYCLED

    def set_next_boot_device(self, device: str, *, persistent: bool, efi: bool) -> str:
        """``set_next_boot_device``: the boot override, read back; returns the final message."""
        self.progress(messages.setting_boot_device(device, persistent=persistent, efi=efi))
        try:
            self._write(
                f"boot device {device}",
                lambda: self.bmc.set_boot_device(device, persistent=persistent, uefi=efi),
                repeatable=True,
                timeout=self.timeouts.boot_timeout,
            )
        except (BMCError, ValueError) as exc:
            raise ActionFailedError(messages.failure(messages.ERR_BOOT_DEVICE, exc)) from exc
        return messages.boot_device_set(device)

    def pxe_boot_persistent(self) -> str:
        """``pxe_boot_persistent``: PXE, persistent, EFI; then power on. Returns the final message."""
        self.progress(self.set_next_boot_device("pxe", persistent=True, efi=True))
        return self.set_power_state("on")


def perform(task: ServerControlTask, run: ActionRun, provisioner: Callable[[], str] | None = None) -> str:
    """Run ``task``'s action; returns the final status message. Raises :class:`ActionFailedError` (with the message
    to write), and whatever ``run.progress``/``run.guard`` raise.

    An action or parameter the task model would not accept (a task built without validation) fails listing
    the valid ones. ``provision`` runs ``provisioner`` (:mod:`flasher.control.provision`, which needs the inventory);
    without one it fails.
    """
    name = str(task.action)
    parameter = task.action_parameter or ""
    if name not in ACTION_PARAMETERS:
        raise ActionFailedError(f"unsupported action: {name} (valid: {', '.join(a.value for a in ControlAction)})")
    action = ControlAction(name)
    if action is ControlAction.PROVISION:
        if provisioner is None:
            raise ActionFailedError("provision: this runner cannot provision (it has no inventory)")
        return provisioner()
    valid = ACTION_PARAMETERS[action]
    if valid and parameter not in valid:
        raise ActionFailedError(f"{name}: parameter {parameter!r} is not valid (valid: {', '.join(valid)})")
    if action is ControlAction.GET_POWER_STATE:
        return run.get_power_state()
    if action is ControlAction.SET_POWER_STATE:
        return run.set_power_state(parameter)
    if action is ControlAction.POWER_CYCLE_BMC:
        return run.power_cycle_bmc()
    if action is ControlAction.SET_NEXT_BOOT_DEVICE:
        return run.set_next_boot_device(
            parameter, persistent=task.set_next_boot_device_persistent, efi=task.set_next_boot_device_efi
        )
    if action is ControlAction.PXE_BOOT_PERSISTENT:
        return run.pxe_boot_persistent()
    raise ActionFailedError(f"unsupported action: {name}")
