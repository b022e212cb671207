"""The poller: filtered, paged inventory queries for open tasks, then admission of what they found.

A poll lists the servers whose task attribute is open — one query per namespace and open status
(``attr=<namespace>~status~eq~<s>`` for ``""``, ``requested``, ``queued``, ``active``; optionally limited to
``inventory.facility``) — so its cost follows the number of open tasks, not the size of the fleet, nor the
ended tasks whose attributes stay on their servers. Every ``service.full_poll_every``-th poll (and the first)
lists every flagged server instead (``attr=<namespace>``), to find attributes the status queries cannot (no
``status`` key, or one that is not a string) and refresh the task counts of every status. The listing is read page
by page, and an ended task's server is counted and dropped at once: a poll holds only the open tasks.

Two parts of a poll give the same result whichever replica does them, and cost in proportion to the fleet: the
admitted tasks (``queued``, ``active``: listed and reconciled with the queue every poll) and the full listing. One
replica at a time does each for all (:mod:`flasher.queue.pollshare`: a turn in Redis, kept by its holder, taken
over by another replica two periods after the holder last renewed it, at once when it stops), and publishes what
it counted; the other replicas list only new requests (``""``, ``requested``) and admit them, and report the
published counts. Without Redis every replica does both parts itself.

Each poll first checks the replacing requests admission acknowledged while the task they replace still ran
(:meth:`~flasher.service.admission.Admission.keep_successors`: one read per such request, usually none). Work
then goes in two phases: first the tasks already admitted (queued, active, cancels), quick and never held up;
then new requests, highest priority first, oldest first, ``service.admission_concurrency`` at once (each waits
on a few inventory round trips), for at most ``service.admission_budget`` seconds (the rest wait for the next
poll, so a burst of thousands of requests cannot hold up cancels and reclaims). Then the
queue's expired leases are reaped and tasks it declared dead are written ``failed``.

Replicas may all poll: admission is idempotent, so the result is the same (the shared parts excepted, above). Within
one replica, APScheduler runs the poll on an interval with jitter, coalesced, never two at once. :meth:`Poller.stop`
ends a running poll at the next attribute (shutdown does not wait for a poll's admission budget).

The ``flasher_tasks`` gauge is set from what a poll listed; a poll whose listing failed leaves it as it was (it
knows nothing about the tasks), rather than report the unlisted tasks as gone.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from flasher.config import Settings
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError
from flasher.inventory.models import Server
from flasher.metrics import POLL_DURATION, QUEUE_DEPTH, TASKS
from flasher.queue import QueueError, TaskQueue
from flasher.queue.pollshare import ADMITTED, FULL, TURNS
from flasher.service.admission import Action, Admission
from flasher.task.model import TaskKind, is_terminal

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The statuses of a task that is not over (an ended task's attribute stays on its server, unpolled).
OPEN_STATUSES: tuple[str, ...] = ("", "requested", "queued", "active")
#: The statuses of a request not admitted yet.
NEW_STATUSES: tuple[str, ...] = ("", "requested")
_NEW = frozenset(NEW_STATUSES)


@dataclass(frozen=True)
class _Item:
    """One task attribute to reconcile, with what orders it (priority, request time)."""

    server: Server
    kind: TaskKind
    rank: int
    created: datetime
    new: bool


@dataclass
class PollReport:
    """What one poll saw and did: attributes per ``(kind, status)``, actions taken, and errors (one line each)."""

    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    listing_failed: bool = False
    duration: float = 0.0
    full: bool = False
    #: This poll listed and reconciled the admitted (``queued``, ``active``) tasks: it held that turn.
    admitted: bool = True
    deferred: int = 0


class Poller:
    """Polls the inventory and admits tasks for one replica. :meth:`poll_once` is the unit of work;
    :meth:`start`/:meth:`stop` run it on the configured interval in a background thread."""

    def __init__(
        self,
        inventory: InventoryClient,
        queue: TaskQueue,
        admission: Admission,
        settings: Settings,
        *,
        worker_id: str | None = None,
    ) -> None:
        self._inventory = inventory
        self._queue = queue
        self._admission = admission
        self._settings = settings
        #: This replica's id in the shared full-poll turn (default ``service.worker_id``).
        self._owner = worker_id or settings.service.worker_id
        self._lock = threading.Lock()
        self._report_lock = threading.Lock()  # admission threads record their outcomes in one report
        self._scheduler: BackgroundScheduler | None = None
        self.last_report: PollReport | None = None
        self.last_success: float | None = None
        self._polls = 0
        self._stopping = threading.Event()
        self._stand_aside = False  # set after a failed listing of a turn holder: the next poll takes no turn
        self._series: dict[tuple[str, str], int] = {}  # what ``flasher_tasks`` shows: (kind, status label) -> count

    def poll_once(self) -> PollReport:
        """List flagged servers, reconcile every task attribute, reap the queue. Never raises: failures are
        logged and reported in :attr:`PollReport.errors`, and the next poll tries again."""
        if not self._lock.acquire(blocking=False):
            logger.debug("poll skipped: the previous one is still running")
            return PollReport()
        started = time.monotonic()
        report = PollReport()
        holds_admitted = False
        try:
            if self._stand_aside:  # the last listing failed: let a replica whose listing works take the turns
                self._stand_aside = False
                report.full = report.admitted = False
            else:
                report.full = self._full_turn()
                holds_admitted = self._turn(ADMITTED, self._admitted_period())
                report.admitted = holds_admitted or report.full
            self._polls += 1
            work = self._list(report)
            self._keep_successors(report)
            for item in work:
                if not item.new and not self._stopping.is_set():
                    self._reconcile(item.server, item.kind, report)
            self._admit_new([item for item in work if item.new], report)
            if not self._stopping.is_set():
                self._reap(report)
            self._export(report)
            if report.listing_failed and (holds_admitted or report.full):
                # A holder that cannot list would leave the queued and active tasks to nobody: hand the turns on.
                self._give_turns()
                self._stand_aside = True
            elif holds_admitted:  # renewed at the end too: a long poll keeps its turn
                self._turn(ADMITTED, self._admitted_period())
        finally:
            report.duration = time.monotonic() - started
            POLL_DURATION.observe(report.duration)
            self.last_report = report
            if not report.errors:
                self.last_success = time.time()
            self._lock.release()
        logger.debug(
            "poll: {} attributes, actions {}, {} errors, {:.3f} s",
            sum(report.seen.values()),
            dict(report.actions),
            len(report.errors),
            report.duration,
        )
        return report

    def _full_turn(self) -> bool:
        """Whether this poll lists every flagged server: every ``full_poll_every``-th poll of this replica (the first
        included), when the shared turn is free or this replica's; without Redis, every such poll."""
        service = self._settings.service
        if self._polls % service.full_poll_every:
            return False
        return self._turn(FULL, service.full_poll_every * service.poll_interval)

    def _admitted_period(self) -> float:
        """Seconds between the admitted-turn holder's renewals: a poll interval (the turn lasts two, so a dead
        holder's reclaims wait at most that; a poll longer than that may see the turn move, which costs only
        work done twice)."""
        return self._settings.service.poll_interval

    def _give_turns(self) -> None:
        """Give up the turns this replica holds, without waiting out Redis retries: a turn not given up lapses two
        periods after its last renewal."""
        for turn in TURNS:
            try:
                self._queue.polls.give(turn, self._owner, retry_deadline=0)
            except QueueError as exc:
                logger.debug("poll: turns not given up ({}): they lapse by themselves", exc)
                return

    def _turn(self, turn: str, period: float) -> bool:
        """Take (or renew) ``turn`` for this replica; True when it holds it, or when Redis does not answer (then
        every replica does that part itself)."""
        try:
            return self._queue.polls.take(turn, self._owner, period=period)
        except QueueError as exc:
            logger.warning("poll: cannot share the {} turn ({}): this replica does it", turn, exc)
            return True

    def _list(self, report: PollReport) -> list[_Item]:
        facility = self._settings.inventory.facility
        found: dict[tuple[str, TaskKind], _Item] = {}
        ended: set[tuple[str, TaskKind]] = set()
        for kind in TaskKind:
            if report.full:
                queries = [kind.namespace]
            else:
                statuses = OPEN_STATUSES if report.admitted else NEW_STATUSES
                queries = [f"{kind.namespace}~status~eq~{status}" for status in statuses]
            for query in queries:
                try:  # page by page: an ended task is counted, and its server dropped, as its page arrives
                    for server in self._inventory.iter_servers(attr=[query], facility=facility):
                        self._take(server, kind, found, ended, report)
                except InventoryError as exc:
                    report.listing_failed = True
                    report.errors.append(f"listing {query}: {exc}")
                    logger.warning("poll: cannot list servers with {}: {}", query, exc)
        # Highest priority first, then the oldest request: the order admissions start in within a poll.
        return sorted(found.values(), key=lambda item: (-item.rank, item.created, item.kind.value))

    @staticmethod
    def _take(
        server: Server,
        kind: TaskKind,
        found: dict[tuple[str, TaskKind], _Item],
        ended: set[tuple[str, TaskKind]],
        report: PollReport,
    ) -> None:
        """Count one listed server's ``kind`` attribute; keep it in ``found`` when its task is open (or its status
        is not a string: admission fails it), else only its key in ``ended`` (admission has nothing to do there:
        an ended task stays as it is)."""
        attribute = server.attribute(kind.namespace)
        key = (str(server.uuid), kind)
        if attribute is None or key in found or key in ended:
            return
        data = attribute.data if isinstance(attribute.data, dict) else {}
        status = data.get("status")
        report.seen[(kind.value, status if isinstance(status, str) else "invalid")] += 1
        if isinstance(status, str) and is_terminal(status):
            ended.add(key)
            return
        priority = data.get("priority")
        rank = priority if isinstance(priority, int) and not isinstance(priority, bool) else 0
        new = not isinstance(status, str) or status in _NEW
        found[key] = _Item(server, kind, rank, attribute.created_at or _EPOCH, new)

    def _admit_new(self, new: list[_Item], report: PollReport) -> None:
        """Admit new requests in order, ``service.admission_concurrency`` at once, until ``admission_budget``
        seconds have passed (at least one per poll) or the poller stops; the rest are left for the next poll
        (:attr:`PollReport.deferred`). Admission is idempotent and stateless per request, and two requests of a
        poll are for two servers (or two kinds), so admitting them side by side is what two replicas do."""
        service = self._settings.service
        budget_end = time.monotonic() + service.admission_budget
        limit = service.admission_concurrency
        running: set[Future[None]] = set()
        with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="admission") as pool:
            for index, item in enumerate(new):
                while len(running) >= limit:
                    _, running = wait(running, return_when=FIRST_COMPLETED)
                if self._stopping.is_set() or (index > 0 and time.monotonic() > budget_end):
                    report.deferred = len(new) - index
                    logger.info("poll: {} new requests left for the next poll", report.deferred)
                    break
                running.add(pool.submit(self._reconcile, item.server, item.kind, report))

    def _reconcile(self, server: Server, kind: TaskKind, report: PollReport) -> None:
        """Reconcile one attribute and record the outcome in ``report`` (thread-safe: admission runs several)."""
        try:
            result = self._admission.reconcile(server, kind)
        except (InventoryError, QueueError) as exc:
            self._record(report, error=f"server {server.uuid} {kind.value}: {exc}")
            logger.warning("poll: server {} {}: {}", server.uuid, kind.value, exc)
            return
        except Exception as exc:  # a bug must not stop the other servers' admission
            self._record(report, error=f"server {server.uuid} {kind.value}: internal error: {exc!r}")
            logger.exception("poll: server {} {}: internal error", server.uuid, kind.value)
            return
        if result.action is not Action.NONE:
            self._record(report, action=result.action.value)

    def _record(self, report: PollReport, *, action: str | None = None, error: str | None = None) -> None:
        with self._report_lock:
            if action is not None:
                report.actions[action] += 1
            if error is not None:
                report.errors.append(error)

    def _keep_successors(self, report: PollReport) -> None:
        """Write back acknowledged replacing requests that a late status write landed over (admission)."""
        try:
            results = self._admission.keep_successors()
        except (InventoryError, QueueError) as exc:
            report.errors.append(f"replacing requests: {exc}")
            logger.warning("poll: cannot check the replacing requests: {}", exc)
            return
        for result in results:
            if result.action is not Action.NONE:
                report.actions[f"successor-{result.action.value}"] += 1

    def _reap(self, report: PollReport) -> None:
        try:
            self._queue.reap()
            dead = self._queue.dead()
        except QueueError as exc:
            report.errors.append(f"queue: {exc}")
            logger.warning("poll: cannot reap the queue: {}", exc)
            return
        for entry in dead:
            try:
                result = self._admission.bury(entry)
            except (InventoryError, QueueError) as exc:
                report.errors.append(f"dead task {entry.task_id}: {exc}")
                continue
            report.actions[f"dead-{result.action.value}"] += 1

    def _export(self, report: PollReport) -> None:
        self._export_tasks(report, self._shared_counts(report))
        try:
            depth = self._queue.depth()
        except QueueError:
            return
        for state, count in depth.items():
            QUEUE_DEPTH.labels(state=state).set(count)

    def _shared_counts(self, report: PollReport) -> dict[str, dict[tuple[str, str], int] | None]:
        """Publish what this poll counted for the parts it did for all replicas; read what the others published
        for the parts it did not (per turn; ``None``: none, or Redis did not answer)."""
        service = self._settings.service
        periods = {FULL: service.full_poll_every * service.poll_interval, ADMITTED: self._admitted_period()}
        did = {FULL: report.full, ADMITTED: report.admitted}
        shared: dict[str, dict[tuple[str, str], int] | None] = {}
        for turn, period in periods.items():
            try:
                if did[turn]:
                    if not report.listing_failed:
                        self._queue.polls.put_counts(turn, self._owner, report.seen, period=period)
                    shared[turn] = None
                else:
                    shared[turn] = self._queue.polls.counts(turn)
            except QueueError as exc:
                logger.debug("poll: task counts of the {} turn not shared: {}", turn, exc)
                shared[turn] = None
        return shared

    def _export_tasks(
        self, report: PollReport, shared: dict[str, dict[tuple[str, str], int] | None] | None = None
    ) -> None:
        """Set ``flasher_tasks`` to :func:`task_series` of this poll (unchanged when its listing failed). Series
        are set in place and the vanished ones removed, so a scrape meanwhile never sees the gauge empty; a full
        poll clears it first (it knows every series)."""
        series = task_series(self._series, report, shared or {})
        if series is None:
            return
        if report.full:
            TASKS.clear()
        else:
            for kind, status in self._series.keys() - series.keys():
                TASKS.remove(kind, status)
        self._series = series
        for (kind, status), count in series.items():
            TASKS.labels(kind=kind, status=status).set(count)

    # -- scheduling ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Poll now, then every ``service.poll_interval`` seconds (± ``poll_jitter``), in a background thread."""
        self._stopping.clear()
        service = self._settings.service
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self.poll_once,
            IntervalTrigger(seconds=service.poll_interval, jitter=service.poll_jitter or None),
            id="poll",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            next_run_time=datetime.now(UTC),
        )
        scheduler.start()
        self._scheduler = scheduler

    @property
    def running(self) -> bool:
        """True while polls are scheduled (between :meth:`start` and :meth:`stop`)."""
        return self._scheduler is not None and bool(self._scheduler.running)

    def stop(self) -> None:
        """Stop scheduling polls; a running poll ends at the next attribute, and is waited for; the turns this
        replica held go back to the other replicas."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        self._give_turns()  # hand the turns this replica holds on rather than let them lapse


def _label(status: str) -> str:
    """The ``status`` label of ``flasher_tasks`` for a task status (``new`` for the empty status)."""
    return status or "new"


def task_series(
    previous: dict[tuple[str, str], int],
    report: PollReport,
    shared: dict[str, dict[tuple[str, str], int] | None],
) -> dict[tuple[str, str], int] | None:
    """The ``flasher_tasks`` series after a poll: ``{(kind, status label): count}``, or ``None`` to keep
    ``previous`` (the poll's listing failed: its counts are partial).

    Each status takes its count from the freshest complete listing that covers it. A full poll by this replica
    covers every status: its counts replace every series (a status it did not see has none). Otherwise this poll
    covers the new requests (``new``, ``requested``), and ``queued`` and ``active`` too when it held the admitted
    turn: each of those is 0 for every kind unless listed. The counts the turn holders published cover the rest:
    ``shared[FULL]`` replaces the ended statuses' series; ``shared[ADMITTED]`` sets ``queued`` and ``active``
    for every kind (0 where it has no count). A status nothing covered keeps its ``previous`` count.
    """
    if report.listing_failed:
        return None
    if report.full:
        series: dict[tuple[str, str], int] = {}
    else:
        series = dict(previous)
        full, admitted = shared.get(FULL), shared.get(ADMITTED)
        if full is not None:
            open_labels = {_label(s) for s in OPEN_STATUSES}
            series = {key: count for key, count in series.items() if key[1] in open_labels}
            for (kind, status), count in full.items():
                if status not in OPEN_STATUSES:
                    series[(kind, _label(status))] = count
        covered = list(OPEN_STATUSES if report.admitted else NEW_STATUSES)
        if admitted is not None and not report.admitted:
            held = [s for s in OPEN_STATUSES if s not in _NEW]
            for task_kind in TaskKind:
                for status in held:
                    series[(task_kind.value, status)] = 0
            for (kind, status), count in admitted.items():
                if status in held:
                    series[(kind, status)] = count
        for task_kind in TaskKind:
            for status in covered:
                series[(task_kind.value, _label(status))] = 0
    for (kind, status), count in report.seen.items():
        series[(kind, _label(status))] = count
    return series
