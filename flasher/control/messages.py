"""The status messages of server-control tasks, worded as metal-toolbox flipflop writes them.

flipflop (``internal/flipflop/handler.go``) publishes these texts as the condition's status; flasher writes
them into the attribute's ``messages`` (timestamped by :meth:`flasher.task.model.TaskBase.add_message`) so tooling
that reads flipflop's words keeps working. Failures are ``<context>: <the BMC's error>`` as flipflop wraps them
(``errors.Wrap(err, context)``). Power states are written in lower case (``on``, ``off``, ``poweringon``), as
bmclib reports them to flipflop.
"""

from __future__ import annotations

from typing import Final

#: The first message of every run (flipflop: "running condition action"), followed by the action.
RUNNING: Final = "running condition action"
#: ``set_power_state`` with ``cycle`` on a host that is off: flipflop powers it on instead.
POWERED_OFF_POWERING_ON: Final = "server was powered off, powering on"
POWERED_ON: Final = "server powered on successfully"
BMC_POWER_CYCLED: Final = "BMC power cycled successfully"
#: A cancel seen before the first write to the BMC.
CANCELLED_BEFORE_START: Final = "cancelled before the action started"

# Failure contexts (flipflop's ``failedWithError`` first argument).
ERR_IDENTIFY_POWER: Final = "error identifying current power state"
ERR_POWER_ON_FROM_OFF: Final = "server was powered off, failed to power on"
ERR_POWER_CYCLE_BMC: Final = "error power cycling BMC"
ERR_BOOT_DEVICE: Final = "error setting next boot device"
ERR_CONNECT: Final = "error connecting to the BMC"


def running(action: str, parameter: str | None) -> str:
    """``running condition action: set_power_state cycle``."""
    return f"{RUNNING}: {action} {parameter}" if parameter else f"{RUNNING}: {action}"


def identified_power_state(state: str) -> str:
    """``identified current power state: off`` (``state`` as :func:`power_word` gives it)."""
    return f"identified current power state: {state}"


def power_state_set(parameter: str) -> str:
    """``server power state set successful: on`` (the task's ``action_parameter``)."""
    return f"server power state set successful: {parameter}"


def error_setting_power(parameter: str) -> str:
    """The context of a failed ``set_power_state`` (flipflop wraps the bare error; flasher names the state)."""
    return f"error setting power state {parameter}"


def boot_device_set(device: str) -> str:
    """``next boot device set successfully: pxe``."""
    return f"next boot device set successfully: {device}"


def setting_boot_device(device: str, *, persistent: bool, efi: bool) -> str:
    """``setting next boot device to: pxe (persistent, EFI)`` (flipflop logs it; flasher also writes it)."""
    how = "persistent" if persistent else "once"
    mode = "EFI" if efi else "legacy"
    return f"setting next boot device to: {device} ({how}, {mode})"


def failure(context: str, error: object) -> str:
    """``<context>: <error>``, as flipflop's ``errors.Wrap(err, context)`` reads."""
    return f"{context}: {error}"


def power_word(state: str) -> str:
    """A Redfish ``PowerState`` as flipflop writes it: ``On`` → ``on``, ``PoweringOff`` → ``poweringoff``."""
    return state.strip().lower()
