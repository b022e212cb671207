"""Rollout operations and the controller against the sandbox inventory and a real Redis (no BMC is needed: nothing
here runs an install): plan and the compliance counts, create (record, members, waves, refusals), status, pause,
resume, abort, retry-failed, the record's firmware set, and the controller's tick and start gate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY

from flasher.config import Settings
from flasher.constants import BMC_INFO_NAMESPACE, ROLLOUT_NAMESPACE, TASK_NAMESPACE
from flasher.inventory import InventoryClient
from flasher.queue import TaskQueue
from flasher.rollout import operations
from flasher.rollout.controller import GateAction, RolloutController
from flasher.rollout.definition import Baseline, RolloutPhase, RolloutSpec, RolloutState
from flasher.rollout.members import FirmwareKey, read_member
from flasher.rollout.policy import Evaluation, WaitReason
from flasher.rollout.slots import RolloutSlots
from flasher.rollout.store import (
    RolloutConflictError,
    RolloutError,
    RolloutNotFoundError,
    RolloutStore,
    StoredRollout,
)
from flasher.service.admission import Action, Admission
from flasher.task.model import InstallTask, TaskKind, parse_install_task
from flasher_sandbox.servers import InventoryServer
from flasher_sandbox.up.scenario import FLEET_BIOS_SET, LOCATION_NAMESPACE, Scenario, build

pytestmark = pytest.mark.integration

RACK = f"attr:{LOCATION_NAMESPACE}~rack"
SELECT = [f"attr={LOCATION_NAMESPACE}~rack~like~r"]


@dataclass
class World:
    scenario: Scenario
    settings: Settings
    inventory: InventoryClient
    queue: TaskQueue
    slots: RolloutSlots
    admission: Admission
    controller: RolloutController

    def uuid(self, name: str) -> str:
        return self.scenario.uuids[name]

    def task(self, name: str) -> InstallTask:
        return self.task_of(self.uuid(name))

    def task_of(self, server_id: str) -> InstallTask:
        return parse_install_task(self.inventory.get_attribute(server_id, TASK_NAMESPACE).as_object())

    def tick(self, stored: StoredRollout) -> Evaluation:
        """One tick, its waiting reasons written before it returns (the replica's reason writer does it after)."""
        evaluation = self.controller.tick(stored)
        self.controller.flush_reasons()
        return evaluation

    def spec(self, **changes: Any) -> RolloutSpec:
        return RolloutSpec.from_data({"name": "bios", "select": SELECT, "firmware-set": FLEET_BIOS_SET, **changes})


@pytest.fixture
def world(clean_inventory: InventoryServer, redis_url: str) -> Iterator[World]:
    scenario = build(2, special=False, racks=2, rollout_servers=8, image_size=4096)
    clean_inventory.seed(scenario.seed(bmc_base_port=20000, image_base_url="http://127.0.0.1:9/images"))
    settings = Settings(
        inventory={"url": clean_inventory.url, "retry_deadline": 0.5, "retry_max_wait": 0.05},
        redis={"url": redis_url, "retry_deadline": 1},
        rollout={"expected_minutes": {"bios": 20}},
    )
    inventory = InventoryClient(settings.inventory)
    queue = TaskQueue.from_settings(settings)
    slots = RolloutSlots(redis.Redis.from_url(redis_url), retry_deadline=1)
    admission = Admission(inventory, queue, settings, worker_id="flasher-a")
    controller = RolloutController(
        inventory, slots, settings, worker_id="flasher-a", admit=admission.admit_rollout_member
    )
    yield World(scenario, settings, inventory, queue, slots, admission, controller)


def test_plan_counts_per_facility_model_and_component(world: World) -> None:
    busy = world.uuid(world.scenario.names[0])
    world.inventory.upsert_attribute(busy, TASK_NAMESPACE, {"status": "queued", "taskID": "t-x"})
    no_bmc = world.uuid(world.scenario.names[1])
    world.inventory.delete_attribute(no_bmc, BMC_INFO_NAMESPACE)

    fleet = operations.plan(world.inventory, SELECT, Baseline(firmware_set=FLEET_BIOS_SET))

    counts = fleet.counts()
    assert counts["servers"] == 10 and counts["busy"] == 1
    assert counts["outcome"] == {"install": 9, "refused": 1}
    assert counts["vendor/model"] == {"dell/r6515": {"install": 5}, "supermicro/x12stw": {"install": 4, "refused": 1}}
    assert counts["component"] == {"bios": {"install": 9}}
    refused = next(s for s in fleet.servers if str(s.server.uuid) == no_bmc)
    assert refused.reason == "no BMC address (attribute sh.hollow.bmc_info, key address)"
    assert len(fleet.members()) == 8  # the busy one is not a member
    compliance = operations.plan(world.inventory, ["all"], Baseline(firmware_set="dell-r6515"))
    dells = [s for s in compliance.servers if s.server.vendor == "dell"]
    assert {s.outcome.value for s in dells} == {"install"}
    assert {s.outcome.value for s in compliance.servers if s.server.vendor == "supermicro"} == {"refused"}


def test_create_writes_the_record_then_the_members_in_waves(world: World) -> None:
    busy = world.uuid(world.scenario.names[2])
    world.inventory.upsert_attribute(busy, TASK_NAMESPACE, {"status": "requested", "requester": "bob"})

    result = operations.create(world.inventory, world.spec(waves="1,50%,100%", **{"max-active": 2}), requester="alice")

    record = result.rollout.record
    assert record.phase is RolloutPhase.ACTIVE and record.state is RolloutState.RUNNING and record.generation == 1
    assert record.members == 9 and record.wave_sizes == [1, 4, 4] and record.requester == "alice"
    assert [n.server for n in record.refused] == [busy] and "a new install request" in record.refused[0].reason
    assert sorted(Counter(result.members.values()).items()) == [(1, 1), (2, 4), (3, 4)]
    member = next(iter(result.members))
    data = world.inventory.get_attribute(member, TASK_NAMESPACE).as_object()
    assert data["status"] == "requested" and data["firmwareSet"] == FLEET_BIOS_SET and data["requester"] == "alice"
    assert data["rollout"]["name"] == "bios" and data["rollout"]["generation"] == 1
    assert data["rollout"]["firmware"] in (["bios 2.12.2"], ["bios 1.5a"])
    assert "member of rollout bios" in data["messages"][-1]
    fw_set = world.inventory.get_firmware_set("flasher-rollout/bios")
    assert {fw.component for fw in fw_set.component_firmware} == {"bios"} and len(fw_set.component_firmware) == 2
    assert fw_set.labels == {}
    assert fw_set.attribute(ROLLOUT_NAMESPACE) is not None
    with pytest.raises(RolloutError, match="exists already"):
        operations.create(world.inventory, world.spec(), requester="alice")
    listed, problems = operations.list_rollouts(world.inventory)
    assert [r.name for r in listed] == ["bios"] and problems == []


def test_pause_resume_abort_and_conflicts(world: World) -> None:
    operations.create(world.inventory, world.spec(), requester="alice")
    paused = operations.pause(world.inventory, "bios", by="bob")
    assert paused.record.state is RolloutState.PAUSED and paused.record.updated_by == "bob"
    with pytest.raises(RolloutError, match="paused already"):
        operations.pause(world.inventory, "bios", by="bob")
    view = operations.status(world.inventory, "bios", world.settings.rollout)
    assert view.state_text() == "paused" and set(view.evaluation.waiting_by_reason()) == {"paused"}
    operations.resume(world.inventory, "bios", by="carol")
    store = RolloutStore(world.inventory)
    stale = store.get("bios")
    operations.pause(world.inventory, "bios", by="dave")
    with pytest.raises(RolloutConflictError, match="changed since it was read"):
        store.save(stale, stale.record.with_event("x", by="eve", now=stale.record.updated_at))  # type: ignore[arg-type]
    aborted = operations.abort(world.inventory, "bios", by="frank")
    assert len(aborted.changed) == 10
    assert {world.task(n).status.value for n in world.scenario.rollout_names} | {
        world.task(n).status.value for n in world.scenario.names[:2]
    } == {"cancelled"}
    with pytest.raises(RolloutError, match="aborted already"):
        operations.abort(world.inventory, "bios", by="frank")
    with pytest.raises(RolloutError, match="create a new rollout"):
        operations.resume(world.inventory, "bios", by="frank")
    with pytest.raises(RolloutNotFoundError):
        operations.status(world.inventory, "nope", world.settings.rollout)


def test_the_plain_poll_leaves_members_to_the_controller(world: World) -> None:
    result = operations.create(world.inventory, world.spec(), requester="alice")
    server_id = next(iter(result.members))
    server = world.inventory.get_server(server_id)
    outcome = world.admission.reconcile(server, TaskKind.INSTALL)
    assert outcome.action is Action.NONE and "member of rollout bios" in outcome.detail
    assert world.inventory.get_attribute(server_id, TASK_NAMESPACE).as_object()["status"] == "requested"
    assert world.queue.entry(server_id) is None


def test_the_tick_admits_under_the_caps_and_says_why_the_others_wait(world: World) -> None:
    operations.create(
        world.inventory,
        world.spec(waves="2,100%", **{"max-active": 3, "max-active-per": [f"{RACK}=1"]}),
        requester="alice",
    )
    stored = RolloutStore(world.inventory).get("bios")

    evaluation = world.tick(stored)

    # The canary is the first server of each model (round robin): both stand in rack r1, capped at 1.
    assert len(evaluation.admit) == 1
    statuses = {n: world.task(n).status.value for n in world.scenario.names}
    queued = [n for n, s in statuses.items() if s == "queued"]
    assert len(queued) == 1 and world.scenario.rack_of(queued[0]) == "r1"
    assert world.slots.holders("bios") == [world.uuid(queued[0])]
    waiting = [n for n, s in statuses.items() if s == "requested"]
    lines = Counter(world.task(n).messages[-1].split(" ", 1)[1] for n in waiting)
    assert lines == {f"waiting: cap {RACK}=r1 1/1 active": 1, "waiting: wave 2 opens when wave 1 has ended": 8}
    assert REGISTRY.get_sample_value("flasher_rollout_members", {"rollout": "bios", "status": "new"}) == 10
    assert REGISTRY.get_sample_value("flasher_rollout_waiting", {"rollout": "bios", "reason": "wave"}) == 8
    assert REGISTRY.get_sample_value("flasher_rollout_waiting", {"rollout": "bios", "reason": "cap"}) == 1
    before = [world.task(n).messages for n in waiting]
    world.tick(stored)  # the same reasons again: nothing rewritten
    assert [world.task(n).messages for n in waiting] == before

    # Redis loses everything: the next tick rebuilds the queued members' slots before it admits anyone.
    world.slots.client.flushall()
    world.tick(stored)
    assert sorted(world.slots.holders("bios")) == sorted(world.uuid(n) for n in queued)


def test_the_start_gate(world: World) -> None:
    operations.create(world.inventory, world.spec(**{"max-active": 1}), requester="alice")
    stored = RolloutStore(world.inventory).get("bios")
    world.tick(stored)
    queued = next(n for n in world.scenario.names if world.task(n).status.value == "queued")
    other = next(n for n in world.scenario.names if n != queued)
    server = world.inventory.get_server(world.uuid(queued))

    assert world.controller.gate(server, world.task(queued)).action is GateAction.GO
    # A member that holds no slot (Redis lost it; a late admission) gets one now, or waits for the cap.
    other_server = world.inventory.get_server(world.uuid(other))
    verdict = world.controller.gate(other_server, world.task(other))
    assert (verdict.action, verdict.wait, verdict.reason) == (
        GateAction.WAIT,
        WaitReason.CAP,
        "cap max-active 1/1 active",
    )

    # Three failures of the member's BIOS halt it: the gate says so, naming the servers.
    ref = world.task(queued).rollout
    assert ref is not None
    key = FirmwareKey("bios", ref.firmware[0].split()[1], server.vendor or "", server.model or "")
    for index in range(3):
        world.slots.record_end("bios", 1, world.uuid(world.scenario.names[index]), [key], [key])
    verdict = world.controller.gate(server, world.task(queued))
    assert verdict.action is GateAction.WAIT and verdict.wait is WaitReason.BREAKER
    assert verdict.reason.startswith(f"firmware {key.label} halted after 3 failures (breaker: 3): ")
    assert world.scenario.names[0] in verdict.reason

    operations.pause(world.inventory, "bios", by="bob")
    assert world.controller.gate(server, world.task(queued)).reason == "rollout paused by bob"
    operations.resume(world.inventory, "bios", by="bob")
    operations.abort(world.inventory, "bios", by="bob")
    assert world.controller.gate(server, world.task(queued)).action is GateAction.CANCEL


def test_the_gate_keeps_members_outside_their_window(world: World) -> None:
    operations.create(world.inventory, world.spec(window=["Mon 00:00-Mon 00:10 UTC"]), requester="alice")
    stored = RolloutStore(world.inventory).get("bios")
    evaluation = world.tick(stored)
    assert evaluation.admit == () or all(
        world.task(n).status.value == "queued" for n in world.scenario.names if world.uuid(n) in evaluation.admit
    )
    waits = {w.reason for w in evaluation.waits.values()}
    assert waits == {WaitReason.WINDOW}  # 20 minutes of BIOS never fit in a 10-minute window
    name = world.scenario.names[0]
    assert "no maintenance window is long enough" in world.task(name).messages[-1]


def test_retry_failed_makes_failed_members_new_in_a_new_generation(world: World) -> None:
    result = operations.create(world.inventory, world.spec(), requester="alice")
    failed_id = next(iter(result.members))
    data = world.inventory.get_attribute(failed_id, TASK_NAMESPACE).as_object()
    world.inventory.replace_attribute(
        failed_id, TASK_NAMESPACE, {**data, "status": "failed", "taskID": "t-1", "error": "BMC task failed"}
    )
    retried = operations.retry_failed(world.inventory, "bios", by="bob")
    assert retried.changed == [failed_id] and retried.rollout.record.generation == 2
    with pytest.raises(RolloutError, match="no failed member of generation 2"):
        operations.retry_failed(world.inventory, "bios", by="bob")
    record = RolloutStore(world.inventory).get("bios").record
    assert record.generation == 2
    task = read_member(world.inventory.get_server(failed_id), "bios")
    assert task is not None and task.status.value == "requested" and task.rollout is not None
    assert task.rollout.generation == 2 and task.task_id is None and task.error is None
    assert "retry-failed, generation 2" in task.messages[-1] and "BMC task failed" in task.messages[-1]


def test_a_halt_seen_in_the_inventory_holds_the_firmware_and_is_counted_once(world: World) -> None:
    result = operations.create(world.inventory, world.spec(), requester="alice")
    dells = [s for s in result.members if world.inventory.get_server(s).vendor == "dell"]
    for server_id in dells[:3]:
        data = world.inventory.get_attribute(server_id, TASK_NAMESPACE).as_object()
        failed = {**data, "status": "failed", "taskID": "t-1", "error": "bios: task ended Exception"}
        failed["Firmware"] = {"bios": {"version": "2.12.2", "status": "failed"}}
        world.inventory.replace_attribute(server_id, TASK_NAMESPACE, failed)
    stored = RolloutStore(world.inventory).get("bios")
    labels = {"rollout": "bios", "firmware": "bios|2.12.2|dell|r6515"}
    before = REGISTRY.get_sample_value("flasher_rollout_halts_total", labels) or 0

    evaluation = world.tick(stored)
    world.tick(stored)

    assert [h.firmware.label for h in evaluation.halts] == ["bios 2.12.2 (dell r6515)"]
    assert REGISTRY.get_sample_value("flasher_rollout_halts_total", labels) == before + 1
    held = [s for s in dells[3:] if world.task_of(s).status.value == "requested"]
    assert held == dells[3:]
    assert all("halted after 3 failures (breaker: 3)" in world.task_of(s).messages[-1] for s in held)
    supermicros = [s for s in result.members if s not in dells]
    assert {world.task_of(s).status.value for s in supermicros} == {"queued"}
    assert world.slots.counts("bios", 1, [evaluation.halts[0].firmware]) == {evaluation.halts[0].firmware: (3, 3)}
