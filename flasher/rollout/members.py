"""A rollout's members as the controller, the start gate and ``rollout status`` see them.

A member is a server whose install task attribute carries ``rollout.name``. :func:`member_of` reads one from
the server as an inventory listing returns it: status, wave, generation, the firmware it installs, what failed,
its values in the rollout's cap groups, whether its installs restart the host, and how long they are expected to
take.

**Firmware keys.** The breaker counts failures per firmware: component type, version and the server's
vendor/model (:class:`FirmwareKey`, shown ``bios 2.12.2 (dell r6515)``). What a member installs is its plan
once admission wrote one (``Firmware`` entries that are not ``skipped``), else what the rollout planned at
create time (``rollout.firmware``). A failed member counts against the firmware of each failed component; one
that failed without naming a component (its BMC unreachable, say) counts against every firmware it was to
install: flasher cannot tell which one is to blame, and the breaker errs on the side of stopping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from flasher.config import RolloutSettings
from flasher.constants import TASK_NAMESPACE
from flasher.inventory.models import Server
from flasher.rollout.groups import GroupSpec
from flasher.task.model import (
    ComponentStatus,
    FirmwareAction,
    InstallTask,
    TaskStatus,
    TaskValidationError,
    is_new,
    is_terminal,
    parse_install_task,
)

_REBOOTING: Final = frozenset({FirmwareAction.RESET_HOST, FirmwareAction.POWER_OFF_HOST})
#: Component types whose install restarts the host (the BIOS is applied at a host reset).
HOST_RESTARTING_COMPONENTS: Final = frozenset({"bios"})


@dataclass(frozen=True, order=True)
class FirmwareKey:
    """One firmware as the breaker counts it: component slug, version, server vendor and model."""

    component: str
    version: str
    vendor: str
    model: str

    @property
    def label(self) -> str:
        """``bios 2.12.2 (dell r6515)``."""
        return f"{self.component} {self.version} ({self.vendor or '?'} {self.model or '?'})"

    @property
    def slug(self) -> str:
        """``bios|2.12.2|dell|r6515``: the key's part of Redis key names and the metrics' ``firmware`` label."""
        return "|".join((self.component, self.version, self.vendor or "?", self.model or "?"))


@dataclass(frozen=True)
class Member:
    """One member (module docstring). ``status`` is the task's (``""`` and ``requested`` both mean waiting);
    ``failed`` the firmware a failure counts against; ``groups`` the member's value per group spec text;
    ``minutes`` the expected duration of what it installs; ``claimed_at`` when its last run started."""

    server_id: str
    name: str
    facility: str
    status: TaskStatus
    wave: int
    generation: int
    task_id: str | None
    firmware: tuple[FirmwareKey, ...]
    failed: tuple[FirmwareKey, ...] = ()
    error: str = ""
    groups: Mapping[str, str] = field(default_factory=dict)
    reboots: bool = False
    minutes: float = 0.0
    cancel: bool = False
    created_at: datetime | None = None
    completed_at: datetime | None = None
    claimed_at: datetime | None = None
    last_message: str = ""
    data: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    @property
    def waiting(self) -> bool:
        """New: not admitted yet (or sent back to wait)."""
        return is_new(self.status)

    @property
    def holding(self) -> bool:
        """Queued or active: it holds a slot of the rollout's caps."""
        return self.status in (TaskStatus.QUEUED, TaskStatus.ACTIVE)

    @property
    def ended(self) -> bool:
        """Success, failed or cancelled."""
        return is_terminal(self.status)

    @property
    def expected(self) -> timedelta:
        """:attr:`minutes` as a duration."""
        return timedelta(minutes=self.minutes)


def _key(component: str, version: str, server: Server) -> FirmwareKey:
    return FirmwareKey(component, version, (server.vendor or "").lower(), (server.model or "").lower())


