"""The sandbox inventory's own features: fault injection, auth, seeding, the attribute journal, request counts,
clean shutdown."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from flasher.constants import BMC_INFO_NAMESPACE, FIRMWARE_SET_LABELS_NAMESPACE, OUTOFBAND_STATUS_NAMESPACE
from flasher_sandbox.inventory.seed import SeedError, load_seed
from flasher_sandbox.servers import InventoryServer

pytestmark = pytest.mark.integration

EXAMPLE_SEED = Path(__file__).resolve().parents[2] / "flasher_sandbox" / "inventory" / "example-seed.yaml"


def _statuses(inventory: InventoryServer, count: int, method: str = "GET", path: str = "/servers") -> list[int]:
    return [requests.request(method, f"{inventory.api}{path}", timeout=30).status_code for _ in range(count)]


def test_every_fifth_call_fails(clean_inventory: InventoryServer) -> None:
    with clean_inventory.faults(every=5) as state:
        assert state["rule"]["every"] == 5
        assert _statuses(clean_inventory, 10) == [200, 200, 200, 200, 503, 200, 200, 200, 200, 503]
        assert clean_inventory.fault_state() | {"rule": None} == {"rule": None, "matched": 10, "injected": 2}
    assert _statuses(clean_inventory, 5) == [200] * 5


def test_error_rate_status_methods_path_and_times(clean_inventory: InventoryServer) -> None:
    (server_id,) = clean_inventory.seed({"servers": [{"name": "f", "attributes": {"ns.a": {"n": 0}}}]})["server_ids"]
    attribute = f"/servers/{server_id}/attributes/ns.a"
    clean_inventory.set_faults(error_rate=0.5, status=500, methods=["PUT"], path_regex="/attributes/", times=1)
    assert _statuses(clean_inventory, 2, "GET", attribute) == [200, 200]
    assert _statuses(clean_inventory, 2) == [200, 200]
    puts = [
        requests.put(f"{clean_inventory.api}{attribute}", json={"data": {"n": i}}, timeout=30).status_code
        for i in range(4)
    ]
    assert puts == [200, 500, 200, 200]  # the 2nd matching call fails, and only once (times=1)


def test_a_fault_after_the_handler_keeps_the_change(clean_inventory: InventoryServer) -> None:
    (server_id,) = clean_inventory.seed({"servers": [{"name": "lost-answer"}]})["server_ids"]
    url = f"{clean_inventory.api}/servers/{server_id}/attributes"
    with clean_inventory.faults(every=1, phase="after", methods=["POST"]):
        response = requests.post(url, json={"namespace": "ns.kept", "data": {"ok": True}}, timeout=30)
        assert response.status_code == 503
        assert response.headers["X-Sandbox-Fault"] == "1"
        assert response.json()["message"] == "sandbox fault injection"
    assert requests.get(f"{url}/ns.kept", timeout=30).json()["record"]["data"] == {"ok": True}


def test_the_journal_lists_every_attribute_write_in_order(clean_inventory: InventoryServer) -> None:
    (server_id,) = clean_inventory.seed({"servers": [{"name": "journal"}]})["server_ids"]
    url = f"{clean_inventory.api}/servers/{server_id}/attributes"
    agent = {"User-Agent": "operator-tool/1"}
    requests.post(url, json={"namespace": "ns.task", "data": {"n": 1}}, headers=agent, timeout=30).raise_for_status()
    requests.put(f"{url}/ns.task", json={"data": {"n": 2}}, timeout=30).raise_for_status()
    requests.post(url, json={"namespace": "ns.other", "data": {"x": True}}, timeout=30).raise_for_status()
    requests.delete(f"{url}/ns.task", timeout=30).raise_for_status()
    refused = requests.put(f"{url}/ns.task", json={"data": {"n": 3}}, timeout=30)  # 404: nothing was written
    assert refused.status_code == 404

    task = clean_inventory.journal(server=server_id, namespace="ns.task")
    assert [(e["op"], e["data"]) for e in task] == [("create", {"n": 1}), ("replace", {"n": 2}), ("delete", None)]
    assert task[0]["agent"] == "operator-tool/1"
    assert [e["seq"] for e in task] == sorted(e["seq"] for e in task)
    assert clean_inventory.journal(server=server_id, after=task[1]["seq"])[0]["namespace"] == "ns.other"
    clean_inventory.reset()
    assert clean_inventory.journal() == []


def test_the_api_requests_are_counted_by_method_and_route(clean_inventory: InventoryServer) -> None:
    (server_id,) = clean_inventory.seed({"servers": [{"name": "counted"}]})["server_ids"]
    before = clean_inventory.request_counts()
    for _ in range(3):
        requests.get(f"{clean_inventory.api}/servers", params={"attr": "ns.task"}, timeout=30).raise_for_status()
    url = f"{clean_inventory.api}/servers/{server_id}/attributes"
    requests.post(url, json={"namespace": "ns.task", "data": {"n": 1}}, timeout=30).raise_for_status()
    assert requests.put(f"{url}/ns.none", json={"data": {}}, timeout=30).status_code == 404  # answered: counted
    clean_inventory.journal()  # /_sandbox: not counted
    after = clean_inventory.request_counts()
    grown = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    assert grown == {
        "GET /api/v1/servers": 3,
        "POST /api/v1/servers/<server_id>/attributes": 1,
        "PUT /api/v1/servers/<server_id>/attributes/<namespace>": 1,
    }


def test_health_and_controls_are_never_faulted(clean_inventory: InventoryServer) -> None:
    with clean_inventory.faults(every=1, path_regex=".*"):
        assert requests.get(f"{clean_inventory.url}/healthz", timeout=30).status_code == 200
        assert requests.get(f"{clean_inventory.url}/_sandbox/faults", timeout=30).status_code == 200
        assert _statuses(clean_inventory, 1) == [503]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({}, "every"),
        ({"every": 0}, "every"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"every": 2, "status": 404}, "status"),
        ({"every": 2, "methods": "GET"}, "methods"),
        ({"every": 2, "path_regex": "("}, "path_regex"),
        ({"every": 2, "phase": "during"}, "phase"),
        ({"every": 2, "status": None}, "delay"),
        ({"every": 2, "colour": "red"}, "colour"),
    ],
)
def test_bad_fault_rules_are_refused(clean_inventory: InventoryServer, rule: dict[str, object], field: str) -> None:
    response = requests.put(f"{clean_inventory.url}/_sandbox/faults", json=rule, timeout=30)
    assert response.status_code == 400
    assert field in response.json()["error"]
    assert clean_inventory.fault_state()["rule"] is None


def test_token_auth_and_clean_shutdown(tmp_path: Path) -> None:
    inventory = InventoryServer(tmp_path, token="sandbox-token-1").start()
    try:
        assert requests.get(f"{inventory.api}/servers", timeout=30).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert requests.get(f"{inventory.api}/servers", headers=wrong, timeout=30).status_code == 401
        assert requests.get(f"{inventory.api}/servers", headers=inventory.headers, timeout=30).status_code == 200
        assert requests.get(f"{inventory.url}/healthz/readiness", timeout=30).status_code == 200
        assert inventory.seed({"servers": [{"name": "authed"}]})["servers"]["authed"]
    finally:
        status = inventory.stop()
    assert status == 0
    assert "sandbox-token-1" not in (tmp_path / f"inventory-{inventory.port}.log").read_text()


def test_example_seed_loads_once(tmp_path: Path) -> None:
    inventory = InventoryServer(tmp_path, seed_path=EXAMPLE_SEED).start()
    try:
        servers = requests.get(f"{inventory.api}/servers", timeout=30).json()["records"]
        assert sorted(s["name"] for s in servers) == ["r6515-a01", "r6515-a02", "r6515-a03", "x12-b01", "x12-b02"]
        first = next(s for s in servers if s["name"] == "r6515-a01")
        assert first["uuid"] == "3f0c2a8e-1b7d-4c55-9a3e-0c1d2e3f4a01"
        attrs = {a["namespace"]: a["data"] for a in first["attributes"]}
        assert attrs[BMC_INFO_NAMESPACE] == {"address": "127.0.0.1:8443"}
        credential = requests.get(f"{inventory.api}/servers/{first['uuid']}/credentials/bmc", timeout=30).json()
        assert (credential["record"]["username"], credential["record"]["password"]) == ("root", "calvin")
        components = requests.get(f"{inventory.api}/servers/{first['uuid']}/components", timeout=30).json()
        installed = {
            c["component_type_slug"]: c["versioned_attributes"][0]["data"]["firmware"]["installed"]
            for c in components["records"]
        }
        assert installed == {"bmc": "2.75.75.75", "bios": "2.6.6"}
        assert components["records"][0]["versioned_attributes"][0]["namespace"] == OUTOFBAND_STATUS_NAMESPACE
        labels = [f"{FIRMWARE_SET_LABELS_NAMESPACE}~vendor~eq~supermicro"]
        sets = requests.get(f"{inventory.api}/server-component-firmware-sets", params={"attr": labels}, timeout=30)
        (supermicro,) = sets.json()["records"]
        assert supermicro["name"] == "supermicro-x12stw-tf"
        assert sorted(f["component"] for f in supermicro["component_firmware"]) == ["bios", "bmc"]
        inventory.stop()
        inventory.start()  # same database, seed given again: not loaded twice
        assert requests.get(f"{inventory.api}/servers", timeout=30).json()["total_record_count"] == 5
        assert "not loaded" in inventory.log()
    finally:
        inventory.stop()


def test_load_seed_from_another_process_while_serving(clean_inventory: InventoryServer) -> None:
    fleet = {
        "servers": [{"name": f"bulk-{i}", "facility": "bulk", "components": [{"type": "bmc"}]} for i in range(300)]
    }
    result = load_seed(clean_inventory.db_path, fleet)
    assert len(result.server_ids) == 300
    listed = requests.get(f"{clean_inventory.api}/servers", params={"facility-code": "bulk", "limit": "1"}, timeout=30)
    assert listed.json()["total_record_count"] == 300


@pytest.mark.parametrize(
    ("seed", "message"),
    [
        ({"servers": [{"name": "x", "components": [{"name": "no type"}]}]}, "servers[0].components[0].type: required"),
        ({"servers": {"name": "x"}}, "seed.servers: expected a list"),
        ({"firmware": [{"vendor": "dell"}]}, "firmware[0]: Key: 'ComponentFirmwareVersion.Model'"),
        ({"firmware_sets": [{"name": "s", "firmware": [{"component": "bmc", "version": "9"}]}]}, "no firmware version"),
        ({"hosts": []}, "unknown section"),
    ],
)
def test_bad_seeds_name_the_entry(clean_inventory: InventoryServer, seed: dict[str, object], message: str) -> None:
    with pytest.raises(SeedError, match=None) as raised:
        load_seed(clean_inventory.db_path, seed)
    assert message in str(raised.value)
    response = requests.post(f"{clean_inventory.url}/_sandbox/seed", json=seed, timeout=30)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert requests.get(f"{clean_inventory.api}/servers", timeout=30).json()["records"] == []
