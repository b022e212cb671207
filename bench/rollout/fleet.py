"""Fleet rollout benchmark: one ``flasher rollout`` over N simulated servers, under caps, in waves.

    .venv/bin/python -m bench.rollout.fleet --servers 1000 --max-active 50 --racks 20 --per-rack 3 --install-seconds 5

Starts a fresh sandbox (:class:`flasher_sandbox.up.stack.Stack`: Redis, the inventory, one ``flasher-sandbox
bmc`` process simulating every BMC, an image server) whose servers stand in ``--racks`` racks, starts ``R``
replicas of ``C`` workers (``--replicas``, ``--workers``; R x C should exceed the cap, so workers never limit),
then runs ``flasher rollout create`` with the BIOS of both models as the baseline (each member installs one
BIOS of ``--install-seconds``), ``--waves``, ``--max-active`` and ``--max-active-per rack=<per-rack>``, and waits
until every member succeeded. It reports:

* ``create``: seconds ``rollout create`` took (planning every server, writing the record and every member);
* ``wall``: from the first install's start to the last install's end, in the simulators' audit; beside the ideal
  under the caps ``ceil(N / cap) * T`` (``cap`` = min(max-active, racks x per-rack), ``T`` = the install time);
  the ideal with the waves as barriers and each wave's own spread over the racks, ``sum over waves of
  max(ceil(n_w / max-active), max over racks ceil(n_w,rack / per-rack)) * T``; and that ideal with ``T`` = the
  median member's slot time (admission to end: ``createdAt`` to ``completedAt``, whole seconds), which is what a
  cap's slot is held for: the BMC's install plus flasher's own steps (claim, plan, connect, image, confirm,
  status writes); the ratio of the wall to it is the controller's overhead on top;
* ``wave gaps``: for each wave after the first, from the end of the last install of the waves before it to the
  first install start of it (audit times: the controller's reaction, admission, claim and the member's first
  steps up to the BMC);
* the most installs at once (in all and per rack) seen in the audit, which must not pass the caps;
* the flasher replicas' CPU seconds per member over the rollout (``utime + stime`` from ``/proc``), the
  controller's tick (which lists every member) included.

Everything binds to 127.0.0.1 and is stopped at the end; the work directory is removed (``--keep`` keeps it).
Prints a Markdown table (``--json``: every figure).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.support import LoadSampler, cpu_seconds, status_count, workdir
from flasher_sandbox.up.scenario import FLEET_BIOS_SET, LOCATION_NAMESPACE, build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

_ENDED = ("success", "failed", "cancelled")


@dataclass
class Result:
    """The figures of one run (module docstring)."""

    servers: int
    cap: int
    install_seconds: float
    waves: list[int] = field(default_factory=list)
    create_s: float = 0.0
    wall_s: float | None = None
    ideal_s: float = 0.0
    ideal_waves_s: float = 0.0
    rounds: int = 0
    slot_s: float | None = None
    ideal_slot_s: float | None = None
    wave_gaps_s: list[float] = field(default_factory=list)
    most_at_once: int = 0
    most_per_rack: int = 0
    cpu_per_member_s: float | None = None
    ended: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    load: str = ""

    @property
    def ok(self) -> bool:
        """Every member succeeded and no cap was passed."""
        return not self.problems


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda e: (e[0], e[1]))
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def _wait(stack: Stack, servers: int, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while True:
        counts = {s: status_count(stack.http, stack.inventory_url, s) for s in _ENDED}
        if sum(counts.values()) >= servers or time.monotonic() > deadline:
            return counts
        for name, process in stack.replicas.items():
            if not process.alive():
                raise RuntimeError(f"replica {name} died:\n{process.tail()}")
        time.sleep(2.0)


def measure(args: argparse.Namespace, root: Path) -> Result:
    """One run on a fresh stack under ``root``; always stops the stack."""
    cap = min(args.max_active, args.racks * args.per_rack)
    result = Result(args.servers, cap, args.install_seconds)
    scenario = build(
        args.servers,
        install_seconds=args.install_seconds,
        offline_seconds=args.offline_seconds,
        power_seconds=args.power_seconds,
        image_size=args.image_kib * 1024,
        special=False,
        racks=args.racks,
    )
    options = ReplicaOptions(
        concurrency=args.workers,
        poll_interval=args.poll_interval,
        poll_jitter=args.poll_interval / 5,
        heartbeat_interval=args.heartbeat,
        lease_seconds=max(15.0, 4 * args.heartbeat),
        stale_after=max(20.0, 6 * args.heartbeat),
        bmc_poll_interval=args.bmc_poll_interval,
        log_level=args.log_level,
        extra={"rollout": {"tick_interval": args.tick_interval}},
    )
    stack = Stack(root / "stack", scenario)
    load = LoadSampler().start()
    try:
        stack.start()
        for index in range(args.replicas):
            stack.start_replica(f"flasher-{index}", options)
        cpu_before = sum(cpu_seconds(p.pid) for p in stack.replicas.values())
        started = time.monotonic()
        created = stack.flasher(
            "rollout", "create", "bench", "--select", f"attr={LOCATION_NAMESPACE}~rack~like~r",
            "--firmware-set", FLEET_BIOS_SET, "--waves", args.waves, "--max-active", str(args.max_active),
            "--max-active-per", f"attr:{LOCATION_NAMESPACE}~rack={args.per_rack}", timeout=args.timeout,
        )  # fmt: skip
        result.create_s = time.monotonic() - started
        if created.returncode != 0:
            result.problems.append(f"rollout create failed: {created.stdout}{created.stderr}")
            return result
        result.ended = _wait(stack, args.servers, args.timeout)
        cpu_after = sum(cpu_seconds(p.pid) for p in stack.replicas.values())
        result.cpu_per_member_s = (cpu_after - cpu_before) / args.servers
        status = stack.flasher("rollout", "status", "bench", "--json")
        view = json.loads(status.stdout)
        result.waves = [w["size"] for w in view["waves"]]
        _figures(stack, result, view)
    finally:
        stack.stop()
        load.stop()
        result.load = load.summary()
    if result.ended.get("success", 0) != args.servers:
        result.problems.append(f"not every member succeeded: {result.ended}")
    return result


def _figures(stack: Stack, result: Result, view: dict[str, Any]) -> None:
    scenario = stack.scenario
    wave_of = {m["name"]: m["wave"] for m in view["members"]}
    audit = stack.fleet_audit()
    by_port = {bmc["port"]: bmc["installs"] for bmc in audit["bmcs"]}
    spans: dict[str, tuple[datetime, datetime]] = {}
    for index, name in enumerate(scenario.names):
        records = [r for r in by_port[stack.bmc_base_port + index] if r.get("end")]
        if records:
            spans[name] = (min(_stamp(r["start"]) for r in records), max(_stamp(r["end"]) for r in records))
    if len(spans) != result.servers:
        result.problems.append(f"the audit shows installs on {len(spans)} BMCs, not {result.servers}")
    if not spans:
        return
    result.wall_s = (max(e for _, e in spans.values()) - min(s for s, _ in spans.values())).total_seconds()
    result.ideal_s = math.ceil(result.servers / result.cap) * result.install_seconds
    max_active = int(view["record"]["policy"].get("maxActive") or result.cap)
    per_rack = stack_per_rack(result, view)
    for wave in sorted(set(wave_of.values())):
        names = [n for n, w in wave_of.items() if w == wave]
        in_rack: dict[str, int] = {}
        for name in names:
            in_rack[scenario.rack_of(name)] = in_rack.get(scenario.rack_of(name), 0) + 1
        result.rounds += max(math.ceil(len(names) / max_active), *(math.ceil(n / per_rack) for n in in_rack.values()))
    result.ideal_waves_s = result.rounds * result.install_seconds
    slots = []
    for data in stack.task_attributes().values():
        if data.get("createdAt") and data.get("completedAt"):
            slots.append((_stamp(data["completedAt"]) - _stamp(data["createdAt"])).total_seconds())
    if slots:
        result.slot_s = statistics.median(slots)
        result.ideal_slot_s = result.rounds * result.slot_s
    result.most_at_once = _most_at_once(list(spans.values()))
    racks = {scenario.rack_of(n) for n in spans}
    result.most_per_rack = max(
        _most_at_once([span for n, span in spans.items() if scenario.rack_of(n) == rack]) for rack in racks
    )
    if result.most_at_once > result.cap or result.most_per_rack > stack_per_rack(result, view):
        result.problems.append(f"a cap was passed: {result.most_at_once} at once, {result.most_per_rack} in a rack")
    waves = sorted(set(wave_of.values()))
    for wave in waves[1:]:
        before = [spans[n][1] for n, w in wave_of.items() if w < wave and n in spans]
        after = [spans[n][0] for n, w in wave_of.items() if w == wave and n in spans]
        if before and after:
            result.wave_gaps_s.append((min(after) - max(before)).total_seconds())


def stack_per_rack(result: Result, view: dict[str, Any]) -> int:
    """The per-rack cap the rollout's record holds."""
    caps = view["record"]["policy"].get("maxActivePer") or []
    return int(caps[0]["max"]) if caps else result.cap