def planned_firmware(task: InstallTask, server: Server) -> tuple[FirmwareKey, ...]:
    """The firmware ``task`` installs on ``server`` (module docstring), in install order, each once."""
    if task.firmware:
        keys = [
            _key(slug, spec.version, server)
            for slug, spec in task.firmware.items()
            if spec.status is not ComponentStatus.SKIPPED
        ]
    else:
        keys = []
        for entry in task.rollout.firmware if task.rollout else []:
            component, _, version = entry.partition(" ")
            if component and version:
                keys.append(_key(component, version.strip(), server))
    return tuple(dict.fromkeys(keys))


def failed_firmware(task: InstallTask, server: Server) -> tuple[FirmwareKey, ...]:
    """What a failed ``task`` counts against (module docstring); ``()`` unless it failed."""
    if task.status is not TaskStatus.FAILED:
        return ()
    failed = [
        _key(slug, spec.version, server)
        for slug, spec in (task.firmware or {}).items()
        if spec.status is ComponentStatus.FAILED
        or any(i.status is ComponentStatus.FAILED for i in spec.instances or [])
    ]
    return tuple(dict.fromkeys(failed)) or planned_firmware(task, server)


def restarts_host(task: InstallTask) -> bool:
    """Whether the task's installs restart (or power off) the host: a BIOS, a ``resetHost``/``powerOffHost``
    action, or ``requireHostPoweredOff``."""
    if task.require_host_powered_off:
        return True
    if task.firmware:
        for slug, spec in task.firmware.items():
            if spec.status is ComponentStatus.SKIPPED:
                continue
            if slug in HOST_RESTARTING_COMPONENTS or _REBOOTING & {*spec.pre_actions, *spec.post_actions}:
                return True
        return False
    entries = task.rollout.firmware if task.rollout else []
    return any(entry.partition(" ")[0] in HOST_RESTARTING_COMPONENTS for entry in entries)


def expected_minutes(task: InstallTask, settings: RolloutSettings) -> float:
    """Minutes the task's remaining installs are expected to take: per component type (and per instance of
    types with several) from ``rollout.expected_minutes``, else ``rollout.default_minutes``."""

    def minutes(slug: str) -> float:
        return settings.expected_minutes.get(slug, settings.default_minutes)

    if task.firmware:
        total = 0.0
        for slug, spec in task.firmware.items():
            if spec.instances:
                left = [i for i in spec.instances if i.status in (ComponentStatus.PENDING, ComponentStatus.ACTIVE)]
                total += minutes(slug) * len(left)
            elif spec.status in (None, ComponentStatus.PENDING, ComponentStatus.ACTIVE):
                total += minutes(slug)
        return total
    entries = task.rollout.firmware if task.rollout else []
    return sum(minutes(entry.partition(" ")[0]) for entry in entries)


def _claimed_at(task: InstallTask) -> datetime | None:
    for line in reversed(task.messages):
        if " claimed by " in line:
            try:
                return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00"))
            except ValueError:
                return None
    return None


def member_of(server: Server, task: InstallTask, groups: Iterable[GroupSpec], settings: RolloutSettings) -> Member:
    """The member ``task`` (a parsed install attribute with ``rollout``) of ``server`` is."""
    assert task.rollout is not None
    return Member(
        server_id=str(server.uuid),
        name=server.name,
        facility=server.facility,
        status=task.status,
        wave=task.rollout.wave,
        generation=task.rollout.generation,
        task_id=task.task_id,
        firmware=planned_firmware(task, server),
        failed=failed_firmware(task, server),
        error=task.error or "",
        groups={spec.text: spec.value(server) for spec in groups},
        reboots=restarts_host(task),
        minutes=expected_minutes(task, settings),
        cancel=task.cancel,
        created_at=task.created_at,
        completed_at=task.completed_at,
        claimed_at=_claimed_at(task),
        last_message=task.messages[-1] if task.messages else "",
    )


def read_member(server: Server, rollout: str) -> InstallTask | None:
    """The install task of ``server`` when it is a member of ``rollout`` (and parses), else ``None``."""
    attribute = server.attribute(TASK_NAMESPACE)
    if attribute is None:
        return None
    try:
        task = parse_install_task(attribute.data)
    except TaskValidationError:
        return None
    if task.rollout is None or task.rollout.name != rollout:
        return None
    return task
