"""Values the queue hands out: entries, leases, lease states, outcomes and snapshots.

Times are seconds since the Unix epoch on Redis' clock (``TIME``), never the replica's: compare them with
:attr:`QueueSnapshot.now` or :attr:`LeaseState.remaining`, not with ``time.time()``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

from flasher.task.fence import LeaseLostError

#: Task kinds the queue holds. One entry per server across all of them.
KINDS: tuple[str, ...] = ("install", "server_control", "inventory")
#: Priorities: 3 is claimed first, 0 last.
MIN_PRIORITY = 0
MAX_PRIORITY = 3


class EntryState(StrEnum):
    """Where a server's task is: waiting to be claimed, waiting out a retry delay, leased, or dead."""

    QUEUED = "queued"
    DELAYED = "delayed"
    INFLIGHT = "inflight"
    DEAD = "dead"


class EnqueueOutcome(StrEnum):
    """What :meth:`TaskQueue.enqueue` did.

    - ``ADDED``: the task is new and queued.
    - ``RAISED``: the same task was already held; its priority was raised to the one asked for.
    - ``UNCHANGED``: the same task was already held at this or a higher priority (priorities never drop).
    - ``HELD_BY_OTHER``: another task (any kind) holds the server, queued, delayed or in flight; nothing changed.
    - ``DEAD``: this very task is dead (out of attempts, or cancelled); it is not revived. Write ``failed`` and
      :meth:`TaskQueue.forget_dead` it; enqueueing it again after that starts it afresh.
    """

    ADDED = "added"
    RAISED = "raised"
    UNCHANGED = "unchanged"
    HELD_BY_OTHER = "held_by_other"
    DEAD = "dead"


class FailOutcome(StrEnum):
    """What :meth:`TaskQueue.fail` did: scheduled a retry, made the task dead (out of attempts or cancelled),
    or ended it (``retry=False``: removed; the caller writes ``failed``)."""

    RETRY_SCHEDULED = "retry_scheduled"
    DEAD = "dead"
    ENDED = "ended"


class CancelOutcome(StrEnum):
    """What :meth:`TaskQueue.cancel` did: removed a queued or delayed task, flagged an in-flight one (its worker
    sees ``cancel_requested`` at its next extend or check), or found no live task."""

    REMOVED = "removed"
    FLAGGED = "flagged"
    NOT_FOUND = "not_found"


def as_text(value: bytes | str) -> str:
    """A Redis reply element as text."""
    return value.decode() if isinstance(value, bytes) else value


