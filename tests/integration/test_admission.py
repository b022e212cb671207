"""Admission and the poller against the sandbox inventory and a real Redis."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flasher.config import Settings
from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from flasher.inventory import InventoryClient
from flasher.inventory.errors import InventoryError
from flasher.metrics import TASKS
from flasher.queue import TaskQueue
from flasher.queue.pollshare import ADMITTED
from flasher.service.admission import Action, Admission, request_task_id
from flasher.service.poller import Poller
from flasher.task.model import TaskKind, rfc3339, utc_now
from flasher_sandbox.servers import InventoryServer

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "flasher_sandbox" / "inventory" / "example-seed.yaml"


@pytest.fixture
def world(clean_inventory: InventoryServer, redis_url: str) -> dict[str, Any]:
    ids = clean_inventory.seed(yaml.safe_load(SEED.read_text()))
    settings = Settings(
        inventory={"url": clean_inventory.url, "retry_deadline": 0.5, "retry_max_wait": 0.05},
        redis={"url": redis_url},
        queue={"lease_seconds": 1, "max_attempts": 2},
        service={"stale_after": 30},
    )
    inventory = InventoryClient(settings.inventory)
    queue = TaskQueue.from_settings(settings)
    return {
        "settings": settings,
        "inventory": inventory,
        "queue": queue,
        "servers": ids["servers"],
        "admission": Admission(inventory, queue, settings, worker_id="flasher-a"),
        "server": clean_inventory,
    }


def flag(world: dict[str, Any], name: str, data: dict[str, Any], namespace: str = TASK_NAMESPACE) -> str:
    uuid: str = world["servers"][name]
    world["inventory"].upsert_attribute(uuid, namespace, data)
    return uuid


def reconcile(world: dict[str, Any], uuid: str, kind: TaskKind = TaskKind.INSTALL, who: str = "admission") -> Any:
    server = world["inventory"].get_server(uuid)
    return world[who].reconcile(server, kind)


def attribute(world: dict[str, Any], uuid: str, namespace: str = TASK_NAMESPACE) -> dict[str, Any]:
    data: dict[str, Any] = world["inventory"].get_attribute(uuid, namespace).data
    return data


def test_a_new_request_is_planned_written_queued_and_enqueued(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "priority": 2, "requester": "alice", "firmwareSet": "dell-r6515"})

    result = reconcile(world, uuid)

    assert result.action is Action.QUEUED
    data = attribute(world, uuid)
    assert data["status"] == "queued" and data["worker"] == "flasher-a"
    assert data["taskID"].startswith("t-") and data["attempts"] == 0 and data["createdAt"]
    assert data["mode"] == "PredefinedFirmwareSet"
    assert data["Firmware"]["bmc"]["version"] == "2.80.80.80" and data["Firmware"]["bmc"]["status"] == "pending"
    assert data["Firmware"]["bios"]["status"] == "pending"
    assert data["requester"] == "alice"
    entry = world["queue"].entry(uuid)
    assert entry is not None and entry.task_id == data["taskID"] and entry.priority == 2 and entry.kind == "install"


def test_two_replicas_admitting_the_same_request_agree(world: dict[str, Any]) -> None:
    request = {"status": "", "firmwareSet": "dell-r6515"}
    uuid = flag(world, "r6515-a01", request)
    other = Admission(world["inventory"], world["queue"], world["settings"], worker_id="flasher-b")
    server = world["inventory"].get_server(uuid)  # both saw the same listing

    first = world["admission"].reconcile(server, TaskKind.INSTALL)
    second = other.reconcile(server, TaskKind.INSTALL)

    assert first.action is Action.QUEUED
    assert second.action is Action.SKIPPED and "another replica" in second.detail  # no second plan and write
    assert attribute(world, uuid)["taskID"] == request_task_id(uuid, TaskKind.INSTALL, request)
    assert attribute(world, uuid)["worker"] == "flasher-a"
    assert len(world["queue"].snapshot().queued) == 1


def test_a_request_that_could_not_be_admitted_is_left_to_any_replica(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515"})
    server = world["inventory"].get_server(uuid)
    with world["server"].faults(every=1, status=503, path_regex="server-component-firmware-sets"):
        assert world["admission"].reconcile(server, TaskKind.INSTALL).action is Action.SKIPPED
    # issue 12 (item 6): the request now says it waits; the next poll lists it again with that message
    assert "waiting: inventory unavailable, will retry" in attribute(world, uuid)["messages"][-1]
    server = world["inventory"].get_server(uuid)
    other = Admission(world["inventory"], world["queue"], world["settings"], worker_id="flasher-b")
    assert other.reconcile(server, TaskKind.INSTALL).action is Action.QUEUED  # the claim was given up
    assert attribute(world, uuid)["worker"] == "flasher-b"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"status": "", "priority": 9}, "field 'priority': value 9 is outside 0..3"),
        ({"status": "", "method": "in-band"}, "not supported"),
        ({"status": "", "firmwareSet": "no-such-set"}, "no-such-set"),
        (
            {
                "status": "",
                "Firmware": {
                    "bmc": {
                        "version": "2.70.70.70",
                        "updateFileURL": "http://127.0.0.1:9/idrac-2.70.bin",
                        "updateFileChecksum": "sha256:" + "ab" * 32,
                    }
                },
            },
            "downgrade",
        ),
        ({"status": "", "Firmware": {"bmc": {"version": "2.70.70.70"}}}, "no firmware in the inventory matches"),
        ("not an object", "not a JSON object"),
    ],
)
def test_requests_that_cannot_run_fail_with_a_message(world: dict[str, Any], data: Any, message: str) -> None:
    uuid: str = world["servers"]["r6515-a02"]
    if isinstance(data, dict):
        flag(world, "r6515-a02", data)
    else:  # the inventory takes any JSON object; tests of non-objects use a list inside
        flag(world, "r6515-a02", {"status": "", "Firmware": data})
        message = "Firmware"

    result = reconcile(world, uuid)

    assert result.action is Action.FAILED
    stored = attribute(world, uuid)
    assert stored["status"] == "failed" and message in stored["error"]
    assert stored["completedAt"]
    assert world["queue"].entry(uuid) is None


def test_a_cancelled_new_request_is_never_queued(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "cancel": True})
    assert reconcile(world, uuid).action is Action.CANCELLED
    assert attribute(world, uuid)["status"] == "cancelled"
    assert world["queue"].entry(uuid) is None


def test_a_resolved_set_is_written_back(world: dict[str, Any]) -> None:
    uuid = flag(world, "x12-b01", {"status": "requested"})
    assert reconcile(world, uuid).action is Action.QUEUED
    data = attribute(world, uuid)
    assert data["mode"] == "ResolveFirmware" and data["firmwareSet"] == "supermicro-x12stw-tf"


def test_queued_tasks_that_redis_lost_are_enqueued_again(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "priority": 3, "firmwareSet": "dell-r6515"})
    reconcile(world, uuid)
    task_id = attribute(world, uuid)["taskID"]
    world["queue"].drop(uuid)  # as if Redis lost it

    result = reconcile(world, uuid)

    assert result.action is Action.QUEUED and result.detail == "added"
    entry = world["queue"].entry(uuid)
    assert entry is not None and entry.task_id == task_id and entry.priority == 3


def active(world: dict[str, Any], name: str, *, age: float, attempts: int = 1) -> str:
    uuid: str = world["servers"][name]
    beat = rfc3339(utc_now() - timedelta(seconds=age))
    flag(
        world,
        name,
        {
            "status": "active",
            "firmwareSet": "dell-r6515",
            "taskID": "t-running",
            "worker": "flasher-dead",
            "attempts": attempts,
            "createdAt": beat,
            "updatedAt": beat,
        },
    )
    return uuid


def test_a_stale_active_task_nobody_holds_is_reclaimed(world: dict[str, Any]) -> None:
    uuid = active(world, "r6515-a01", age=120)
    result = reconcile(world, uuid)
    assert result.action is Action.QUEUED
    data = attribute(world, uuid)
    assert data["status"] == "queued" and "reclaimed by flasher-a" in data["messages"][-1]
    entry = world["queue"].entry(uuid)
    assert entry is not None and entry.task_id == "t-running"


def test_a_fresh_active_task_is_left_alone(world: dict[str, Any]) -> None:
    uuid = active(world, "r6515-a01", age=5)
    assert reconcile(world, uuid).action is Action.NONE
    assert attribute(world, uuid)["status"] == "active"
    assert world["queue"].entry(uuid) is None


def test_a_stale_task_out_of_attempts_fails(world: dict[str, Any]) -> None:
    uuid = active(world, "r6515-a01", age=120, attempts=2)
    assert reconcile(world, uuid).action is Action.FAILED
    assert "gave up after 2 attempts" in attribute(world, uuid)["error"]


def test_cancel_removes_a_queued_task_and_flags_a_running_one(world: dict[str, Any]) -> None:
    queue: TaskQueue = world["queue"]
    queued = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515"})
    running = flag(
        world, "r6515-a02", {"status": "", "firmwareSet": "dell-r6515", "Firmware": {"bios": {"version": "2.7.3"}}}
    )
    reconcile(world, queued)
    reconcile(world, running)
    lease = queue.claim("flasher-w")
    assert lease is not None
    lease_server = lease.server_id
    other = queued if lease_server == running else running
    for uuid in (queued, running):
        flag(world, "r6515-a01" if uuid == queued else "r6515-a02", {**attribute(world, uuid), "cancel": True})

    assert reconcile(world, other).action is Action.CANCELLED
    assert attribute(world, other)["status"] == "cancelled"
    assert reconcile(world, lease_server).action is Action.CANCEL_FLAGGED
    assert queue.check(lease).cancel_requested


def test_a_server_control_task_waits_for_a_queued_install(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "priority": 1, "firmwareSet": "dell-r6515"})
    reconcile(world, uuid)
    flag(
        world,
        "r6515-a01",
        {"status": "", "action": "set_power_state", "action_parameter": "cycle", "priority": 3},
        SERVER_CONTROL_NAMESPACE,
    )

    result = reconcile(world, uuid, TaskKind.SERVER_CONTROL)
    again = reconcile(world, uuid, TaskKind.SERVER_CONTROL)

    assert result.action is Action.WAITING and again.action is Action.WAITING
    control = attribute(world, uuid, SERVER_CONTROL_NAMESPACE)
    assert control["status"] == "queued"
    assert [m for m in control["messages"] if "waiting: install task" in m] != []
    assert len([m for m in control["messages"] if "waiting:" in m]) == 1  # said once, not every poll
    install = world["queue"].entry(uuid)
    assert install is not None and install.kind == "install"

    world["queue"].drop(uuid)  # the install ended
    assert reconcile(world, uuid, TaskKind.SERVER_CONTROL).action is Action.QUEUED
    entry = world["queue"].entry(uuid)
    assert entry is not None and entry.kind == "server_control"


def test_the_poller_admits_everything_flagged_and_buries_dead_tasks(world: dict[str, Any]) -> None:
    queue: TaskQueue = world["queue"]
    a = flag(world, "r6515-a01", {"status": "", "priority": 0, "firmwareSet": "dell-r6515"})
    b = flag(world, "x12-b01", {"status": "", "priority": 3})
    c = flag(world, "r6515-a03", {"status": "", "priority": 9})
    poller = Poller(world["inventory"], queue, world["admission"], world["settings"])

    report = poller.poll_once()

    assert report.errors == []
    assert report.actions == {"queued": 2, "failed": 1}
    assert [e.server_id for e in queue.snapshot().queued] == [b, a]  # priority 3 before 0
    assert attribute(world, c)["status"] == "failed"

    # The install of b dies: its lease expires max_attempts (2) times.
    for _ in range(2):
        lease = queue.claim("flasher-crashing")
        assert lease is not None and lease.server_id == b
        world["inventory"].replace_attribute(b, TASK_NAMESPACE, {**attribute(world, b), "status": "active"})

        time.sleep(1.2)
        queue.reap()
    report = poller.poll_once()
    data = attribute(world, b)
    assert data["status"] == "failed" and "lease expired" in data["error"]
    assert queue.dead() == []


def test_polls_list_open_tasks_and_a_full_poll_finds_the_rest(world: dict[str, Any]) -> None:
    settings = world["settings"].model_copy(
        update={"service": world["settings"].service.model_copy(update={"full_poll_every": 2})}
    )
    poller = Poller(world["inventory"], world["queue"], world["admission"], settings)
    done = flag(world, "r6515-a03", {"status": "success", "taskID": "t-old", "firmwareSet": "dell-r6515"})
    assert poller.poll_once().full  # the first poll lists everything
    sloppy = flag(world, "r6515-a01", {"firmwareSet": "dell-r6515"})  # no status key at all: a new request
    calls: list[str] = []
    world["inventory"].transport.session.hooks["response"].append(lambda r, *a, **k: calls.append(r.request.url))

    second = poller.poll_once()
    assert not second.full
    assert all("status~eq~" in url for url in calls if "/servers?" in url)  # only open statuses are listed
    assert ("install", "success") not in second.seen and attribute(world, sloppy).get("status") is None

    third = poller.poll_once()
    assert third.full and third.seen[("install", "success")] == 1
    assert attribute(world, sloppy)["status"] == "queued"
    assert attribute(world, done)["status"] == "success"


def test_one_replica_does_the_shared_parts_of_a_poll_and_every_replica_reports_the_counts(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = world["settings"].model_copy(
        update={"service": world["settings"].service.model_copy(update={"full_poll_every": 2})}
    )
    first = Poller(world["inventory"], world["queue"], world["admission"], settings, worker_id="replica-1")
    second = Poller(world["inventory"], world["queue"], world["admission"], settings, worker_id="replica-2")
    flag(world, "r6515-a03", {"status": "success", "taskID": "t-old", "firmwareSet": "dell-r6515"})
    flag(world, "x12-b01", {"status": "failed", "taskID": "t-bad", "error": "x"})
    sloppy = flag(world, "r6515-a01", {"firmwareSet": "dell-r6515"})  # no status key: only a full poll finds it
    reconciled: list[str] = []
    admission = world["admission"]
    original = admission.reconcile

    def reconcile(server: Any, kind: TaskKind, **kw: Any) -> Any:
        reconciled.append(str(server.uuid))
        return original(server, kind, **kw)

    def gauge() -> dict[tuple[str, str], float]:
        return {(s.labels["kind"], s.labels["status"]): s.value for metric in TASKS.collect() for s in metric.samples}

    monkeypatch.setattr(admission, "reconcile", reconcile)
    urls: list[str] = []
    world["inventory"].transport.session.hooks["response"].append(lambda r, *a, **k: urls.append(r.request.url))

    report = first.poll_once()  # both turns were free: replica-1 takes them
    assert report.full and report.admitted
    assert reconciled == [sloppy]  # the ended tasks are counted, not reconciled
    assert attribute(world, sloppy)["status"] == "queued"

    reconciled.clear()
    urls.clear()
    fresh = flag(world, "r6515-a02", {"status": "", "firmwareSet": "dell-r6515"})
    report = second.poll_once()  # replica-1 holds both turns: replica-2 admits new requests only
    assert not report.full and not report.admitted
    assert reconciled == [fresh] and attribute(world, fresh)["status"] == "queued"
    listed = [url for url in urls if "/servers?" in url]
    assert listed and all("status~eq~&" in url or "status~eq~requested" in url for url in listed), listed
    assert gauge()[("install", "success")] == 1 and gauge()[("install", "failed")] == 1  # replica-1's full poll

    reconciled.clear()
    report = first.poll_once()  # the holder reconciles the admitted tasks, and renews its turn
    assert not report.full and report.admitted and sorted(reconciled) == sorted([sloppy, fresh])
    assert not second.poll_once().admitted
    assert gauge()[("install", "queued")] == 2  # replica-1's count of the admitted tasks

    first.stop()  # replica-1 stops: it gives its turns up
    report = second.poll_once()
    assert report.full and report.admitted
    assert not first.poll_once().admitted


def test_a_holder_whose_listing_fails_hands_its_turns_on(world: dict[str, Any]) -> None:
    first = Poller(world["inventory"], world["queue"], world["admission"], world["settings"], worker_id="replica-1")
    second = Poller(world["inventory"], world["queue"], world["admission"], world["settings"], worker_id="replica-2")
    assert first.poll_once().admitted  # replica-1 holds the turns
    with world["server"].faults(every=1, status=503):
        assert first.poll_once().listing_failed  # it cannot list: it gives them up
    assert world["queue"].client.get(world["queue"].keys.poll_turn(ADMITTED)) is None
    report = second.poll_once()  # a replica that can list takes them over
    assert report.admitted and report.full
    assert not first.poll_once().admitted  # and keeps them


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_poll_admits_new_requests_side_by_side_in_priority_order(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, concurrency: int
) -> None:
    settings = world["settings"].model_copy(
        update={"service": world["settings"].service.model_copy(update={"admission_concurrency": concurrency})}
    )
    names = sorted(world["servers"])
    for rank, name in enumerate(names):
        flag(world, name, {"status": "", "priority": rank % 4})
    admission, lock = world["admission"], threading.Lock()
    original = admission.reconcile
    started: list[str] = []
    in_flight = [0, 0]  # now, most at once

    def reconcile(server: Any, kind: TaskKind, **kw: Any) -> Any:
        with lock:
            started.append(str(server.uuid))
            in_flight[0] += 1
            in_flight[1] = max(in_flight)
        time.sleep(0.2)  # an admission waiting on the inventory
        try:
            return original(server, kind, **kw)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(admission, "reconcile", reconcile)
    report = Poller(world["inventory"], world["queue"], admission, settings).poll_once()

    assert report.errors == [] and report.actions["queued"] == len(names)
    assert in_flight[1] == min(concurrency, len(names))
    by_uuid = {world["servers"][name]: rank % 4 for rank, name in enumerate(names)}
    assert [by_uuid[uuid] for uuid in started] == sorted(by_uuid.values(), reverse=True)  # highest priority first
    assert len(world["queue"].snapshot().queued) == len(names)


def test_new_requests_past_the_admission_budget_wait_for_the_next_poll(world: dict[str, Any]) -> None:
    settings = world["settings"].model_copy(
        update={"service": world["settings"].service.model_copy(update={"admission_budget": 1e-9})}
    )
    poller = Poller(world["inventory"], world["queue"], world["admission"], settings)
    for name in ("r6515-a01", "r6515-a02", "x12-b01"):
        flag(world, name, {"status": "", "priority": 2})
    report = poller.poll_once()
    assert report.actions["queued"] == 1 and report.deferred == 2  # one admitted before the budget ran out
    assert poller.poll_once().deferred == 1
    assert poller.poll_once().deferred == 0
    assert len(world["queue"].snapshot().queued) == 3


def test_the_poller_survives_inventory_errors(world: dict[str, Any]) -> None:
    flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515"})
    poller = Poller(world["inventory"], world["queue"], world["admission"], world["settings"])
    with world["server"].faults(every=1, status=503):
        report = poller.poll_once()
    assert report.errors and all("503" in e or "unavailable" in e.lower() for e in report.errors)
    assert poller.poll_once().actions == {"queued": 1}


# -- the listing a poll works from is older than the attribute: admission must not write over what changed --------


def test_a_stale_listing_of_a_cancel_does_not_overwrite_the_result_its_worker_wrote(world: dict[str, Any]) -> None:
    queue: TaskQueue = world["queue"]
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515"})
    reconcile(world, uuid)
    lease = queue.claim("flasher-w")
    assert lease is not None
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, {**attribute(world, uuid), "status": "active"})
    flag(world, "r6515-a01", {**attribute(world, uuid), "cancel": True})
    listed = world["inventory"].get_server(uuid)  # the poll lists the running task with the cancel
    # ...then its worker ends it (the cancel came too late: the last flash was done) and acks the lease.
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, {**attribute(world, uuid), "status": "success"})
    queue.ack(lease)

    result = world["admission"].reconcile(listed, TaskKind.INSTALL)

    assert result.action is Action.SKIPPED
    assert attribute(world, uuid)["status"] == "success"


def test_a_stale_listing_of_a_request_does_not_queue_it_again_after_it_ran(world: dict[str, Any]) -> None:
    queue: TaskQueue = world["queue"]
    request = {"status": "", "action": "set_power_state", "action_parameter": "cycle"}
    uuid = flag(world, "r6515-a01", request, SERVER_CONTROL_NAMESPACE)
    listed = world["inventory"].get_server(uuid)  # a slow replica's listing: the request is new
    other = Admission(world["inventory"], queue, world["settings"], worker_id="flasher-b")
    assert reconcile(world, uuid, TaskKind.SERVER_CONTROL, who="admission").action is Action.QUEUED
    lease = queue.claim("flasher-w")
    assert lease is not None
    done = {**attribute(world, uuid, SERVER_CONTROL_NAMESPACE), "status": "success"}
    world["inventory"].replace_attribute(uuid, SERVER_CONTROL_NAMESPACE, done)
    queue.ack(lease)
    queue.release_admission(lease.task_id, "flasher-a")  # the admission claim expired meanwhile

    result = other.reconcile(listed, TaskKind.SERVER_CONTROL)

    assert result.action is Action.SKIPPED
    assert attribute(world, uuid, SERVER_CONTROL_NAMESPACE)["status"] == "success"  # not power-cycled again
    assert queue.entry(uuid) is None


def test_an_operator_edit_after_the_listing_is_not_overwritten(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "priority": 0, "firmwareSet": "dell-r6515"})
    listed = world["inventory"].get_server(uuid)
    edited = {"status": "", "priority": 3, "firmwareSet": "dell-r6515", "requester": "alice"}
    flag(world, "r6515-a01", edited)  # the operator corrects the request before admission gets to it

    assert world["admission"].reconcile(listed, TaskKind.INSTALL).action is Action.SKIPPED
    assert attribute(world, uuid) == edited

    assert reconcile(world, uuid).action is Action.QUEUED  # the next poll admits what the operator wrote
    data = attribute(world, uuid)
    assert data["priority"] == 3 and data["requester"] == "alice"
    assert data["taskID"] == request_task_id(uuid, TaskKind.INSTALL, edited)


def test_a_stale_active_task_whose_worker_beat_since_the_listing_is_not_reclaimed(world: dict[str, Any]) -> None:
    uuid = active(world, "r6515-a01", age=120)
    listed = world["inventory"].get_server(uuid)
    beat = {**attribute(world, uuid), "updatedAt": rfc3339(utc_now())}  # a slow worker is alive after all
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, beat)

    assert world["admission"].reconcile(listed, TaskKind.INSTALL).action is Action.SKIPPED
    assert attribute(world, uuid) == beat
    assert world["queue"].entry(uuid) is None


def tasks_gauge(kind: str, status: str) -> float | None:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("flasher_tasks", {"kind": kind, "status": status})


def test_a_poll_that_could_not_list_keeps_the_task_counts(world: dict[str, Any]) -> None:
    poller = Poller(world["inventory"], world["queue"], world["admission"], world["settings"])
    flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515"})
    poller.poll_once()  # full: admits it
    assert not poller.poll_once().full
    assert tasks_gauge("install", "queued") == 1

    with world["server"].faults(every=1, status=503, methods=["GET"], path_regex=r"/servers$"):
        report = poller.poll_once()

    assert report.errors  # the listing failed: nothing is known about the tasks, so the counts stay
    assert tasks_gauge("install", "queued") == 1


def test_stopping_the_poller_ends_a_running_poll_at_the_next_attribute(world: dict[str, Any]) -> None:
    for name in ("r6515-a01", "r6515-a02", "x12-b01"):
        flag(world, name, {"status": "", "priority": 2})
    admission: Admission = world["admission"]
    poller = Poller(world["inventory"], world["queue"], admission, world["settings"])
    seen: list[str] = []

    class StoppingAdmission:
        def reconcile(self, server: Any, kind: TaskKind) -> Any:
            seen.append(str(server.uuid))
            poller.stop()  # SIGTERM arrives while the poll admits the first request
            return admission.reconcile(server, kind)

        def bury(self, entry: Any) -> Any:
            return admission.bury(entry)

        def keep_successors(self) -> Any:
            return admission.keep_successors()

    poller._admission = StoppingAdmission()  # type: ignore[assignment]
    report = poller.poll_once()

    assert len(seen) == 1 and report.deferred == 2
    assert len(world["queue"].snapshot().queued) == 1


def test_a_request_whose_admission_write_failed_is_left_to_any_replica(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515"})
    server = world["inventory"].get_server(uuid)
    with world["server"].faults(every=1, status=503, methods=["PUT"]), pytest.raises(InventoryError):
        world["admission"].reconcile(server, TaskKind.INSTALL)
    other = Admission(world["inventory"], world["queue"], world["settings"], worker_id="flasher-b")
    assert other.reconcile(server, TaskKind.INSTALL).action is Action.QUEUED  # not held up by a stale claim
    assert attribute(world, uuid)["worker"] == "flasher-b"


def test_after_redis_lost_its_data_a_control_task_waits_for_an_install_still_active(world: dict[str, Any]) -> None:
    uuid = active(world, "r6515-a01", age=1)  # its worker still runs it (it is about to learn its lease is gone)
    request = {"status": "", "action": "set_power_state", "action_parameter": "cycle", "priority": 3}
    flag(world, "r6515-a01", request, SERVER_CONTROL_NAMESPACE)
    assert world["queue"].entry(uuid) is None  # Redis lost everything

    first = reconcile(world, uuid, TaskKind.SERVER_CONTROL)  # admitted: written queued, but not enqueued
    again = reconcile(world, uuid, TaskKind.SERVER_CONTROL)

    assert first.action is Action.WAITING and again.action is Action.WAITING
    assert "install task t-running is running" in first.detail
    assert world["queue"].entry(uuid) is None  # no power cycle while the BMC may be flashing
    assert attribute(world, uuid, SERVER_CONTROL_NAMESPACE)["status"] == "queued"

    stale = {**attribute(world, uuid), "updatedAt": rfc3339(utc_now() - timedelta(seconds=120))}
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, stale)  # its worker is gone after all
    assert reconcile(world, uuid, TaskKind.SERVER_CONTROL).action is Action.QUEUED


# -- replacing requests (issue 12, item 4) -----------------------------------------------------------------------------
def test_a_replacing_request_is_acknowledged_at_once_saying_what_it_replaces(world: dict[str, Any]) -> None:
    queue: TaskQueue = world["queue"]
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "requester": "alice"})
    assert reconcile(world, uuid).action is Action.QUEUED
    lease = queue.claim("flasher-w")
    assert lease is not None
    running = {**attribute(world, uuid), "status": "active", "worker": "flasher-w"}
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, running)
    replacement = {"status": "", "Firmware": {"bios": {"version": "2.7.3"}}, "requester": "bob", "force": True}
    flag(world, "r6515-a01", replacement)

    result = reconcile(world, uuid)

    assert result.action is Action.WAITING  # the running task holds the server until its next safe point
    data = attribute(world, uuid)
    assert data["status"] == "queued" and data["taskID"] == request_task_id(uuid, TaskKind.INSTALL, replacement)
    assert any(f"replaces install task {lease.task_id} (running on flasher-w)" in m for m in data["messages"])
    successor = queue.handover.successor(uuid, "install")
    assert successor is not None and successor.replaces == lease.task_id and successor.data == data


def test_an_acknowledgement_a_late_status_write_landed_over_is_written_back(world: dict[str, Any]) -> None:
    queue: TaskQueue = world["queue"]
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "requester": "alice"})
    assert reconcile(world, uuid).action is Action.QUEUED
    lease = queue.claim("flasher-w")
    assert lease is not None
    running = {**attribute(world, uuid), "status": "active", "worker": "flasher-w"}
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, running)
    flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "requester": "bob", "force": True})
    reconcile(world, uuid)
    acknowledged = attribute(world, uuid)
    # The running task's worker had re-read the attribute just before the acknowledgement landed:
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, {**running, "messages": ["installing 2.7.3: 40%"]})

    (result,) = world["admission"].keep_successors()

    assert result.action is Action.QUEUED
    data = attribute(world, uuid)
    assert data["taskID"] == acknowledged["taskID"] and data["status"] == "queued"
    assert f"a status write of install task {lease.task_id} (active" in data["messages"][-1]
    queue.ack(lease)  # the old worker, seeing the request, stopped at its safe point
    assert reconcile(world, uuid).action is Action.QUEUED  # enqueued now that the server is free
    assert world["admission"].keep_successors()[0].action is Action.NONE
    assert queue.handover.successor(uuid, "install") is None  # queued under its own id: forgotten


def test_a_second_replacing_request_reports_the_first_it_replaced(world: dict[str, Any]) -> None:
    queue: TaskQueue = world["queue"]
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "requester": "alice"})
    assert reconcile(world, uuid).action is Action.QUEUED
    lease = queue.claim("flasher-w")
    assert lease is not None
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, {**attribute(world, uuid), "status": "active"})
    flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "requester": "bob", "force": True})
    reconcile(world, uuid)
    first = attribute(world, uuid)["taskID"]
    flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "requester": "carol", "force": True})
    assert world["admission"].keep_successors()[0].action is Action.NONE  # a new request: left to admission

    reconcile(world, uuid)

    messages = attribute(world, uuid)["messages"]
    assert any(f"replaces install task {first} (queued, not started)" in m for m in messages)
    assert any(f"replaces install task {lease.task_id}" in m for m in messages)
    successor = queue.handover.successor(uuid, "install")
    assert successor is not None and successor.task_id == attribute(world, uuid)["taskID"]


# -- stale views of a replacing request (issue 12, item 4: the race test lost requests this way) ---------------------
def _running_with_a_successor(world: dict[str, Any]) -> tuple[str, Any, dict[str, Any], Any]:
    """R0 (alice) runs under a lease; bob's replacing request A is written and listed (the listing is returned),
    then acknowledged by replica flasher-a. Returns (uuid, lease, R0's running attribute, the stale listing)."""
    queue: TaskQueue = world["queue"]
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "requester": "alice"})
    assert reconcile(world, uuid).action is Action.QUEUED
    lease = queue.claim("flasher-w")
    assert lease is not None
    running = {**attribute(world, uuid), "status": "active", "worker": "flasher-w"}
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, running)
    flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "requester": "bob", "force": True})
    listing = world["inventory"].get_server(uuid)  # a replica's poll lists it now, and reconciles it later
    assert reconcile(world, uuid).action is Action.WAITING  # flasher-a acknowledges it: queued, successor kept
    return uuid, lease, running, listing


