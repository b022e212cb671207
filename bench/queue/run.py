"""Queue benchmark: queue cycles per second with 1 and 8 clients, beside raw PING round trips.

    .venv/bin/python -m bench.queue.run            # 3 rounds of 3 s per measurement
    .venv/bin/python -m bench.queue.run --json

Starts its own ``redis-server`` (no persistence) on a free loopback port. Each measurement runs for
``--seconds`` and is repeated ``--rounds`` times, the measurements interleaved (PING, cycles, unfolded cycles,
with 1 client, then with 8) so that a machine busy with something else slows all of them alike; the median
round is reported (for the ratios, the median of the per-round ratios). Clients are processes (spawned once,
warmed up before timing), each with its own connection.

A cycle is what a task costs the queue as the service runs it: the admission's ``enqueue``, then the worker's
``ack_and_claim`` (the ack of its previous task and the claim of this one in one script, as the worker pool does
when a task ends and it goes on to the next): two round trips, so a cycle can reach at most half the PING rate.
A cycle is counted when its task is acked. The unfolded cycle, ``enqueue`` + ``claim`` + ``ack`` (three round
trips, at most a third), is measured beside it for comparison. Each round also measures the client's CPU per
PING and per cycle of each kind (``time.process_time`` over 2,000, one client), which the load hardly moves,
and says whether redis-py found ``hiredis``.
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
from flasher.queue import Lease, TaskQueue
from flasher_sandbox.servers import RedisServer

CLIENTS = 8
#: What is measured: PINGs, cycles as the service runs them, cycles with claim and ack apart.
WHAT = ("ping", "cycle", "unfolded")
#: Server ids a client cycles through: the tasks hash stays small and each id is free again when reused.
SERVERS_PER_CLIENT = 512


def _queue(url: str) -> TaskQueue:
    return TaskQueue(redis.Redis.from_url(url), settings=QueueSettings(lease_seconds=60.0))


def _wait_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.05))


def client(url: str, what: str, name: str, start_at: float, seconds: float) -> int:
    """Run ``what`` (``ping``, ``cycle`` or ``unfolded``) from ``start_at`` for ``seconds``; return how many
    completed (PINGs, or tasks acked)."""
    queue = _queue(url)
    queue.ping()  # connect before the clock starts
    _wait_until(start_at)
    stop = start_at + seconds
    if what == "ping":
        done = 0
        ping = queue.client.ping
        while time.time() < stop:
            ping()
            done += 1
        return done
    run = _Cycles(queue, name, folded=what == "cycle")
    while time.time() < stop:
        run.one()
    return run.acked


class _Cycles:
    """One client's cycles: enqueue a task, then ack the previous one and claim (``folded``: in one script)."""

    def __init__(self, queue: TaskQueue, name: str, *, folded: bool) -> None:
        self.queue, self.name, self.folded = queue, name, folded
        self.n = 0
        self.acked = 0
        self.lease: Lease | None = None  # claimed, to be acked with the next claim (folded)

    def one(self) -> None:
        """One cycle. With several clients another one may take this client's task: then nothing is acked."""
        self.n += 1
        n, queue = self.n, self.queue
        server = f"{self.name}-{n % SERVERS_PER_CLIENT}"
        queue.enqueue(server, kind="install", task_id=f"{self.name}-{n}", priority=n % 4)
        if not self.folded:
            lease = queue.claim(self.name)
            if lease is not None:
                queue.ack(lease)
                self.acked += 1
        elif self.lease is None:
            self.lease = queue.claim(self.name)
        else:
            step = queue.ack_and_claim(self.lease, self.name)
            self.acked += step.lost is None
            self.lease = step.lease


def client_cpu(url: str, what: str, count: int) -> float:
    """This process's CPU seconds per operation (``ping``, ``cycle`` or ``unfolded``) over ``count`` of them, one
    client: the client's own cost (packing, parsing, redis-py), which the machine's load hardly moves."""
    queue = _queue(url)
    queue.ping()
    run = _Cycles(queue, "cpu", folded=what == "cycle")
    started = time.process_time()
    for _ in range(count):
        if what == "ping":
            queue.client.ping()
        else:
            run.one()
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
                rounds: dict[str, list[float]] = {f"{what}_{n}": [] for n in ("1", "8") for what in WHAT}
                cpu: dict[str, list[float]] = {what: [] for what in WHAT}
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
        f"{what}_{clients}": statistics.median(
            c / p for c, p in zip(rounds[f"{what}_{clients}"], rounds[f"ping_{clients}"], strict=True)
        )
        for clients in ("1", "8")
        for what in ("cycle", "unfolded")
    }
    result = {
        "redis": server.binary,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "per_second": median,
        "all_rounds": rounds,
        "ratios": ratios,
        "cpus": os.cpu_count(),
        "client_cpu_us": {what: statistics.median(costs) * 1e6 for what, costs in cpu.items()},
        "hiredis": redis.utils.HIREDIS_AVAILABLE,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    header = ("clients", "PING/s", "cycles/s", "cycles/PING", "unfolded/s", "unfolded/PING")
    print(" ".join(f"{name:>{width}}" for name, width in zip(header, (8, 10, 10, 12, 11, 14), strict=True)))
    for clients in ("1", "8"):
        ping, cycle, unfolded = (median[f"{what}_{clients}"] for what in WHAT)
        print(
            f"{clients:>8} {ping:>10.0f} {cycle:>10.0f} {ratios[f'cycle_{clients}']:>11.1%} {unfolded:>11.0f}"
            f" {ratios[f'unfolded_{clients}']:>13.1%}"
        )
    print(
        f"medians of {args.rounds} rounds of {args.seconds:g} s (x/PING: median of the per-round ratios); a cycle is"
        " enqueue + ack_and_claim, 2 round trips (at most 50%); unfolded, enqueue + claim + ack, 3 (at most 33.3%)"
    )
    costs = result["client_cpu_us"]
    print(
        f"client CPU per operation, one client (median of rounds of 2,000): PING {costs['ping']:.0f} µs, "
        f"cycle {costs['cycle']:.0f} µs, unfolded {costs['unfolded']:.0f} µs; "
        f"hiredis {'installed' if result['hiredis'] else 'not installed'}"
    )


if __name__ == "__main__":
    main()
