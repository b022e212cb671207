"""Queue benchmark: enqueue-claim-ack cycles per second with 1 and 8 clients, beside raw PING round trips.

    .venv/bin/python -m bench.queue.run            # 3 rounds of 3 s per measurement
    .venv/bin/python -m bench.queue.run --json

Starts its own ``redis-server`` (no persistence) on a free loopback port. Each measurement runs for
``--seconds`` and is repeated ``--rounds`` times, the four measurements interleaved (PING x1, cycles x1,
PING x8, cycles x8) so that a machine busy with something else slows all of them alike; the median round is
reported (for the ratio, the median of the per-round ratios). Clients are processes (spawned once, warmed up
before timing), each with its own connection.

A cycle is ``enqueue`` + ``claim`` + ``ack``: three round trips, one Lua script each. PING is one round trip,
so a cycle can reach at most a third of the PING rate; the ratio printed is cycles/s over PINGs/s. Each round
also measures the client's CPU per PING and per cycle (``time.process_time`` over 2,000, one client), which the
load hardly moves, and says whether redis-py found ``hiredis``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from multiprocessing.pool import Pool
from pathlib import Path

import redis

from flasher.config import QueueSettings
from flasher.queue import TaskQueue
from flasher_sandbox.servers import RedisServer

CLIENTS = 8
#: Server ids a client cycles through: the tasks hash stays small and each id is free again when reused.
SERVERS_PER_CLIENT = 512


def _queue(url: str) -> TaskQueue:
    return TaskQueue(redis.Redis.from_url(url), settings=QueueSettings(lease_seconds=60.0))


def _wait_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.05))


def client(url: str, what: str, name: str, start_at: float, seconds: float) -> int:
    """Run ``what`` (``ping`` or ``cycle``) from ``start_at`` for ``seconds``; return how many completed."""
    queue = _queue(url)
    queue.ping()  # connect before the clock starts
    done = 0
    _wait_until(start_at)
    stop = start_at + seconds
    if what == "ping":
        ping = queue.client.ping
        while time.time() < stop:
            ping()
            done += 1
        return done
    n = 0
    while time.time() < stop:
        n += 1
        queue.enqueue(f"{name}-{n % SERVERS_PER_CLIENT}", kind="install", task_id=f"{name}-{n}", priority=n % 4)
        lease = queue.claim(name)
        if lease is not None:  # with several clients, another one may have taken every task
            queue.ack(lease)
            done += 1
    return done


def client_cpu(url: str, what: str, count: int) -> float:
    """This process's CPU seconds per operation (``ping`` or ``cycle``) over ``count`` of them, one client: the
    client's own cost (packing, parsing, redis-py), which the machine's load hardly moves."""
    queue = _queue(url)
    queue.ping()
    started = time.process_time()
    for n in range(count):
        if what == "ping":
            queue.client.ping()
        else:
            queue.enqueue(f"cpu-{n % SERVERS_PER_CLIENT}", kind="install", task_id=f"cpu-{n}", priority=n % 4)
            lease = queue.claim("cpu")
            if lease is not None:
                queue.ack(lease)
    return (time.process_time() - started) / count


def _warm(_: int) -> int:
    return os.getpid()


def measure(pool: Pool | None, url: str, what: str, seconds: float) -> float:
    """Operations (PINGs or cycles) per second, with one client in this process or ``CLIENTS`` in ``pool``."""
    _queue(url).client.flushall()
    start_at = time.time() + 0.3
    if pool is None:
        return client(url, what, "c0", start_at, seconds) / seconds
    args = [(url, what, f"c{n}", start_at, seconds) for n in range(CLIENTS)]
    return sum(pool.starmap(client, args, chunksize=1)) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of one measurement (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions; the median is reported (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-queue-") as workdir:
        server = RedisServer(Path(workdir)).start()
        try:
            with multiprocessing.get_context("spawn").Pool(CLIENTS) as pool:
                pool.map(_warm, range(CLIENTS), chunksize=1)
                rounds: dict[str, list[float]] = {"ping_1": [], "cycle_1": [], "ping_8": [], "cycle_8": []}
                cpu: dict[str, list[float]] = {"ping": [], "cycle": []}
                for _ in range(args.rounds):
                    for key, values in rounds.items():
                        what, clients = key.split("_")
                        values.append(measure(pool if clients == "8" else None, server.url, what, args.seconds))
                    for what, costs in cpu.items():
                        costs.append(client_cpu(server.url, what, 2000))
        finally:
            server.stop()

    median = {key: statistics.median(values) for key, values in rounds.items()}
    # Each round measures PING and cycles back to back: the median of the per-round ratios is steadier on a
    # machine whose load changes than the ratio of the medians.
    ratios = {
        clients: statistics.median(
            c / p for c, p in zip(rounds[f"cycle_{clients}"], rounds[f"ping_{clients}"], strict=True)
        )
        for clients in ("1", "8")
    }
    result = {
        "redis": server.binary,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "per_second": median,
        "all_rounds": rounds,
        "ratio_1": ratios["1"],
        "ratio_8": ratios["8"],
        "cpus": os.cpu_count(),
        "client_cpu_us": {what: statistics.median(costs) * 1e6 for what, costs in cpu.items()},
        "hiredis": redis.utils.HIREDIS_AVAILABLE,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{'clients':>8} {'PING/s':>10} {'cycles/s':>10} {'cycles/PING':>12}")
    for clients in ("1", "8"):
        ping, cycle = median[f"ping_{clients}"], median[f"cycle_{clients}"]
        print(f"{clients:>8} {ping:>10.0f} {cycle:>10.0f} {ratios[clients]:>11.1%}")
    print(
        f"medians of {args.rounds} rounds of {args.seconds:g} s (cycles/PING: median of the per-round ratios); "
        "a cycle is 3 round trips, so at most 33.3%"
    )
    costs = result["client_cpu_us"]
    print(
        f"client CPU per operation, one client (median of rounds of 2,000): PING {costs['ping']:.0f} µs, "
        f"cycle {costs['cycle']:.0f} µs; hiredis {'installed' if result['hiredis'] else 'not installed'}"
    )


if __name__ == "__main__":
    main()
