"""``flasher inventory``: tables, JSON, and one-line errors (no tracebacks), against mocked HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import responses
from typer.testing import CliRunner

from flasher.commands.inventory import app
from tests.support.inventory_helpers import API, SERVER_ID, query, rsps
from tests.support.serverservice_transcript import body

FIXTURES = (rsps,)  # pytest finds this fixture by name in this module
SERVER_URL = f"{API}/servers/{SERVER_ID}"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no config/flasher.yaml here: settings come from the environment
    for key in ("FLASHER_CONFIG", "FLASHER_INVENTORY__FACILITY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FLASHER_INVENTORY__URL", "http://inventory.test")
    monkeypatch.setenv("FLASHER_INVENTORY__RETRY_DEADLINE", "0")
    monkeypatch.setenv("COLUMNS", "250")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_servers_table(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/servers", json=body("GET /servers?attr=sh.hollow.flasher.task~status~eq~queued&page=1&limit=2"))
    code, out, _ = run("servers", "--attr", "sh.hollow.flasher.task~status~eq~queued", "--facility", "sandbox")
    assert code == 0
    for text in (SERVER_ID, "r6515-a01", "dell", "r6515", "127.0.1.1", "queued", "servers (1)"):
        assert text in out
    assert ("attr", "sh.hollow.flasher.task~status~eq~queued") in query(rsps.calls[0])
    assert ("facility-code", "sandbox") in query(rsps.calls[0])


def test_servers_json(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/servers", json=body("GET /servers?attr=sh.hollow.flasher.task"))
    code, out, _ = run("servers", "--json")
    assert code == 0
    (server,) = json.loads(out)
    assert server["uuid"] == SERVER_ID
    assert server["attributes"][2]["data"]["status"] == ""


def test_a_bad_filter_exits_2_naming_it(rsps: responses.RequestsMock) -> None:
    code, _, err = run("servers", "--attr", "sh.hollow.flasher.task~status~is~queued")
    assert code == 2
    assert "'sh.hollow.flasher.task~status~is~queued'" in err
    assert "unknown operator 'is'" in err
    assert len(rsps.calls) == 0


def test_server_shows_attributes_and_installed_firmware(rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    rsps.get(f"{SERVER_URL}/components", json=body("GET /servers/{uuid}/components", occurrence=1))
    code, out, _ = run("server", SERVER_ID)
    assert code == 0
    for text in (
        "sh.hollow.flasher.task",
        "sh.hollow.bmc_info",
        "2.75.75.75",
        "2.6.6",
        "ABC123",
        '"worker":"flasher-0"',
    ):
        assert text in out


def test_server_json_includes_components(rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    rsps.get(f"{SERVER_URL}/components", json=body("GET /servers/{uuid}/components", occurrence=1))
    code, out, _ = run("server", SERVER_ID, "--json")
    assert code == 0
    document = json.loads(out)
    assert document["uuid"] == SERVER_ID
    assert [c["component_type_slug"] for c in document["components"]] == ["bmc", "bios"]


def test_a_missing_server_is_one_line_and_exit_1(rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, status=404, json=body("GET missing server"))
    code, out, err = run("server", SERVER_ID)
    assert code == 1
    assert out == ""
    assert err.strip().startswith("error: inventory GET /servers/{uuid}")
    assert "not found" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_an_unreachable_inventory_is_one_line_and_exit_1(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/server-component-firmware-sets", body=requests.ConnectionError("refused"))
    code, _, err = run("firmware-sets")
    assert code == 1
    assert "cannot connect to http://inventory.test" in err
    assert "Traceback" not in err


def test_firmware_sets_by_vendor_and_model(rsps: responses.RequestsMock) -> None:
    rsps.get(
        f"{API}/server-component-firmware-sets",
        json=body("GET /server-component-firmware-sets?attr=labels vendor+model"),
    )
    code, out, _ = run("firmware-sets", "--vendor", "dell", "--model", "r6515")
    assert code == 0
    for text in ("dell-r6515", "model=r6515 vendor=dell", "bios 2.7.3", "bmc 2.80.80.80"):
        assert text in out
    assert query(rsps.calls[0])[:2] == [
        ("attr", "sh.hollow.firmware_set.labels~vendor~eq~dell"),
        ("attr", "sh.hollow.firmware_set.labels~model~eq~r6515"),
    ]
    code, out, _ = run("firmware-sets", "--json")
    assert code == 0
    assert json.loads(out)[0]["name"] == "dell-r6515"


def test_rollout_records_are_not_listed_as_firmware_sets(rsps: responses.RequestsMock) -> None:
    listing = body("GET /server-component-firmware-sets?attr=labels vendor+model")
    real = listing["records"][0]
    record = {
        **real,
        "uuid": "9d2f0c1e-0000-4000-8000-000000000001",
        "name": "flasher-rollout/bios-q3",
        "attributes": [{"namespace": "sh.hollow.flasher.rollout", "data": {"name": "bios-q3"}}],
    }
    rsps.get(f"{API}/server-component-firmware-sets", json={**listing, "records": [record, real]})
    code, out, _ = run("firmware-sets", "--json")
    assert code == 0
    assert [s["name"] for s in json.loads(out)] == ["dell-r6515"]


def test_help_describes_every_command() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for command in ("servers", "server", "firmware-sets"):
        assert command in out