def _seconds(ms: Any) -> float | None:
    return float(ms) / 1000.0 if ms else None


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A server's task as Redis holds it.

    ``attempts`` counts attempts that ended without success (expired leases, fail with retry); ``owner`` is the
    worker holding the lease (in flight only); ``enqueued_at``, ``lease_expires_at``, ``ready_at`` (delayed:
    claimable again from then) and ``died_at`` are Redis times in seconds. ``reason`` is the last failure's.
    ``order`` ranks entries of one priority (lower first; negative for tasks released to the front).
    """

    server_id: str
    kind: str
    task_id: str
    priority: int
    attempts: int
    state: EntryState
    owner: str | None
    enqueued_at: float
    lease_expires_at: float | None
    reason: str
    ready_at: float | None = None
    died_at: float | None = None
    cancel_requested: bool = False
    token: int | None = None
    order: int = 0

    @classmethod
    def from_record(
        cls, raw: bytes | str, holder: bytes | str | None = None, lease_expires_ms: Any = None
    ) -> QueueEntry:
        """Parse what the scripts keep for a task (see :mod:`flasher.queue.keys`): the JSON record of the
        ``tasks`` hash and, for an in-flight task, its ``holders`` value and lease expiry (Redis ms)."""
        rec = json.loads(raw)
        token: int | None = None
        owner: str | None = None
        cancel = False
        state = EntryState(rec["state"])
        if holder is not None:
            token_text, cancel_flag, owner = as_text(holder).split(" ", 2)
            token, cancel, state = int(token_text), cancel_flag == "1", EntryState.INFLIGHT
        return cls(
            server_id=rec["server_id"],
            kind=rec["kind"],
            task_id=rec["task_id"],
            priority=int(rec["priority"]),
            attempts=int(rec["attempts"]),
            state=state,
            owner=owner,
            enqueued_at=float(rec["enqueued_at"]) / 1000.0,
            lease_expires_at=_seconds(lease_expires_ms) if state is EntryState.INFLIGHT else None,
            reason=rec.get("reason", ""),
            ready_at=_seconds(rec.get("ready_at")) if state is EntryState.DELAYED else None,
            died_at=_seconds(rec.get("died_at")) if state is EntryState.DEAD else None,
            cancel_requested=cancel,
            token=token,
            order=int(rec.get("order", 0)),
        )

    def to_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready values (state as its string)."""
        out = asdict(self)
        out["state"] = self.state.value
        return out


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on one server's task: valid while Redis holds this ``token`` in this ``epoch`` for it.

    ``token`` is the fencing token: it grows with every claim (it is at least Redis' time in microseconds), and
    ``epoch`` names the Redis data set it was issued in (a new one after Redis lost its data), so a stale
    holder is refused even when a counter starts over. ``attempts`` counts earlier attempts that ended without
    success (0 on the first claim). ``expires_at`` is the lease's end at claim time (Redis time, seconds).
    """

    server_id: str
    kind: str
    task_id: str
    priority: int
    attempts: int
    worker: str
    token: int
    epoch: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class AckAndClaim:
    """What :meth:`TaskQueue.ack_and_claim` did: ``lost`` is ``None`` when the ack succeeded, else the
    :class:`~flasher.task.fence.LeaseLostError` :meth:`TaskQueue.ack` would have raised; ``lease`` is the next
    claim (``None``: nothing was claimable), made whatever the ack found."""

    lost: LeaseLostError | None
    lease: Lease | None


@dataclass(frozen=True, slots=True)
class LeaseState:
    """A held lease, as :meth:`TaskQueue.extend` or :meth:`TaskQueue.check` found it.

    ``expires_at`` is Redis time (seconds); ``remaining`` is seconds left, measured on Redis' clock;
    ``cancel_requested`` is true once :meth:`TaskQueue.cancel` flagged the task.
    """

    cancel_requested: bool
    expires_at: float
    remaining: float


@dataclass(frozen=True)
class EnqueueResult:
    """The outcome of :meth:`TaskQueue.enqueue` and the server's entry after the call.

    ``entry`` is the task asked for (``ADDED``, ``RAISED``, ``UNCHANGED``), the other task holding the server
    (``HELD_BY_OTHER``), or the dead task (``DEAD``). ``view`` is the script's reply for it (record, holder,
    lease expiry: :meth:`QueueEntry.from_record`'s arguments), parsed on first use of ``entry``: most callers
    only read the outcome.
    """

    outcome: EnqueueOutcome
    view: tuple[Any, ...]

    @cached_property
    def entry(self) -> QueueEntry:
        """The entry the outcome is about (see the class)."""
        return QueueEntry.from_record(*self.view)

    @property
    def holder(self) -> QueueEntry | None:
        """The entry that blocked the enqueue (``HELD_BY_OTHER`` or ``DEAD``), else ``None``."""
        if self.outcome in (EnqueueOutcome.HELD_BY_OTHER, EnqueueOutcome.DEAD):
            return self.entry
        return None


@dataclass(frozen=True, slots=True)
class QueueSnapshot:
    """Everything the queue holds at Redis time ``now``.

    ``queued`` is in claim order (priority 3 first, then oldest first); ``delayed`` by ``ready_at``;
    ``inflight`` by ``lease_expires_at``; ``dead`` by ``died_at``.
    """

    now: float
    queued: list[QueueEntry]
    delayed: list[QueueEntry]
    inflight: list[QueueEntry]
    dead: list[QueueEntry]

    def lease_left(self, entry: QueueEntry) -> float | None:
        """Seconds left on an in-flight entry's lease at :attr:`now` (negative: expired, not yet reaped)."""
        return None if entry.lease_expires_at is None else entry.lease_expires_at - self.now

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``now`` and one list per state; in-flight entries carry ``lease_left``."""
        return {
            "now": self.now,
            "queued": [e.to_dict() for e in self.queued],
            "delayed": [e.to_dict() for e in self.delayed],
            "inflight": [{**e.to_dict(), "lease_left": self.lease_left(e)} for e in self.inflight],
            "dead": [e.to_dict() for e in self.dead],
        }