def _row(r: Result) -> str:
    def num(value: float | None, fmt: str = ".0f") -> str:
        return "-" if value is None else format(value, fmt)

    ratio = None if r.wall_s is None or not r.ideal_waves_s else r.wall_s / r.ideal_waves_s
    ratio_slot = None if r.wall_s is None or not r.ideal_slot_s else r.wall_s / r.ideal_slot_s
    gaps = ", ".join(f"{g:.1f}" for g in r.wave_gaps_s) or "-"
    return (
        f"| {r.servers:,} | {r.cap} | {r.install_seconds:g} | {'/'.join(str(n) for n in r.waves)} | {r.create_s:.0f} "
        f"| {num(r.wall_s)} | {r.ideal_s:.0f} | {r.ideal_waves_s:.0f} | {num(ratio, '.2f')} | {num(r.slot_s, '.1f')} "
        f"| {num(r.ideal_slot_s)} | {num(ratio_slot, '.2f')} | {gaps} | {r.most_at_once} / {r.most_per_rack} "
        f"| {num(r.cpu_per_member_s, '.2f')} | {r.ended.get('success', 0)}/{r.servers} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=1000, help="simulated servers, every one a member")
    parser.add_argument("--racks", type=int, default=20, help="racks the servers stand in (consecutive blocks)")
    parser.add_argument("--max-active", type=int, default=50, help="the rollout's --max-active")
    parser.add_argument("--per-rack", type=int, default=3, help="the rollout's --max-active-per rack=N")
    parser.add_argument("--waves", default="10,10%,50%,100%", help="the rollout's --waves")
    parser.add_argument("--install-seconds", type=float, default=5.0, help="T: one simulated BIOS install")
    parser.add_argument("--replicas", type=int, default=2, help="flasher replicas")
    parser.add_argument("--workers", type=int, default=32, help="workers per replica")
    parser.add_argument("--poll-interval", type=float, default=5.0, help="service.poll_interval (jitter a fifth)")
    parser.add_argument("--tick-interval", type=float, default=2.0, help="rollout.tick_interval")
    parser.add_argument("--heartbeat", type=float, default=5.0, help="service.heartbeat_interval")
    parser.add_argument("--bmc-poll-interval", type=float, default=0.5, help="bmc.poll_interval")
    parser.add_argument("--power-seconds", type=float, default=0.5, help="simulated host power transition")
    parser.add_argument("--offline-seconds", type=float, default=3.0, help="simulated BMC reboot")
    parser.add_argument("--image-kib", type=int, default=256, help="firmware image size")
    parser.add_argument("--timeout", type=float, default=3600.0, help="longest wait for the rollout")
    parser.add_argument("--log-level", default="INFO", help="the replicas' log level")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON too")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args()
    with workdir("bench-fleet-", keep=args.keep) as root:
        result = measure(args, root)
    print(f"done: {asdict(result)}", file=sys.stderr, flush=True)
    print(
        "| servers | cap | T (s) | waves | create (s) | wall (s) | ideal ⌈N/cap⌉·T | ideal, waves and racks "
        "| wall / ideal (waves) | member slot (s, median) | ideal with that | wall / that | wave gaps (s) "
        "| most at once / per rack | replica CPU s / member | ended |"
    )
    print("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|")
    print(_row(result))
    print(f"- {result.load}")
    for problem in result.problems[:20]:
        print(f"  - problem: {problem}")
    if args.json:
        print(json.dumps(asdict(result), indent=2, default=str))
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
