"""Detection latency benchmark: from an operator's flag (the PUT of the task attribute) to ``queued``, beside the
poll interval.

    .venv/bin/python -m bench.detection.run --intervals 2 5 --samples 30

For each ``--intervals`` value I: a fresh sandbox (:class:`flasher_sandbox.up.stack.Stack`) with ``--samples`` simulated
servers (one BIOS install of 1 s each) and ``--replicas`` replicas of ``flasher run`` polling every I seconds with
``service.poll_jitter`` = ``--jitter-ratio`` x I. The servers are flagged one at a time, each at a random
moment (a pause drawn uniformly from [0, I) after the previous one was seen admitted, so flags fall at random
phases of the poll schedule); after each PUT returns, the attribute is read every ``--watch`` seconds until its
status is no longer new (``queued``, or already ``active`` when a worker claimed it between two reads). The
latency is from the PUT's return to that read (resolution: ``--watch``). Reports min / median / p95 / max beside
the interval, and what the poll schedule alone predicts (see ``docs/benchmarks.md``).

Everything binds to 127.0.0.1 and is stopped at the end; the work directory is removed. ``--timeout`` bounds
the wait for one sample.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from bench.support import LoadSampler, spread, workdir
from flasher.constants import TASK_NAMESPACE
from flasher_sandbox.up.scenario import build
from flasher_sandbox.up.stack import ReplicaOptions, Stack


def expected_wait(interval: float, jitter: float, replicas: int) -> float:
    """The mean wait from a flag at a random moment to the start of the next poll, in seconds.

    APScheduler 3's ``IntervalTrigger`` fires each poll ``interval + U(0, jitter)`` after the previous one, so
    the gaps G are uniform on [I, I + j]; a flag at a random moment waits the residual of its gap, whose mean
    is E[G²] / (2 E[G]) (the inspection paradox). With several replicas the first poll of any of them admits:
    the wait is the least of their residuals, estimated here by simulation assuming their phases independent
    and uniformly random. Replicas started together are not: their phase offset only drifts by the jitter, so
    over a short run they may poll almost in step (no gain) or half an interval apart (the most gain).
    """
    if replicas == 1:
        mean = interval + jitter / 2
        square = interval**2 + interval * jitter + jitter**2 / 3
        return square / (2 * mean)
    rng = random.Random(7)
    total = 0.0
    trials = 20000
    for _ in range(trials):
        waits = []
        for _replica in range(replicas):
            # A random phase in a length-biased gap: draw a gap weighted by its length, then a point in it.
            while True:
                gap = interval + rng.uniform(0, jitter)
                if rng.uniform(0, interval + jitter) <= gap:
                    break
            waits.append(rng.uniform(0, gap))
        total += min(waits)
    return total / trials


def _status(stack: Stack, server: str) -> str:
    response = stack.http.get(f"{stack.inventory_url}/api/v1/servers/{server}/attributes/{TASK_NAMESPACE}", timeout=30)
    response.raise_for_status()
    data = response.json().get("record", {}).get("data") or {}
    return str(data.get("status") or "")


def measure(interval: float, args: argparse.Namespace, root: Path, rng: random.Random) -> dict[str, Any]:
    """One interval on a fresh stack; always stops it."""
    jitter = args.jitter_ratio * interval
    scenario = build(
        max(args.samples, 2),
        install_seconds=1.0,
        offline_seconds=1.0,
        power_seconds=0.2,
        image_size=64 * 1024,
        special=False,
        component="bios",
    )
    options = ReplicaOptions(concurrency=2, poll_interval=interval, poll_jitter=jitter, log_level=args.log_level)
    stack = Stack(root / f"interval-{interval:g}", scenario)
    load = LoadSampler().start()
    latencies: list[float] = []
    puts: list[float] = []
    try:
        stack.start()
        for replica in range(args.replicas):
            stack.start_replica(f"flasher-{replica}", options)
        time.sleep(interval)  # past the first polls (at start)
        for task in scenario.tasks[: args.samples]:
            time.sleep(rng.uniform(0, interval))
            server = scenario.uuids[task.server]
            started = time.monotonic()
            stack.flag(server, task.namespace, task.data)
            flagged = time.monotonic()
            puts.append(flagged - started)
            deadline = flagged + args.timeout
            while _status(stack, server) == "":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{task.server} was not admitted within {args.timeout:.0f} s")
                time.sleep(args.watch)
            latencies.append(time.monotonic() - flagged)
    finally:
        stack.stop()
        load.stop()
    return {
        "interval": interval,
        "jitter": jitter,
        "replicas": args.replicas,
        "samples": len(latencies),
        "latency": spread(latencies),
        "put": spread(puts),
        "expected_wait": expected_wait(interval, jitter, args.replicas),
        "latencies": latencies,
        "load": load.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intervals", type=float, nargs="+", default=[2.0, 5.0], help="service.poll_interval (s)")
    parser.add_argument("--jitter-ratio", type=float, default=0.2, help="service.poll_jitter as a share of it")
    parser.add_argument("--samples", type=int, default=30, help="servers flagged one at a time, per interval")
    parser.add_argument("--replicas", type=int, default=1, help="flasher replicas polling")
    parser.add_argument("--watch", type=float, default=0.05, help="seconds between reads of the attribute")
    parser.add_argument("--timeout", type=float, default=60.0, help="longest wait for one admission")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the flag moments")
    parser.add_argument("--log-level", default="INFO", help="the replicas' log level")
    parser.add_argument("--json", action="store_true", help="print every latency as JSON too")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with workdir("bench-detection-") as root:
        results = [measure(interval, args, root, rng) for interval in args.intervals]
    print(
        "| poll interval (s) | jitter (s) | replicas | samples | min (s) | median (s) | p95 (s) | max (s) "
        "| mean (s) | mean wait for a poll, predicted (s) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        s = r["latency"]
        print(
            f"| {r['interval']:g} | {r['jitter']:g} | {r['replicas']} | {r['samples']} | {s['min']:.2f} "
            f"| {s['median']:.2f} | {s['p95']:.2f} | {s['max']:.2f} | {s['mean']:.2f} | {r['expected_wait']:.2f} |"
        )
    for r in results:
        print(f"- interval {r['interval']:g} s: PUT median {1000 * r['put']['median']:.0f} ms; {r['load']}")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
