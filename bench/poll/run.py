"""Poll cost benchmark: flasher's whole poll (``Poller.poll_once``) against a large inventory with few flagged
servers.

    .venv/bin/python -m bench.poll.run --servers 10000 1000 --flagged 100 --finished 0 1000

For each fleet size and each ``--finished`` count: a sandbox inventory seeded with ``load_seed`` (the servers of
:func:`flasher_sandbox.up.scenario.build`, each with its 9 components, BMC address and credentials, vendor attributes;
both vendors' firmware and sets) in which ``--flagged`` servers carry a new install request (the demo's mix of
named set, explicit firmware and resolved set) and ``--finished`` others an ended task (``success``, with a
plan, ten messages and timestamps, as flasher leaves it: the attribute stays after a task ends), and a fresh
``redis-server``. In this process, a :class:`~flasher.service.poller.Poller` (with the service's
:class:`~flasher.service.admission.Admission` and :class:`~flasher.queue.TaskQueue`, no workers) polls
``--polls`` times. For each poll: its time (``PollReport.duration``), the HTTP requests it made to the inventory
(counted by a response hook on the client's ``requests`` session, by method and path), this process's CPU (the
poller's) and the inventory process's CPU. The first poll admits the flagged tasks (plans them, writes
``queued``, enqueues); the later ones find them queued and only re-enqueue (idempotent, Redis only).

If the poll's cost followed the fleet, the later polls' time and requests would grow with ``--servers``; they
should follow the servers that carry a task attribute. Prints a Markdown table (``--json``: every poll) and
removes every temporary file.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import requests
from loguru import logger

from bench.support import LoadSampler, counted_poller, cpu_seconds, workdir
from flasher.config import Settings
from flasher.constants import TASK_NAMESPACE
from flasher_sandbox.inventory.seed import load_seed
from flasher_sandbox.servers import InventoryServer, RedisServer
from flasher_sandbox.up.scenario import build


def finished_attribute(request: dict[str, Any], index: int) -> dict[str, Any]:
    """An ended install task as flasher leaves it (about 1.3 KiB): the request, plan, ``success``, ten messages."""
    stamp = "2026-11-20T10:00:00Z"
    messages = [f"{stamp} [bios] installing 2.12.2: Running {10 * n}% (step {n} of the BMC task)" for n in range(9)]
    return {
        **request,
        "status": "success",
        "taskID": f"t-{index:024x}",
        "worker": "flasher-0",
        "attempts": 1,
        "mode": "PredefinedFirmware",
        "Firmware": {"bios": {"version": "2.12.2", "status": "installed", "installedVersion": "2.12.2"}},
        "createdAt": stamp,
        "updatedAt": stamp,
        "completedAt": stamp,
        "messages": [*messages, f"{stamp} success: 1 installed, 0 skipped"],
    }


def fleet_seed(servers: int, flagged: int, finished: int) -> dict[str, Any]:
    """The inventory seed: ``servers`` servers, ``flagged`` of them (evenly spread) with a new request,
    ``finished`` others with an ended task."""
    if flagged + finished > servers:
        raise ValueError(f"--flagged {flagged} + --finished {finished} is more than --servers {servers}")
    scenario = build(servers, special=False)
    seed = scenario.seed(bmc_base_port=20000, image_base_url="http://127.0.0.1:9/images")
    step = servers // max(flagged, 1)
    chosen = {i * step for i in range(flagged)}
    others = (i for i in range(servers) if i not in chosen)
    done = {next(others) for _ in range(finished)}
    for index, (entry, task) in enumerate(zip(seed["servers"], scenario.tasks, strict=True)):
        if index in chosen:
            entry["attributes"] = {TASK_NAMESPACE: task.data}
        elif index in done:
            entry["attributes"] = {TASK_NAMESPACE: finished_attribute(task.data, index)}
    return seed


def measure(servers: int, flagged: int, finished: int, polls: int, page_size: int, root: Path) -> dict[str, Any]:
    """Seed, start the inventory and Redis, poll ``polls`` times; returns every poll's figures."""
    work = root / f"{servers}-{finished}"
    work.mkdir()
    inventory = InventoryServer(work, threads=4)
    started = time.perf_counter()
    load_seed(inventory.db_path, fleet_seed(servers, flagged, finished))
    seed_s = time.perf_counter() - started
    redis_server = RedisServer(work)
    try:
        inventory.start()
        redis_server.start()
        settings = Settings(
            inventory={"url": inventory.url, "page_size": page_size},
            redis={"url": redis_server.url},
            service={"worker_id": "bench-poll"},
        )
        poller, counter = counted_poller(settings, requests.Session(), "bench-poll")
        assert inventory.process is not None
        rows = []
        for _ in range(polls):
            cpu, inventory_cpu = time.process_time(), cpu_seconds(inventory.process.pid)
            report = poller.poll_once()
            counts = counter.take()
            rows.append(
                {
                    "seconds": report.duration,
                    "requests": sum(counts.values()),
                    "by_path": dict(counts),
                    "actions": dict(report.actions),
                    "seen": sum(report.seen.values()),
                    "errors": report.errors,
                    "poller_cpu_s": time.process_time() - cpu,
                    "inventory_cpu_s": cpu_seconds(inventory.process.pid) - inventory_cpu,
                }
            )
        return {"servers": servers, "flagged": flagged, "finished": finished, "seed_s": seed_s, "polls": rows}
    finally:
        inventory.stop()
        redis_server.stop()


