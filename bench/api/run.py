"""Benchmark: task events through the Redis stream and ``flasher api`` to 200 SSE clients.

Starts its own ``redis-server``, a sandbox inventory seeded with ``--servers`` servers and ``flasher api`` (a real
process, uvicorn), then connects ``--clients`` SSE clients (one asyncio process, :mod:`bench.api.clients`) and runs
two phases:

* **latency**: ``--writes`` attribute writes at ``--rate`` per second, each a real inventory PUT through
  :class:`flasher.task.events.PublishingStore` (as a replica's status writer makes them), round-robin over the
  servers. The delay of one event at one client is the time it arrived minus the time the inventory PUT returned
  (one clock: everything runs on this machine). Reported: p50, p99 and max over every (event, client).
* **throughput**: ``--burst`` events published as fast as one thread can (``EventPublisher.append``, no
  inventory), and the time until every client has all of them. Reported: events published per second, events
  per second delivered to each client, and deliveries per second in all.

Everything started is stopped and the work directory removed at the end; ``--json`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
import requests

from bench.support import percentile, workdir
from flasher.config import InventorySettings
from flasher.constants import TASK_NAMESPACE
from flasher.events import EventPublisher
from flasher.inventory import InventoryClient
from flasher.task.events import PublishingStore, TaskEvent
from flasher.task.model import TaskKind
from flasher_sandbox.procs import ManagedProcess, free_port, wait_until

HOST = "127.0.0.1"


def _ready(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


class _Timed:
    """An attribute store that notes when each PUT returned (before the event is published)."""

    def __init__(self, inner: InventoryClient) -> None:
        self.inner = inner
        self.done: dict[int, float] = {}

    def get_attribute(self, uuid: str, namespace: str) -> Any:
        return self.inner.get_attribute(uuid, namespace)

    def replace_attribute(self, uuid: str, namespace: str, data: dict[str, Any], *, once: bool = False) -> None:
        self.inner.replace_attribute(uuid, namespace, data, once=once)
        self.done[int(data["messages"][-1].split()[-1])] = time.time()


def _clients(root: Path, api_url: str, last_id: str, clients: int, expect: int, out: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.api.clients",
            "--url",
            f"{api_url}/api/v1/events",
            "--last-id",
            last_id,
            "--clients",
            str(clients),
            "--expect",
            str(expect),
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=root,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if line.strip() != "ready":
        raise RuntimeError(f"the SSE clients did not connect: {line!r}")
    return process


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(__file__).resolve().parents[2]
    with workdir("flasher-bench-api-", keep=args.keep) as work:
        redis_port, inventory_port, api_port = free_port(), free_port(), free_port()
        procs: list[ManagedProcess] = []
        try:
            procs.append(
                ManagedProcess(
                    ["redis-server", "--bind", HOST, "--port", str(redis_port), "--save", "", "--appendonly", "no"],
                    work / "redis.log",
                    cwd=work,
                ).start()
            )
            seed = work / "seed.json"
            seed.write_text(
                json.dumps(
                    {"servers": [{"name": f"srv-{i}", "vendor": "dell", "model": "r6515"} for i in range(args.servers)]}
                )
            )
            procs.append(
                ManagedProcess(
                    [
                        sys.executable,
                        "-m",
                        "flasher_sandbox.cli",
                        "inventory",
                        "--host",
                        HOST,
                        "--port",
                        str(inventory_port),
                        "--db",
                        str(work / "inventory.db"),
                        "--seed",
                        str(seed),
                    ],
                    work / "inventory.log",
                ).start()
            )
            inventory_url = f"http://{HOST}:{inventory_port}"
            wait_until(lambda: _ready(f"{inventory_url}/healthz"), 60, "the sandbox inventory")
            env = {
                "FLASHER_INVENTORY__URL": inventory_url,
                "FLASHER_REDIS__URL": f"redis://{HOST}:{redis_port}/0",
                "FLASHER_LOG_LEVEL": "WARNING",
            }
            procs.append(
                ManagedProcess(
                    [sys.executable, "-m", "flasher.cli", "api", "--listen", f"{HOST}:{api_port}"],
                    work / "api.log",
                    env=env,
                ).start()
            )
            api_url = f"http://{HOST}:{api_port}"
            wait_until(lambda: _ready(f"{api_url}/healthz"), 60, "flasher api")

            inventory = InventoryClient(InventorySettings(url=inventory_url))
            servers = [str(s.uuid) for s in inventory.list_servers()]
            client = redis.Redis(host=HOST, port=redis_port)
            publisher = EventPublisher(client)
            start = publisher.append(TaskEvent(servers[0], "install", None, "requested", message="start"))
            for uuid in servers:  # the API caches each server's facts at its first event: warm it
                inventory.upsert_attribute(uuid, TASK_NAMESPACE, {"status": "", "messages": []})

            # latency
            out = work / "latency.json"
            clients = _clients(root, api_url, str(start), args.clients, args.writes, out)
            timed = _Timed(inventory)
            store = PublishingStore(timed, publisher, source="bench")
            load_start = Path("/proc/loadavg").read_text().split()[0]
            interval = 1.0 / args.rate
            begin = time.monotonic()
            for seq in range(args.writes):
                uuid = servers[seq % len(servers)]
                data = {"status": "active", "taskID": "t-bench", "messages": [f"2026-01-01T00:00:00Z bench {seq}"]}
                store.replace_attribute(uuid, TaskKind.INSTALL.namespace, data)
                pause = begin + (seq + 1) * interval - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            clients.wait(timeout=args.timeout)
            arrivals: list[list[list[float]]] = json.loads(out.read_text())
            delays = [(at - timed.done[int(seq)]) * 1000 for per_client in arrivals for seq, at in per_client]
            received = sum(len(a) for a in arrivals)

            # throughput
            out = work / "burst.json"
            head = publisher.append(TaskEvent(servers[0], "install", None, "requested", message="burst"))
            clients = _clients(root, api_url, str(head), args.clients, args.burst, out)
            t0 = time.time()
            for seq in range(args.burst):
                publisher.append(
                    TaskEvent(servers[seq % len(servers)], "install", "t-b", "active", message=f"bench {seq}")
                )
            published = time.time()
            clients.wait(timeout=args.timeout)
            bursts: list[list[list[float]]] = json.loads(out.read_text())
            complete = [max(at for _, at in per_client) for per_client in bursts if len(per_client) == args.burst]
            load_end = Path("/proc/loadavg").read_text().split()[0]
        finally:
            for process in reversed(procs):
                process.stop()
    last = max(complete) if complete else float("nan")
    return {
        "clients": args.clients,
        "latency": {
            "writes": args.writes,
            "rate": args.rate,
            "deliveries": received,
            "expected": args.writes * args.clients,
            "p50_ms": statistics.median(delays),
            "p99_ms": percentile(delays, 99),
            "max_ms": max(delays),
            "per_client": [min(len(a) for a in arrivals), max(len(a) for a in arrivals)],
        },
        "throughput": {
            "events": args.burst,
            "published_per_s": args.burst / (published - t0),
            "clients_complete": len(complete),
            "delivered_per_s_per_client": args.burst / (last - t0),
            "deliveries_per_s": args.burst * len(complete) / (last - t0),
            "seconds_to_all_clients": last - t0,
        },
        "load_average": [float(load_start), float(load_end)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="Keep the work directory (logs).")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    lat, thr = result["latency"], result["throughput"]
    print(
        f"{result['clients']} SSE clients; load average "
        f"{result['load_average'][0]:.1f} → {result['load_average'][1]:.1f}"
    )
    print(
        f"latency: {lat['writes']} writes at {lat['rate']:g}/s, {lat['deliveries']}/{lat['expected']} deliveries: "
        f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms, max {lat['max_ms']:.1f} ms"
    )
    print(
        f"throughput: {thr['events']} events published at {thr['published_per_s']:,.0f}/s; "
        f"{thr['clients_complete']} clients had them all after {thr['seconds_to_all_clients']:.2f} s: "
        f"{thr['delivered_per_s_per_client']:,.0f} events/s per client, {thr['deliveries_per_s']:,.0f} deliveries/s"
    )


if __name__ == "__main__":
    main()
