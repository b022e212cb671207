"""Helpers of the queue's integration tests: a queue on the test's Redis with short leases."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from flasher.config import QueueSettings
from flasher.queue import TaskQueue

#: Short leases keep the tests quick; long enough that a loaded machine does not expire them by accident.
SHORT_LEASE = 0.4


def make_queue(url: str, *, retry_deadline: float = 5.0, **settings: float) -> TaskQueue:
    """A queue on ``url``; ``settings`` override :class:`QueueSettings` (default: 60 s leases, no retry delay)."""
    values: dict[str, float] = {"lease_seconds": 60.0, "max_attempts": 3, "retry_base_delay": 0.0}
    values.update(settings)
    return TaskQueue(
        redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2),
        settings=QueueSettings(**values),
        retry_deadline=retry_deadline,
    )


def wait_for(check: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> None:
    """Poll ``check`` until it is true; fail after ``timeout`` seconds (a bound, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def redis_time(queue: TaskQueue) -> float:
    """Redis' clock, seconds."""
    sec, usec = queue.client.time()
    return float(sec) + usec / 1e6