def _row(result: dict[str, Any]) -> str:
    first, later = result["polls"][0], result["polls"][1:]

    def median(key: str) -> float:
        return statistics.median(p[key] for p in later) if later else float("nan")

    return (
        f"| {result['servers']:,} | {result['flagged']} | {result['finished']:,} | {first['seen']} "
        f"| {first['seconds']:.2f} | {first['requests']} | {median('seconds'):.3f} | {median('requests'):.0f} "
        f"| {1000 * median('poller_cpu_s'):.0f} | {1000 * median('inventory_cpu_s'):.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, nargs="+", default=[10000, 1000], help="fleet sizes")
    parser.add_argument("--flagged", type=int, default=100, help="servers with a new install request")
    parser.add_argument("--finished", type=int, nargs="+", default=[0], help="servers with an ended task (each)")
    parser.add_argument("--polls", type=int, default=6, help="polls per fleet (the first admits)")
    parser.add_argument("--page-size", type=int, default=100, help="inventory.page_size")
    parser.add_argument("--json", action="store_true", help="print every poll as JSON too")
    args = parser.parse_args()
    logger.remove()  # the admission's INFO lines would bury the table
    logger.add(sys.stderr, level="WARNING")
    if args.polls < 2:
        parser.error("--polls: at least 2 (the first admits; the others are the steady state)")
    results = []
    load = LoadSampler().start()
    with workdir("bench-poll-") as root:
        for servers in args.servers:
            for finished in args.finished:
                results.append(measure(servers, args.flagged, finished, args.polls, args.page_size, root))
    load.stop()
    print(
        "| servers | flagged (new) | ended tasks | attributes seen | first poll (s) | its requests "
        "| later polls, median (s) | their requests | poller CPU (ms) | inventory CPU (ms) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        print(_row(result))
    for result in results:
        first, later = result["polls"][0], result["polls"][-1]
        print(
            f"- {result['servers']:,} servers, {result['finished']:,} ended: seeded in {result['seed_s']:.1f} s; "
            f"first poll {dict(sorted(first['by_path'].items()))}, actions {first['actions']}; "
            f"a later poll {dict(sorted(later['by_path'].items()))}, actions {later['actions']}"
        )
        errors = [e for p in result["polls"] for e in p["errors"]]
        if errors:
            print(f"  - errors: {errors[:5]}")
    print(f"- {load.summary()}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
