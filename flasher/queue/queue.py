"""The task queue: one entry per server, claimed by priority then age, held under a lease with a fencing token.

Several flasher replicas share one Redis. Every operation is one Lua script (:mod:`flasher.queue.scripts`) run
atomically on Redis' clock, so replicas never see half an operation and their own clocks do not matter. The
life of a task::

    enqueue ──▶ queued ──claim──▶ inflight ──ack──────────────────────▶ (gone)
                  ▲  ▲              │  │ │ └─fail(retry=False)──────────▶ (gone; caller writes failed)
                  │  └──release─────┘  │ └──fail(retry=True)─▶ delayed ──(delay over)──▶ queued
                  └──lease expired─────┘        (attempts + 1; out of attempts or cancelled ──▶ dead)

A worker that acks a task and goes on to its next does both in one script (:meth:`TaskQueue.ack_and_claim`).

Fencing: a lease is valid while Redis holds its token and epoch for the server and the lease has not expired;
:meth:`TaskQueue.check` before every BMC or status write, and :meth:`TaskQueue.extend` as the heartbeat, raise
:class:`~flasher.queue.errors.LeaseLostError` otherwise.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import redis
from loguru import logger
from redis.cluster import RedisCluster
from redis.commands.core import Script

from flasher.config import QueueSettings, Settings
from flasher.queue import connection, scripts
from flasher.queue.errors import LeaseLostError
from flasher.queue.handover import Handover
from flasher.queue.keys import QueueKeys
from flasher.queue.models import (
    KINDS,
    MAX_PRIORITY,
    MIN_PRIORITY,
    AckAndClaim,
    CancelOutcome,
    EnqueueOutcome,
    EnqueueResult,
    EntryState,
    FailOutcome,
    Lease,
    LeaseState,
    QueueEntry,
    QueueSnapshot,
    as_text,
)
from flasher.queue.pollshare import PollShare

T = TypeVar("T")

#: Expired leases and due retries handled per script run (claim, reap); reap loops until none are left.
_RECLAIM_BATCH = 64


def _require_id(field: str, value: str) -> None:
    if not isinstance(value, str) or not value or len(value) > 512 or value != value.strip():
        raise ValueError(f"{field}: must be a non-empty string without surrounding spaces (got {value!r})")


class TaskQueue:
    """The Redis priority queue with leases shared by flasher replicas.

    ``client`` is a redis-py client (built by :meth:`from_settings` in the service; a ``RedisCluster`` works too:
    every key shares one hash tag); ``settings`` gives the lease length, attempts and retry backoff (every
    replica should use the same); keys are ``{key_prefix}:...``.
    Connection problems are retried for ``retry_deadline`` seconds, then raised as
    :class:`~flasher.queue.errors.QueueUnavailableError`; a refused command raises
    :class:`~flasher.queue.errors.QueueError`. Instances are thread-safe (redis-py's connection pool is).
    """

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        *,
        settings: QueueSettings,
        key_prefix: str = "flasher",
        retry_deadline: float = 30.0,
    ) -> None:
        if retry_deadline < 0:
            raise ValueError(f"retry_deadline: must be >= 0 seconds (got {retry_deadline!r})")
        self.client = client
        self.settings = settings
        self.keys = QueueKeys(key_prefix)
        self.retry_deadline = retry_deadline
        self._lease_ms = str(round(settings.lease_seconds * 1000))
        self._max_attempts = str(settings.max_attempts)
        all_keys = tuple(key.encode() for key in self.keys.all)  # bytes: nothing to encode on each call
        lease_keys = tuple(key.encode() for key in self.keys.lease)
        self._scripts: dict[str, tuple[Script, tuple[bytes, ...]]] = {
            name: (client.register_script(scripts.PRELUDE + body), all_keys) for name, body in scripts.BODIES.items()
        }
        for name, body in scripts.LEASE_BODIES.items():
            self._scripts[name] = (client.register_script(scripts.LEASE_PRELUDE + body), lease_keys)
        #: Successors and end notes of replaced tasks (:mod:`flasher.queue.handover`).
        self.handover = Handover(client, self.keys, retry_deadline=retry_deadline)
        #: The replicas' shared full-poll turn and task counts (:mod:`flasher.queue.pollshare`).
        self.polls = PollShare(client, self.keys, retry_deadline=retry_deadline)
        # Epoch candidates (see claim): unique per instance and call, without a system call for randomness.
        self._epoch_prefix = uuid.uuid4().hex[:16]
        self._epoch_counter = itertools.count()

    @classmethod
    def from_settings(cls, settings: Settings, *, retry_deadline: float | None = None) -> TaskQueue:
        """A queue on the Redis of ``settings.redis`` with the policy of ``settings.queue``.

        ``retry_deadline`` overrides ``settings.redis.retry_deadline`` (operator commands wait less).
        """
        return cls(
            connection.client_from_settings(settings.redis),
            settings=settings.queue,
            key_prefix=settings.redis.key_prefix,
            retry_deadline=settings.redis.retry_deadline if retry_deadline is None else retry_deadline,
        )

    # -- plumbing -------------------------------------------------------------------------------------------

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        return connection.call(operation, fn, self.retry_deadline)

    def _run(self, name: str, *args: str | int) -> Any:
        script, keys = self._scripts[name]
        return self._call(name, lambda: script(keys=keys, args=args))

    def _lease_reply(self, lease: Lease, reply: list[Any]) -> list[Any]:
        """``reply`` of a lease script when it says ``ok``; raises :class:`LeaseLostError` when it says ``lost``."""
        if as_text(reply[0]) == "lost":
            raise LeaseLostError.of_lease(lease.server_id, lease.task_id, lease.token, as_text(reply[1]))
        return reply

    def _lease_args(self, lease: Lease) -> tuple[str, str, str]:
        return (lease.server_id, str(lease.token), lease.epoch)

    def _lease_state(self, reply: list[Any]) -> LeaseState:
        expires_ms, cancel, now_ms = int(reply[1]), int(reply[2]), int(reply[3])
        return LeaseState(
            cancel_requested=bool(cancel), expires_at=expires_ms / 1000.0, remaining=(expires_ms - now_ms) / 1000.0
        )

    # -- producers ------------------------------------------------------------------------------------------

    def enqueue(self, server_id: str, *, kind: str, task_id: str, priority: int) -> EnqueueResult:
        """Queue ``kind`` task ``task_id`` for ``server_id`` at ``priority`` (0..3, 3 claimed first).

        Idempotent per server: the same task again is ``UNCHANGED``, or ``RAISED`` when ``priority`` is higher
        (priorities never drop). Another task holding the server (any kind, queued, delayed or in flight) gives
        ``HELD_BY_OTHER`` with that task as ``entry``, and nothing changes: the caller decides. A dead entry of
        another task is replaced; the dead entry of this very task gives ``DEAD`` (see
        :class:`~flasher.queue.models.EnqueueOutcome`). Raises ``ValueError`` naming a bad argument.
        """
        _require_id("server_id", server_id)
        _require_id("task_id", task_id)
        if kind not in KINDS:
            raise ValueError(f"kind: must be one of {', '.join(KINDS)} (got {kind!r})")
        if isinstance(priority, bool) or not isinstance(priority, int) or not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise ValueError(f"priority: must be an integer {MIN_PRIORITY}..{MAX_PRIORITY} (got {priority!r})")
        outcome, *view = self._run("enqueue", server_id, kind, task_id, priority)
        return EnqueueResult(EnqueueOutcome(as_text(outcome)), tuple(view))

    def cancel(self, server_id: str, *, task_id: str | None = None) -> CancelOutcome:
        """Cancel the server's live task (only if it is ``task_id``, when given).

        A queued or delayed task is removed (``REMOVED``); an in-flight one is flagged (``FLAGGED``): its worker
        sees ``cancel_requested`` at its next :meth:`extend` or :meth:`check`, and the task never goes back to the
        queue (an expired lease, a release or a fail with retry make it dead instead). ``NOT_FOUND`` otherwise
        (dead entries are left for :meth:`forget_dead`).
        """
        (outcome,) = self._run("cancel", server_id, task_id or "")
        return CancelOutcome(as_text(outcome))

    # -- workers --------------------------------------------------------------------------------------------

    def claim(self, worker: str, *, kinds: Collection[str] | None = None) -> Lease | None:
        """Lease the next task (highest priority, then oldest) of ``kinds`` (default: all) for ``worker``.

        Expired leases and due retries are reclaimed first, in the same atomic step. Returns ``None`` when
        nothing is claimable. The lease lasts ``settings.lease_seconds``; keep it with :meth:`extend`.
        """
        wanted = self._wanted(worker, kinds)
        reply = self._run("claim", worker, self._lease_ms, self._max_attempts, self._candidate(), *wanted)
        return self._lease_of(worker, reply)

    def ack_and_claim(self, lease: Lease, worker: str, *, kinds: Collection[str] | None = None) -> AckAndClaim:
        """:meth:`ack` ``lease`` and :meth:`claim` the next task for ``worker``, in one atomic step (one round trip).

        What a worker does at the end of a task when it goes on to the next: the same as ``ack`` then ``claim``,
        one script instead of two. The claim happens whatever the ack finds: when ``lease`` is no longer held, the
        result's ``lost`` is the :class:`LeaseLostError` :meth:`ack` would have raised, and its ``lease`` the next
        claim all the same (``None`` when nothing is claimable). Safe to retry like both parts: the ack repeated
        after a lost reply is recognised; a claim whose reply was lost leaves a lease that runs out. Raises
        ``ValueError`` naming a bad ``worker`` or ``kinds`` (before any round trip).
        """
        wanted = self._wanted(worker, kinds)
        args = (*self._lease_args(lease), worker, self._lease_ms, self._max_attempts, self._candidate(), *wanted)
        acked, claimed = self._run("ack_claim", *args)
        lost = None
        if as_text(acked[0]) == "lost":
            lost = LeaseLostError.of_lease(lease.server_id, lease.task_id, lease.token, as_text(acked[1]))
        return AckAndClaim(lost=lost, lease=self._lease_of(worker, claimed))

    def _wanted(self, worker: str, kinds: Collection[str] | None) -> tuple[str, ...]:
        _require_id("worker", worker)
        wanted = () if kinds is None else tuple(kinds)  # none: every kind
        if kinds is not None and (not wanted or any(kind not in KINDS for kind in wanted)):
            raise ValueError(f"kinds: must be among {', '.join(KINDS)} (got {list(wanted)!r})")
        return wanted

    def _candidate(self) -> str:
        # The epoch of a data set is the candidate of the first claim that finds none (after Redis lost its data).
        return f"{self._epoch_prefix}{next(self._epoch_counter):x}"

    def _lease_of(self, worker: str, reply: list[Any] | None) -> Lease | None:
        """The lease in a claim's reply (``None``: nothing was claimable)."""
        if reply is None:
            return None
        raw, epoch, token, expires_ms = reply
        rec = json.loads(raw)
        return Lease(
            server_id=rec["server_id"],
            kind=rec["kind"],
            task_id=rec["task_id"],
            priority=int(rec["priority"]),
            attempts=int(rec["attempts"]),
            worker=worker,
            token=int(token),
            epoch=as_text(epoch),
            expires_at=int(expires_ms) / 1000.0,
        )

    def extend(self, lease: Lease) -> LeaseState:
        """Heartbeat: restart the lease at ``settings.lease_seconds`` from now (Redis time).

        Raises :class:`LeaseLostError` when the lease is no longer held (stale token, other epoch, expired, gone).
        """
        reply = self._run("extend", *self._lease_args(lease), self._lease_ms)
        return self._lease_state(self._lease_reply(lease, reply))

    def check(self, lease: Lease, *, min_remaining: float = 0.0) -> LeaseState:
        """Confirm, before a BMC or status write, that the lease is held with ``min_remaining`` seconds left.

        One cheap read-only round trip. Raises :class:`LeaseLostError` when it is not held or less time is left.
        """
        if min_remaining < 0:
            raise ValueError(f"min_remaining: must be >= 0 seconds (got {min_remaining!r})")
        reply = self._run("check", *self._lease_args(lease), round(min_remaining * 1000))
        return self._lease_state(self._lease_reply(lease, reply))

    def ack(self, lease: Lease) -> None:
        """The task succeeded: remove it. Raises :class:`LeaseLostError` when the lease is no longer held.

        Safe to retry: an ack repeated after its reply was lost returns normally.
        """
        self._lease_reply(lease, self._run("ack", *self._lease_args(lease)))

    def fail(self, lease: Lease, *, retry: bool, delay: float | None = None, reason: str = "") -> FailOutcome:
        """The attempt failed.

        ``retry=False`` ends the task (``ENDED``: removed; the caller writes ``failed``). ``retry=True`` counts an
        attempt and, while attempts remain, makes the task claimable again after ``delay`` seconds or, when
        ``delay`` is ``None``, ``retry_base_delay * 2**(attempts-1)`` capped at ``retry_max_delay``
        (``RETRY_SCHEDULED``); out of attempts, or cancelled, it becomes dead with ``reason`` (``DEAD``). Raises
        :class:`LeaseLostError` when the lease is no longer held; a call repeated after a lost reply returns the
        first outcome.
        """
        if delay is not None and delay < 0:
            raise ValueError(f"delay: must be >= 0 seconds (got {delay!r})")
        reply = self._run(
            "fail",
            *self._lease_args(lease),
            1 if retry else 0,
            -1 if delay is None else round(delay * 1000),
            reason or "failed",
            self._max_attempts,
            round(self.settings.retry_base_delay * 1000),
            round(self.settings.retry_max_delay * 1000),
        )
        return FailOutcome(as_text(self._lease_reply(lease, reply)[1]))

    def release(self, lease: Lease) -> None:
        """Give the task back without counting an attempt (graceful shutdown): it goes to the front of its
        priority. A cancelled task becomes dead instead. Raises :class:`LeaseLostError` when the lease is not held.
        """
        self._lease_reply(lease, self._run("release", *self._lease_args(lease)))

    # -- the service's housekeeping -------------------------------------------------------------------------

    def reap(self) -> list[QueueEntry]:
        """Requeue expired leases (attempts + 1) and make due retries claimable; return the entries that died
        since the previous reap, whichever way (out of attempts, cancelled), so the service writes ``failed``.

        They stay listed in :meth:`dead` until :meth:`forget_dead`; if a reply is lost, :meth:`dead` still has them.
        """
        died: list[QueueEntry] = []
        while True:
            more, *records = self._run("reap", self._max_attempts, _RECLAIM_BATCH)
            died.extend(QueueEntry.from_record(raw) for raw in records)
            if not int(more):
                break
        for entry in died:
            logger.bind(server_id=entry.server_id, task_id=entry.task_id).warning(
                "{} task is dead after {} attempts: {}", entry.kind, entry.attempts, entry.reason
            )
        return died

    def dead(self) -> list[QueueEntry]:
        """Dead entries, oldest death first."""
        return [QueueEntry.from_record(raw) for raw in self._run("list_dead")]

    def forget_dead(self, server_id: str, task_id: str) -> bool:
        """Remove the dead entry of ``task_id`` on ``server_id`` (after ``failed`` was written). False when the
        server holds no dead entry of that task."""
        return bool(self._run("forget_dead", server_id, task_id))

    def known(self, server_id: str) -> bool:
        """Whether Redis holds a live task (queued, delayed or in flight) for the server. The service re-enqueues
        from the inventory what Redis no longer knows (after Redis lost its data)."""
        entry = self.entry(server_id)
        return entry is not None and entry.state is not EntryState.DEAD

    def entry(self, server_id: str) -> QueueEntry | None:
        """The server's entry in any state, or ``None``."""
        raw, *view = self._run("entry", server_id)
        return None if raw is None else QueueEntry.from_record(raw, *view)

    # -- operators and metrics ------------------------------------------------------------------------------

    def drop(self, server_id: str) -> bool:
        """Remove whatever Redis holds for the server, in any state. An in-flight holder learns it at its next
        check (:class:`LeaseLostError`). False when there was nothing."""
        return self.take(server_id) is not None

    def take(self, server_id: str) -> QueueEntry | None:
        """Like :meth:`drop`, returning the removed entry (``None`` when there was nothing)."""
        raw, *view = self._run("drop", server_id)
        return None if raw is None else QueueEntry.from_record(raw, *view)

    def snapshot(self) -> QueueSnapshot:
        """Everything the queue holds, read atomically, with Redis' time (see :class:`QueueSnapshot`)."""
        now_ms, records, holders, leases = self._run("snapshot")
        holder_of = dict(zip(holders[::2], holders[1::2], strict=True))
        expiry_of = dict(zip(leases[::2], leases[1::2], strict=True))
        by_state: dict[EntryState, list[QueueEntry]] = {state: [] for state in EntryState}
        for server, raw in zip(records[::2], records[1::2], strict=True):
            entry = QueueEntry.from_record(raw, holder_of.get(server), expiry_of.get(server))
            by_state[entry.state].append(entry)
        return QueueSnapshot(
            now=int(now_ms) / 1000.0,
            queued=sorted(by_state[EntryState.QUEUED], key=lambda e: (-e.priority, e.order)),
            delayed=sorted(by_state[EntryState.DELAYED], key=lambda e: (e.ready_at or 0.0, e.server_id)),
            inflight=sorted(by_state[EntryState.INFLIGHT], key=lambda e: (e.lease_expires_at or 0.0, e.server_id)),
            dead=sorted(by_state[EntryState.DEAD], key=lambda e: (e.died_at or 0.0, e.server_id)),
        )

    def depth(self) -> dict[str, int]:
        """Counts by state: ``queued``, ``delayed``, ``inflight``, ``dead`` (for the ``flasher_queue_depth`` gauge)."""

        def counts() -> list[int]:
            pipe = self.client.pipeline(transaction=False)
            for kind in KINDS:
                pipe.zcard(self.keys.ready(kind))
            for key in (self.keys.delayed, self.keys.leases, self.keys.dead):
                pipe.zcard(key)
            return [int(n) for n in pipe.execute()]

        values = self._call("depth", counts)
        ready, (delayed, inflight, dead) = values[: len(KINDS)], values[len(KINDS) :]
        return {"queued": sum(ready), "delayed": delayed, "inflight": inflight, "dead": dead}

    def claim_admission(self, task_id: str, worker: str, *, ttl: float) -> bool:
        """Take the right to admit the new request ``task_id`` for ``ttl`` seconds (``SET NX PX``).

        True: this replica admits it. False: another replica is admitting it (or just did), so this one skips it
        rather than plan and write the same thing again. Only shares work: admission stays correct without it
        (it is idempotent), so a claim held by a replica that died only delays the request by ``ttl``.
        """
        _require_id("task_id", task_id)
        key = self.keys.admitting(task_id)
        return bool(self._call("claim_admission", lambda: self.client.set(key, worker, nx=True, px=int(ttl * 1000))))

    def release_admission(self, task_id: str, worker: str) -> None:
        """Give up the admission claim on ``task_id`` if ``worker`` holds it (the request could not be admitted
        now: the next poll of any replica tries again)."""
        key = self.keys.admitting(task_id)

        def release() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(key)
                    if as_text(pipe.get(key) or b"") == worker:
                        pipe.multi()
                        pipe.delete(key)
                        pipe.execute()
                except redis.WatchError:  # it changed hands meanwhile: not ours to delete
                    pass

        self._call("release_admission", release)

    def ping(self) -> bool:
        """One PING, no retries: whether Redis answers right now (for readiness checks)."""
        try:
            return bool(self.client.ping())
        except redis.RedisError as exc:
            logger.debug("Redis ping failed: {}: {}", type(exc).__name__, exc)
            return False
