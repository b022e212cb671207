"""Who moves a rollout: the controller's tick on every replica, and the start gate before a member runs.

**The tick** (:meth:`RolloutController.tick_all`, every ``rollout.tick_interval`` seconds, and soon after a
member of this replica ends: at most one tick per ``rollout.min_tick_gap`` seconds): list the active rollouts
(one query for all of them), and for each one this replica can lock (``SET NX PX`` on Redis,
``rollout.lock_seconds``; one replica ticks a rollout at a time):

1. list its members (one paged query: ``attr=sh.hollow.flasher.task~rollout.name~eq~<name>``);
2. when Redis lost the rollout's state (no ``built`` marker), rebuild it from them: every queued or active member
   takes its slots, every ended one is added to its firmware's end and failure sets; then drop slots of members
   that no longer hold them (ended, sent back to wait, or admitted by a replica that died before writing);
3. :func:`~flasher.rollout.policy.evaluate` them;
4. admit the members it chose, each only once its slots are reserved in Redis (all caps checked atomically, in
   the policy's order): through the ordinary admission path (plan, write ``queued``, enqueue), up to
   ``rollout.admit_threads`` at once; a member that cannot be admitted gives its slots back;
5. hand each waiting member's reason, when it changed, to the reason writer (a thread of its own, so the next
   tick's admissions never wait for it), which writes ``waiting: ...`` into the attribute unless the attribute
   changed since it was listed (the next tick decides again then); cancel the waiting members of an aborted
   rollout;
6. close the rollout once every member has ended.

**The start gate** (:meth:`RolloutController.gate`): a worker that claimed a member asks, before anything is
sent to the BMC, whether it may start now. It reads the record from the inventory (so a pause or an abort holds
from the next start on, whichever replica runs it), rebuilds the Redis state first if it was lost, and checks:
aborted (the member is cancelled), paused, halted firmware (the failure sets in Redis: a failure is recorded the
moment its worker has written ``failed``, so once a firmware failed K times no new install of it starts), the
maintenance window (the expected duration of what is left to install), and the member's slots (reserved now if
it does not hold them, e.g. after Redis lost them). A member that may not start goes back to waiting
(``requested`` with the reason; its queue entry acked, its slots released) without touching the BMC. A member
an earlier attempt had started (a component ``active`` or ``installed``: its replica died mid-install) is not
held back: the BMC may be flashing it, so it resumes like any active install (those may still end, whatever
the rollout says now).

**The end** (:meth:`RolloutController.ended`): the worker that wrote a member's final status records its end
(and failure) at once, then releases its slots, and ticks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from loguru import logger

from flasher.config import Settings
from flasher.constants import TASK_NAMESPACE
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError
from flasher.inventory.models import Server
from flasher.logs import task_context
from flasher.metrics import ROLLOUT_HALTS, ROLLOUT_MEMBERS, ROLLOUT_WAITING
from flasher.queue import QueueError
from flasher.rollout.definition import (
    CompiledPolicy,
    RolloutPhase,
    RolloutRecord,
    RolloutSpecError,
    RolloutState,
)
from flasher.rollout.members import Member, failed_firmware, member_of, planned_firmware
from flasher.rollout.operations import list_member_servers, read_members
from flasher.rollout.policy import Evaluation, Wait, WaitReason, evaluate, halt_reason
from flasher.rollout.slots import Reservation, RolloutSlots, end_keys, slot_label
from flasher.rollout.store import RolloutConflictError, RolloutError, RolloutStore, StoredRollout
from flasher.rollout.windows import check as window_check
from flasher.task.model import ComponentStatus, InstallTask, TaskStatus, utc_now

#: What the controller calls to admit a member: the ordinary admission path; returns (admitted, detail).
Admitter = Callable[[Server], tuple[bool, str]]
_STATUSES = ("new", "queued", "active", "success", "failed", "cancelled")


class GateAction(StrEnum):
    """What the start gate says about a claimed member."""

    GO = "go"  # start it
    WAIT = "wait"  # back to waiting, with the reason
    CANCEL = "cancel"  # the rollout was aborted: cancel it
    RETRY = "retry"  # cannot tell now (the inventory or Redis failed): give it back to the queue


@dataclass(frozen=True)
class GateVerdict:
    """The start gate's answer: ``action``, the ``reason`` in words, and for ``wait`` why (``wait``)."""

    action: GateAction
    reason: str = ""
    wait: WaitReason | None = None


