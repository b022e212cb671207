"""Pure decisions about pre- and post-actions and the host's power, kept apart from the BMC so they can be tested.

Rules (see ``docs/install.md``, "Pre- and post-actions" and "Power"):

* Actions run in the order the operator listed them; an action listed twice in one list runs once.
* A ``resetHost`` post-action is not run when the install already reset the host to apply the update (a BIOS
  that the BMC applies only at reset): the reset it asks for has happened.
* The host ends in the power state it started in, unless an action asked otherwise: when the last host-power
  post-action that ran was ``powerOffHost``, the host stays off. ``resetHost`` and pre-actions only serve the
  install, so the start state is restored after them.
* Transitional states count as where they are going (``PoweringOn`` → ``On``, ``PoweringOff`` → ``Off``); a
  state that is neither (or unknown) is not restored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from flasher.task.model import FirmwareAction

ON: Final = "On"
OFF: Final = "Off"

_HOST_POWER_ACTIONS: Final = frozenset({FirmwareAction.RESET_HOST, FirmwareAction.POWER_OFF_HOST})


def ordered(actions: Iterable[FirmwareAction]) -> tuple[FirmwareAction, ...]:
    """``actions`` in the operator's order, each once."""
    return tuple(dict.fromkeys(actions))


def post_actions_to_run(actions: Iterable[FirmwareAction], *, host_reset_done: bool) -> tuple[FirmwareAction, ...]:
    """The post-actions to run: :func:`ordered`, without ``resetHost`` when the install already reset the host."""
    chosen = ordered(actions)
    if host_reset_done:
        chosen = tuple(a for a in chosen if a is not FirmwareAction.RESET_HOST)
    return chosen


def normal_power(state: str | None) -> str | None:
    """``On`` or ``Off`` for a Redfish ``PowerState`` (transitional states by where they go), else ``None``."""
    if state in (ON, "PoweringOn"):
        return ON
    if state in (OFF, "PoweringOff"):
        return OFF
    return None


def final_power(initial: str | None, post_actions_run: Sequence[FirmwareAction]) -> str | None:
    """The power state the host should end in: ``Off`` when the last host-power post-action that ran was
    ``powerOffHost``, else the start state (:func:`normal_power`); ``None``: leave the host as it is."""
    last = next((a for a in reversed(post_actions_run) if a in _HOST_POWER_ACTIONS), None)
    if last is FirmwareAction.POWER_OFF_HOST:
        return OFF
    return normal_power(initial)


def restore_action(current: str | None, target: str | None) -> str | None:
    """The power action (:data:`flasher.bmc.POWER_ACTIONS` name) that brings the host from ``current`` to
    ``target``: ``on``, ``off``, or ``None`` when nothing is to be done (already there, or either is unknown)."""
    now = normal_power(current)
    if target is None or now is None or now == target:
        return None
    return "on" if target == ON else "off"
