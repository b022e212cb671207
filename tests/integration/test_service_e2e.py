"""flasher run end to end: real replicas (processes), Redis, the sandbox inventory and simulated BMCs.

Each test builds a world with :mod:`flasher_sandbox.up.scenario` (mixed install modes and priorities, a BIOS install the
BMC fails, a dry run, a cancel, a refused downgrade, power cycles that wait for installs), starts it with
:class:`flasher_sandbox.up.stack.Stack`, breaks something mid-run, and then requires that every task reached its
expected end, none is left queued or active, the BMCs report the expected versions, and the simulators'
audit shows no overlapping installs on any BMC.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from flasher_sandbox.up.command import check
from flasher_sandbox.up.scenario import Scenario, build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(420)]

#: Short leases and fast simulated hardware, so a killed replica's work comes back within seconds.
FAST = ReplicaOptions(
    concurrency=4,
    poll_interval=1.0,
    poll_jitter=0.2,
    lease_seconds=4.0,
    heartbeat_interval=1.0,
    stale_after=8.0,
    bmc_poll_interval=0.3,
)
TERMINAL = {"success", "failed", "cancelled"}


def world(servers: int) -> Scenario:
    return build(servers, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2, image_size=64 * 1024)


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


def statuses(stack: Stack) -> dict[tuple[str, str], str]:
    return {key: str(data.get("status") or "new") for key, data in stack.task_attributes().items()}


def wait_for(
    stack: Stack, condition: Callable[[dict[tuple[str, str], dict[str, Any]]], bool], timeout: float
) -> dict[tuple[str, str], dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        attributes = stack.task_attributes()
        if condition(attributes):
            return attributes
        for name, process in stack.replicas.items():
            if process.alive() is False and name not in killed:
                raise AssertionError(f"replica {name} died:\n{process.tail()}")
        if time.monotonic() > deadline:
            counts: dict[str, int] = {}
            for data in attributes.values():
                counts[str(data.get("status"))] = counts.get(str(data.get("status")), 0) + 1
            raise AssertionError(f"timed out; statuses {counts}")
        time.sleep(0.5)


killed: set[str] = set()


def all_ended(scenario: Scenario) -> Callable[[dict[tuple[str, str], dict[str, Any]]], bool]:
    def ended(attributes: dict[tuple[str, str], dict[str, Any]]) -> bool:
        return all(
            str(attributes.get((scenario.uuids[t.server], t.namespace), {}).get("status")) in TERMINAL
            for t in scenario.tasks
        )

    return ended


def assert_everything_as_expected(stack: Stack, scenario: Scenario, attributes: dict[Any, dict[str, Any]]) -> None:
    outcomes = check(stack, scenario, attributes)
    wrong = [f"{o.task.server} {o.task.kind} ({o.task.why}): {'; '.join(o.problems)}" for o in outcomes if not o.ok]
    assert wrong == [], "\n".join(wrong)
    left = [key for key, data in attributes.items() if data.get("status") in ("queued", "active")]
    assert left == []
    audit = stack.fleet_audit()
    assert audit["overlapping_installs"] == 0
    assert sum(len(b["installs"]) for b in audit["bmcs"]) > 0


def test_three_replicas_survive_one_killed_mid_run(make_stack: Callable[[Scenario], Stack]) -> None:
    scenario = world(60)
    stack = make_stack(scenario)
    for name in ("flasher-0", "flasher-1", "flasher-2"):
        stack.start_replica(name, FAST)
    stack.flag_all()

    def victim_busy(attributes: dict[tuple[str, str], dict[str, Any]]) -> bool:
        return (
            sum(1 for d in attributes.values() if d.get("status") == "active" and d.get("worker") == "flasher-1") >= 2
        )

    busy = wait_for(stack, victim_busy, 120)
    stack.replicas["flasher-1"].kill(signal.SIGKILL)
    killed.add("flasher-1")
    try:
        attributes = wait_for(stack, all_ended(scenario), 300)
    finally:
        killed.discard("flasher-1")

    assert_everything_as_expected(stack, scenario, attributes)
    # The attribute keeps only the newest messages, so a taken-over task's "claimed by ... (attempt 2)" line can
    # scroll out before it ends; its ``attempts`` count stays.
    victims = [key for key, d in busy.items() if d.get("status") == "active" and d.get("worker") == "flasher-1"]
    taken_over = [
        key
        for key in victims
        if int(attributes[key].get("attempts", 0)) > int(busy[key].get("attempts", 0))
        and attributes[key].get("worker") != "flasher-1"
    ]
    assert taken_over, f"no task the killed replica held was run again by another: {[attributes[k] for k in victims]}"
    for name in ("flasher-0", "flasher-2"):
        assert stack.replica_health(name) == 200
        assert stack.stop_replica(name) == 0


def test_every_task_finishes_when_redis_loses_its_data(make_stack: Callable[[Scenario], Stack]) -> None:
    scenario = world(14)
    stack = make_stack(scenario)
    for name in ("flasher-0", "flasher-1"):
        stack.start_replica(name, FAST)
    stack.flag_all()

    def some_done_some_running(attributes: dict[tuple[str, str], dict[str, Any]]) -> bool:
        states = [d.get("status") for d in attributes.values()]
        return states.count("success") >= 3 and states.count("active") >= 2

    wait_for(stack, some_done_some_running, 120)
    assert stack.redis_url is not None
    redis.Redis.from_url(stack.redis_url).flushall()

    attributes = wait_for(stack, all_ended(scenario), 300)

    assert_everything_as_expected(stack, scenario, attributes)
    logs = "".join(path.read_text() for path in stack.logs.glob("flasher-*.log"))
    assert "reclaimed install task" in logs, "no task that was active when Redis lost its data was reclaimed"
    for name in ("flasher-0", "flasher-1"):
        assert stack.stop_replica(name) == 0


def test_every_task_finishes_with_the_inventory_failing_one_call_in_five(
    make_stack: Callable[[Scenario], Stack],
) -> None:
    scenario = world(10)
    stack = make_stack(scenario)
    stack.flag_all()
    stack.set_inventory_faults({"every": 5, "status": 503})
    for name in ("flasher-0", "flasher-1"):
        stack.start_replica(name, FAST)

    attributes = wait_for(stack, all_ended(scenario), 300)
    for name in ("flasher-0", "flasher-1"):
        assert stack.replicas[name].alive() and stack.replica_health(name) == 200
    stack.set_inventory_faults(None)

    assert_everything_as_expected(stack, scenario, attributes)
    for name in ("flasher-0", "flasher-1"):
        assert stack.stop_replica(name) == 0


def test_the_demo_runs_from_what_onboarding_wrote(tmp_path: Path) -> None:
    """``flasher-sandbox up --onboard``'s stack: an inventory without servers, every server onboarded from its BMC
    by ``flasher onboard``, then the demo's tasks (every install mode, a failing BIOS, a dry run, a power cycle
    waiting for an install) end as expected."""
    scenario = world(4)
    seeded_uuids = dict(scenario.uuids)
    stack = Stack(tmp_path / "stack", scenario, onboard=True)
    try:
        stack.start()
        assert set(scenario.uuids) == set(seeded_uuids) and scenario.uuids != seeded_uuids  # the inventory's own
        stack.start_replica("flasher-0", FAST)
        stack.flag_all()
        attributes = wait_for(stack, all_ended(scenario), timeout=150)
        assert_everything_as_expected(stack, scenario, attributes)
    finally:
        assert all(code == 0 for code in stack.stop().values())
