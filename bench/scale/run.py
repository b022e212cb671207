"""Scale benchmark: N simulated servers in an inventory of 20,000, admitted by 4 replicas, rolled out at R x C, then
polled.

    .venv/bin/python -m bench.scale.run --servers 500 1000 --max-seconds 900
    .venv/bin/python -m bench.scale.run --servers 5000 --max-seconds 600 --bmc-processes 2

For each N a fresh sandbox (:class:`flasher_sandbox.up.stack.Stack`): Redis, the sandbox inventory with
``--inventory`` servers (the N simulated ones, each with one BIOS install of ``T`` s to do, and ``--inventory`` - N
idle ones whose BMC nobody simulates, each with an ended task: :mod:`bench.scale.inventory`), the N BMCs over
HTTPS in ``--bmc-processes`` simulator processes, an image server, and ``--replicas`` ``flasher run`` replicas of
``--workers`` workers. Then:

1. **Admission and rollout.** Every one of the N servers is flagged at once (``--flag-threads`` PUTs); the
   replicas (already polling every ``--poll-interval`` s) admit the requests and their workers run them. Until
   every task has ended or ``--max-seconds`` passed. Admission, from the inventory's attribute journal: the time
   from the first PUT until the last server's first ``queued`` write, and the duplicates (a server with more
   than one distinct admission write; must be 0). The rollout: wall time from the first PUT to the last
   ``completedAt`` beside the ideal ``ceil(N/(R*C)) * T``, the median claim-to-end run, the CPU seconds per
   task of each process (``/proc/<pid>/stat``), the inventory's requests per task by route (the sandbox
   inventory's own count, ``GET /_sandbox/requests``), overlapping installs (the simulators' audit; must be 0),
   every task ``success`` and every BMC at its new version. A rollout cut by ``--max-seconds`` reports the
   tasks done and their rate.
2. **Memory**: RSS and peak RSS of every process (replicas, simulator processes, inventory, Redis) at the end of
   the rollout, before anything stops.
3. **Polls.** The replicas are stopped, every ended task of the N is written back as ``queued`` (as admission
   left it: the open tasks a poll sees during a rollout), and a :class:`~flasher.service.poller.Poller` in this
   process polls ``--polls`` times with ``service.full_poll_every`` = ``--polls - 1``: poll 0 and the last are
   full (every flagged server of the inventory), the others list open tasks only. For each: wall time,
   requests, CPU of flasher (this process) and of the inventory.

Everything binds to 127.0.0.1 and is stopped at the end; the work directory is removed (``--keep`` keeps it).
Prints Markdown tables (``--json``: every figure), with the load average beside them.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from bench.scale.inventory import idle_servers
from bench.scale.measure import (
    admissions,
    polls,
    request_delta,
    requeue,
    run_times,
    stamp,
)
from bench.support import LoadSampler, cpu_seconds, memory_mib, status_count, workdir
from flasher.constants import TASK_NAMESPACE
from flasher.service.poller import OPEN_STATUSES
from flasher_sandbox.up.command import check
from flasher_sandbox.up.scenario import build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

_ENDED = ("success", "failed", "cancelled")


@dataclass
class Result:
    """The figures of one N (see the module docstring)."""

    servers: int
    inventory: int
    replicas: int
    workers: int
    install_seconds: float
    bmc_processes: int
    ideal_s: float
    startup_s: float = 0.0
    flag_s: float = 0.0
    admission: dict[str, Any] = field(default_factory=dict)
    admitted_s: float | None = None
    elapsed_s: float = 0.0
    wall_s: float | None = None
    ratio: float | None = None
    ended: dict[str, int] = field(default_factory=dict)
    done_rate_per_s: float | None = None
    run_s: dict[str, float] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)
    inventory_requests: dict[str, int] = field(default_factory=dict)
    memory_mib: dict[str, dict[str, float]] = field(default_factory=dict)
    installs: int = 0
    overlapping: int | None = None
    requeued: int = 0
    polls: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    load: str = ""
    poll_load: str = ""

    @property
    def done(self) -> int:
        """Tasks ended when the rollout phase stopped."""
        return sum(self.ended.values())

    @property
    def ok(self) -> bool:
        """Every task succeeded, none admitted twice, no overlapping installs."""
        return not self.problems and self.overlapping == 0 and self.admission.get("duplicates") == 0


def _wait_ended(stack: Stack, deadline: float, replicas: list[str]) -> None:
    """Poll the open-task counts every 5 s until none is open or ``deadline`` (monotonic). Only the N flagged
    servers can have an open task (the idle ones' have ended)."""
    while True:
        if sum(status_count(stack.http, stack.inventory_url, s) for s in OPEN_STATUSES) == 0:
            return
        if time.monotonic() > deadline:
            return
        for name in replicas:
            if not stack.replicas[name].alive():
                raise RuntimeError(f"replica {name} died:\n{stack.replicas[name].tail()}")
        time.sleep(5.0)


def _options(args: argparse.Namespace) -> ReplicaOptions:
    return ReplicaOptions(
        concurrency=args.workers,
        poll_interval=args.poll_interval,
        poll_jitter=args.poll_interval / 5,
        heartbeat_interval=args.heartbeat,
        lease_seconds=max(15.0, 4 * args.heartbeat),
        stale_after=max(20.0, 6 * args.heartbeat),
        bmc_poll_interval=args.bmc_poll_interval,
        log_level=args.log_level,
    )


def _rollout(stack: Stack, result: Result, args: argparse.Namespace, names: list[str]) -> None:
    """Phase 1 and 2: flag every server, wait, read the figures before anything stops."""
    scenario = stack.scenario
    uuids = [scenario.uuids[t.server] for t in scenario.tasks]
    journal_from = max((e["seq"] for e in stack.attribute_journal(namespace=TASK_NAMESPACE)), default=0)
    cpu_before = {name: cpu_seconds(p.pid) for name, p in stack.processes().items()}
    requests_before = stack.inventory.request_counts()
    started, flag_started = time.monotonic(), time.time()
    with ThreadPoolExecutor(args.flag_threads) as pool:
        pairs = zip(uuids, scenario.tasks, strict=True)
        for flagged in [pool.submit(stack.flag, u, t.namespace, t.data) for u, t in pairs]:
            flagged.result()
    result.flag_s = time.time() - flag_started
    _wait_ended(stack, started + args.max_seconds, names)
    result.elapsed_s = time.monotonic() - started
    processes = stack.processes()
    result.cpu_s = {name: cpu_seconds(p.pid) - cpu_before.get(name, 0.0) for name, p in processes.items()}
    result.memory_mib = {name: memory_mib(p.pid) for name, p in processes.items()}
    result.inventory_requests = dict(request_delta(requests_before, stack.inventory.request_counts()))
    result.admission = admissions(stack, set(uuids), journal_from)
    if result.admission["last_admitted_at"] is not None:
        result.admitted_s = result.admission["last_admitted_at"] - flag_started
    if result.admission["admitted"] != result.servers:
        result.problems.append(f"{result.admission['admitted']} of {result.servers} requests were admitted")
    attributes = stack.task_attributes()
    tasks = [attributes.get((u, TASK_NAMESPACE), {}) for u in uuids]
    statuses = Counter(str(d.get("status") or "new") for d in tasks)
    result.ended = {s: statuses[s] for s in _ENDED if statuses[s]}
    completed = [c for c in (stamp(d.get("completedAt")) for d in tasks if d.get("completedAt")) if c]
    if completed:
        result.done_rate_per_s = len(completed) / max(max(completed) - flag_started, 1e-9)
    if len(completed) == result.servers:
        result.wall_s = max(completed) - flag_started
        result.ratio = result.wall_s / result.ideal_s
    result.run_s = run_times(tasks)
    if result.done >= result.servers:
        for outcome in check(stack, scenario, attributes):
            if not outcome.ok:
                result.problems.append(f"{outcome.task.server}: {'; '.join(outcome.problems)}")
    else:
        result.problems.append(f"cut after {args.max_seconds:.0f} s: {result.done} of {result.servers} ended")
    audit = stack.fleet_audit()
    result.overlapping = int(audit["overlapping_installs"])
    result.installs = sum(1 for bmc in audit["bmcs"] for i in bmc["installs"] if i.get("outcome") == "success")
    if result.done >= result.servers and result.installs != result.servers:
        result.problems.append(f"the simulators saw {result.installs} successful installs, not {result.servers}")


def measure(servers: int, args: argparse.Namespace, root: Path) -> Result:
    """One N on a fresh stack under ``root``; always stops the stack."""
    ideal = math.ceil(servers / (args.replicas * args.workers)) * args.install_seconds
    result = Result(
        servers, args.inventory, args.replicas, args.workers, args.install_seconds, args.bmc_processes, ideal
    )
    scenario = build(
        servers,
        install_seconds=args.install_seconds,
        offline_seconds=args.offline_seconds,
        power_seconds=args.power_seconds,
        image_size=args.image_kib * 1024,
        special=False,
        component="bios",
    )
    started = time.monotonic()
    extra = idle_servers(args.inventory - servers)
    stack = Stack(root / f"n{servers}", scenario, bmc_processes=args.bmc_processes, more_servers=extra)
    del extra
    load = LoadSampler().start()
    try:
        stack.start()
        names = [f"flasher-{i}" for i in range(args.replicas)]
        stack.start_replicas(names, _options(args))
        result.startup_s = time.monotonic() - started
        print(f"N={servers}: stack up in {result.startup_s:.0f} s", file=sys.stderr, flush=True)
        _rollout(stack, result, args, names)
        load.stop()
        result.load = load.summary()
        print(f"N={servers}: rollout phase {result.elapsed_s:.0f} s, {result.ended}", file=sys.stderr, flush=True)
        statuses = {name: stack.stop_replica(name, timeout=60) for name in names}
        unclean = {name: status for name, status in statuses.items() if status != 0}
        if unclean:
            result.problems.append(f"replicas exited with {unclean}")
        poll_load = LoadSampler().start()
        uuids = [scenario.uuids[t.server] for t in scenario.tasks]
        result.requeued = requeue(stack, stack.task_attributes(), uuids, args.flag_threads)
        result.polls = polls(stack, args.polls, args.polls - 1)
        poll_load.stop()
        result.poll_load = poll_load.summary()
    finally:
        stack.stop()
        if not result.load:
            load.stop()
            result.load = load.summary()
    return result


def _num(value: float | None, fmt: str = ".0f") -> str:
    return "-" if value is None else format(value, fmt)


def _print_tables(results: list[Result]) -> None:
    print("\nAdmission and rollout\n")
    print(
        "| N | R x C | T (s) | all queued after (s) | admitted / duplicates | wall (s) | ideal (s) | wall / ideal "
        "| tasks done / rate (per s) | median run (s) | CPU s / task: replicas, simulators, inventory, Redis "
        "| inventory requests / task | overlapping | ended | load average |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        kinds = (("replicas", "flasher-"), ("bmcs", "bmcs"), ("inventory", "inventory"), ("redis", "redis"))
        per = {kind: sum(v for k, v in r.cpu_s.items() if k.startswith(pre)) / max(r.done, 1) for kind, pre in kinds}
        requests = sum(r.inventory_requests.values()) / max(r.done, 1)
        print(
            f"| {r.servers:,} | {r.replicas} x {r.workers} | {r.install_seconds:g} | {_num(r.admitted_s)} "
            f"| {r.admission.get('admitted', 0)} / {r.admission.get('duplicates', '-')} | {_num(r.wall_s)} "
            f"| {r.ideal_s:.0f} | {_num(r.ratio, '.2f')} | {r.done} / {_num(r.done_rate_per_s, '.1f')} "
            f"| {_num(r.run_s.get('median'), '.1f')} "
            f"| {per['replicas']:.2f}, {per['bmcs']:.3f}, {per['inventory']:.2f}, {per['redis']:.3f} "
            f"| {requests:.1f} | {r.overlapping} | {r.ended} | {r.load} |"
        )
    print("\nPolls (N tasks open, an inventory of the given size)\n")
    print(
        "| N | inventory | poll | listed | wall (s) | requests | flasher CPU (ms) | inventory CPU (ms) | load average |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        later = [p for p in r.polls[1:-1]]
        rows = [("full (first: enqueues)", r.polls[:1]), ("later, open only (median)", later), ("full", r.polls[-1:])]
        for label, chosen in rows:
            if not chosen:
                continue

            def med(key: str, chosen: list[dict[str, Any]] = chosen) -> float:
                return float(statistics.median(p[key] for p in chosen))

            print(
                f"| {r.servers:,} | {r.inventory:,} | {label} | {med('seen'):.0f} | {med('seconds'):.2f} "
                f"| {med('requests'):.0f} | {1000 * med('flasher_cpu_s'):.0f} | {1000 * med('inventory_cpu_s'):.0f} "
                f"| {r.poll_load} |"
            )
    print("\nMemory at the end of the rollout (RSS / peak, MiB)\n")
    print("| N | process | RSS | peak |")
    print("|---:|---|---:|---:|")
    for r in results:
        for name, mem in r.memory_mib.items():
            print(f"| {r.servers:,} | {name} | {mem.get('rss', 0):.0f} | {mem.get('peak', 0):.0f} |")
    for r in results:
        print(
            f"- N={r.servers:,}: stack up in {r.startup_s:.0f} s; flagging took {r.flag_s:.0f} s; "
            f"requeued for the polls {r.requeued}; inventory requests by route {r.inventory_requests}"
        )
        for problem in r.problems[:10]:
            print(f"  - problem: {problem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, nargs="+", default=[500, 1000], help="N: simulated, flagged servers")
    parser.add_argument("--inventory", type=int, default=20000, help="servers in the inventory (N of them simulated)")
    parser.add_argument("--replicas", type=int, default=4, help="R: flasher replicas")
    parser.add_argument("--workers", type=int, default=16, help="C: workers per replica")
    parser.add_argument("--install-seconds", type=float, default=2.0, help="T: one simulated BIOS install")
    parser.add_argument("--bmc-processes", type=int, default=2, help="simulator processes sharing the BMCs")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="longest rollout phase of one N")
    parser.add_argument("--polls", type=int, default=5, help="polls after the rollout (first and last full), >= 3")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="service.poll_interval (jitter a fifth)")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="service.heartbeat_interval")
    parser.add_argument("--bmc-poll-interval", type=float, default=0.5, help="bmc.poll_interval")
    parser.add_argument("--power-seconds", type=float, default=0.5, help="simulated host power transition")
    parser.add_argument("--offline-seconds", type=float, default=3.0, help="simulated BMC reboot")
    parser.add_argument("--image-kib", type=int, default=256, help="firmware image size")
    parser.add_argument("--flag-threads", type=int, default=8, help="concurrent PUTs when flagging")
    parser.add_argument("--log-level", default="INFO", help="the replicas' log level")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    if args.polls < 3:
        parser.error("--polls: at least 3 (a full one, a later one, a full one)")
    if any(n < 2 or n > args.inventory for n in args.servers):
        parser.error("--servers: each N between 2 and --inventory")
    logger.remove()  # the in-process poller's lines would bury the tables
    logger.add(sys.stderr, level="WARNING")
    results = []
    with workdir("bench-scale-", keep=args.keep) as root:
        for servers in args.servers:
            results.append(measure(servers, args, root))
            print(f"done: {json.dumps(asdict(results[-1]), default=str)}", file=sys.stderr, flush=True)
    _print_tables(results)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2, default=str))
    sys.exit(0 if all(r.ok for r in results) else 1)


if __name__ == "__main__":
    main()
