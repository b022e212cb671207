"""``flasher rollout`` against the sandbox inventory: plan as a table, JSON and CSV; create from options and from an
``apply`` file; status, list, pause, resume, abort and retry-failed; the exit statuses and one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flasher.cli import app
from flasher_sandbox.servers import InventoryServer
from flasher_sandbox.up.scenario import FLEET_BIOS_SET, LOCATION_NAMESPACE, build

pytestmark = pytest.mark.integration

SELECT = f"attr={LOCATION_NAMESPACE}~rack~like~r"


@pytest.fixture(autouse=True)
def inventory(clean_inventory: InventoryServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> InventoryServer:
    scenario = build(2, special=False, racks=2, rollout_servers=4, image_size=4096)
    clean_inventory.seed(scenario.seed(bmc_base_port=20000, image_base_url="http://127.0.0.1:9/images"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLASHER_CONFIG", raising=False)
    monkeypatch.setenv("FLASHER_INVENTORY__URL", clean_inventory.url)
    monkeypatch.setenv("FLASHER_INVENTORY__RETRY_DEADLINE", "1")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("USER", "alice")
    return clean_inventory


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["rollout", *args])
    return result.exit_code, result.stdout, result.stderr


def test_plan_table_json_and_csv() -> None:
    code, out, _ = run("plan", "--select", SELECT, "--firmware-set", FLEET_BIOS_SET)
    assert code == 0, out
    assert "6 servers: 6 would install, 0 at the baseline, 0 refused; 0 with an open task" in " ".join(out.split())
    code, out, _ = run("plan", "--select", SELECT, "--firmware-set", FLEET_BIOS_SET, "--json")
    view = json.loads(out)
    assert view["counts"]["component"] == {"bios": {"install": 6}}
    assert {s["install"][0]["target"] for s in view["servers"]} == {"2.12.2", "1.5a"}
    code, out, _ = run("plan", "--select", "model=x12stw", "--firmware-set", FLEET_BIOS_SET, "--csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:2] == ["server", "uuid"] and len(rows) == 4 and {r[3] for r in rows[1:]} == {"supermicro/x12stw"}
    code, _, err = run("plan", "--select", "rack=r1", "--firmware-set", FLEET_BIOS_SET)
    assert code == 2 and "not a selector" in err and "Traceback" not in err
    code, _, err = run("plan", "--select", "all")
    assert code == 2 and "--firmware-set" in err


def test_create_status_pause_resume_abort(tmp_path: Path) -> None:
    code, out, err = run(
        "create", "fw", "--select", SELECT, "--firmware-set", FLEET_BIOS_SET, "--waves", "2,100%",
        "--max-active", "2", "--window", "Sat 22:00-Sun 04:00 Europe/Amsterdam",
    )  # fmt: skip
    assert code == 0, out + err
    assert "rollout fw created by alice: 6 members in 2 waves (2, 4)" in " ".join(out.split())
    code, _, err = run("create", "fw", "--select", SELECT, "--firmware-set", FLEET_BIOS_SET)
    assert code == 3 and "exists already" in err
    code, out, _ = run("status", "fw", "--json")
    assert code == 0
    view = json.loads(out)
    assert view["state"] == "running" and view["counts"] == {"new": 6}
    assert [w["size"] for w in view["waves"]] == [2, 4]
    code, out, _ = run("status", "fw")
    assert code == 0 and "rollout fw: running, generation 1" in out and "window Sat 22:00-Sun 04:00" in out
    assert run("pause", "fw", "--by", "bob")[0] == 0
    code, _, err = run("pause", "fw")
    assert code == 3 and "paused already (by bob)" in err
    assert run("resume", "fw")[0] == 0
    code, out, _ = run("list")
    assert code == 0 and "fw" in out and "running" in out
    code, out, _ = run("abort", "fw", "--by", "carol")
    assert code == 0 and "6 members cancelled or asked to cancel" in out
    code, out, _ = run("list", "--json")
    assert json.loads(out)[0]["state"] == "aborted"
    code, _, err = run("retry-failed", "fw")
    assert code == 3 and "aborted" in err
    code, _, err = run("status", "nope")
    assert code == 4 and "no rollout named 'nope'" in err


def test_apply_a_file_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "rollout.yaml"
    path.write_text(
        "name: from-file\n"
        f"select: ['{SELECT}']\n"
        f"firmware-set: {FLEET_BIOS_SET}\n"
        "waves: [1, 50%, 100%]\n"
        "max-active: 3\n"
        "group: {rack: 'attr:sh.hollow.sandbox.location~rack'}\n"
        "max-active-per: rack=1\n"
    )
    code, out, err = run("apply", str(path))
    assert code == 0, out + err
    assert "6 members in 3 waves (1, 2, 3)" in " ".join(out.split())
    path.write_text("name: bad\nselect: [all]\nfirmware-set: x\nmax-active: 0\nwindow: 'someday'\n")
    code, _, err = run("apply", str(path))
    assert code == 2
    assert "field 'max-active': value 0" in err and "window 'someday'" in err.replace("\n", " ")
