"""A slow inventory delays status writes only: no replica loses a lease it is heartbeating (issue 12, item 5).

Real processes: Redis, the sandbox inventory, simulated BMCs and three ``flasher run`` replicas with the default
lease (15 s) and heartbeat (2 s). While twelve installs run, every inventory call is delayed 4 s for
:data:`SLOW_FOR` seconds (the sandbox's fault injection, ``status: null`` with a ``delay``); with eight request
threads the inventory then answers at most two calls a second, so calls queue for many seconds more. Before the
fix, the heartbeat extended the lease and wrote ``updatedAt`` in one loop, behind the runner's status writes: a
few tasks ended ``failed: lease expired 3 times`` though no replica had crashed. Now the lease is kept by a loop
that only talks to Redis, and every task must end as the scenario expects, with no lease lost on the way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flasher_sandbox.up.command import check
from flasher_sandbox.up.scenario import build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

#: Seconds every inventory call is delayed, and for how long (issue 12 reproduced it with 4 s for 100 s; before the
#: fix a task lost its lease three times over in 45 s, so within each 15 s lease: 30 s, two leases long, shows any
#: lease lost, and keeps this run and the request race under two minutes together, as the issue asks).
DELAY = 4.0
SLOW_FOR = 30.0
#: The defaults of a replica (lease 15 s, heartbeat 2 s), with fast simulated hardware.
OPTIONS = ReplicaOptions(concurrency=4, poll_interval=2.0, poll_jitter=0.5, bmc_poll_interval=0.5)
TERMINAL = {"success", "failed", "cancelled"}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    scenario = build(
        12, install_seconds=2.5, offline_seconds=2.0, power_seconds=0.3, image_size=64 * 1024, special=False
    )
    with Stack(tmp_path / "stack", scenario).running() as running:
        yield running


def _statuses(attributes: dict[tuple[str, str], dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for data in attributes.values():
        status = str(data.get("status") or "new")
        counts[status] = counts.get(status, 0) + 1
    return counts


def _log_events(stack: Stack, text: str) -> list[str]:
    found = []
    for path in sorted(stack.logs.glob("flasher-*.log")):
        for line in path.read_text().splitlines():
            try:
                message = str(json.loads(line).get("message", ""))
            except ValueError:
                message = line
            if text in message:
                found.append(f"{path.stem}: {message.strip()}")
    return found


def test_a_slow_inventory_costs_no_lease_and_fails_no_task(stack: Stack) -> None:
    scenario = stack.scenario
    stack.start_replicas(["flasher-0", "flasher-1", "flasher-2"], OPTIONS)
    stack.flag_all()

    deadline = time.monotonic() + 60
    while sum(1 for d in stack.task_attributes().values() if d.get("status") == "active") < 6:
        assert time.monotonic() < deadline, f"the installs did not start: {_statuses(stack.task_attributes())}"
        time.sleep(0.3)

    stack.set_inventory_faults({"every": 1, "status": None, "delay": DELAY})
    try:
        time.sleep(SLOW_FOR)
    finally:
        stack.set_inventory_faults(None)

    deadline = time.monotonic() + 120
    while True:
        attributes = stack.task_attributes()
        ended = [
            t
            for t in scenario.tasks
            if attributes.get((scenario.uuids[t.server], t.namespace), {}).get("status") in TERMINAL
        ]
        if len(ended) == len(scenario.tasks):
            break
        assert time.monotonic() < deadline, f"not every task ended: {_statuses(attributes)}"
        time.sleep(0.5)

    wrong = [
        f"{o.task.server}: {'; '.join(o.problems)} ({o.detail})" for o in check(stack, scenario, attributes) if not o.ok
    ]
    assert wrong == [], "\n".join(wrong)
    lost = _log_events(stack, "lease lost") + _log_events(stack, "lease expired") + _log_events(stack, "is dead after")
    assert lost == [], "leases were lost though no replica crashed:\n" + "\n".join(lost[:20])
    for name in ("flasher-0", "flasher-1", "flasher-2"):
        assert stack.stop_replica(name) == 0
