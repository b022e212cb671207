"""Rollout benchmark: a fleet of simulated servers, every one flagged at once, R flasher replicas of C workers.

    .venv/bin/python -m bench.rollout.run --servers 1000 --point 2,8,5 --point 2,16,5

Each ``--point R,C,T`` starts a fresh sandbox (:class:`flasher_sandbox.up.stack.Stack`: Redis, the inventory, one
``flasher-sandbox bmc`` process simulating every BMC, an image server) with one firmware install of ``T`` seconds
per server (``--component``, BIOS by default: :func:`flasher_sandbox.up.scenario.build` with ``component=``), starts
``R`` replicas of ``flasher run`` with ``C`` workers each, measures their idle CPU, flags every server at once
(``--flag-threads`` concurrent PUTs), waits until every task has ended, and reports:

* wall time from the first PUT to the last task's ``completedAt`` (RFC 3339, whole seconds) beside the ideal
  ``ceil(servers / (R*C)) * T`` and their ratio; when the last task was admitted (its ``createdAt``);
* CPU seconds per task of the flasher replicas (``utime + stime`` of each replica process and its threads from
  ``/proc/<pid>/stat``, read before anything stops, minus the reading just before flagging), and the CPU of
  the simulated BMCs, the inventory and Redis over the same span, for context; the replicas' CPU while idle
  before the rollout and after it (every attribute then ``success``);
* checks: every task ended ``success``, each BMC reports the new version, the simulator's audit shows one
  successful install per server and no overlapping installs.

Everything binds to 127.0.0.1 and is stopped at the end; the work directory is removed (``--keep`` keeps it,
with every process's log). ``--timeout`` bounds the wait for the tasks of one point. Prints a Markdown table
(``--json``: every figure).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.support import LoadSampler, cpu_seconds, spread, status_count, workdir
from flasher.constants import TASK_NAMESPACE
from flasher_sandbox.up.command import check
from flasher_sandbox.up.scenario import ONE_COMPONENT_CHOICES, build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

_ENDED = ("success", "failed", "cancelled")


@dataclass(frozen=True)
class Point:
    """One configuration: ``replicas`` x ``workers`` each, ``install_seconds`` per component."""

    replicas: int
    workers: int
    install_seconds: float

    @classmethod
    def parse(cls, text: str) -> Point:
        """``"R,C,T"`` (``2,8,5``); ``ValueError`` naming the text otherwise."""
        try:
            r, c, t = text.split(",")
            point = cls(int(r), int(c), float(t))
        except ValueError:
            raise ValueError(f"--point: {text!r} is not R,C,T (e.g. 2,8,5)") from None
        if point.replicas < 1 or point.workers < 1 or point.install_seconds <= 0:
            raise ValueError(f"--point: {text!r} needs R >= 1, C >= 1 and T > 0")
        return point


@dataclass
class Result:
    """The figures of one point (see the module docstring)."""

    servers: int
    replicas: int
    workers: int
    install_seconds: float
    ideal_s: float
    flag_s: float = 0.0
    admitted_s: float | None = None
    wall_s: float | None = None
    ratio: float | None = None
    ended: dict[str, int] = field(default_factory=dict)
    run_s: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    idle_before_pct: dict[str, float] = field(default_factory=dict)
    idle_after_pct: dict[str, float] = field(default_factory=dict)
    cpu_per_task_s: float | None = None
    installs: int = 0
    overlapping: int | None = None
    problems: list[str] = field(default_factory=list)
    startup_s: float = 0.0
    load: str = ""

    @property
    def ok(self) -> bool:
        """Every task ended ``success`` as expected, with no overlapping installs."""
        return not self.problems and self.overlapping == 0


def _stamp(value: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _claimed_at(data: dict[str, Any]) -> float | None:
    """When the last attempt's worker claimed the task (its ``claimed by`` message), if still in the messages."""
    for message in reversed(data.get("messages") or []):
        if " claimed by " in str(message):
            return _stamp(str(message).split(" ", 1)[0])
    return None


def _cpu(stack: Stack) -> dict[str, float]:
    return {name: cpu_seconds(process.pid) for name, process in stack.processes().items()}


