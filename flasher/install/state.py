"""What the install engine knows while it runs, and the two interfaces it works through.

The engine (:mod:`flasher.install.engine`) does not know the inventory or the queue. It reports through a
:class:`Reporter` (the service's writes the task attribute under the lease; ``flasher install`` prints to the
console) and gets images from an :class:`ImageSource` (the firmware store, plus the file server when the BMC
pulls).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Protocol

from flasher.install.plan import Decision, InstallPlan, PlannedInstall
from flasher.store.download import ProgressCallback
from flasher.store.store import CachedImage
from flasher.task.model import ComponentStatus
from flasher.task.run import Outcome

#: ``bmcTask`` while an install is about to be sent, written (and landed) before the request goes out: the
#: write-ahead that tells a worker resuming the task that an install under way on the BMC may be its own.
SENDING: Final = "sending"


class StopReason(StrEnum):
    """Why the engine stops at a safe point: the operator cancelled, the attribute was replaced by another
    request, or the replica is shutting down."""

    CANCEL = "cancel"
    REPLACED = "replaced"
    SHUTDOWN = "shutdown"

    @property
    def outcome(self) -> Outcome:
        """The run's outcome when it stops for this reason."""
        return {
            StopReason.CANCEL: Outcome.CANCELLED,
            StopReason.REPLACED: Outcome.REPLACED,
            StopReason.SHUTDOWN: Outcome.RELEASED,
        }[self]


@dataclass(frozen=True)
class PriorItem:
    """A component's result as an earlier attempt left it in the attribute (a reclaimed or released task)."""

    status: ComponentStatus | None
    bmc_task: str | None = None
    installed_version: str | None = None


STATUS_OF_DECISION: dict[Decision, ComponentStatus] = {
    Decision.INSTALL: ComponentStatus.PENDING,
    Decision.SKIP: ComponentStatus.SKIPPED,
    Decision.REFUSE: ComponentStatus.FAILED,
}


@dataclass
class ItemState:
    """One planned component during the run.

    ``installed_version``: the newest version the BMC reported for it (the inventory's until the BMC is read);
    ``bmc_task``: the URI of the BMC task installing it (kept in the attribute so a reclaiming worker can follow
    it), or :data:`SENDING` from just before the install request is sent until its task is known; ``resume``: an
    earlier attempt had started it, so the engine first looks for what that attempt did.
    """

    item: PlannedInstall
    status: ComponentStatus
    message: str
    installed_version: str | None
    bmc_task: str | None = None
    resume: bool = False

    @property
    def key(self) -> str:
        """The planned component's uuid."""
        return self.item.component_uuid

    @property
    def label(self) -> str:
        """``bios``, or ``drive Disk 0 (S0)`` for one of several components of a type."""
        item = self.item
        name = item.component_name or item.component_uuid
        serial = f" ({item.component_serial})" if item.component_serial else ""
        return f"{item.component} {name}{serial}"

    @classmethod
    def planned(cls, item: PlannedInstall) -> ItemState:
        """The state of ``item`` as its plan decided it."""
        return cls(item, STATUS_OF_DECISION[item.decision], item.reason, item.installed_version)


@dataclass
class InstallState:
    """The plan and each component's state; ``initial_power`` is the host's power state when the task started
    (kept in the attribute as ``initialPowerState`` so that a reclaiming worker restores the right one)."""

    plan: InstallPlan
    items: list[ItemState]
    initial_power: str | None = None
    several: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, plan: InstallPlan, initial_power: str | None = None) -> InstallState:
        """The state of a plan nothing has happened to yet."""
        counts: dict[str, int] = {}
        for item in plan.items:
            counts[item.component] = counts.get(item.component, 0) + 1
        return cls(
            plan,
            [ItemState.planned(item) for item in plan.items],
            initial_power,
            frozenset(slug for slug, n in counts.items() if n > 1),
        )

    def label(self, state: ItemState) -> str:
        """The component's label in messages: the slug alone unless the server has several of the type."""
        return state.label if state.item.component in self.several else state.item.component

    def counts(self) -> str:
        """``2 installed, 1 skipped``: how many components ended in each status."""
        seen: dict[ComponentStatus, int] = {}
        for state in self.items:
            seen[state.status] = seen.get(state.status, 0) + 1
        return ", ".join(f"{n} {status.value}" for status, n in seen.items()) or "no components"


@dataclass
class EngineResult:
    """How a run ended: the ``outcome``, ``error`` (one line, when failed), a ``summary`` line, the final
    ``state`` (``None`` when the BMC was never read), and ``versions``: component uuid → version the BMC
    reports now, for every component whose version was read (what to record in the inventory)."""

    outcome: Outcome
    summary: str
    error: str | None = None
    state: InstallState | None = None
    versions: dict[str, str] = field(default_factory=dict)


class Reporter(Protocol):
    """Where the engine reports to and learns whether to go on.

    ``fence`` is called before every step that writes to the BMC: it raises
    :class:`~flasher.task.fence.LeaseLostError` when the task is no longer this worker's (the engine then stops at
    once and writes nothing more). ``stop_reason`` is asked at each safe point. ``report`` writes the state and
    an optional status message (``component``: the message's tag; ``replace_last``: a progress line replacing
    the previous one); it may raise ``LeaseLostError`` too, never anything else. ``persist`` writes the state at
    once and returns only once the write landed (``True``) or could not land in time (``False``: the inventory
    was unavailable for the ``inventory_write`` step's timeout, or the attribute holds another request): the
    write-ahead of an install (:data:`SENDING`), which must be recorded before the request goes out.
    """

    def fence(self) -> None: ...

    def stop_reason(self) -> StopReason | None: ...

    def report(
        self,
        state: InstallState,
        message: str | None = None,
        *,
        component: str | None = None,
        replace_last: bool = False,
    ) -> None: ...

    def persist(self, state: InstallState) -> bool: ...


class ImageSource(Protocol):
    """Where images come from and how a BMC that pulls gets them.

    ``fetch`` returns the verified, cached image of ``item`` (raises
    :class:`~flasher.store.store.StoreError`; ``on_progress(received, total)`` while downloading; ``deadline``
    in monotonic seconds). ``publish`` returns a URL the BMC can pull the image from, or ``None`` when images
    cannot be served (the BMC must take a push); ``unpublish`` withdraws it.

    For a dry run: ``check`` says whether ``fetch`` of ``item`` could start, without fetching (checksum known, URL
    allowed, the image cached or its server answering; returns what it found, raises ``StoreError``), and
    ``pull_scheme`` is the scheme of the URLs ``publish`` would hand out (``http``), ``None`` when it hands out
    none.
    """

    def fetch(self, item: PlannedInstall, *, on_progress: ProgressCallback, deadline: float) -> CachedImage: ...

    def check(self, item: PlannedInstall) -> str: ...

    def pull_scheme(self) -> str | None: ...

    def publish(self, image: CachedImage, filename: str) -> str | None: ...

    def unpublish(self, url: str) -> None: ...
