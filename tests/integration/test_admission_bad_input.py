"""Issue 12 on the running service's admission and poller, against the sandbox inventory and a real Redis.

Item 1: a look-alike key does not change what admission writes back. Item 3: one attribute whose data is not a
JSON object never breaks a listing: the full poll, ``flasher task list``, ``flasher inventory servers --attr``,
``flasher task status``. Item 6: requests that cannot be planned fail naming the field when the inventory refuses
them, and wait (saying so, for ``service.plan_retry_deadline``) while it is unavailable. Item 7: requests past the
size and depth bounds fail, and what flasher writes back keeps them. Item 8: an identical request written after
its task ended is admitted at the next poll.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from flasher import cli
from flasher.config import Settings
from flasher.constants import TASK_NAMESPACE
from flasher.inventory import InventoryClient
from flasher.queue import TaskQueue
from flasher.service.admission import WAITING_FOR_INVENTORY, Action, Admission
from flasher.service.poller import Poller
from flasher.task.model import MAX_DEPTH, MAX_REQUEST_BYTES, TaskKind, rfc3339, utc_now
from flasher_sandbox.servers import InventoryServer
from tests.support.cli import invoke

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SEED = Path(__file__).resolve().parents[2] / "flasher_sandbox" / "inventory" / "example-seed.yaml"
NOT_OBJECTS: list[Any] = [["oops"], "x", 5, True, None]


class Clock:
    """Admission's clock, moved by the test (the deadline of item 6 is minutes, not test time)."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(clean_inventory: InventoryServer, redis_url: str) -> dict[str, Any]:
    ids = clean_inventory.seed(yaml.safe_load(SEED.read_text()))
    settings = Settings(
        inventory={"url": clean_inventory.url, "retry_deadline": 0.3, "retry_max_wait": 0.05},
        redis={"url": redis_url},
        queue={"lease_seconds": 5, "max_attempts": 2},
        service={"stale_after": 30, "full_poll_every": 1, "plan_retry_deadline": 600},
    )
    inventory = InventoryClient(settings.inventory)
    queue = TaskQueue.from_settings(settings)
    clock = Clock()
    admission = Admission(inventory, queue, settings, worker_id="flasher-a", now=clock)
    return {
        "settings": settings,
        "inventory": inventory,
        "queue": queue,
        "servers": ids["servers"],
        "admission": admission,
        "poller": Poller(inventory, queue, admission, settings),
        "clock": clock,
        "server": clean_inventory,
    }


def flag(world: dict[str, Any], name: str, data: Any) -> str:
    """Write ``data`` (any JSON value) as the install attribute of server ``name``, as an operator's tool could."""
    uuid: str = world["servers"][name]
    inventory: InventoryServer = world["server"]
    if isinstance(data, dict):
        world["inventory"].upsert_attribute(uuid, TASK_NAMESPACE, data)
        return uuid
    path = f"{inventory.api}/servers/{uuid}/attributes"
    answer = requests.put(f"{path}/{TASK_NAMESPACE}", json={"data": data}, timeout=10)
    if answer.status_code == 404:
        answer = requests.post(path, json={"namespace": TASK_NAMESPACE, "data": data}, timeout=10)
    assert answer.status_code < 300, answer.text
    return uuid


def stored(world: dict[str, Any], uuid: str) -> Any:
    return world["inventory"].get_attribute(uuid, TASK_NAMESPACE).data


def attribute(world: dict[str, Any], uuid: str) -> dict[str, Any]:
    data = stored(world, uuid)
    assert isinstance(data, dict)
    return data


# -- item 3: data that is not a JSON object --------------------------------------------------------------------------


def test_attributes_that_are_not_objects_fail_and_the_full_poll_admits_the_rest(world: dict[str, Any]) -> None:
    bad = {
        flag(world, name, value): value for name, value in zip(("r6515-a01", "r6515-a02"), (["oops"], 5), strict=True)
    }
    bad[flag(world, "r6515-a03", None)] = None
    good = flag(world, "x12-b01", {"priority": 2})  # no status key: only a full poll finds it
    report = world["poller"].poll_once()

    assert report.full and report.errors == [], report.errors
    assert attribute(world, good)["status"] == "queued"
    for uuid, value in bad.items():
        data = attribute(world, uuid)
        assert data["status"] == "failed"
        assert data["error"] == f"field 'data': value {json.dumps(value)} is not a JSON object"
        assert data["invalidData"] == value  # what was there is kept
    again = world["poller"].poll_once()
    assert again.errors == [] and again.actions.get("failed", 0) == 0  # failed once, then left alone


