"""conditionorc's shapes on ``flasher api``: the flipflop README's curl session (power on, then status), and the
same for firmwareInstall, against a replica on the sandbox."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from tests.support.api import APIStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
CONDITION_KEYS = {"version", "client", "id", "kind", "parameters", "state", "updatedAt", "createdAt"}


def power_on(server: str) -> dict[str, Any]:
    """The README's payload.json."""
    return {
        "exclusive": True,
        "parameters": {"asset_id": server, "action": "set_power_state", "action_parameter": "on"},
    }


def test_the_flipflop_readme_session_power_on_then_status(api: APIStack) -> None:
    server = api.servers[1]
    # curl -Lv --json @payload.json http://localhost:9001/api/v1/servers/<id>/condition/serverControl
    created = api.post(
        f"/api/v1/servers/{server}/condition/serverControl",
        data=json.dumps(power_on(server)),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )

    assert created.status_code == 200, created.text
    body = created.json()
    assert body["message"] == "condition set"
    assert body["records"]["serverID"] == server
    (condition,) = body["records"]["conditions"]
    assert set(condition) == CONDITION_KEYS
    assert condition["version"] == "1.1"
    assert condition["client"] == ""
    assert condition["kind"] == "serverControl"
    assert condition["parameters"] == power_on(server)["parameters"]
    assert condition["state"] == "pending"
    assert condition["updatedAt"] == "0001-01-01T00:00:00Z"
    assert RFC3339.match(condition["createdAt"])

    # curl -Lv localhost:9001/api/v1/servers/<id>/status, until the condition settles
    def settled() -> dict[str, Any] | None:
        answer = api.get(f"/api/v1/servers/{server}/status").json()
        return answer if answer["records"]["state"] in ("succeeded", "failed") else None

    status = api.wait(settled, "the condition to settle")
    records = status["records"]
    assert set(status) == {"records"}
    assert records["serverID"] == server
    assert records["state"] == "succeeded"
    (done,) = records["conditions"]
    assert set(done) == CONDITION_KEYS | {"status"}
    assert done["id"] == condition["id"]  # the condition id is the task's taskID, known at the POST
    assert done["kind"] == "serverControl"
    assert done["parameters"] == condition["parameters"]
    assert done["state"] == "succeeded"
    assert done["status"] == {"msg": "server power state set successful: on"}
    assert done["createdAt"] == condition["createdAt"]
    assert RFC3339.match(done["updatedAt"]) and done["updatedAt"] != "0001-01-01T00:00:00Z"
    attribute = api.attribute(server, SERVER_CONTROL_NAMESPACE)
    assert attribute is not None
    assert attribute["taskID"] == condition["id"]
    assert attribute["status"] == "success"
    assert attribute["requester"] == "anonymous"
    assert api.fleet.state(1)["power"]["state"] == "On"


def test_a_second_condition_while_one_is_active_is_409_and_changes_nothing(api: APIStack) -> None:
    server = api.servers[1]
    first = api.post(f"/api/v1/servers/{server}/condition/serverControl", json=power_on(server))
    assert first.status_code == 200
    api.wait(
        lambda: (api.attribute(server, SERVER_CONTROL_NAMESPACE) or {}).get("status") in ("queued", "active"),
        "the task queued",
    )
    before = api.attribute(server, SERVER_CONTROL_NAMESPACE)

    again = api.post(f"/api/v1/servers/{server}/condition/serverControl", json=power_on(server))

    assert again.status_code == 409, again.text
    assert "is queued" in again.json()["message"] or "is active" in again.json()["message"]
    after = api.attribute(server, SERVER_CONTROL_NAMESPACE)
    assert after is not None and before is not None
    assert after["taskID"] == before["taskID"]


def test_bad_input_is_400_naming_the_field_and_value_and_writes_nothing(api: APIStack) -> None:
    server = api.servers[0]
    cases = [
        (
            {"parameters": {"asset_id": server, "action": "reboot"}},
            "parameters.action",
            "reboot",
        ),
        (
            {"parameters": {"asset_id": server, "action": "set_power_state", "action_parameter": "hibernate"}},
            "parameters.action_parameter",
            "hibernate",
        ),
        ({"parameters": {"asset_id": api.servers[1], "action": "get_power_state"}}, "parameters.asset_id", None),
        ({"parameters": {"asset_id": server, "action": 7}}, "parameters.action", 7),
        ({"exclusive": "yes", "parameters": {"asset_id": server, "action": "get_power_state"}}, "exclusive", "yes"),
        ({"parameters": {"asset_id": "not-a-uuid", "action": "get_power_state"}}, "parameters.asset_id", None),
        ({"parameters": {"asset_id": server, "action": "get_power_state", "colour": "red"}}, "parameters.colour", None),
    ]
    for body, field, value in cases:
        answer = api.post(f"/api/v1/servers/{server}/condition/serverControl", json=body)
        assert answer.status_code == 400, (body, answer.text)
        errors = answer.json()["errors"]
        assert errors[0]["field"] == field, (body, errors)
        if value is not None:
            assert errors[0]["value"] == value
            assert json.dumps(value) in answer.json()["message"]
        assert field in answer.json()["message"]
    assert api.attribute(server, SERVER_CONTROL_NAMESPACE) is None


