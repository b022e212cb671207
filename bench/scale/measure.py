"""The figures of one scale point, read from the running stack: the inventory's request counts, admission from
the attribute journal, the tasks' run times, and the in-process poll.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import requests

from bench.support import counted_poller, cpu_seconds, spread
from flasher.config import Settings
from flasher.constants import TASK_NAMESPACE
from flasher.queue import TaskQueue
from flasher.queue.pollshare import TURNS
from flasher_sandbox.up.stack import Stack

#: The message admission writes with ``queued`` (``queued by <worker> (priority <p>)``).
_ADMITTED = " queued by "


def stamp(value: Any) -> float | None:
    """An RFC 3339 time as epoch seconds (``None`` when it is not one)."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def claimed_at(data: dict[str, Any]) -> float | None:
    """When the last attempt's worker claimed the task (its ``claimed by`` message), if still in the messages."""
    for message in reversed(data.get("messages") or []):
        if " claimed by " in str(message):
            return stamp(str(message).split(" ", 1)[0])
    return None


def admissions(stack: Stack, uuids: set[str], after: int) -> dict[str, Any]:
    """What the journal says of admission since journal entry ``after``, for the servers ``uuids``: each
    server's distinct admission writes (``queued`` with a ``queued by`` message: more than one is a duplicate),
    and when the last server's first one landed (epoch seconds)."""
    lines: dict[str, set[str]] = {}
    first: dict[str, float] = {}
    writes = 0
    for entry in stack.attribute_journal(namespace=TASK_NAMESPACE, after=after):
        server, data = entry["server"], entry.get("data") or {}
        if server not in uuids or not isinstance(data, dict):
            continue
        writes += 1
        if data.get("status") != "queued":
            continue
        admitted = {str(m) for m in data.get("messages") or [] if _ADMITTED in str(m)}
        if admitted - lines.get(server, set()):
            lines.setdefault(server, set()).update(admitted)
            first.setdefault(server, entry["at"] / 1e6)
    duplicates = sum(len(found) - 1 for found in lines.values() if len(found) > 1)
    return {
        "admitted": len(lines),
        "duplicates": duplicates,
        "last_admitted_at": max(first.values()) if first else None,
        "journal_writes": writes,
    }


def run_times(tasks: list[dict[str, Any]]) -> dict[str, float]:
    """Spread of claim-to-``completedAt`` seconds of the ended tasks (whole seconds: the attribute's times)."""
    runs = []
    for data in tasks:
        claimed, ended = claimed_at(data), stamp(data.get("completedAt"))
        if claimed is not None and ended is not None:
            runs.append(ended - claimed)
    return spread(runs) if runs else {}


def requeue(stack: Stack, attributes: dict[tuple[str, str], dict[str, Any]], uuids: list[str], threads: int) -> int:
    """Write every ended task of ``uuids`` back as ``queued`` (same task, plan and id, as admission left it): the
    open tasks a later poll finds in the middle of a rollout. Returns how many were written."""
    ended = []
    for uuid in uuids:
        data = dict(attributes.get((uuid, TASK_NAMESPACE)) or {})
        if data.get("status") in ("success", "failed", "cancelled"):
            for key in ("completedAt", "error"):
                data.pop(key, None)
            ended.append((uuid, data | {"status": "queued", "attempts": 0}))
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda item: stack.flag(item[0], TASK_NAMESPACE, item[1]), ended))
    return len(ended)


def polls(stack: Stack, count: int, full_every: int) -> list[dict[str, Any]]:
    """``count`` polls of a :class:`Poller` in this process (the service's, with admission and the queue, no
    workers) against the stack's inventory and Redis, ``service.full_poll_every`` = ``full_every`` (poll 0 is
    full). Each poll's wall time, requests (a response hook on the client's session), this process's CPU and the
    inventory's."""
    assert stack.redis_url is not None and stack.inventory.process is not None
    settings = Settings(
        inventory={"url": stack.inventory_url, "retry_deadline": 30},
        redis={"url": stack.redis_url},
        service={"worker_id": "bench-scale", "full_poll_every": full_every, "admission_budget": 600},
    )
    session = requests.Session()
    poller, counter = counted_poller(settings, session, "bench-scale")
    queue = TaskQueue.from_settings(settings)
    queue.client.delete(*(queue.keys.poll_turn(turn) for turn in TURNS))  # the replicas have stopped: free the turns
    rows = []
    for _ in range(count):
        cpu, inventory_cpu = time.process_time(), cpu_seconds(stack.inventory.process.pid)
        report = poller.poll_once()
        counts = counter.take()
        rows.append(
            {
                "full": report.full,
                "seconds": report.duration,
                "requests": sum(counts.values()),
                "by_path": dict(counts),
                "seen": sum(report.seen.values()),
                "actions": dict(report.actions),
                "errors": report.errors[:5],
                "flasher_cpu_s": time.process_time() - cpu,
                "inventory_cpu_s": cpu_seconds(stack.inventory.process.pid) - inventory_cpu,
            }
        )
    session.close()
    return rows


def request_delta(before: dict[str, int], after: dict[str, int]) -> Counter[str]:
    """The inventory's requests between two :meth:`InventoryServer.request_counts` readings, by route."""
    return Counter({key: after[key] - before.get(key, 0) for key in after if after[key] > before.get(key, 0)})