@pytest.fixture
def cli_env(world: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLASHER_CONFIG", raising=False)
    monkeypatch.setenv("FLASHER_INVENTORY__URL", world["server"].url)
    monkeypatch.setenv("FLASHER_INVENTORY__RETRY_DEADLINE", "1")
    monkeypatch.setenv("COLUMNS", "250")
    yield


@pytest.mark.parametrize("value", NOT_OBJECTS)
def test_the_commands_list_the_others_and_show_the_bad_one(world: dict[str, Any], cli_env: None, value: Any) -> None:
    broken = flag(world, "r6515-a01", value)
    fine = flag(world, "r6515-a02", {"status": "queued", "taskID": "t-1", "firmwareSet": "dell-r6515"})

    listed = invoke(cli.app, ["task", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["server"]: row for row in json.loads(listed.stdout)}
    assert rows[fine]["status"] == "queued"
    assert rows[broken]["status"] == "invalid" and "is not a JSON object" in rows[broken]["last"]

    servers = invoke(cli.app, ["inventory", "servers", "--attr", TASK_NAMESPACE, "--json"])
    assert servers.exit_code == 0, servers.output
    assert {s["uuid"] for s in json.loads(servers.stdout)} == {broken, fine}
    table = invoke(cli.app, ["inventory", "servers", "--attr", TASK_NAMESPACE])
    assert table.exit_code == 0 and "invalid" in table.stdout

    shown = invoke(cli.app, ["task", "status", "--server", broken])
    assert shown.exit_code == 1, shown.output
    assert "invalid" in shown.stdout and "is not a JSON object" in shown.stdout
    as_json = invoke(cli.app, ["task", "status", "--server", broken, "--json"])
    assert as_json.exit_code == 1 and json.loads(as_json.stdout) == value
    other = invoke(cli.app, ["task", "status", "--server", fine])
    assert other.exit_code == 0 and "queued" in other.stdout
    refused = invoke(cli.app, ["task", "cancel", "--server", broken])
    assert refused.exit_code == 1 and "nothing to cancel" in refused.stdout
    assert stored(world, broken) == value  # nothing was written over it


# -- item 6: requests that can never be planned, and the inventory being away --------------------------------------


def test_a_firmware_set_the_inventory_refuses_fails_naming_the_field(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "00000000-0000-0000-0000-000000000000"})
    result = world["poller"].poll_once()
    assert result.errors == []
    data = attribute(world, uuid)
    assert data["status"] == "failed"
    assert data["error"].startswith("firmwareSet: the inventory refused to look up '00000000-0000-0000-0000-000000")
    assert "HTTP 400" in data["error"]


def test_a_1_mb_version_fails_naming_the_field_before_any_lookup(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "Firmware": {"bmc": {"version": "9" * 1_000_000}}})
    assert world["poller"].poll_once().errors == []
    data = attribute(world, uuid)
    assert data["status"] == "failed" and data["error"].startswith("field 'data': is 10000")  # past the size limit
    assert len(data["Firmware"]["bmc"]["version"]) == 1_000_000  # kept
    uuid = flag(world, "r6515-a02", {"status": "", "Firmware": {"bmc": {"version": "9" * 5_000}}})
    assert world["poller"].poll_once().errors == []
    data = attribute(world, uuid)
    assert data["status"] == "failed"
    assert data["error"].startswith("field 'Firmware.bmc.version': value \"999")
    assert "is 5000 characters long, more than 256" in data["error"] and len(data["error"]) < 300


def test_a_request_nested_300_deep_fails_once_and_keeps_its_data(world: dict[str, Any]) -> None:
    deep: Any = "leaf"
    for _ in range(300):
        deep = {"k": deep}
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "x-deep": deep})
    report = world["poller"].poll_once()
    assert report.errors == [], report.errors
    data = attribute(world, uuid)
    assert data["status"] == "failed" and f"nests more than {MAX_DEPTH} levels deep" in data["error"]
    assert data["x-deep"] == deep


def test_a_request_past_the_size_limit_fails(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "x-note": "n" * MAX_REQUEST_BYTES})
    assert world["poller"].poll_once().errors == []
    data = attribute(world, uuid)
    assert data["status"] == "failed" and f"more than the limit of {MAX_REQUEST_BYTES}" in data["error"]