def test_firmware_install_condition_runs_to_succeeded(api: APIStack) -> None:
    server = api.servers[1]  # Supermicro-like: a BMC and a BIOS upgrade in its platform set
    sets = {s.name for s in api.inventory.list_firmware_sets()}
    platform = next(n for n in sets if n.startswith("supermicro") and "platform" in n)
    body: dict[str, Any] = {
        "exclusive": True,
        "parameters": {"asset_id": server, "firmware_set_id": platform, "dry_run": False},
    }

    created = api.post(f"/api/v1/servers/{server}/condition/firmwareInstall", json=body)

    assert created.status_code == 200, created.text
    (condition,) = created.json()["records"]["conditions"]
    assert condition["kind"] == "firmwareInstall"
    assert condition["state"] == "pending"
    assert condition["parameters"] == body["parameters"]
    attribute = api.attribute(server, TASK_NAMESPACE)
    assert attribute is not None
    assert attribute["firmwareSet"] == body["parameters"]["firmware_set_id"]
    assert attribute["force"] is False and attribute["dryRun"] is False

    def settled() -> dict[str, Any] | None:
        answer = api.get(f"/api/v1/servers/{server}/status").json()
        return answer if answer["records"]["state"] in ("succeeded", "failed") else None

    status = api.wait(settled, "the install to settle", timeout=90)
    (done,) = status["records"]["conditions"]
    assert status["records"]["state"] == "succeeded", done
    assert done["id"] == condition["id"]
    assert done["status"]["msg"]
    assert api.attribute(server, TASK_NAMESPACE)["status"] == "success"  # type: ignore[index]


def test_firmware_install_parameters_map_onto_the_install_attribute(api: APIStack) -> None:
    server = api.servers[0]
    body = {
        "parameters": {
            "asset_id": server,
            "firmwares": [
                {"component": "bios", "version": "2.12.0", "vendor": "dell", "models": ["r6515"]},
                {"component": "bmc", "version": "6.10.90.00", "URL": "http://127.0.0.1:1/bmc.bin"},
            ],
            "force_install": True,
            "dry_run": True,
            "reset_bmc_before_install": True,
        }
    }

    created = api.post(f"/api/v1/servers/{server}/condition/firmwareInstall", json=body)

    assert created.status_code == 200, created.text
    attribute = api.attribute(server, TASK_NAMESPACE)
    assert attribute is not None
    assert attribute["force"] is True and attribute["dryRun"] is True
    # As the API wrote it (a list), or as a replica that admitted it meanwhile rewrote it (a map by component).
    firmware = attribute["Firmware"]
    entries = firmware if isinstance(firmware, list) else [{"component": k, **v} for k, v in firmware.items()]
    assert [entry["component"] for entry in entries] == ["bios", "bmc"]
    assert entries[1]["updateFileURL"] == "http://127.0.0.1:1/bmc.bin"
    assert entries[1]["preActions"] == ["resetBMC"]  # the BMC is installed first: it gets the reset
    assert "preActions" not in entries[0]

    assert "requireHostPoweredOff" not in attribute  # not asked: not written


def test_require_host_powered_off_powers_the_host_off_for_the_install(api: APIStack) -> None:
    server = api.servers[1]  # Supermicro-like: a BMC and a BIOS upgrade in its platform set
    platform = next(
        s.name for s in api.inventory.list_firmware_sets() if s.name.startswith("supermicro") and "platform" in s.name
    )
    body = {"parameters": {"asset_id": server, "firmware_set_id": platform, "require_host_powered_off": True}}

    created = api.post(f"/api/v1/servers/{server}/condition/firmwareInstall", json=body)

    assert created.status_code == 200, created.text
    assert created.json()["records"]["conditions"][0]["parameters"]["require_host_powered_off"] is True
    attribute = api.attribute(server, TASK_NAMESPACE)
    assert attribute is not None and attribute["requireHostPoweredOff"] is True

    def settled() -> dict[str, Any] | None:
        answer = api.get(f"/api/v1/servers/{server}/status").json()
        return answer if answer["records"]["state"] in ("succeeded", "failed") else None

    status = api.wait(settled, "the install to settle", timeout=90)
    assert status["records"]["state"] == "succeeded", status
    done = api.attribute(server, TASK_NAMESPACE)
    assert done is not None and done["status"] == "success" and done["requireHostPoweredOff"] is True
    messages = " | ".join(done["messages"])
    assert "host powered off for the install" in messages, messages

    wrong = api.post(
        f"/api/v1/servers/{api.servers[0]}/condition/firmwareInstall",
        json={"parameters": {"asset_id": api.servers[0], "require_host_powered_off": "yes"}},
    )
    assert wrong.status_code == 400
    assert wrong.json()["errors"][0]["field"] == "parameters.require_host_powered_off"
    assert api.attribute(api.servers[0], TASK_NAMESPACE) is None


def test_status_of_a_server_without_conditions_is_404(api: APIStack) -> None:
    answer = api.get(f"/api/v1/servers/{api.servers[0]}/status")
    missing = api.get("/api/v1/servers/00000000-0000-4000-8000-000000000000/status")

    assert answer.status_code == 404 and "no condition" in answer.json()["message"]
    assert missing.status_code == 404
