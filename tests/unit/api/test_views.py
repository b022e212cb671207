"""Reading attributes as conditionorc's condition records and flasher's task records."""

from __future__ import annotations

from typing import Any

import pytest

from flasher.api.auth import restarts_hosts
from flasher.api.views import condition_record, condition_state, last_message, task_id_of, task_record
from flasher.task.model import TaskKind
from flasher.task.request import request_task_id

SERVER = "ede81024-f62a-4288-8730-3fab8cceab78"


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("", "pending"),
        ("requested", "pending"),
        ("queued", "pending"),
        ("active", "active"),
        ("success", "succeeded"),
        ("failed", "failed"),
        ("cancelled", "failed"),
        ("bogus", "failed"),
    ],
)
def test_conditionorc_states_from_flashers(status: str, state: str) -> None:
    assert condition_state({"status": status}) == state


def test_a_new_request_has_the_id_admission_will_give_it() -> None:
    data: dict[str, Any] = {"action": "set_power_state", "action_parameter": "on", "status": ""}

    assert task_id_of(SERVER, TaskKind.SERVER_CONTROL, data) == request_task_id(SERVER, TaskKind.SERVER_CONTROL, data)
    assert task_id_of(SERVER, TaskKind.SERVER_CONTROL, {**data, "status": "queued", "taskID": "t-x"}) == "t-x"


def test_a_settled_condition_record() -> None:
    data = {
        "action": "set_power_state",
        "action_parameter": "on",
        "status": "success",
        "taskID": "t-1",
        "updatedAt": "2026-03-07T14:42:04Z",
        "messages": ["2026-03-07T14:42:04Z server power state set successful: on"],
        "request": {"via": "conditionorc", "at": "2026-03-07T14:41:58.881312Z", "client": "", "parameters": {"a": 1}},
    }

    record = condition_record(SERVER, TaskKind.SERVER_CONTROL, data)
    fresh = condition_record(SERVER, TaskKind.SERVER_CONTROL, data, fresh=True)

    assert record == {
        "version": "1.1",
        "client": "",
        "id": "t-1",
        "kind": "serverControl",
        "parameters": {"a": 1},
        "state": "succeeded",
        "status": {"msg": "server power state set successful: on"},
        "updatedAt": "2026-03-07T14:42:04Z",
        "createdAt": "2026-03-07T14:41:58.881312Z",
    }
    assert "status" not in fresh and fresh["updatedAt"] == "0001-01-01T00:00:00Z"


def test_parameters_are_built_from_the_attribute_when_not_given_through_conditionorc() -> None:
    install = {"firmwareSet": "dell-r6515", "force": True, "status": "queued", "taskID": "t-2"}

    record = condition_record(SERVER, TaskKind.INSTALL, install)

    assert record["parameters"] == {
        "asset_id": SERVER,
        "firmware_set_id": "dell-r6515",
        "force_install": True,
        "dry_run": False,
    }
    assert record["kind"] == "firmwareInstall" and record["state"] == "pending"


def test_task_record_tolerates_what_does_not_parse() -> None:
    record = task_record(
        SERVER, TaskKind.INSTALL, {"status": 3, "Firmware": "x", "messages": [1, "2026-01-01T00:00:00Z a"]}
    )

    assert record["status"] == "3" and record["components"] == [] and record["message"] == "a"
    assert last_message({"error": "boom"}) == "boom"


@pytest.mark.parametrize(
    ("kind", "data", "restarts"),
    [
        (TaskKind.SERVER_CONTROL, {"action": "set_power_state", "action_parameter": "on"}, False),
        (TaskKind.SERVER_CONTROL, {"action": "set_power_state", "action_parameter": "cycle"}, True),
        (TaskKind.SERVER_CONTROL, {"action": "set_power_state", "action_parameter": "off"}, True),
        (TaskKind.SERVER_CONTROL, {"action": "get_power_state"}, False),
        (TaskKind.SERVER_CONTROL, {"action": "power_cycle_bmc"}, True),
        (TaskKind.SERVER_CONTROL, {"action": "pxe_boot_persistent"}, False),
        (TaskKind.INSTALL, {"dryRun": True}, False),
        (TaskKind.INSTALL, {}, True),
    ],
)
def test_which_requests_need_the_power_scope(kind: TaskKind, data: dict[str, Any], restarts: bool) -> None:
    assert restarts_hosts(kind, data) is restarts
