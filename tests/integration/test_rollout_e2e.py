"""Fleet rollouts end to end: real replicas (processes), Redis, the sandbox inventory and simulated BMCs.

* 120 servers of two models in six racks; one rollout of the BIOS of both models (a canary of 2, then waves of
  10%, 50% and 100%), at most 12 members active and 2 per rack, the breaker at 3 failures per firmware; one
  model's BMCs fail its BIOS image (a simulator fault); mid-rollout a replica is SIGKILLed and Redis flushed.
  The bad BIOS is attempted only by members that passed their start gate before its third failure was
  recorded, then halted; the other model's BIOS completes everywhere; the simulators' audit shows no rack with
  more than 2 installs at once and no more than 12 in all; no member is lost; the halt is in ``rollout status``
  and in the waiting members' attributes.
* A maintenance window that opens 30 s after the rollout is created: no install starts before it.
"""

from __future__ import annotations

import json
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from flasher.constants import TASK_NAMESPACE
from flasher_sandbox.up.scenario import FLEET_BIOS_SET, LOCATION_NAMESPACE, Scenario, build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

FAST = ReplicaOptions(
    concurrency=6,
    poll_interval=1.0,
    poll_jitter=0.2,
    lease_seconds=4.0,
    heartbeat_interval=1.0,
    stale_after=8.0,
    bmc_poll_interval=0.3,
    extra={"rollout": {"tick_interval": 1.0, "lock_seconds": 20}},
)
SELECT = f"attr={LOCATION_NAMESPACE}~rack~like~r"
RACK_CAP = f"attr:{LOCATION_NAMESPACE}~rack=2"


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[[Scenario], Stack]]:
    stacks: list[Stack] = []

    def make(scenario: Scenario) -> Stack:
        stack = Stack(tmp_path / f"stack-{len(stacks)}", scenario)
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()


def members(stack: Stack) -> dict[str, dict[str, Any]]:
    """Server name -> install attribute data, for every server."""
    names = {uuid: name for name, uuid in stack.scenario.uuids.items()}
    return {names[uuid]: data for (uuid, ns), data in stack.task_attributes().items() if ns == TASK_NAMESPACE}


