"""The queue under load: many processes claiming and acking thousands of tasks, crashed workers, and a Redis
restart in the middle of the work."""

from __future__ import annotations

import itertools
import multiprocessing
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from multiprocessing.pool import Pool

import pytest

from flasher.queue import LeaseLostError, QueueError
from flasher_sandbox.servers import RedisServer
from tests.support.queue_helpers import make_queue, wait_for
from tests.support.queue_workers import WorkerReport, run_worker, task_id

pytestmark = pytest.mark.integration

PROCESSES = 8


@pytest.fixture(scope="module")
def pool() -> Iterator[Pool]:
    """Worker processes (spawned: fresh interpreters, like separate replicas), shared by this module's tests."""
    with multiprocessing.get_context("spawn").Pool(PROCESSES) as workers:
        yield workers


def _run_processes(
    pool: Pool, url: str, *, servers: int, rounds: int, lease_seconds: float, crash_rate: float
) -> list[WorkerReport]:
    queue = make_queue(url)
    rng = random.Random(4)
    for n in range(servers):
        server = f"srv-{n:04d}"
        kind = rng.choice(["install", "server_control"])
        queue.enqueue(server, kind=kind, task_id=task_id(server, 0), priority=rng.randint(0, 3))
    deadline = time.time() + 60
    args = [(url, f"w{n}", rounds, lease_seconds, crash_rate, deadline) for n in range(PROCESSES)]
    reports = pool.starmap(run_worker, args, chunksize=1)
    assert [r.error for r in reports if r.error] == []
    return reports


def _overlaps(reports: list[WorkerReport]) -> list[str]:
    """Servers held by two workers at once: holdings of one server, sorted by start, must not overlap."""
    by_server: dict[str, list[tuple[float, float]]] = {}
    for report in reports:
        for server, start, end in report.holdings:
            by_server.setdefault(server, []).append((start, end))
    overlaps = []
    for server, spans in by_server.items():
        spans.sort()
        overlaps += [server for (_, end), (start, _) in itertools.pairwise(spans) if start < end]
    return overlaps


def _expected(servers: int, rounds: int) -> Counter[str]:
    return Counter(task_id(f"srv-{n:04d}", r) for n in range(servers) for r in range(rounds))


def test_many_processes_ack_every_task_exactly_once_and_never_share_a_server(pool: Pool, redis_url: str) -> None:
    servers, rounds = 375, 8  # 3,000 tasks, each server's next task enqueued when the previous is acked
    reports = _run_processes(pool, redis_url, servers=servers, rounds=rounds, lease_seconds=30.0, crash_rate=0.0)
    acked = Counter(t for r in reports for t in r.acked)
    assert acked == _expected(servers, rounds)
    assert sum(len(r.holdings) for r in reports) == servers * rounds
    assert _overlaps(reports) == []
    assert sum(r.lost for r in reports) == 0
    assert sum(1 for r in reports if r.acked) > 1  # the work was shared
    queue = make_queue(redis_url)
    assert queue.depth() == {"queued": 0, "delayed": 0, "inflight": 0, "dead": 0}


def test_crashed_workers_tasks_come_back_and_their_late_acks_are_refused(pool: Pool, redis_url: str) -> None:
    servers, rounds = 100, 4
    reports = _run_processes(pool, redis_url, servers=servers, rounds=rounds, lease_seconds=0.5, crash_rate=0.05)
    acked = Counter(t for r in reports for t in r.acked)
    assert acked == _expected(servers, rounds)
    abandoned = sum(r.abandoned for r in reports)
    assert abandoned > 0
    assert _overlaps(reports) == []
    assert [t for r in reports for t in r.zombie_acks_accepted] == []
    assert sum(r.zombie_acks_refused for r in reports) == abandoned
    queue = make_queue(redis_url)
    assert queue.depth() == {"queued": 0, "delayed": 0, "inflight": 0, "dead": 0}


class _Holdings:
    """In-process witness: which server each worker thread believes it holds (after a passing lease check)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holding: set[str] = set()
        self.overlaps: list[str] = []

    def enter(self, server: str) -> None:
        with self.lock:
            if server in self.holding:
                self.overlaps.append(server)
            self.holding.add(server)

    def leave(self, server: str) -> None:
        with self.lock:
            self.holding.discard(server)


#: How long a task in the Redis-restart test holds its server (its "write to the BMC"), seconds.
WRITE_SECONDS = 0.02


def test_redis_restart_mid_run_clients_reconnect_and_known_tells_what_was_lost(
    fresh_redis: RedisServer,
) -> None:
    servers = [f"srv-{n:03d}" for n in range(300)]
    done: Counter[str] = Counter()  # the inventory: tasks that reached success
    done_lock = threading.Lock()
    holdings = _Holdings()
    errors: list[str] = []
    lost = Counter[str]()
    stop = threading.Event()

    def worker(name: str) -> None:
        queue = make_queue(fresh_redis.url, lease_seconds=5.0, retry_deadline=20.0)
        while not stop.is_set():
            try:
                lease = queue.claim(name)
                if lease is None:
                    time.sleep(0.005)
                    continue
                try:
                    queue.check(lease)
                except LeaseLostError as exc:
                    lost[exc.reason.split(" (")[0]] += 1
                    continue
                holdings.enter(lease.server_id)
                time.sleep(WRITE_SECONDS)  # a write to the BMC
                holdings.leave(lease.server_id)
                try:
                    # As the service does: the inventory says success when Redis lets the task go, so the
                    # reconciliation below sees both or neither (between an ack and its inventory write, a
                    # server is neither known to Redis nor done, and would be queued again).
                    with done_lock:
                        queue.ack(lease)
                        done[lease.server_id] += 1
                except LeaseLostError as exc:
                    lost[exc.reason.split(" (")[0]] += 1
            except QueueError as exc:
                errors.append(f"{name}: {exc}")
                return

    # Each task holds its server WRITE_SECONDS, so the two thirds left when the restart begins take about a second
    # (200 x 20 ms / 4 workers): on a quiet machine, with 1 ms, they were all done before Redis went down (CI).
    service = make_queue(fresh_redis.url, retry_deadline=20.0)
    for server in servers:
        service.enqueue(server, kind="install", task_id=f"task-{server}", priority=1)
    threads = [threading.Thread(target=worker, args=(f"w{n}",), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: len(done) >= len(servers) // 3, timeout=30)
        fresh_redis.restart()  # no persistence: every queued and in-flight task is gone
        with done_lock:
            pending = [s for s in servers if s not in done]
        assert pending
        assert [s for s in pending if service.known(s)] == []  # what Redis no longer has
        # The service's reconciliation: re-enqueue from the inventory what Redis does not know.
        deadline = time.monotonic() + 45
        while len(done) < len(servers) and time.monotonic() < deadline:
            with done_lock:
                missing = [s for s in servers if s not in done and not service.known(s)]
            for server in missing:
                service.enqueue(server, kind="install", task_id=f"task-{server}", priority=1)
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert set(done) == set(servers)
    assert [s for s, n in done.items() if n > 1] == []
    assert holdings.overlaps == []
    assert service.depth() == {"queued": 0, "delayed": 0, "inflight": 0, "dead": 0}
    assert set(lost) <= {"Redis lost its data since the claim", "the task is no longer in Redis"}
