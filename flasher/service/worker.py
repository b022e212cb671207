"""The worker pool: threads that claim tasks from the queue and run them, whatever their kind.

Each of ``service.concurrency`` threads loops: claim a task (highest priority, oldest) of a kind it has a runner
for, run it, settle its lease, claim the next. For one claim:

1. The lease becomes the task's :class:`~flasher.task.fence.Fence` (:class:`~flasher.queue.LeaseFence`: every check
   asks Redis; a lost lease raises :class:`~flasher.task.fence.LeaseLostError`).
2. The server and its attribute are read. When the attribute no longer holds the leased task (another ``taskID``,
   a new request, a finished or deleted task, garbage), the lease is acked and nothing is written. So it is when
   the attribute shows the task running elsewhere, alive, at an attempt this claim does not follow
   (:func:`~flasher.task.fence.run_elsewhere`: Redis lost its data and handed the task out again).
3. A member of a rollout passes its start gate first
   (:meth:`~flasher.rollout.controller.RolloutController.gate`): paused, aborted, halted firmware, outside its
   maintenance window or over a cap, it goes back to waiting (``requested`` with the reason) or is cancelled,
   its lease acked, before anything is sent to the BMC.
4. ``active`` is written with ``worker``, ``attempts`` and ``claimed by <worker> (attempt n)``, under the lease,
   checked against the attribute just read in step 2 (no second read).
5. A :class:`~flasher.service.heartbeat.Heartbeat` extends the lease every ``service.heartbeat_interval`` seconds
   from the claim on (Redis only: a slow inventory never costs the lease), and moves ``updatedAt`` while the
   runner works (never queueing behind the runner's own status writes).
6. The runner (``runners[kind]``) gets a :class:`~flasher.task.run.RunContext` and returns a
   :class:`~flasher.task.run.RunResult`. An exception escaping it fails that task with the error (never the pool).
7. The outcome settles the lease (:mod:`flasher.service.outcomes`). A final status the inventory did not take in
   time is kept in :class:`~flasher.service.pending.PendingWrites` and written when it is back. A rollout
   member's end (and failure) is recorded for its rollout's breaker once its lease is acked, and its slots
   released.
8. An ack (the task ended, or the claim was dropped) goes with the thread's next claim, in one round trip
   (:meth:`~flasher.queue.TaskQueue.ack_and_claim`): the heartbeat has stopped by then and the next claim follows
   at once. A thread that stops, or has pending final statuses to write first, acks on its own.

:meth:`WorkerPool.stop` sets the shutdown event runners watch (``RunContext.stopping``): they return
``released`` at their next safe point and the pool gives the task back to the queue as ``queued``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from loguru import logger

from flasher import redact
from flasher.config import Settings
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError, NotFoundError
from flasher.logs import task_context
from flasher.metrics import TASKS_FINISHED
from flasher.queue import Lease, LeaseFence, LeaseLostError, QueueError, TaskQueue
from flasher.queue.handover import EndNote
from flasher.rollout.controller import GateAction, RolloutController
from flasher.service.heartbeat import Heartbeat
from flasher.service.outcomes import LeaseAction, lease_action
from flasher.service.pending import PendingWrite, PendingWrites
from flasher.task.events import EventSink, NoEvents, PublishingStore
from flasher.task.fence import run_elsewhere
from flasher.task.model import (
    InstallTask,
    TaskBase,
    TaskKind,
    TaskStatus,
    TaskValidationError,
    is_new,
    is_terminal,
    utc_now,
)
from flasher.task.run import BMCOpener, Outcome, RunContext, RunResult
from flasher.task.writer import StatusWriter, TaskReplacedError

Runner = Callable[[RunContext[Any]], RunResult]

#: Seconds between attempts at writing pending final statuses.
PENDING_FLUSH_EVERY = 5.0


class _Ending:
    """How a thread ends one claim: the ack it owes (paid with its next claim, :meth:`WorkerPool._claim`) and what
    must happen only after that ack (a rollout member's end, its slots)."""

    def __init__(self) -> None:
        self.ack: Lease | None = None
        self._after: list[Callable[[], None]] = []

    def owe_ack(self, lease: Lease) -> None:
        """The task's run is over and nothing more is written for it: ack ``lease`` with the next claim."""
        self.ack = lease

    def after_ack(self, then: Callable[[], None]) -> None:
        """Run ``then`` once the ack is paid (at once when no ack is owed)."""
        if self.ack is None:
            then()
        else:
            self._after.append(then)

    def paid(self) -> None:
        """The ack went out (or failed and was logged): run what waited for it."""
        self.ack = None
        after, self._after = self._after, []
        for then in after:
            try:
                then()
            except Exception:  # the pool never dies of one task
                logger.exception("worker pool: unexpected error after acking a task")


@dataclass(frozen=True)
class RunningTask:
    """A task a pool thread is running: server, task, kind, attempt (from 1), and when it was claimed (epoch s)."""

    server_id: str
    task_id: str
    kind: TaskKind
    attempt: int
    claimed_at: float


class WorkerPool:
    """``settings.service.concurrency`` threads claiming from ``queue`` and running ``runners[kind]``.

    ``open_bmc`` is handed to runners in their context; ``worker_id`` names this replica in leases and in the
    attribute's ``worker``; ``events`` receives every status write (:mod:`flasher.task.events`).
    ``idle_wait``: seconds a thread waits when the queue has nothing for it (or Redis is unavailable);
    ``pending_flush_every``: seconds between attempts at writing pending final statuses; ``rollouts``: the
    replica's rollout controller (members pass its start gate; ``None``: no rollouts here).
    Start with :meth:`start`; stop with :meth:`stop`.
    """

    def __init__(
        self,
        queue: TaskQueue,
        inventory: InventoryClient,
        settings: Settings,
        runners: Mapping[TaskKind, Runner],
        open_bmc: BMCOpener,
        *,
        worker_id: str,
        idle_wait: float = 1.0,
        pending_flush_every: float = PENDING_FLUSH_EVERY,
        rollouts: RolloutController | None = None,
        events: EventSink | None = None,
    ) -> None:
        if not runners:
            raise ValueError("runners: the pool needs a runner for at least one task kind")
        self.queue = queue
        self.inventory = inventory
        self.settings = settings
        self.runners = dict(runners)
        self.open_bmc = open_bmc
        self.worker_id = worker_id
        self.idle_wait = idle_wait
        self.pending_flush_every = pending_flush_every
        self.pending = PendingWrites()
        self.rollouts = rollouts
        sink = events or NoEvents()
        self._writes = PublishingStore(inventory, sink, source="worker")  # status writes, published as events
        self._pending_writes = PublishingStore(inventory, sink, source="pending")
        self._kinds = [kind.value for kind in self.runners]
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._running: dict[int, RunningTask] = {}
        self._flushed_at = 0.0

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads (``RuntimeError`` when already started)."""
        if self._threads:
            raise RuntimeError("the worker pool is already started")
        for index in range(self.settings.service.concurrency):
            thread = threading.Thread(target=self._loop, name=f"flasher-worker-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()
        logger.info("worker pool started: {} threads as {}", len(self._threads), self.worker_id)

    def stop(self, grace: float) -> bool:
        """Stop claiming and ask running tasks to stop at their next safe point; wait up to ``grace`` seconds.

        Returns True when every thread ended in time. Tasks still running after that keep their leases until
        the process exits; the leases then expire and another replica resumes the tasks.
        """
        self._stopping.set()
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            logger.warning("worker pool: {} still running after {:.0f} s: {}", len(alive), grace, ", ".join(alive))
        self.flush_pending()
        return not alive

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping.is_set()

    def alive(self) -> bool:
        """True while every worker thread runs (before :meth:`stop`); a dead thread means the pool is broken."""
        return bool(self._threads) and not self._stopping.is_set() and all(t.is_alive() for t in self._threads)

    def running(self) -> list[RunningTask]:
        """The tasks running right now."""
        with self._lock:
            return list(self._running.values())

    def flush_pending(self) -> int:
        """Write pending final statuses the inventory takes now; returns how many are still pending."""
        self._flushed_at = time.monotonic()
        return self.pending.flush(self._pending_writes) if len(self.pending) else 0

    # -- one thread ---------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        ending = _Ending()  # the previous claim's: an ack it owes goes with the next claim
        while not self._stopping.is_set():
            if len(self.pending) and time.monotonic() - self._flushed_at >= self.pending_flush_every:
                self._pay(ending)  # the flush may take long: ack first
                self.flush_pending()
            try:
                lease = self._claim(ending)
            except QueueError as exc:
                logger.warning("worker pool: cannot claim from the queue: {}", exc)
                self._stopping.wait(self.idle_wait)
                continue
            if lease is None:
                self._stopping.wait(self.idle_wait)
                continue
            ending = _Ending()
            with task_context(lease.server_id, lease.task_id):
                try:
                    self._handle(lease, ending)
                except Exception:  # the pool never dies of one task
                    logger.exception("worker pool: unexpected error while handling a claimed task")
        self._pay(ending)

    def _claim(self, ending: _Ending) -> Lease | None:
        """The next task for this thread; the ack ``ending`` owes goes with it, in one round trip."""
        owed = ending.ack
        if owed is None:
            return self.queue.claim(self.worker_id, kinds=self._kinds)
        with task_context(owed.server_id, owed.task_id):
            try:
                result = self.queue.ack_and_claim(owed, self.worker_id, kinds=self._kinds)
            except QueueError as exc:
                logger.warning("queue ack failed (the lease will expire and the task come back): {}", exc)
                raise
            finally:
                ending.paid()
            if result.lost is not None:
                logger.warning("queue ack: {}", result.lost)
        return result.lease

    def _pay(self, ending: _Ending) -> None:
        """Ack what ``ending`` owes on its own (no claim follows)."""
        owed = ending.ack
        if owed is not None:
            with task_context(owed.server_id, owed.task_id):
                self._queue_call("ack", lambda: self.queue.ack(owed))
            ending.paid()

    def _handle(self, lease: Lease, ending: _Ending) -> None:
        # The lease is kept from the claim on, by a loop that talks to Redis only: reading the server and writing
        # `active` may take long on a slow inventory, and must not cost the lease.
        heartbeat = Heartbeat(self.queue, lease, interval=self.settings.service.heartbeat_interval).start()
        try:
            self._handle_held(lease, heartbeat, ending)
        finally:
            heartbeat.stop()

    def _handle_held(self, lease: Lease, heartbeat: Heartbeat, ending: _Ending) -> None:
        kind = TaskKind(lease.kind)
        attempt = lease.attempts + 1
        task = self._leased_task(lease, kind, ending, before_queue=heartbeat.stop)
        if task is None:
            return
        server, parsed, read_at = task
        policy = self.settings.step("inventory_write")
        member = isinstance(parsed, InstallTask) and parsed.rollout is not None and self.rollouts is not None
        claimed = server.attribute(kind.namespace)
        writer: StatusWriter[Any] = StatusWriter(
            self._writes,
            lease.server_id,
            kind,
            parsed,
            LeaseFence(self.queue, lease),
            write_timeout=policy.timeout,
            min_interval=self.settings.service.heartbeat_interval,  # progress coalesced: fewer, shorter windows
            # `active` is written right after this read: no second read (a member's start gate reads on first)
            just_read=claimed.data if claimed is not None and not member else None,
            just_read_at=read_at,  # the window counts from the read, not from here
        )
        if (
            isinstance(parsed, InstallTask)
            and member
            and not self._gate(lease, writer, server, parsed, heartbeat=heartbeat, ending=ending)
        ):
            return
        notes = self._take_notes(lease, kind)
        replaced = [
            f"{kind.value} task {note.task_id} (replaced by this request): {note.text}"
            for note in notes
            if note.task_id != lease.task_id
        ]
        try:
            writer.update(
                lambda t: self._claimed(t, attempt, replaced),
                message=f"claimed by {self.worker_id} (attempt {attempt})",
                force=True,
            )
        except LeaseLostError as exc:
            logger.warning("lease lost before the task started: {}", exc)
            self._give_back(lease, notes)
            return
        except TaskReplacedError:
            heartbeat.stop()
            self._give_back(lease, notes)  # for the request that replaced this one
            self._leave_note(lease, "had not started: another request replaced it before a worker claimed it")
            ending.owe_ack(lease)
            return
        me = threading.get_ident()
        with self._lock:
            self._running[me] = RunningTask(lease.server_id, lease.task_id, kind, attempt, time.time())
        heartbeat.attach(writer)
        try:
            result = self._run(kind, server, writer, attempt)
            # The heartbeat keeps the lease while the final status is written (an inventory outage longer than
            # the lease must not lose it); _settle stops it before acking, failing or releasing.
            self._settle(lease, writer, result, attempt, ending, before_queue=heartbeat.stop)
        finally:
            with self._lock:
                self._running.pop(me, None)
        rollouts = self.rollouts
        if member and rollouts is not None and is_terminal(writer.task.status):
            ending.after_ack(lambda: rollouts.ended(server, writer.task))

    def _gate(
        self,
        lease: Lease,
        writer: StatusWriter[Any],
        server: Any,
        task: InstallTask,
        *,
        heartbeat: Heartbeat,
        ending: _Ending,
    ) -> bool:
        """A rollout member's start gate; True to start it. Otherwise it was sent back to wait or cancelled (lease
        acked, slots released) or, when the gate could not decide, given back to the queue."""
        assert self.rollouts is not None
        verdict = self.rollouts.gate(server, task)
        if verdict.action is GateAction.GO:
            return True
        if verdict.action is GateAction.RETRY:
            logger.warning("rollout member: {}; giving the task back to the queue", verdict.reason)
            heartbeat.stop()
            self._queue_call("release", lambda: self.queue.release(lease))
            self._stopping.wait(self.idle_wait)
            return False
        try:
            if verdict.action is GateAction.CANCEL:
                writer.finish(TaskStatus.CANCELLED, message=f"cancelled before it started: {verdict.reason}")
            else:
                writer.update(
                    lambda t: t.transition(TaskStatus.REQUESTED), message=f"waiting: {verdict.reason}", force=True
                )
        except LeaseLostError as exc:
            logger.warning("lease lost at the rollout start gate: {}", exc)
            return False
        except TaskReplacedError:
            pass
        logger.info("rollout member not started ({}): {}", verdict.action.value, verdict.reason)
        heartbeat.stop()
        ending.owe_ack(lease)
        rollouts = self.rollouts
        ending.after_ack(lambda: rollouts.release(lease.server_id, task))
        return False

    def _leased_task(
        self, lease: Lease, kind: TaskKind, ending: _Ending, *, before_queue: Callable[[], None]
    ) -> tuple[Any, TaskBase, float] | None:
        """The server, the task of ``lease`` and when the server was read (``time.monotonic()`` as the read was
        sent); ``None`` (lease settled or its ack owed to ``ending``, after ``before_queue``) when the attribute
        no longer holds it or the inventory cannot say."""
        read_at = time.monotonic()
        try:
            server = self.inventory.get_server(lease.server_id)
        except NotFoundError:
            logger.warning("server {} is gone from the inventory; dropping its task", lease.server_id)
            before_queue()
            ending.owe_ack(lease)
            return None
        except InventoryError as exc:
            logger.warning("inventory unavailable; giving the task back to the queue: {}", exc)
            before_queue()
            self._queue_call("release", lambda: self.queue.release(lease))
            self._stopping.wait(max(self.idle_wait, self.settings.service.heartbeat_interval))
            return None
        attribute = server.attribute(kind.namespace)
        parsed: TaskBase | None = None
        if attribute is not None:
            try:
                parsed = kind.parse(attribute.data)
            except TaskValidationError:
                parsed = None
        if parsed is None or parsed.task_id != lease.task_id or is_new(parsed.status) or is_terminal(parsed.status):
            state = "gone" if parsed is None else f"task {parsed.task_id}, status {parsed.status.value or 'new'}"
            logger.info("the attribute no longer holds task {} ({}); dropping it from the queue", lease.task_id, state)
            before_queue()
            if parsed is not None and (parsed.task_id != lease.task_id or is_new(parsed.status)):
                self._leave_note(lease, "had not started: another request replaced it before a worker claimed it")
            ending.owe_ack(lease)
            return None
        stale_after = self.settings.service.stale_after
        if why := run_elsewhere(parsed, attempt=lease.attempts + 1, now=utc_now(), stale_after=stale_after):
            logger.warning(
                "not starting task {}: {}; claim dropped (admission hands the task out again once that run's"
                " heartbeat is older than service.stale_after)",
                lease.task_id,
                why,
            )
            before_queue()
            ending.owe_ack(lease)
            return None
        return server, parsed, read_at

    def _take_notes(self, lease: Lease, kind: TaskKind) -> list[EndNote]:
        """How the tasks this one replaced ended (their end notes, taken from Redis)."""
        try:
            return self.queue.handover.take_notes(lease.server_id, kind.value)
        except QueueError as exc:
            logger.warning("cannot read how the replaced tasks ended: {}", exc)
            return []

    def _give_back(self, lease: Lease, notes: list[EndNote]) -> None:
        """Leave ``notes`` (taken at a claim whose write did not happen) for the next claim."""
        for note in notes:
            try:
                self.queue.handover.leave_note(lease.server_id, note.kind, task_id=note.task_id, text=note.text)
            except QueueError as exc:
                logger.warning("cannot keep how the replaced task {} ended: {}", note.task_id, exc)

    def _leave_note(self, lease: Lease, text: str) -> None:
        """Record how this replaced task ended, for the request that replaced it (:mod:`flasher.queue.handover`)."""
        try:
            self.queue.handover.leave_note(lease.server_id, lease.kind, task_id=lease.task_id, text=text)
        except QueueError as exc:
            logger.warning("cannot record how the replaced task ended: {}", exc)

    def _claimed(self, task: TaskBase, attempt: int, replaced: list[str]) -> None:
        task.transition(TaskStatus.ACTIVE)
        task.worker = self.worker_id
        task.attempts = attempt
        task.set_error(None)
        for message in replaced:
            task.add_message(message)

    def _run(self, kind: TaskKind, server: Any, writer: StatusWriter[Any], attempt: int) -> RunResult:
        ctx: RunContext[Any] = RunContext(
            server=server,
            kind=kind,
            writer=writer,
            inventory=self.inventory,
            settings=self.settings,
            open_bmc=self.open_bmc,
            stopping=self._stopping,
            attempt=attempt,
        )
        try:
            return self.runners[kind](ctx)
        except LeaseLostError as exc:
            return RunResult(Outcome.LOST, str(exc))
        except TaskReplacedError as exc:
            return RunResult(Outcome.REPLACED, str(exc))
        except Exception as exc:
            logger.exception("{} runner failed with an unexpected error", kind.value)
            error = redact.scrub(f"internal error: {type(exc).__name__}: {exc}")
            if not is_terminal(writer.task.status):  # a runner may fail after writing its final status
                self._write(writer, lambda: writer.finish(TaskStatus.FAILED, error=error, message=f"failed: {error}"))
            return RunResult(Outcome.FAILED, error)

    # -- settling the lease -------------------------------------------------------------------------------------

    def _settle(
        self,
        lease: Lease,
        writer: StatusWriter[Any],
        result: RunResult,
        attempt: int,
        ending: _Ending,
        *,
        before_queue: Callable[[], None] = lambda: None,
    ) -> None:
        action = lease_action(
            result.outcome,
            attempt=attempt,
            max_attempts=self.settings.queue.max_attempts,
            cancel_requested=writer.cancel_requested,
        )
        logger.info("{} task ended {} ({}): lease {}", lease.kind, result.outcome.value, result.reason, action.value)
        reason = result.reason or result.outcome.value
        if action is LeaseAction.NONE:
            return
        write: Callable[[], object] | None = None
        if action is LeaseAction.CANCEL:
            write = lambda: writer.finish(TaskStatus.CANCELLED, message=f"cancelled: {reason}")  # noqa: E731
        elif action is LeaseAction.GIVE_UP:
            error = f"{reason} (gave up after {attempt} attempts)"
            write = lambda: writer.finish(TaskStatus.FAILED, error=error, message=f"failed: {error}")  # noqa: E731
        elif action in (LeaseAction.REQUEUE, LeaseAction.RELEASE):
            why = "released at shutdown" if action is LeaseAction.RELEASE else f"attempt {attempt} did not finish"
            message = f"{why}: {reason}; queued"
            write = lambda: writer.update(  # noqa: E731
                lambda t: t.transition(TaskStatus.QUEUED), message=message, force=True
            )
        if write is not None and not self._write(writer, write):
            return
        before_queue()  # the heartbeat is quiet from here: nothing else writes the attribute for this run
        if result.outcome is Outcome.REPLACED:
            self._leave_note(lease, result.reason or "stopped: another request replaced it")
        self._count_and_keep(lease, writer)
        if action is LeaseAction.RELEASE:
            self._queue_call("release", lambda: self.queue.release(lease))
        elif action is LeaseAction.REQUEUE:
            self._queue_call("fail", lambda: self.queue.fail(lease, retry=True, reason=reason))
        elif action is LeaseAction.GIVE_UP:
            self._queue_call("fail", lambda: self.queue.fail(lease, retry=False, reason=reason))
        else:
            ending.owe_ack(lease)  # paid with the next claim

    def _write(self, writer: StatusWriter[Any], write: Callable[[], object]) -> bool:
        """Run a status write under the lease; False when the lease is lost (nothing more may be done)."""
        try:
            write()
        except LeaseLostError as exc:
            logger.warning("lease lost; status not written: {}", exc)
            return False
        except TaskReplacedError:
            pass
        return True

    def _count_and_keep(self, lease: Lease, writer: StatusWriter[Any]) -> None:
        """Count a finished task; keep its final status for later when the inventory did not take it."""
        task = writer.task
        if not is_terminal(task.status):
            return
        TASKS_FINISHED.labels(kind=lease.kind, status=task.status.value).inc()
        if writer.pending:
            self.pending.add(
                PendingWrite(
                    lease.server_id,
                    TaskKind(lease.kind),
                    lease.task_id,
                    task.worker,
                    task.attempts,
                    writer.final_attribute(),
                )
            )

    def _queue_call(self, what: str, call: Callable[[], object]) -> None:
        try:
            call()
        except LeaseLostError as exc:
            logger.warning("queue {}: {}", what, exc)
        except QueueError as exc:
            logger.warning("queue {} failed (the lease will expire and the task come back): {}", what, exc)
