"""Admission and reconciliation: one task attribute, as the poller found it, brought in line with the queue.

The inventory is the source of truth; Redis holds only what can be rebuilt from it. For each flagged server
and each task namespace, :meth:`Admission.reconcile` looks at the attribute's ``status`` and does what it
asks, idempotently — several replicas may reconcile the same attribute at the same time and the result is
the same:

==============================  ===========================================================================
attribute                       what admission does
==============================  ===========================================================================
does not parse                  ``failed`` with the validation message naming the field and value — unless a
                                worker holds it (it will stop, the attribute no longer holds its task)
new, ``cancel: true``           ``cancelled``
new, install method unsupported ``failed`` saying so
new, member of a rollout        nothing: the rollout's controller admits it when its policy allows
                                (:meth:`Admission.admit_rollout_member`), by this same path
new                             claim it (one replica admits a request, the others skip it); install: plan
                                it (a plan error or a refused component → ``failed`` with the reason; the
                                inventory unavailable → it stays new, see below); write ``queued`` with the
                                plan, ``taskID``, ``worker``, ``createdAt``; then enqueue with the task's
                                priority. While another task holds the server, the messages say what it
                                replaces and waits for, and a replacing request's acknowledgement is kept in
                                Redis first (:meth:`Admission.keep_successors` writes it back when a late
                                status write of the replaced task lands over it)
queued                          enqueue again (idempotent): Redis lost it, a replica died between writing
                                ``queued`` and enqueueing, or another task held the server (a server-control
                                task waits for a running install or collection, and every kind waits for the others).
                                When Redis does not hold it, only after a re-read finds the attribute as listed:
                                a listing older than a worker's ``active`` must not queue a running task again
queued/active, ``cancel: true`` cancel in the queue: a queued task is removed and written ``cancelled``; a
                                running one is flagged and its worker stops at its next safe point
active, lease gone, heartbeat   reclaimed: ``queued`` again, enqueued (``attempts`` past the queue's maximum:
older than ``stale_after``      ``failed``)
success / failed / cancelled    nothing
==============================  ===========================================================================

A new request that cannot be planned because the inventory is unavailable (5xx, time-outs) stays new; the first
time, admission writes ``waiting: inventory unavailable, will retry until <time>: <error>`` into its messages, and
once ``service.plan_retry_deadline`` has passed since that message it fails saying so. A permanent refusal (the
inventory answers 400 to the ``firmwareSet`` it was given) is a plan error: the task fails naming the field.

The admission claim (``claim_admission``) only keeps two replicas from planning one request at once; it is given
up as soon as the request is admitted, failed or skipped, so an identical request written after the task ended
is admitted at the next poll. A replica whose listing predates the admission finds the request's task in the
queue, or its attribute changed, and writes nothing.

Write before enqueue: a task is in Redis only once its attribute says ``queued`` with its ``taskID``, so a
worker that claims it always finds the task it claimed. The ``taskID`` of a new request is derived from the
server, the namespace and the request's content, so replicas admitting the same request at once write the
same id and the second enqueue is a no-op.

Admission writes without a lease: it only writes where no worker holds the task (new; queued or active but
unknown to Redis), and a worker's own status writes re-read the attribute, so a late admission write is
corrected by the worker's next one. The listing a poll works from may be seconds old (a poll lists first, then
plans one request after another), so every admission write first re-reads the attribute and writes only when it
is still what the decision was made on; otherwise the attribute is skipped (:attr:`Action.SKIPPED`) and the next
poll looks again. An operator's edit, a worker's final status or a slow worker's heartbeat made after the listing
is so never overwritten, nor a request that ran meanwhile queued again. The window left is one round trip:
Serverservice offers no compare-and-swap on attributes; ``docs/concurrency.md`` says how it is closed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from loguru import logger

from flasher.config import Settings
from flasher.install.modes import build_plan
from flasher.install.plan import PlanError
from flasher.inventory.errors import InventoryError, NotFoundError
from flasher.inventory.models import Server
from flasher.logs import task_context
from flasher.queue import CancelOutcome, EnqueueOutcome, EntryState, QueueEntry, TaskQueue
from flasher.queue.handover import Successor
from flasher.task.events import EventSink, NoEvents, publish_safely, task_events
from flasher.task.model import (
    InstallTask,
    TaskBase,
    TaskKind,
    TaskStatus,
    TaskValidationError,
    failed_attribute,
    is_new,
    is_terminal,
    message_time,
    rfc3339,
    shorten,
    utc_now,
)
from flasher.task.request import request_task_id

__all__ = ["ADMISSION_CLAIM_SECONDS", "Action", "Admission", "AttributeMovedError", "Result", "request_task_id"]

#: How long a replica's claim on admitting one new request lasts at most: it is given up when admission is done
#: with the request; the time-out only frees a claim whose replica died meanwhile.
ADMISSION_CLAIM_SECONDS = 60.0
#: The message a new request gets while the inventory is unavailable for planning it.
WAITING_FOR_INVENTORY = "waiting: inventory unavailable, will retry"


class Action(StrEnum):
    """What :meth:`Admission.reconcile` did with one attribute (for logs, metrics and tests)."""

    NONE = "none"  # nothing to do (terminal, running, or already queued and held)
    QUEUED = "queued"  # a new request admitted, or a queued/stale one enqueued again
    WAITING = "waiting"  # queued, but another task holds the server
    FAILED = "failed"
    CANCELLED = "cancelled"
    CANCEL_FLAGGED = "cancel-flagged"
    SKIPPED = "skipped"  # could not be handled now (the inventory failed); the next poll tries again


@dataclass(frozen=True, slots=True)
class Result:
    """What was done with one attribute: ``action``, and ``detail`` for people."""

    action: Action
    detail: str = ""


class AttributeMovedError(Exception):
    """The attribute changed (or was deleted) since the listing admission decided on: nothing was written."""


class AdmissionInventory(Protocol):
    """The inventory calls admission makes (a subset of :class:`~flasher.inventory.client.InventoryClient`)."""

    def replace_attribute(self, uuid: str, namespace: str, data: dict[str, Any], *, once: bool = False) -> None: ...

    def get_attribute(self, uuid: str, namespace: str) -> Any: ...

    def list_components(self, uuid: str) -> Any: ...

    def list_firmware(self, *args: Any, **kwargs: Any) -> Any: ...

    def get_firmware_set(self, uuid_or_name: str) -> Any: ...

    def list_firmware_sets(self, *args: Any, **kwargs: Any) -> Any: ...


class Admission:
    """Reconciles task attributes with the queue for one replica (``worker_id``); thread-safe if its
    inventory client and queue are. Every write it makes is published to ``events`` (:mod:`flasher.task.events`)."""

    def __init__(
        self,
        inventory: AdmissionInventory,
        queue: TaskQueue,
        settings: Settings,
        *,
        worker_id: str,
        now: Callable[[], datetime] = utc_now,
        events: EventSink | None = None,
    ) -> None:
        self._events = events or NoEvents()
        self._inventory = inventory
        self._queue = queue
        self._settings = settings
        self._worker = worker_id
        self._now = now

    # -- one attribute ------------------------------------------------------------------------------------

    def reconcile(self, server: Server, kind: TaskKind, *, rollout_member: bool = False) -> Result:
        """Bring the ``kind`` attribute of ``server`` (as listed by the poll) in line with the queue.

        A new request that is a member of a rollout is left to the rollout's controller, unless
        ``rollout_member`` (the controller admitting it). Never raises for bad attribute content; inventory and
        queue errors propagate (the poller logs them and tries again at the next poll).
        """
        attribute = server.attribute(kind.namespace)
        if attribute is None:
            return Result(Action.NONE, "no task attribute")
        data = attribute.data
        server_id = str(server.uuid)
        try:
            task = kind.parse(data)
        except TaskValidationError as exc:
            return self._invalid(server_id, kind, data, exc)
        with task_context(server_id, task.task_id):
            if is_new(task.status) and _rollout_of(task) and not task.cancel and not rollout_member:
                return Result(Action.NONE, f"member of rollout {_rollout_of(task)}: its controller admits it")
            try:
                return self._reconcile(server, kind, task, data)
            except AttributeMovedError as exc:
                logger.info("{} attribute of server {} not written: {}", kind.namespace, server_id, exc)
                return Result(Action.SKIPPED, str(exc))

    def admit_rollout_member(self, server: Server) -> tuple[bool, str]:
        """Admit the new install request of ``server``, a rollout member its controller chose (the ordinary path:
        plan, write ``queued``, enqueue). Returns ``(True, detail)`` when it is queued, else ``(False, why)``
        (another replica is admitting it, it failed planning, the attribute changed). Inventory and queue
        errors propagate."""
        result = self.reconcile(server, TaskKind.INSTALL, rollout_member=True)
        return result.action in (Action.QUEUED, Action.WAITING), result.detail or result.action.value

    def _reconcile(self, server: Server, kind: TaskKind, task: TaskBase, data: Any) -> Result:
        server_id = str(server.uuid)
        if is_terminal(task.status):
            return Result(Action.NONE, f"task is {task.status.value}")
        if is_new(task.status):
            return self._admit(server, kind, task, data)
        if task.task_id is None:
            return self._fail(server_id, kind, task, f"status is {task.status.value} but taskID is missing", seen=data)
        if task.cancel:
            return self._cancel(server_id, kind, task, seen=data)
        if task.status is TaskStatus.QUEUED:
            return self._enqueue(server, kind, task, seen=data, again=True)
        return self._check_active(server, kind, task, seen=data)

    def _invalid(self, server_id: str, kind: TaskKind, data: Any, error: TaskValidationError) -> Result:
        status = data.get("status") if isinstance(data, dict) else None
        if isinstance(status, str) and is_terminal(status):
            return Result(Action.NONE, f"task is {status} (and does not parse: {error})")
        entry = self._queue.entry(server_id)
        if entry is not None and entry.kind == kind.value and entry.state == "inflight":
            return Result(Action.NONE, "does not parse, but a worker holds the server: it will stop first")
        try:
            self._write(server_id, kind, failed_attribute(data, error, now=self._now()), seen=data)
        except AttributeMovedError as exc:
            return Result(Action.SKIPPED, str(exc))
        logger.warning("{} attribute of server {} is invalid: {}", kind.namespace, server_id, error)
        return Result(Action.FAILED, str(error))

    def _admit(self, server: Server, kind: TaskKind, task: TaskBase, data: Any) -> Result:
        server_id = str(server.uuid)
        task_id = request_task_id(server_id, kind, data)
        if not self._queue.claim_admission(task_id, self._worker, ttl=ADMISSION_CLAIM_SECONDS):
            return Result(Action.SKIPPED, "another replica is admitting it")
        try:  # admitted, failed, skipped or moved: the claim has done its work (issue 12: it outlived the task)
            return self._admit_claimed(server, kind, task, task_id, data)
        finally:
            self._queue.release_admission(task_id, self._worker)

    def _admit_claimed(self, server: Server, kind: TaskKind, request: TaskBase, task_id: str, seen: Any) -> Result:
        server_id = str(server.uuid)
        entry = self._queue.entry(server_id)
        if entry is not None and entry.task_id == task_id and entry.kind == kind.value:
            if entry.state == "dead":  # an identical request, written before this poll's reap buries the last run
                return Result(Action.SKIPPED, "the previous run of this request is dead in the queue until the reap")
            # The listing predates the admission: the attribute says queued by now, and the queue holds it.
            return Result(Action.SKIPPED, f"another replica admitted it already (the queue holds it, {entry.state})")
        now = self._now()
        task = request.model_copy(deep=True)
        task.task_id = task_id
        if task.cancel:
            task.transition(TaskStatus.CANCELLED, now=now)
            task.add_message("cancelled before it was queued", now=now)
            self._write(server_id, kind, task.to_attribute(), seen=seen)
            return Result(Action.CANCELLED)
        if isinstance(task, InstallTask):
            task.clear_run_state()  # a re-run of a finished task must not read back the previous run's state
            try:
                task = self._plan(server, task)
            except PlanError as exc:
                return self._fail(server_id, kind, task, str(exc), seen=seen)
            except InventoryError as exc:
                return self._inventory_unavailable(server_id, kind, request, task, exc, seen=seen)
        task.transition(TaskStatus.QUEUED, now=now)
        task.worker = self._worker
        task.created_at = now
        task.attempts = 0
        task.set_error(None)
        task.add_message(f"queued by {self._worker} (priority {task.priority})", now=now)
        holder = self._queue.entry(server_id)
        if holder is None or holder.state is EntryState.DEAD or holder.task_id == task_id:
            holder = None
        replaces = holder.task_id if holder is not None and holder.kind == kind.value else None
        # An earlier request acknowledged while a task still held the server, and never started: replaced too.
        earlier = self._queue.handover.successor(server_id, kind.value)
        if earlier is not None and earlier.task_id == task_id:
            earlier = None
        if earlier is not None:
            task.add_message(
                f"replaces {kind.value} task {earlier.task_id} (queued, not started): it will not start", now=now
            )
        if holder is not None:
            if replaces is not None and (earlier is None or earlier.task_id != replaces):
                task.add_message(_replaces_note(kind, holder), now=now)
            task.add_message(f"waiting: {_describe_holder(holder)}", now=now)  # what _wait would say
        ack = task.to_attribute()
        put = None
        if replaces is not None:  # kept first: a status write of the task it replaces may still land over it
            # The listing may be old (planning took a while, or another replica admitted this very request
            # since): nothing is kept in Redis for a request the attribute no longer holds. Without a successor
            # to keep, the write's own re-read is the only one needed.
            self._unmoved(server_id, kind, seen)
            handover = self._queue.handover
            put = handover.put_successor(server_id, kind.value, task_id=task_id, replaces=replaces, data=ack)
        try:
            written = self._write(server_id, kind, ack, seen=seen)
        except AttributeMovedError:
            if put is not None:  # what another replica kept before stands (never forgotten for a stale listing)
                self._queue.handover.withdraw_successor(put)
            raise
        if replaces is None and earlier is not None:  # reported above; no task it replaces holds the server
            self._queue.handover.forget_successor(earlier)
        logger.info("admitted {} task {} (priority {})", kind.value, task.task_id, task.priority)
        return self._enqueue(server, kind, task, seen=written)

    def _inventory_unavailable(
        self, server_id: str, kind: TaskKind, request: TaskBase, task: TaskBase, error: InventoryError, *, seen: Any
    ) -> Result:
        """The request could not be planned because the inventory failed: it stays new, saying so once in its
        messages; past ``service.plan_retry_deadline`` after that message it fails (``task`` carries its id)."""
        now = self._now()
        limit = self._settings.service.plan_retry_deadline
        since = waiting_since(request)
        if since is not None and (now - since).total_seconds() >= limit:
            waited = (now - since).total_seconds()
            return self._fail(
                server_id,
                kind,
                task,
                f"cannot plan: the inventory was unavailable for {waited:.0f} s"
                f" (service.plan_retry_deadline is {limit:g} s): {error}",
                seen=seen,
            )
        logger.warning("cannot plan task for server {} now: {}", server_id, error)
        if since is None:
            note = request.model_copy(deep=True)
            until = rfc3339(now + timedelta(seconds=limit))
            note.add_message(f"{WAITING_FOR_INVENTORY} until {until}: {shorten(str(error), 300)}", now=now)
            self._write(server_id, kind, note.to_attribute(), seen=seen)
        return Result(Action.SKIPPED, f"inventory unavailable: {error}")

    def _plan(self, server: Server, task: InstallTask) -> InstallTask:
        if reason := task.unsupported_reason():
            raise PlanError(reason)
        components = self._inventory.list_components(str(server.uuid))
        plan = build_plan(task, server, components, self._inventory)
        if refusal := plan.refusal():
            raise PlanError(refusal)
        planned = plan.apply_to(task)
        planned.add_message(f"plan ({plan.mode.value}): {plan.summary()}")
        return planned

    def _enqueue(self, server: Server, kind: TaskKind, task: TaskBase, *, seen: Any, again: bool = False) -> Result:
        """Enqueue a task whose attribute says ``queued`` (its data is ``seen``); ``again`` when it was queued
        before this poll.

        Not while a task of another kind on the server is ``active`` with a live heartbeat: Redis holds one task
        per server, but after it lost its data only the inventory knows that a worker still runs the other one.
        """
        assert task.task_id is not None
        server_id = str(server.uuid)
        if running := self._other_running(server, kind):
            return self._wait(server_id, kind, task, running, seen=seen)
        if again and not self._holds(server_id, kind, task.task_id):
            # Redis does not hold it (it lost its data, or the task waited): enqueue only what the attribute still
            # says. A listing older than a worker's `active` would otherwise put a running task in the queue again
            # after Redis lost its data, and a second worker would run it beside the first (issue 12: two installs
            # on one BMC at once).
            self._unmoved(server_id, kind, seen)
        result = self._queue.enqueue(server_id, kind=kind.value, task_id=task.task_id, priority=task.priority)
        if result.outcome is EnqueueOutcome.DEAD:  # written first: if it cannot be, the next poll finds it dead again
            failed = self._fail(
                server_id, kind, task, f"the queue gave it up: {result.entry.reason or 'dead'}", seen=seen
            )
            self._queue.forget_dead(server_id, task.task_id)
            return failed
        if result.outcome is not EnqueueOutcome.HELD_BY_OTHER:
            if again and result.outcome is EnqueueOutcome.ADDED:
                logger.info(
                    "enqueued {} task {} again: Redis did not hold it (lost its data, or it waited for another task)",
                    kind.value,
                    task.task_id,
                )
            return Result(Action.QUEUED, result.outcome.value)
        return self._wait(server_id, kind, task, _describe_holder(result.entry), seen=seen)

    def _holds(self, server_id: str, kind: TaskKind, task_id: str) -> bool:
        """True when Redis holds ``task_id`` as the server's live task (queued, delayed or in flight)."""
        entry = self._queue.entry(server_id)
        return (
            entry is not None
            and entry.task_id == task_id
            and entry.kind == kind.value
            and entry.state is not EntryState.DEAD
        )

    def _other_running(self, server: Server, kind: TaskKind) -> str | None:
        """A task of another kind on the server whose attribute (as listed) is ``active`` with a heartbeat younger
        than ``service.stale_after``, described for a message; else ``None``. Every kind counts: a server runs
        one task at a time, whatever the kinds."""
        for other in TaskKind:
            if other is kind:
                continue
            attribute = server.attribute(other.namespace)
            if attribute is None:
                continue
            try:
                task = other.parse(attribute.data)
            except TaskValidationError:
                continue
            age = heartbeat_age(task, self._now())
            if (
                task.status is TaskStatus.ACTIVE
                and age is not None
                and age.total_seconds() < self._settings.service.stale_after
            ):
                return f"{other.value} task {task.task_id} is running on this server"
        return None

    def _wait(self, server_id: str, kind: TaskKind, task: TaskBase, detail: str, *, seen: Any) -> Result:
        """Say once in the attribute that the task waits for ``detail``; :attr:`Action.WAITING`."""
        note = f"waiting: {detail}"
        if not task.messages or not task.messages[-1].endswith(note):
            task = task.model_copy(deep=True)
            task.add_message(note, now=self._now())
            self._write(server_id, kind, task.to_attribute(), seen=seen)
            logger.info("{} task {} waits: {}", kind.value, task.task_id, detail)
        return Result(Action.WAITING, detail)

    def _cancel(self, server_id: str, kind: TaskKind, task: TaskBase, *, seen: Any) -> Result:
        assert task.task_id is not None
        outcome = self._queue.cancel(server_id, task_id=task.task_id)
        if outcome is CancelOutcome.FLAGGED:
            return Result(Action.CANCEL_FLAGGED, "its worker stops at the next safe point")
        task = task.model_copy(deep=True)
        now = self._now()
        task.transition(TaskStatus.CANCELLED, now=now)
        where = "removed from the queue" if outcome is CancelOutcome.REMOVED else "no worker held it"
        task.add_message(f"cancelled by the operator ({where})", now=now)
        self._write(server_id, kind, task.to_attribute(), seen=seen)
        logger.info("cancelled {} task {}: {}", kind.value, task.task_id, where)
        return Result(Action.CANCELLED, where)

    def _check_active(self, server: Server, kind: TaskKind, task: TaskBase, *, seen: Any) -> Result:
        assert task.task_id is not None
        server_id = str(server.uuid)
        if self._queue.known(server_id):
            return Result(Action.NONE, "held")
        beat_age = heartbeat_age(task, self._now())
        age = beat_age.total_seconds() if beat_age is not None else float("inf")
        if age < self._settings.service.stale_after:
            return Result(Action.NONE, f"no lease, but its heartbeat is {age:.0f} s old")
        if task.attempts >= self._settings.queue.max_attempts:
            return self._fail(
                server_id,
                kind,
                task,
                f"gave up after {task.attempts} attempts: the last worker stopped heartbeating",
                seen=seen,
            )
        task = task.model_copy(deep=True)
        now = self._now()
        task.transition(TaskStatus.QUEUED, now=now)
        task.add_message(
            f"reclaimed by {self._worker}: heartbeat {age:.0f} s old and no replica holds its lease", now=now
        )
        written = self._write(server_id, kind, task.to_attribute(), seen=seen)
        logger.warning(
            "reclaimed {} task {}: heartbeat {:.0f} s old and no replica holds its lease", kind.value, task.task_id, age
        )
        return self._enqueue(server, kind, task, seen=written, again=True)

    def _fail(self, server_id: str, kind: TaskKind, task: TaskBase, reason: str, *, seen: Any) -> Result:
        task = task.model_copy(deep=True)
        now = self._now()
        task.transition(TaskStatus.FAILED, now=now)
        task.set_error(reason)
        task.add_message(f"failed: {reason}", now=now)
        self._write(server_id, kind, task.to_attribute(), seen=seen)
        logger.warning("{} task {} failed: {}", kind.value, task.task_id, reason)
        return Result(Action.FAILED, reason)

    # -- replacing requests -------------------------------------------------------------------------------

    def keep_successors(self) -> list[Result]:
        """Make sure every acknowledged replacing request is still in its attribute (:mod:`flasher.queue.handover`).

        For each successor Redis keeps: when the attribute holds a status write of the task it replaced (one that
        re-read the attribute just before the acknowledgement landed), or the request itself written again by its
        writer (who saw that status write), the acknowledgement is written back, saying so; when it holds the
        successor and the successor runs or is queued, the successor is forgotten; another new request is left to
        admission (which says that it replaces the successor); anything else (another task, a deleted attribute)
        supersedes it, and it is forgotten. Returns what was done for each (write-backs are :attr:`Action.QUEUED`).
        Inventory and queue errors propagate.
        """
        results = []
        for successor in self._queue.handover.successors():
            with task_context(successor.server_id, successor.task_id):
                results.append(self._keep_successor(successor))
        return results

    def _keep_successor(self, successor: Successor) -> Result:
        kind = TaskKind(successor.kind)
        try:
            current = self._inventory.get_attribute(successor.server_id, kind.namespace).data
        except NotFoundError:
            self._queue.handover.forget_successor(successor)
            return Result(Action.NONE, "the attribute was deleted")
        if not self._queue.handover.is_kept(successor):  # replaced by a later admission since it was listed
            return Result(Action.NONE, "another request's admission replaced it meanwhile")
        held = current.get("taskID") if isinstance(current, dict) else None
        status = current.get("status") if isinstance(current, dict) else None
        if held == successor.task_id:
            holder = self._queue.entry(successor.server_id)
            if status in ("active", *_ENDED) or (holder is not None and holder.task_id == successor.task_id):
                self._queue.handover.forget_successor(successor)  # it runs (or will) under its own lease
            return Result(Action.NONE, "the attribute holds the request")
        rewritten = isinstance(status, str) and is_new(status)
        if rewritten and request_task_id(successor.server_id, kind, current) != successor.task_id:
            return Result(Action.NONE, "a new request: admission replaces the successor")
        if not rewritten and not _status_write_of(current, successor.replaces):
            self._queue.handover.forget_successor(successor)
            return Result(Action.NONE, "superseded by another task")
        try:
            task = kind.parse(successor.data)
        except TaskValidationError:  # cannot happen: admission wrote it
            self._queue.handover.forget_successor(successor)
            return Result(Action.NONE, "unreadable")
        if rewritten:  # its writer wrote it again: the acknowledgement it had is written back, no new admission
            why = "its writer wrote it again after a status write of the task it replaces had landed over it"
        else:
            messages = current.get("messages")
            last = str(messages[-1])[:160] if isinstance(messages, list) and messages else ""
            why = f"a status write of {kind.value} task {successor.replaces} ({status}: {last}) had landed over it"
        task.add_message(f"acknowledgement written back by {self._worker}: {why}", now=self._now())
        try:  # still kept just before the write: a later request's admission may have put its own since
            self._write(
                successor.server_id,
                kind,
                task.to_attribute(),
                seen=current,
                still=lambda: self._queue.handover.is_kept(successor),
            )
        except AttributeMovedError as exc:
            return Result(Action.SKIPPED, str(exc))
        logger.warning(
            "{} request {} written back: a status write of task {} had landed over it",
            kind.value,
            successor.task_id,
            successor.replaces,
        )
        return Result(Action.QUEUED, f"acknowledgement written back ({why})")

    # -- the queue's dead tasks ---------------------------------------------------------------------------

    def bury(self, entry: QueueEntry) -> Result:
        """Write ``failed`` for a task the queue declared dead (its lease expired too often), then forget it.

        Only when the attribute still holds that task and has not ended; the entry is forgotten either way.
        """
        kind = TaskKind(entry.kind)
        with task_context(entry.server_id, entry.task_id):
            try:
                data = self._inventory.get_attribute(entry.server_id, kind.namespace).data
                task = kind.parse(data)
            except (InventoryError, TaskValidationError) as exc:
                logger.warning("dead task {}: attribute unreadable ({}); forgetting it", entry.task_id, exc)
                self._queue.forget_dead(entry.server_id, entry.task_id)
                return Result(Action.NONE, str(exc))
            result = Result(Action.NONE, "the attribute holds another task or it ended")
            if task.task_id == entry.task_id and not is_terminal(task.status) and not is_new(task.status):
                reason = (
                    f"lease expired {entry.attempts} times: the worker holding it stopped heartbeating"
                    f" (crashed, or lost Redis){': ' + entry.reason if entry.reason else ''}"
                )
                try:
                    result = self._fail(entry.server_id, kind, task, reason, seen=data)
                except AttributeMovedError as exc:  # the operator wrote meanwhile: theirs stands
                    result = Result(Action.NONE, str(exc))
            self._queue.forget_dead(entry.server_id, entry.task_id)
            return result

    def _unmoved(self, server_id: str, kind: TaskKind, seen: Any) -> None:
        """Raise :class:`AttributeMovedError` unless the attribute still holds ``seen`` (one read)."""
        try:
            current = self._inventory.get_attribute(server_id, kind.namespace).data
        except NotFoundError:
            raise AttributeMovedError("the attribute was deleted since the poll listed it") from None
        if current != seen:
            raise AttributeMovedError("the attribute changed since the poll listed it; the next poll looks again")

    def _write(
        self,
        server_id: str,
        kind: TaskKind,
        data: dict[str, Any],
        *,
        seen: Any,
        still: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Write ``data`` if the attribute still holds ``seen`` (what the decision was made on) and, when given,
        ``still()`` is true after that re-read (what Redis said the decision on is unchanged); returns ``data``.

        Raises :class:`AttributeMovedError` (nothing written) when it changed or was deleted since. The write is
        sent once: a resend would land later than the re-read, over whatever was written meanwhile.
        """
        self._unmoved(server_id, kind, seen)
        if still is not None and not still():
            raise AttributeMovedError("what Redis kept for it changed since it was read; the next poll looks again")
        self._inventory.replace_attribute(server_id, kind.namespace, data, once=True)
        for event in task_events(
            server_id, kind, data, source="admission", before=seen if isinstance(seen, Mapping) else None
        ):
            publish_safely(self._events, event)
        return data


def _rollout_of(task: TaskBase) -> str | None:
    """The rollout ``task`` is a member of, or ``None``."""
    return task.rollout.name if isinstance(task, InstallTask) and task.rollout is not None else None


_ENDED = ("success", "failed", "cancelled")


def _replaces_note(kind: TaskKind, holder: QueueEntry) -> str:
    """The message of a request that replaces the server's task ``holder`` (same kind)."""
    if holder.state is EntryState.INFLIGHT:
        how = f"running on {holder.owner}" if holder.owner else "running"
        return f"replaces {kind.value} task {holder.task_id} ({how}): it stops at its next safe point, then this runs"
    return f"replaces {kind.value} task {holder.task_id} ({holder.state.value}): it will not start"


def _status_write_of(data: Any, task_id: str) -> bool:
    """True when attribute ``data`` is a status write of task ``task_id`` (its ``taskID``, a status that is not new)."""
    if not isinstance(data, dict) or data.get("taskID") != task_id:
        return False
    status = data.get("status")
    return isinstance(status, str) and not is_new(status)


def _describe_holder(holder: QueueEntry) -> str:
    state = "running" if holder.state == "inflight" else holder.state
    return f"{holder.kind} task {holder.task_id} is {state} on this server"


def waiting_since(task: TaskBase) -> datetime | None:
    """When a new request began waiting for the inventory: the time of its last message when that is
    :data:`WAITING_FOR_INVENTORY`, else ``None`` (it is not waiting, or something was written since)."""
    if not task.messages:
        return None
    line = task.messages[-1]
    parts = line.split(" ", 1)
    if len(parts) != 2 or not parts[1].startswith(WAITING_FOR_INVENTORY):
        return None
    return message_time(line)


def heartbeat_age(task: TaskBase, now: datetime) -> timedelta | None:
    """How old the task's heartbeat (``updatedAt``, else ``createdAt``) is at ``now``; ``None`` without one."""
    beat = task.updated_at or task.created_at
    return now - beat if beat else None