def test_a_stale_listing_of_a_replacing_request_keeps_the_successor_another_replica_kept(
    world: dict[str, Any],
) -> None:
    queue: TaskQueue = world["queue"]
    uuid, lease, running, listing = _running_with_a_successor(world)
    acknowledged = attribute(world, uuid)
    kept = queue.handover.successor(uuid, "install")
    assert kept is not None and kept.task_id == acknowledged["taskID"]
    other = Admission(world["inventory"], queue, world["settings"], worker_id="flasher-b")

    # flasher-b reconciles its older listing (bob's request still new): the attribute moved, nothing is written...
    assert other.reconcile(listing, TaskKind.INSTALL).action is Action.SKIPPED
    # ...and the successor flasher-a kept is still there.
    assert queue.handover.successor(uuid, "install") == kept
    # So when a late status write of R0 lands over the acknowledgement, the next poll writes it back.
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, {**running, "messages": ["installing 2.7.3: 40%"]})
    (result,) = world["admission"].keep_successors()
    assert result.action is Action.QUEUED, result
    assert attribute(world, uuid)["taskID"] == acknowledged["taskID"]
    assert lease.task_id != acknowledged["taskID"]


class _HookedInventory:
    """An inventory client whose first ``get_attribute`` runs ``hook`` first (forcing an interleaving)."""

    def __init__(self, inner: InventoryClient, hook: Any) -> None:
        self._inner, self._hook = inner, hook

    def get_attribute(self, uuid: str, namespace: str) -> Any:
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()
        return self._inner.get_attribute(uuid, namespace)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_successor_read_before_a_later_request_was_admitted_is_not_written_back_over_it(
    world: dict[str, Any],
) -> None:
    queue: TaskQueue = world["queue"]
    uuid, lease, running, _ = _running_with_a_successor(world)
    first = attribute(world, uuid)["taskID"]
    carol = {"status": "", "firmwareSet": "dell-r6515", "requester": "carol", "force": True}
    late_status = {**running, "messages": ["installing 2.7.3: 60%"]}

    def meanwhile() -> None:
        # After flasher-c read the successors (bob's) and before it reads bob's attribute: carol writes a request,
        # flasher-a acknowledges it (its successor replaces bob's), then R0's late status write lands over it.
        flag(world, "r6515-a01", carol)
        assert reconcile(world, uuid).action is Action.WAITING
        world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, late_status)

    stale = Admission(_HookedInventory(world["inventory"], meanwhile), queue, world["settings"], worker_id="flasher-c")
    (result,) = stale.keep_successors()

    assert result.action is Action.NONE, result  # bob's acknowledgement is not written back over carol's request
    assert attribute(world, uuid) == late_status
    (result,) = world["admission"].keep_successors()  # the next poll writes carol's back
    assert result.action is Action.QUEUED, result
    data = attribute(world, uuid)
    assert data["taskID"] == request_task_id(uuid, TaskKind.INSTALL, carol) != first
    assert any(f"replaces install task {first} (queued, not started)" in m for m in data["messages"])
    assert lease.task_id != data["taskID"]