def test_while_the_inventory_is_unavailable_a_request_waits_saying_so_then_fails_at_the_deadline(
    world: dict[str, Any],
) -> None:
    clock: Clock = world["clock"]
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515", "requester": "alice"})
    with world["server"].faults(every=1, status=503, path_regex="server-component-firmware-sets"):
        for minute in range(3):  # three polls: one message, not three
            clock.now += timedelta(minutes=minute)
            report = world["poller"].poll_once()
            assert report.actions == {"skipped": 1}, report
            data = attribute(world, uuid)
            assert data["status"] == "" and "taskID" not in data and data["requester"] == "alice"
            assert len(data["messages"]) == 1
        (note,) = data["messages"]
        assert f"{WAITING_FOR_INVENTORY} until " in note and "HTTP 503" in note
        clock.now += timedelta(seconds=600)
        world["poller"].poll_once()
    data = attribute(world, uuid)
    assert data["status"] == "failed"
    assert data["error"].startswith("cannot plan: the inventory was unavailable for ")
    assert "(service.plan_retry_deadline is 600 s)" in data["error"]


def test_a_request_that_waited_is_admitted_once_the_inventory_is_back(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515"})
    with world["server"].faults(every=1, status=503, path_regex="server-component-firmware-sets"):
        world["poller"].poll_once()
    assert attribute(world, uuid)["messages"][-1].split(" ", 1)[1].startswith(WAITING_FOR_INVENTORY)
    world["clock"].now += timedelta(seconds=60)
    world["poller"].poll_once()
    data = attribute(world, uuid)
    assert data["status"] == "queued" and data["messages"][-1].split(" ", 1)[1].startswith("queued by flasher-a")


# -- item 8: an identical request after the task ended -------------------------------------------------------------


def _run_to_success(world: dict[str, Any], uuid: str) -> None:
    """What a worker does, in short: claim, write active then success, ack."""
    queue: TaskQueue = world["queue"]
    lease = queue.claim("worker-x")
    assert lease is not None and lease.server_id == uuid
    data = attribute(world, uuid)
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, {**data, "status": "active", "worker": "worker-x"})
    now = rfc3339(utc_now())
    final = {**attribute(world, uuid), "status": "success", "updatedAt": now, "completedAt": now}
    world["inventory"].replace_attribute(uuid, TASK_NAMESPACE, final)
    queue.ack(lease)


def test_an_identical_request_after_its_task_ended_is_admitted_at_the_next_poll(world: dict[str, Any]) -> None:
    request = {"status": "", "firmwareSet": "dell-r6515", "requester": "alice"}
    uuid = flag(world, "r6515-a01", request)
    assert world["poller"].poll_once().actions == {"queued": 1}
    first = attribute(world, uuid)["taskID"]
    _run_to_success(world, uuid)

    flag(world, "r6515-a01", request)  # the same request again, as the operator wrote it the first time
    report = world["poller"].poll_once()

    assert report.actions == {"queued": 1}, report  # not "another replica is admitting it" for a minute
    data = attribute(world, uuid)
    assert data["status"] == "queued" and data["taskID"] == first
    entry = world["queue"].entry(uuid)
    assert entry is not None and entry.task_id == first and entry.state == "queued"


def test_a_stale_listing_does_not_admit_a_request_again_after_the_claim_is_given_up(world: dict[str, Any]) -> None:
    uuid = flag(world, "r6515-a01", {"status": "", "firmwareSet": "dell-r6515"})
    listing = world["inventory"].get_server(uuid)
    assert world["admission"].reconcile(listing, TaskKind.INSTALL).action is Action.QUEUED
    other = Admission(world["inventory"], world["queue"], world["settings"], worker_id="flasher-b")
    calls: list[str] = []
    world["inventory"].transport.session.hooks["response"].append(lambda r, *a, **k: calls.append(r.request.url))
    again = other.reconcile(listing, TaskKind.INSTALL)
    assert again.action is Action.SKIPPED and "already" in again.detail
    assert calls == []  # no planning, no write: the queue said it was admitted
    assert attribute(world, uuid)["worker"] == "flasher-a"


# -- item 1: what admission writes back -----------------------------------------------------------------------------


def test_admission_keeps_a_look_alike_key_and_reads_only_the_documented_one(world: dict[str, Any]) -> None:
    uuid = flag(
        world,
        "r6515-a01",
        {
            "status": "",
            "dryRun": True,
            "dry_run": False,
            "firmware_set": "other",
            "firmwareSet": "dell-r6515",
            "initialPowerState": "Off",  # left by an earlier run: not this run's
        },
    )
    assert world["poller"].poll_once().actions == {"queued": 1}
    data = attribute(world, uuid)
    assert data["dryRun"] is True and data["dry_run"] is False
    assert data["firmwareSet"] == "dell-r6515" and data["firmware_set"] == "other"
    assert data["mode"] == "PredefinedFirmwareSet" and "initialPowerState" not in data
