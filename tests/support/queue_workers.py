"""Worker processes for the queue's concurrency tests (importable, so ``multiprocessing`` can spawn them).

A worker claims, checks its lease (as before a BMC write), holds the server, acks, and enqueues the server's
next task; odd-numbered workers ack and claim their next task in one step (``ack_and_claim``), as the service
does. It records each holding as ``(server, start, end)`` on ``time.monotonic()``, which is one clock for every
process of the machine (Linux ``CLOCK_MONOTONIC``): two holdings of one server that overlap mean two holders at
once.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from flasher.queue import Lease, LeaseLostError, TaskQueue
from tests.support.queue_helpers import make_queue


@dataclass
class WorkerReport:
    """What one worker process saw."""

    acked: list[str] = field(default_factory=list)
    holdings: list[tuple[str, float, float]] = field(default_factory=list)
    lost: int = 0
    abandoned: int = 0
    zombie_acks_refused: int = 0
    zombie_acks_accepted: list[str] = field(default_factory=list)
    error: str | None = None


def task_id(server: str, round_: int) -> str:
    return f"{server}/r{round_}"


def run_worker(
    url: str, name: str, rounds: int, lease_seconds: float, crash_rate: float, deadline: float
) -> WorkerReport:
    """Work until the queue is empty (or ``deadline``, a Unix time, passes); each server has ``rounds`` tasks."""
    report = WorkerReport()
    try:
        _work(url, name, rounds, lease_seconds, crash_rate, deadline, report)
    except Exception as exc:  # reported to the test, which fails with it
        report.error = f"{type(exc).__name__}: {exc}"
    return report


def _work(
    url: str,
    name: str,
    rounds: int,
    lease_seconds: float,
    crash_rate: float,
    deadline: float,
    report: WorkerReport,
) -> None:
    queue = make_queue(url, lease_seconds=lease_seconds, max_attempts=1000)
    rng = random.Random(name)
    fold = int(name.lstrip("w") or 0) % 2 == 1  # odd workers ack and claim the next in one step, as the service's
    zombies: list[tuple[float, Lease]] = []
    lease: Lease | None = None  # claimed with the last ack, to work on next
    while time.time() < deadline:
        _try_zombie_acks(queue, zombies, lease_seconds, report)
        if lease is None:
            lease = queue.claim(name)
        if lease is None:
            # Done when nothing is left anywhere (a task being acked right now is followed by its holder).
            if not zombies and not any(queue.depth().values()):
                return
            time.sleep(0.005)
            continue
        held, lease = lease, None
        try:
            queue.check(held)
            start = time.monotonic()
            if rng.random() < 0.3:
                time.sleep(0.001)  # a write to the BMC
            report.holdings.append((held.server_id, start, time.monotonic()))
            if rng.random() < crash_rate:  # the worker dies here: no ack, no release
                report.abandoned += 1
                zombies.append((time.monotonic(), held))
                continue
            if fold:
                step = queue.ack_and_claim(held, name)
                lease = step.lease
                if step.lost is not None:
                    raise step.lost
            else:
                queue.ack(held)
        except LeaseLostError:
            report.lost += 1
            continue
        report.acked.append(held.task_id)
        server, round_ = held.task_id.rsplit("/r", 1)
        if int(round_) + 1 < rounds:
            queue.enqueue(server, kind=held.kind, task_id=task_id(server, int(round_) + 1), priority=rng.randint(0, 3))


def _try_zombie_acks(
    queue: TaskQueue, zombies: list[tuple[float, Lease]], lease_seconds: float, report: WorkerReport
) -> None:
    """A worker that stalled past its lease wakes up and tries to ack: it must be refused."""
    while zombies and time.monotonic() - zombies[0][0] > 2 * lease_seconds:
        _, lease = zombies.pop(0)
        try:
            queue.ack(lease)
        except LeaseLostError:
            report.zombie_acks_refused += 1
        else:
            report.zombie_acks_accepted.append(lease.task_id)