def _idle_pct(stack: Stack, seconds: float) -> dict[str, float]:
    """CPU use of each replica over ``seconds`` of waiting, in percent of one core."""
    before = {name: cpu_seconds(p.pid) for name, p in stack.replicas.items()}
    time.sleep(seconds)
    return {name: 100 * (cpu_seconds(p.pid) - before[name]) / seconds for name, p in stack.replicas.items()}


def _wait_ended(stack: Stack, servers: int, timeout: float, replicas: list[str]) -> dict[str, int]:
    """Poll the status counts (cheap filtered queries) every 2 s until every task has ended, or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        counts = {s: status_count(stack.http, stack.inventory_url, s) for s in _ENDED}
        if sum(counts.values()) >= servers or time.monotonic() > deadline:
            return counts
        for name in replicas:
            if not stack.replicas[name].alive():
                raise RuntimeError(f"replica {name} died:\n{stack.replicas[name].tail()}")
        time.sleep(2.0)


def measure(point: Point, args: argparse.Namespace, root: Path) -> Result:
    """Run one point on a fresh stack under ``root``; always stops the stack."""
    ideal = math.ceil(args.servers / (point.replicas * point.workers)) * point.install_seconds
    result = Result(args.servers, point.replicas, point.workers, point.install_seconds, ideal)
    scenario = build(
        args.servers,
        install_seconds=point.install_seconds,
        offline_seconds=args.offline_seconds,
        power_seconds=args.power_seconds,
        image_size=args.image_kib * 1024,
        special=False,
        component=args.component,
    )
    options = ReplicaOptions(
        concurrency=point.workers,
        poll_interval=args.poll_interval,
        poll_jitter=args.poll_interval / 5,
        heartbeat_interval=args.heartbeat,
        lease_seconds=max(15.0, 4 * args.heartbeat),
        stale_after=max(20.0, 6 * args.heartbeat),
        bmc_poll_interval=args.bmc_poll_interval,
        log_level=args.log_level,
    )
    started = time.monotonic()
    stack = Stack(root / f"r{point.replicas}-c{point.workers}-t{point.install_seconds:g}", scenario)
    load = LoadSampler().start()
    try:
        stack.start()
        names = [f"flasher-{i}" for i in range(point.replicas)]
        for name in names:
            stack.start_replica(name, options)
        result.startup_s = time.monotonic() - started
        result.idle_before_pct = _idle_pct(stack, args.idle_seconds)
        cpu_before = _cpu(stack)

        flag_started = time.time()
        with ThreadPoolExecutor(args.flag_threads) as pool:
            flags = [pool.submit(stack.flag, scenario.uuids[t.server], t.namespace, t.data) for t in scenario.tasks]
            for flagged in flags:
                flagged.result()
        result.flag_s = time.time() - flag_started
        result.ended = _wait_ended(stack, args.servers, args.timeout, names)
        cpu_after = _cpu(stack)  # before anything stops
        result.cpu_s = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
        replica_cpu = sum(result.cpu_s[name] for name in names)
        result.cpu_per_task_s = replica_cpu / args.servers
        result.idle_after_pct = _idle_pct(stack, args.idle_seconds)

        attributes = stack.task_attributes()
        tasks = [attributes.get((scenario.uuids[t.server], TASK_NAMESPACE), {}) for t in scenario.tasks]
        completed = [c for c in (_stamp(d.get("completedAt")) for d in tasks if d.get("completedAt")) if c]
        created = [c for c in (_stamp(d.get("createdAt")) for d in tasks if d.get("createdAt")) if c]
        if completed and len(completed) == args.servers:
            result.wall_s = max(completed) - flag_started
            result.ratio = result.wall_s / ideal
        if created:
            result.admitted_s = max(created) - flag_started
        runs = []
        for data in tasks:
            claimed, ended = _claimed_at(data), _stamp(data.get("completedAt"))
            if claimed is not None and ended is not None:
                runs.append(ended - claimed)
        if runs:
            result.run_s = spread(runs)
        for outcome in check(stack, scenario, attributes):
            if not outcome.ok:
                result.problems.append(f"{outcome.task.server}: {'; '.join(outcome.problems)}")
        audit = stack.fleet_audit()
        result.overlapping = int(audit["overlapping_installs"])
        result.installs = sum(
            1 for bmc in audit["bmcs"] for install in bmc["installs"] if install.get("outcome") == "success"
        )
        if result.installs != args.servers:
            result.problems.append(f"the simulator saw {result.installs} successful installs, not {args.servers}")
    finally:
        statuses = stack.stop()
        load.stop()
        result.load = load.summary()
    unclean = {name: status for name, status in statuses.items() if status != 0}
    if unclean:
        result.problems.append(f"replicas exited with {unclean}")
    return result


def _row(r: Result) -> str:
    def num(value: float | None, fmt: str = ".0f") -> str:
        return "-" if value is None else format(value, fmt)

    names = [f"flasher-{i}" for i in range(r.replicas)]
    idle_before = sum(r.idle_before_pct.get(n, 0.0) for n in names) / r.replicas
    idle_after = sum(r.idle_after_pct.get(n, 0.0) for n in names) / r.replicas
    return (
        f"| {r.servers:,} | {r.replicas} x {r.workers} | {r.install_seconds:g} | {num(r.wall_s)} | {r.ideal_s:.0f} "
        f"| {num(r.ratio, '.2f')} | {num(r.admitted_s)} | {num(r.run_s.get('median'), '.1f')} "
        f"| {num(r.cpu_per_task_s, '.2f')} | {r.cpu_s.get('bmcs', 0):.0f} | {r.cpu_s.get('inventory', 0):.0f} "
        f"| {r.cpu_s.get('redis', 0):.0f} | {idle_before:.1f} / {idle_after:.1f} "
        f"| {r.ended.get('success', 0)}/{r.servers}, overlaps {r.overlapping} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000, help="simulated servers, each flagged once")
    parser.add_argument(
        "--point", action="append", default=[], help="R,C,T: replicas, workers each, install seconds (repeatable)"
    )
    parser.add_argument("--replicas", type=int, default=2, help="R when no --point is given")
    parser.add_argument("--workers", type=int, default=8, help="C when no --point is given")
    parser.add_argument("--install-seconds", type=float, default=5.0, help="T when no --point is given")
    parser.add_argument("--component", default="bios", choices=ONE_COMPONENT_CHOICES)
    parser.add_argument("--poll-interval", type=float, default=5.0, help="service.poll_interval (jitter a fifth)")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="service.heartbeat_interval")
    parser.add_argument("--bmc-poll-interval", type=float, default=0.5, help="bmc.poll_interval")
    parser.add_argument("--power-seconds", type=float, default=0.5, help="simulated host power transition")
    parser.add_argument("--offline-seconds", type=float, default=3.0, help="simulated BMC reboot")
    parser.add_argument("--image-kib", type=int, default=256, help="firmware image size")
    parser.add_argument("--flag-threads", type=int, default=8, help="concurrent PUTs when flagging")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="idle CPU measurement, before and after")
    parser.add_argument("--timeout", type=float, default=1800.0, help="longest wait for the tasks of one point")
    parser.add_argument("--log-level", default="INFO", help="the replicas' log level")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    try:
        points = [Point.parse(p) for p in args.point] or [Point(args.replicas, args.workers, args.install_seconds)]
    except ValueError as exc:
        parser.error(str(exc))
    results = []
    with workdir("bench-rollout-", keep=args.keep) as root:
        for point in points:
            results.append(measure(point, args, root))
            print(f"done: {asdict(results[-1])}", file=sys.stderr, flush=True)
    print(
        "| servers | R x C | T (s) | wall (s) | ideal (s) | wall / ideal | last admitted (s) | median run (s) "
        "| replica CPU s / task | BMC sim CPU s | inventory CPU s | Redis CPU s | idle CPU % per replica "
        "before / after | ended |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(_row(r))
    for r in results:
        print(f"- {r.replicas} x {r.workers}, T={r.install_seconds:g}: {r.load}; start-up {r.startup_s:.0f} s")
        for problem in r.problems[:20]:
            print(f"  - problem: {problem}")
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    sys.exit(0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