def wait_for(
    stack: Stack, condition: Callable[[dict[str, dict[str, Any]]], bool], timeout: float, spared: set[str]
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = members(stack)
        if condition(found):
            return found
        for name, process in stack.replicas.items():
            if name not in spared and not process.alive():
                raise AssertionError(f"replica {name} died:\n{process.tail()}")
        if time.monotonic() > deadline:
            counts: dict[str, int] = defaultdict(int)
            for data in found.values():
                counts[str(data.get("status"))] += 1
            raise AssertionError(f"timed out; statuses {dict(counts)}")
        time.sleep(0.5)


def installs_by_server(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Server name -> the audit's install records of its BMC."""
    audit = stack.fleet_audit()
    by_port = {bmc["port"]: bmc["installs"] for bmc in audit["bmcs"]}
    return {name: by_port[stack.bmc_base_port + index] for index, name in enumerate(stack.scenario.names)}


def most_at_once(spans: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans], key=lambda e: (e[0], e[1]))
    most = current = 0
    for _, step in events:
        current += step
        most = max(most, current)
    return most


def claimed_at(data: dict[str, Any]) -> datetime | None:
    for line in data.get("messages") or []:
        if " claimed by " in line:
            return stamp(line.split(" ", 1)[0])
    return None


def failures_recorded(stack: Stack) -> list[tuple[datetime, str]]:
    """(time, line) of every member failure a replica recorded for its rollout's breaker, in time order."""
    found = []
    for path in stack.logs.glob("flasher-*.log"):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if " failed bios " in entry.get("message", "") and entry["message"].startswith("rollout big: member"):
                found.append((stamp(entry["time"]), entry["message"]))
    return sorted(found)


def test_a_rollout_halts_the_bad_bios_and_completes_the_good_one_through_a_kill_and_a_flush(
    make_stack: Callable[[Scenario], Stack],
) -> None:
    # Installs of 1 s: the good model's 60 take about five rounds of 12, so the kill below finds flasher-1 busy
    # mid-rollout (with 0.6 s installs on a quiet machine the whole rollout could end between two looks).
    scenario = build(120, special=False, racks=6, install_seconds=1.0, offline_seconds=1.0, power_seconds=0.2)
    stack = make_stack(scenario)
    bad = [i for i, bmc in enumerate(scenario.fleet.bmcs) if bmc.model == "x12stw"]
    for index in bad:  # the Supermicro BIOS image fails on the BMC, every time
        response = stack.http.put(
            f"{stack.control_url}/fleet/faults/{stack.bmc_base_port + index}",
            json={"task_exception": {"component": "bios", "sticky": True}},
            timeout=30,
        )
        response.raise_for_status()
    bad_names = {scenario.names[i] for i in bad}
    good_names = set(scenario.names) - bad_names
    for name in ("flasher-0", "flasher-1", "flasher-2"):
        stack.start_replica(name, FAST)

    created = stack.flasher(
        "rollout", "create", "big", "--select", SELECT, "--firmware-set", FLEET_BIOS_SET,
        "--waves", "2,10%,50%,100%", "--max-active", "12", "--max-active-per", RACK_CAP, "--max-failures", "3",
    )  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    assert "120 members in 4 waves (2, 10, 48, 60)" in " ".join(created.stdout.split())

    def midway(found: dict[str, dict[str, Any]]) -> bool:
        done = sum(1 for data in found.values() if data.get("status") == "success")
        busy = sum(1 for d in found.values() if d.get("status") == "active" and d.get("worker") == "flasher-1")
        return done >= 12 and busy >= 1  # past the first two waves (2 and 10 members), flasher-1 running one

    wait_for(stack, midway, 240, set())
    stack.replicas["flasher-1"].kill(signal.SIGKILL)
    assert stack.redis_url is not None
    redis.Redis.from_url(stack.redis_url).flushall()

    def settled(found: dict[str, dict[str, Any]]) -> bool:
        good_done = all(found[n].get("status") == "success" for n in good_names)
        bad_still = [n for n in bad_names if found[n].get("status") in ("queued", "active")]
        return good_done and not bad_still

    found = wait_for(stack, settled, 300, {"flasher-1"})

    # The other models' BIOS completed on every one of their servers, and the BMCs report it.
    bios_of = {fw["vendor"]: fw["version"] for fw in scenario.sets[FLEET_BIOS_SET]["firmware"]}
    for index, name in enumerate(scenario.names):
        if name in good_names:
            versions = {c["slug"]: c["version"] for c in stack.bmc_state(index)["components"]}
            assert versions["bios"] == bios_of[scenario.fleet.bmcs[index].vendor], name
    # Nothing lost: every member either ended or waits, saying why, and none is left queued or active.
    statuses = {name: data.get("status") for name, data in found.items()}
    assert set(statuses) == set(scenario.names)
    assert {statuses[n] for n in bad_names} <= {"failed", "requested"}
    waiting_bad = [n for n in bad_names if statuses[n] == "requested"]
    assert waiting_bad, "no member of the halted BIOS was kept waiting"
    for name in waiting_bad:
        last = found[name]["messages"][-1]
        assert "halted after" in last and "bios 1.5a (supermicro x12stw)" in last

    # The breaker was tight: every member that reached a bad BIOS install had passed its start gate (its claim)
    # before the third failure was recorded; none started after.
    installs = installs_by_server(stack)
    attempted = {n for n in bad_names if any(r["component"] == "bios" for r in installs[n])}
    failed = [n for n in bad_names if statuses[n] == "failed"]
    recorded = failures_recorded(stack)
    assert len(recorded) >= 3 and len(failed) >= 3
    third = recorded[2][0]
    claims = {n: claimed_at(found[n]) or third for n in attempted}
    late = {n: claim for n, claim in claims.items() if claim > third + timedelta(seconds=1)}
    assert not late, f"bad BIOS installs started after its third failure ({third}): {late}"
    assert len(attempted) <= 3 + 12

    # Caps, from the simulators' audit: never more than 2 installs at once in a rack, 12 in all.
    spans = {
        name: (min(stamp(r["start"]) for r in records), max(stamp(r["end"] or r["start"]) for r in records))
        for name, records in installs.items()
        if records
    }
    for rack in {scenario.rack_of(n) for n in scenario.names}:
        in_rack = [span for name, span in spans.items() if scenario.rack_of(name) == rack]
        assert most_at_once(in_rack) <= 2, rack
    assert most_at_once(list(spans.values())) <= 12
    assert stack.fleet_audit()["overlapping_installs"] == 0

    # The halt is in rollout status, naming the failing servers and their errors.
    status = stack.flasher("rollout", "status", "big", "--json")
    assert status.returncode == 1, status.stderr  # halted firmware and failures
    view = json.loads(status.stdout)
    (halt,) = view["halts"]
    assert halt["firmware"] == "bios 1.5a (supermicro x12stw)"
    assert {f["name"] for f in halt["failures"]} == set(failed)
    assert all("Exception" in f["error"] or "failed" in f["error"] for f in halt["failures"])
    assert view["counts"]["success"] == len(good_names)
    assert view["waiting"] == {"breaker": len(waiting_bad)}
    logs = "".join(path.read_text() for path in stack.logs.glob("flasher-*.log"))
    assert "state rebuilt from the inventory (Redis had lost it)" in logs
    for name in ("flasher-0", "flasher-2"):
        assert stack.stop_replica(name) == 0


def test_no_install_starts_before_the_window_opens(make_stack: Callable[[Scenario], Stack]) -> None:
    scenario = build(8, special=False, racks=2, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    stack = make_stack(scenario)
    stack.start_replica("flasher-0", FAST)
    opens = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=30)
    closes = opens + timedelta(hours=1)
    window = f"{opens:%H:%M:%S}-{closes:%H:%M:%S} UTC"

    created = stack.flasher(
        "rollout", "create", "night", "--select", SELECT, "--firmware-set", FLEET_BIOS_SET, "--window", window,
        "--max-active", "4",
    )  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr

    def told(found: dict[str, dict[str, Any]]) -> bool:
        return all("waiting: maintenance window opens" in (d.get("messages") or [""])[-1] for d in found.values())

    wait_for(stack, told, 25, set())
    assert datetime.now(UTC) < opens, "the machine was too slow to see the members wait"
    found = wait_for(stack, lambda f: all(d.get("status") == "success" for d in f.values()), 120, set())
    assert len(found) == 8
    starts = [stamp(r["start"]) for records in installs_by_server(stack).values() for r in records]
    assert len(starts) >= 8 and min(starts) >= opens
    assert stack.stop_replica("flasher-0") == 0