@dataclass
class TickReport:
    """What one :meth:`RolloutController.tick_all` did: rollouts ticked here, members admitted, waiting reasons
    handed to the reason writer, members cancelled, errors (one line each)."""

    ticked: list[str] = field(default_factory=list)
    admitted: int = 0
    reasons: int = 0
    cancelled: int = 0
    errors: list[str] = field(default_factory=list)


def started(task: InstallTask) -> bool:
    """Whether an earlier attempt started installing: a component (or an instance) is ``active`` or ``installed``."""
    begun = (ComponentStatus.ACTIVE, ComponentStatus.INSTALLED)
    for spec in (task.firmware or {}).values():
        if spec.status in begun or any(i.status in begun for i in spec.instances or []):
            return True
    return False


def _waiting_line(text: str) -> str:
    return f"waiting: {text}"


def _is_waiting_line(line: str) -> bool:
    parts = line.split(" ", 1)
    return len(parts) == 2 and parts[1].startswith("waiting: ")


class RolloutController:
    """The rollouts' controller of one replica (module docstring).

    ``inventory``: the replica's inventory client; ``slots``: the Redis state; ``admit``: the admission path
    (:meth:`flasher.service.admission.Admission.admit_rollout_member`); ``worker_id`` names this replica in the
    tick lock. Start the tick thread with :meth:`start`, stop it with :meth:`stop`.
    """

    def __init__(
        self,
        inventory: InventoryClient,
        slots: RolloutSlots,
        settings: Settings,
        *,
        worker_id: str,
        admit: Admitter | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.inventory = inventory
        self.slots = slots
        self.settings = settings
        self.worker_id = worker_id
        self.admit = admit
        self._now = now
        self._store = RolloutStore(inventory)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.last_report: TickReport | None = None
        self._reasons: dict[str, tuple[Server, InstallTask, str, datetime]] = {}
        self._reasons_lock = threading.Lock()
        self._reasons_wake = threading.Event()
        self._writer: threading.Thread | None = None

    # -- the tick thread ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Tick now, then every ``rollout.tick_interval`` seconds and whenever :meth:`poke` is called; write
        waiting reasons as the ticks hand them over."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="flasher-rollouts", daemon=True)
        self._thread.start()
        self._writer = threading.Thread(target=self._write_loop, name="flasher-rollout-reasons", daemon=True)
        self._writer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop ticking and writing reasons; a running tick ends at its next member."""
        self._stopping.set()
        self._wake.set()
        self._reasons_wake.set()
        for thread in (self._thread, self._writer):
            if thread is not None:
                thread.join(timeout)
        self._thread = self._writer = None

    @property
    def running(self) -> bool:
        """True while the tick thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def poke(self) -> None:
        """Tick as soon as the current tick (if any) is over."""
        self._wake.set()

    def _run(self) -> None:
        interval, gap = self.settings.rollout.tick_interval, self.settings.rollout.min_tick_gap
        while not self._stopping.is_set():
            self._wake.clear()
            began = time.monotonic()
            self.tick_all()
            self._wake.wait(max(0.0, interval - (time.monotonic() - began)))
            rest = gap - (time.monotonic() - began)
            if rest > 0:
                self._stopping.wait(rest)

    # -- the tick -----------------------------------------------------------------------------------------

    def tick_all(self) -> TickReport:
        """Tick every active rollout this replica can lock. Never raises: errors are logged and reported."""
        report = TickReport()
        if not self._lock.acquire(blocking=False):
            return report
        try:
            try:
                rollouts, problems = self._store.list(active_only=True)
            except InventoryError as exc:
                report.errors.append(f"listing rollouts: {exc}")
                logger.warning("rollouts: cannot list the active rollouts: {}", exc)
                return report
            for problem in problems:
                logger.warning("rollouts: {}", problem)
            for stored in rollouts:
                if self._stopping.is_set():
                    break
                if stored.record.phase is not RolloutPhase.ACTIVE:
                    continue
                self._tick_locked(stored, report)
        finally:
            self.last_report = report
            self._lock.release()
        return report

    def _tick_locked(self, stored: StoredRollout, report: TickReport) -> None:
        name = stored.name
        try:
            if not self.slots.lock(name, self.worker_id, self.settings.rollout.lock_seconds):
                return
        except QueueError as exc:
            report.errors.append(f"rollout {name}: {exc}")
            return
        try:
            self.tick(stored, report)
            report.ticked.append(name)
        except (InventoryError, QueueError, RolloutError) as exc:
            report.errors.append(f"rollout {name}: {exc}")
            logger.warning("rollout {}: tick failed: {}", name, exc)
        except Exception as exc:  # a bug must not stop the other rollouts
            report.errors.append(f"rollout {name}: internal error: {exc!r}")
            logger.exception("rollout {}: tick failed with an internal error", name)
        finally:
            try:
                self.slots.unlock(name, self.worker_id)
            except QueueError as exc:
                logger.warning("rollout {}: tick lock not released (it expires): {}", name, exc)

    def tick(self, stored: StoredRollout, report: TickReport | None = None) -> Evaluation:
        """One tick of one rollout (module docstring), under its lock (the caller's). Returns the evaluation."""
        report = report or TickReport()
        record = stored.record
        name = record.name
        policy = record.policy.compile()
        servers = list_member_servers(self.inventory, name, self.settings.inventory.facility)
        entries = read_members(servers, record, self.settings.rollout)
        members = [m for _, _, m in entries]
        if not self.slots.is_built(name):
            self._rebuild(name, policy, members)
        self._sync(name, members)
        now = self._now()
        evaluation = evaluate(record, members, now, policy=policy)
        self._export(name, evaluation)
        for halt in evaluation.halts:
            if self.slots.first_halt(name, record.generation, halt.firmware):
                ROLLOUT_HALTS.labels(rollout=name, firmware=halt.firmware.slug).inc()
                logger.warning("rollout {}: {}", name, halt.text)
        by_id = {m.server_id: (server, task, m) for server, task, m in entries}
        waits = dict(evaluation.waits)
        if record.state is RolloutState.RUNNING and self.admit is not None and evaluation.admit:
            reserved = []
            for server_id in evaluation.admit:  # reserved in the policy's order: the caps are kept in Redis
                _, _, member = by_id[server_id]
                why = self._reserve(name, policy, member)
                if why is None:
                    reserved.append(server_id)
                elif why:
                    waits[server_id] = Wait(WaitReason.CAP, why)
            threads = min(self.settings.rollout.admit_threads, len(reserved)) or 1
            with ThreadPoolExecutor(threads, thread_name_prefix="rollout-admit") as pool:
                done = pool.map(lambda sid: self._admit(name, by_id[sid][0], by_id[sid][2]), reserved)
                report.admitted += sum(1 for admitted in done if admitted)
        for server_id, wait in waits.items():
            if self._stopping.is_set():
                break
            server, task, member = by_id[server_id]
            if server_id in evaluation.cancel:
                if self._cancel(server, task, record, now):
                    report.cancelled += 1
            elif not (task.messages and task.messages[-1].endswith(_waiting_line(wait.text))):
                with self._reasons_lock:
                    self._reasons[server_id] = (server, task, wait.text, now)
                report.reasons += 1
        if report.reasons:
            self._reasons_wake.set()
        if members and all(m.ended for m in members):
            self._close(stored, now)
        return evaluation

    def _reserve(self, name: str, policy: CompiledPolicy, member: Member) -> str | None:
        """Reserve the member's slots: ``None`` when it holds them, else the cap text (``""``: Redis lost the
        state meanwhile; the next tick rebuilds it first)."""
        slots = self.slots.slots_of(name, policy, member)
        result = self.slots.reserve(name, member.server_id, slots)
        if result.outcome is Reservation.FULL:
            return slot_label(slots, result)
        if result.outcome is Reservation.UNBUILT:
            return ""
        return None

    def _admit(self, name: str, server: Server, member: Member) -> bool:
        """Admit a member holding its slots; it gives them back when it is not admitted (also on an error)."""
        assert self.admit is not None
        try:
            with task_context(member.server_id, member.task_id):
                admitted, detail = self.admit(server)
        except Exception as exc:
            self.slots.release(name, member.server_id)
            logger.warning("rollout {}: member {} not admitted now: {}", name, member.name or member.server_id, exc)
            return False
        if not admitted:
            self.slots.release(name, member.server_id)
            logger.info("rollout {}: member {} not admitted: {}", name, member.name or member.server_id, detail)
        return admitted

    def _rebuild(self, name: str, policy: CompiledPolicy, members: Sequence[Member]) -> None:
        holding = [(m.server_id, self.slots.slots_of(name, policy, m)) for m in members if m.holding]
        added = self.slots.rebuild(name, holding, end_keys(self.slots, name, members))
        logger.info(
            "rollout {}: state rebuilt from the inventory (Redis had lost it): {} members hold slots", name, added
        )

    def _sync(self, name: str, members: Sequence[Member]) -> None:
        holding = {m.server_id for m in members if m.holding}
        for server_id in self.slots.holders(name):
            if server_id not in holding and self.slots.release(name, server_id):
                logger.debug("rollout {}: released the slots of {} (it no longer holds them)", name, server_id)
        self.slots.add_ends(end_keys(self.slots, name, [m for m in members if m.failed]))

    def _export(self, name: str, evaluation: Evaluation) -> None:
        for status in _STATUSES:
            ROLLOUT_MEMBERS.labels(rollout=name, status=status).set(evaluation.counts.get(status, 0))
        waiting = evaluation.waiting_by_reason()
        for reason in WaitReason:
            ROLLOUT_WAITING.labels(rollout=name, reason=reason.value).set(waiting.get(reason.value, 0))

    def _write_if_unchanged(self, server: Server, data: dict[str, Any], seen: Any) -> bool:
        server_id = str(server.uuid)
        current = self.inventory.get_attribute(server_id, TASK_NAMESPACE).data
        if current != seen:
            return False
        self.inventory.replace_attribute(server_id, TASK_NAMESPACE, data)
        return True

    def _write_loop(self) -> None:
        while not self._stopping.is_set():
            self._reasons_wake.wait(1.0)
            self._reasons_wake.clear()
            self.flush_reasons()

    def flush_reasons(self) -> int:
        """Write the waiting reasons the ticks handed over (the newest per member) now; returns how many were
        written (a member whose attribute changed since its tick listed it is left to the next tick)."""
        written = 0
        while not self._stopping.is_set():
            with self._reasons_lock:
                if not self._reasons:
                    break
                server_id = next(iter(self._reasons))
                server, task, text, now = self._reasons.pop(server_id)
            if self._note(server, task, text, now):
                written += 1
        return written

    def _note(self, server: Server, task: InstallTask, text: str, now: datetime) -> bool:
        """Write ``waiting: text`` into a waiting member's messages unless it says that already (replacing an
        older waiting line when it is the newest message)."""
        line = _waiting_line(text)
        if task.messages and task.messages[-1].endswith(line):
            return False
        attribute = server.attribute(TASK_NAMESPACE)
        if attribute is None:
            return False
        changed = task.model_copy(deep=True)
        if changed.messages and _is_waiting_line(changed.messages[-1]):
            changed.messages = changed.messages[:-1]
        changed.add_message(line, now=now)
        try:
            return self._write_if_unchanged(server, changed.to_attribute(), attribute.data)
        except InventoryError as exc:
            logger.warning("rollout member {}: waiting reason not written: {}", server.uuid, exc)
            return False

    def _cancel(self, server: Server, task: InstallTask, record: RolloutRecord, now: datetime) -> bool:
        attribute = server.attribute(TASK_NAMESPACE)
        if attribute is None:
            return False
        cancelled = task.model_copy(deep=True)
        cancelled.transition(TaskStatus.CANCELLED, now=now)
        cancelled.add_message(
            f"cancelled: rollout {record.name} aborted by {record.updated_by or '?'} before it was admitted", now=now
        )
        return self._write_if_unchanged(server, cancelled.to_attribute(), attribute.data)

    def _close(self, stored: StoredRollout, now: datetime) -> None:
        record = stored.record
        state = "completed" if record.state is RolloutState.RUNNING else record.state.value
        try:
            self._store.save(
                stored,
                record.with_event(
                    f"closed by {self.worker_id}: every member ended ({state})",
                    by=record.updated_by,
                    now=now,
                    phase=RolloutPhase.CLOSED,
                    closed_at=now,
                ),
            )
        except RolloutConflictError as exc:  # an operator wrote meanwhile: the next tick looks again
            logger.info("rollout {}: not closed now: {}", record.name, exc)
            return
        logger.info("rollout {} closed: every member ended ({})", record.name, state)

    # -- the start gate and the end -----------------------------------------------------------------------

    def gate(self, server: Server, task: InstallTask) -> GateVerdict:
        """May the claimed member ``task`` of ``server`` start now? (module docstring). Never raises for the
        inventory or Redis: it answers ``retry`` then."""
        assert task.rollout is not None
        name = task.rollout.name
        if started(task):
            return GateVerdict(GateAction.GO, "an earlier attempt started it: it resumes")
        try:
            return self._gate(server, task, name)
        except (InventoryError, QueueError) as exc:
            return GateVerdict(GateAction.RETRY, f"cannot check rollout {name} now: {exc}")

    def _gate(self, server: Server, task: InstallTask, name: str) -> GateVerdict:
        try:
            stored = self._store.get(name)
        except RolloutSpecError as exc:
            return GateVerdict(GateAction.WAIT, f"rollout {name}'s record cannot be read: {exc}", WaitReason.PAUSED)
        except RolloutError as exc:
            return GateVerdict(GateAction.WAIT, str(exc), WaitReason.PAUSED)
        record = stored.record
        if record.state is RolloutState.ABORTED:
            return GateVerdict(GateAction.CANCEL, f"rollout {name} aborted by {record.updated_by or '?'}")
        if record.state is RolloutState.PAUSED:
            return GateVerdict(GateAction.WAIT, f"rollout paused by {record.updated_by or '?'}", WaitReason.PAUSED)
        policy = record.policy.compile()
        member = member_of(server, task, policy.groups(), self.settings.rollout)
        if not self.slots.is_built(name):
            members = [m for _, _, m in read_members(self._members(name), record, self.settings.rollout)]
            self._rebuild(name, policy, members)
        counts = self.slots.counts(name, record.generation, list(member.firmware))
        for key, (failures, ended) in counts.items():
            why = halt_reason(policy, failures, ended)
            if why is not None:
                names = self._names(self.slots.failed_servers(name, record.generation, key))
                return GateVerdict(
                    GateAction.WAIT, f"firmware {key.label} halted after {why}: {names}", WaitReason.BREAKER
                )
        fit = window_check(policy.windows_of(member.facility), self._now(), member.expected)
        if not fit.fits:
            return GateVerdict(GateAction.WAIT, fit.reason, WaitReason.WINDOW)
        slots = self.slots.slots_of(name, policy, member)
        for _ in range(2):
            result = self.slots.reserve(name, member.server_id, slots)
            if result.outcome in (Reservation.OK, Reservation.HELD):
                return GateVerdict(GateAction.GO)
            if result.outcome is Reservation.FULL:
                return GateVerdict(GateAction.WAIT, slot_label(slots, result), WaitReason.CAP)
            members = [m for _, _, m in read_members(self._members(name), record, self.settings.rollout)]
            self._rebuild(name, policy, members)
        return GateVerdict(GateAction.RETRY, f"rollout {name}: its Redis state could not be rebuilt")

    def _members(self, name: str) -> list[Server]:
        return list_member_servers(self.inventory, name, self.settings.inventory.facility)

    def _names(self, server_ids: Sequence[str], limit: int = 3) -> str:
        names = []
        for server_id in server_ids[:limit]:
            try:
                names.append(self.inventory.get_server(server_id).name or server_id)
            except (InventoryError, ValueError):
                names.append(server_id)
        more = len(server_ids) - len(names)
        return ", ".join(names) + (f" and {more} more" if more > 0 else "")

    def release(self, server_id: str, task: InstallTask) -> None:
        """Give back the slots of a member that went back to waiting (or was cancelled) at its start gate."""
        assert task.rollout is not None
        try:
            self.slots.release(task.rollout.name, server_id)
        except QueueError as exc:
            logger.warning(
                "rollout {}: slots of {} not released now (the next tick does): {}", task.rollout.name, server_id, exc
            )
        self.poke()

    def ended(self, server: Server, task: InstallTask) -> None:
        """A member's worker wrote its final status: record its end (and failure) at once, release its slots,
        tick soon. Never raises (the next tick repairs what could not be written)."""
        assert task.rollout is not None
        name, generation, server_id = task.rollout.name, task.rollout.generation, str(server.uuid)
        try:
            if task.status in (TaskStatus.SUCCESS, TaskStatus.FAILED):
                failed = failed_firmware(task, server)
                self.slots.record_end(name, generation, server_id, planned_firmware(task, server), failed)
                if failed:
                    labels = ", ".join(k.label for k in failed)
                    logger.info("rollout {}: member {} failed {}", name, server.name or server_id, labels)
            self.slots.release(name, server_id)
        except QueueError as exc:
            logger.warning("rollout {}: end of {} not recorded now (the next tick does): {}", name, server_id, exc)
        self.poke()
