"""Install plans against the sandbox inventory over real HTTP: every mode, refusal and error message, the
write-back into the task attribute, and ``flasher plan``.

One fleet is seeded per test (``clean_inventory`` empties the session's inventory first):

- ``r6515-a``: dell r6515 with BMC 2.75.75.75, BIOS 2.7.3, two Samsung drives at GDC5602Q, a Mellanox NIC;
- ``r7515-a``: dell r7515, for which two sets are labelled (ResolveFirmware: several);
- ``r6525-a``: dell r6525, for which no set is labelled (ResolveFirmware: none);
- ``bare``: no vendor attributes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from flasher.cli import app
from flasher.config import InventorySettings
from flasher.constants import TASK_NAMESPACE
from flasher.install.modes import build_plan
from flasher.install.plan import Decision, InstallPlan, PlanError
from flasher.inventory import InventoryClient
from flasher.task.model import InstallMode, parse_install_task
from flasher_sandbox.servers import InventoryServer
from tests.support.cli import invoke

pytestmark = pytest.mark.integration

REPO = "http://127.0.0.1:9/firmware"


def _fw(vendor: str, component: str, version: str, models: list[str], filename: str, fill: str) -> dict[str, Any]:
    return {
        "vendor": vendor,
        "model": models,
        "component": component,
        "version": version,
        "filename": filename,
        "checksum": fill * 32,
        "upstream_url": f"https://downloads.example/{filename}",
        "repository_url": f"{REPO}/{filename}",
    }


SEED: dict[str, Any] = {
    "firmware": [
        _fw("dell", "bmc", "2.80.80.80", ["r6515", "r7515"], "iDRAC_2.80.80.80.exe", "4b"),
        _fw("dell", "bmc", "2.70.70.70", ["r6515"], "iDRAC_2.70.70.70.exe", "4c"),
        _fw("dell", "bios", "2.8.0", ["r6515"], "BIOS_2.8.0.bin", "0a"),
        _fw("dell", "bios", "2.9.0", ["r6515"], "BIOS_2.9.0.bin", "0b"),
        _fw("dell", "bios", "2.9.0", ["r6515"], "BIOS_2.9.0.exe", "0c"),
        _fw("samsung", "drive", "GDC5902Q", ["MZ7LH480"], "samsung-GDC5902Q.bin", "5a"),
        _fw("mellanox", "nic", "22.36.1010", ["cx5"], "mlx-22.36.1010.bin", "6a"),
        _fw("mellanox", "nic", "22.37.1000", ["cx6"], "mlx6-22.37.1000.bin", "6b"),
        _fw("nvidia", "gpu", "96.00.5E", ["a100"], "a100-96.00.5E.run", "7a"),
    ],
    "firmware_sets": [
        {
            "name": "dell-r6515",
            "labels": {"vendor": "dell", "model": "r6515"},
            "firmware": [
                {"component": "bmc", "version": "2.80.80.80"},
                {"component": "bios", "version": "2.8.0"},
                {"component": "drive", "version": "GDC5902Q", "vendor": "samsung"},
                {"component": "nic", "version": "22.36.1010", "vendor": "mellanox"},
                {"component": "nic", "version": "22.37.1000", "vendor": "mellanox"},
            ],
        },
        {
            "name": "dell-r7515-2025",
            "labels": {"vendor": "dell", "model": "r7515"},
            "firmware": [{"component": "bmc", "version": "2.80.80.80"}],
        },
        {
            "name": "dell-r7515-2026",
            "labels": {"vendor": "dell", "model": "r7515"},
            "firmware": [{"component": "bmc", "version": "2.80.80.80"}],
        },
        {"name": "two-bios", "labels": {"vendor": "dell"}, "firmware": [{"component": "bios", "version": "2.8.0"}]},
        {"name": "gpu-only", "labels": {"vendor": "nvidia"}, "firmware": [{"component": "gpu", "version": "96.00.5E"}]},
    ],
    "servers": [
        {
            "name": "r6515-a",
            "vendor": "dell",
            "model": "r6515",
            "serial": "R6515A",
            "components": [
                {"type": "nic", "name": "NIC 1", "vendor": "mellanox", "model": "cx5", "installed": "22.31.6"},
                {"type": "drive", "name": "Disk 1", "vendor": "samsung", "model": "MZ7LH480", "serial": "S1",
                 "installed": "GDC5602Q"},
                {"type": "drive", "name": "Disk 0", "vendor": "samsung", "model": "MZ7LH480", "serial": "S0",
                 "installed": "GDC5602Q"},
                {"type": "bios", "name": "BIOS", "installed": "2.7.3"},
                {"type": "bmc", "name": "BMC", "installed": "2.75.75.75"},
            ],
        },
        {"name": "r7515-a", "vendor": "dell", "model": "r7515",
         "components": [{"type": "bmc", "name": "BMC", "installed": "2.75.75.75"}]},
        {"name": "r6525-a", "vendor": "dell", "model": "r6525",
         "components": [{"type": "bmc", "name": "BMC", "installed": "2.75.75.75"}]},
        {"name": "bare", "components": [{"type": "bmc", "name": "BMC", "vendor": "dell", "model": "r6515"}]},
    ],
}  # fmt: skip


class Fleet:
    """The seeded inventory: a client, and the ids the seed created."""

    def __init__(self, inventory: InventoryServer) -> None:
        self.inventory = inventory
        self.result = inventory.seed(SEED)
        self.client = InventoryClient(InventorySettings(url=inventory.url, retry_deadline=5))
        self.sets = {s.name: s.uuid for s in self.client.list_firmware_sets()}
        self.firmware = {fw.filename: fw.uuid for fw in self.client.list_firmware()}

    def uuid(self, name: str) -> str:
        return str(self.result["servers"][name])

    def plan(self, name: str, data: dict[str, Any]) -> InstallPlan:
        uuid = self.uuid(name)
        return build_plan(
            parse_install_task(data), self.client.get_server(uuid), self.client.list_components(uuid), self.client
        )

    def expand(self, text: str) -> str:
        """``{server:r6515-a}``, ``{set:dell-r6515}`` and ``{fw:BIOS_2.9.0.bin}`` replaced by their uuids."""
        for name in self.result["servers"]:
            text = text.replace(f"{{server:{name}}}", self.uuid(name))
        for name, uuid in self.sets.items():
            text = text.replace(f"{{set:{name}}}", str(uuid))
        for filename, uuid in self.firmware.items():
            text = text.replace(f"{{fw:{filename}}}", str(uuid))
        return text


@pytest.fixture
def fleet(clean_inventory: InventoryServer) -> Fleet:
    return Fleet(clean_inventory)


# (server, attribute, mode, [(component, serial, installed, target, decision)])
PLANS: list[tuple[str, dict[str, Any], InstallMode, list[tuple[str, str, str | None, str, str]]]] = [
    (
        "r6515-a",
        {"Firmware": {"bmc": {"version": "2.80.80.80"}, "bios": {"version": "2.8.0"}}},
        InstallMode.PREDEFINED_FIRMWARE,
        [("bmc", "0", "2.75.75.75", "2.80.80.80", "install"), ("bios", "0", "2.7.3", "2.8.0", "install")],
    ),
    (
        "r6515-a",
        {"Firmware": [{"component": "BMC", "version": "2.70.70.70"}]},
        InstallMode.PREDEFINED_FIRMWARE,
        [("bmc", "0", "2.75.75.75", "2.70.70.70", "refuse")],
    ),
    (
        "r6515-a",
        {"Firmware": {"bmc": {"version": "2.70.70.70", "force": True}}},
        InstallMode.PREDEFINED_FIRMWARE,
        [("bmc", "0", "2.75.75.75", "2.70.70.70", "install")],
    ),
    (
        "r6515-a",
        {"Firmware": {"drive": {"version": "GDC5902Q"}}},
        InstallMode.PREDEFINED_FIRMWARE,
        [("drive", "S0", "GDC5602Q", "GDC5902Q", "refuse"), ("drive", "S1", "GDC5602Q", "GDC5902Q", "refuse")],
    ),
    (
        "r6515-a",
        {"firmwareSet": "dell-r6515"},
        InstallMode.PREDEFINED_FIRMWARE_SET,
        [
            ("bmc", "0", "2.75.75.75", "2.80.80.80", "install"),
            ("bios", "0", "2.7.3", "2.8.0", "install"),
            ("drive", "S0", "GDC5602Q", "GDC5902Q", "refuse"),
            ("drive", "S1", "GDC5602Q", "GDC5902Q", "refuse"),
            ("nic", "0", "22.31.6", "22.36.1010", "install"),
        ],
    ),
    (
        "r6515-a",
        {"firmwareSet": "{set:dell-r6515}", "force": True},
        InstallMode.PREDEFINED_FIRMWARE_SET,
        [
            ("bmc", "0", "2.75.75.75", "2.80.80.80", "install"),
            ("bios", "0", "2.7.3", "2.8.0", "install"),
            ("drive", "S0", "GDC5602Q", "GDC5902Q", "install"),
            ("drive", "S1", "GDC5602Q", "GDC5902Q", "install"),
            ("nic", "0", "22.31.6", "22.36.1010", "install"),
        ],
    ),
    (
        "r6515-a",
        {"priority": 3, "requester": "alice"},
        InstallMode.RESOLVE_FIRMWARE,
        [
            ("bmc", "0", "2.75.75.75", "2.80.80.80", "install"),
            ("bios", "0", "2.7.3", "2.8.0", "install"),
            ("drive", "S0", "GDC5602Q", "GDC5902Q", "refuse"),
            ("drive", "S1", "GDC5602Q", "GDC5902Q", "refuse"),
            ("nic", "0", "22.31.6", "22.36.1010", "install"),
        ],
    ),
    (
        "bare",
        {"Firmware": {"bmc": {"version": "2.80.80.80"}}},
        InstallMode.PREDEFINED_FIRMWARE,
        [("bmc", "0", None, "2.80.80.80", "skip")],
    ),
]


@pytest.mark.parametrize(("server", "data", "mode", "expected"), PLANS)
def test_plans(
    fleet: Fleet,
    server: str,
    data: dict[str, Any],
    mode: InstallMode,
    expected: list[tuple[str, str, str | None, str, str]],
) -> None:
    data = json.loads(fleet.expand(json.dumps(data)))
    plan = fleet.plan(server, data)
    assert plan.mode is mode
    got = [(i.component, i.component_serial, i.installed_version, i.version, i.decision.value) for i in plan.items]
    assert got == expected
    for item in plan.items:
        assert item.image_url.startswith(f"{REPO}/") and item.checksum.startswith("sha256:")
        assert item.reason


def test_images_and_sets_come_from_the_inventory(fleet: Fleet) -> None:
    plan = fleet.plan("r6515-a", {"firmwareSet": "dell-r6515"})
    assert (plan.firmware_set_name, plan.firmware_set_uuid) == ("dell-r6515", fleet.sets["dell-r6515"])
    bmc = plan.items[0]
    assert (bmc.image_url, bmc.checksum, bmc.filename) == (
        f"{REPO}/iDRAC_2.80.80.80.exe",
        "sha256:" + "4b" * 32,
        "iDRAC_2.80.80.80.exe",
    )
    assert bmc.firmware_uuid == fleet.firmware["iDRAC_2.80.80.80.exe"]
    assert plan.unmatched == ("nic mellanox [cx6] 22.37.1000",)
    assert plan.refusal() == (
        "refused: drive Disk 0 (S0): cannot compare 'GDC5602Q' with 'GDC5902Q': 'GDC5602Q' has no numeric version"
        " (set force to install anyway); drive Disk 1 (S1): cannot compare 'GDC5602Q' with 'GDC5902Q': 'GDC5602Q'"
        " has no numeric version (set force to install anyway)"
    )


# (server, attribute, the exact message; {server:...}, {set:...} and {fw:...} name uuids)
ERRORS: list[tuple[str, dict[str, Any], str]] = [
    (
        "r6515-a",
        {"Firmware": {"bios": {"version": "3.0.0"}}},
        "Firmware.bios: no firmware in the inventory matches vendor 'dell', server model 'r6515', component 'bios',"
        " version '3.0.0'",
    ),
    (
        "r6525-a",
        {"Firmware": {"bmc": {"version": "2.70.70.70"}}},  # exists, for r6515 only: not for this server's BMC
        "Firmware.bmc: no firmware in the inventory matches vendor 'dell', server model 'r6525', component 'bmc',"
        " version '2.70.70.70'",
    ),
    (
        "r6515-a",
        {"Firmware": {"nic": {"version": "22.99.1"}}},
        "Firmware.nic: no firmware in the inventory matches vendor 'mellanox', model 'cx5', component 'nic',"
        " version '22.99.1'",
    ),
    (
        "r6515-a",
        {"Firmware": {"bios": {"version": "2.9.0"}}},
        "Firmware.bios: 2 firmware in the inventory match vendor 'dell', server model 'r6515', component 'bios',"
        " version '2.9.0': {fw:BIOS_2.9.0.bin} (BIOS_2.9.0.bin, bios dell [r6515] 2.9.0);"
        " {fw:BIOS_2.9.0.exe} (BIOS_2.9.0.exe, bios dell [r6515] 2.9.0) (give updateFileURL and updateFileChecksum"
        " to choose)",
    ),
    (
        "r6515-a",
        {"Firmware": {"gpu": {"version": "1.0"}}},
        "Firmware.gpu: server {server:r6515-a} has no gpu component (its components: bios dell r6515, bmc dell"
        " r6515, drive samsung MZ7LH480, nic mellanox cx5)",
    ),
    (
        "r6515-a",
        {"Firmware": {"bmc": {"version": "2.80.80.80", "updateFileURL": "https://fw.example.com/idrac.exe"}}},
        "Firmware.bmc: updateFileURL is given without updateFileChecksum; every image is verified",
    ),
    ("r6515-a", {"firmwareSet": "no-such-set"}, "firmwareSet: no firmware set has the name or uuid 'no-such-set'"),
    (
        "r6515-a",
        {"firmwareSet": "00000000-0000-4000-8000-000000000000"},
        "firmwareSet: no firmware set has the name or uuid '00000000-0000-4000-8000-000000000000'",
    ),
    (
        "r6515-a",
        {"firmwareSet": "gpu-only"},
        "firmware set 'gpu-only' has no firmware for any component of server {server:r6515-a} (the set has: gpu"
        " nvidia [a100] 96.00.5E; the server has: bios dell r6515, bmc dell r6515, drive samsung MZ7LH480,"
        " nic mellanox cx5)",
    ),
    (
        "r7515-a",
        {},
        "2 firmware sets are labelled vendor=dell, model=r7515; give firmwareSet to choose: dell-r7515-2025"
        " ({set:dell-r7515-2025}, labels model=r7515, vendor=dell); dell-r7515-2026 ({set:dell-r7515-2026}, labels"
        " model=r7515, vendor=dell)",
    ),
    (
        "r6525-a",
        {},
        "no firmware set is labelled vendor=dell, model=r6525; sets for vendor dell: dell-r6515 ({set:dell-r6515},"
        " labels model=r6515, vendor=dell); dell-r7515-2025 ({set:dell-r7515-2025}, labels model=r7515, vendor=dell);"
        " dell-r7515-2026 ({set:dell-r7515-2026}, labels model=r7515, vendor=dell); two-bios ({set:two-bios}, labels"
        " vendor=dell)",
    ),
    (
        "bare",
        {},
        "server {server:bare} has no vendor and model in sh.hollow.alloy.server_vendor_attributes (vendor None,"
        " model None); give firmwareSet or Firmware",
    ),
    (
        "r6515-a",
        {"method": "in-band", "firmwareSet": "dell-r6515"},
        "install method 'in-band' is known but not supported yet (use 'out-of-band')",
    ),
]


@pytest.mark.parametrize(("server", "data", "message"), ERRORS)
def test_plan_errors(fleet: Fleet, server: str, data: dict[str, Any], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        fleet.plan(server, data)
    assert str(caught.value) == fleet.expand(message)


def test_a_set_with_two_firmware_for_one_component(fleet: Fleet) -> None:
    ids = [fleet.firmware["BIOS_2.8.0.bin"], fleet.firmware["BIOS_2.9.0.bin"]]
    fleet.client.create_firmware_set("bios-twice", [str(i) for i in ids], {"vendor": "dell"})
    with pytest.raises(PlanError) as caught:
        fleet.plan("r6515-a", {"firmwareSet": "bios-twice"})
    message = str(caught.value)
    assert message.startswith("firmware set 'bios-twice' has 2 firmware for bios BIOS (vendor 'dell', model 'r6515'): ")
    assert all(str(i) in message for i in ids)


def test_write_back_round_trip_through_the_inventory(fleet: Fleet) -> None:
    uuid = fleet.uuid("r6515-a")
    data = {"status": "", "priority": 2, "requester": "alice", "force": True, "ticket": "OPS-7"}
    fleet.client.create_attribute(uuid, TASK_NAMESPACE, data)
    task = parse_install_task(fleet.client.get_attribute(uuid, TASK_NAMESPACE).data)
    plan = build_plan(task, fleet.client.get_server(uuid), fleet.client.list_components(uuid), fleet.client)
    resolved = plan.apply_to(task)
    fleet.client.replace_attribute(uuid, TASK_NAMESPACE, resolved.to_attribute())

    stored = fleet.client.get_attribute(uuid, TASK_NAMESPACE).data
    assert isinstance(stored, dict)
    assert stored["ticket"] == "OPS-7" and stored["requester"] == "alice"
    assert stored["mode"] == "ResolveFirmware" and stored["firmwareSet"] == "dell-r6515"
    assert stored["Firmware"]["bmc"]["status"] == "pending"
    assert stored["Firmware"]["bmc"]["installedVersion"] == "2.75.75.75"
    drive = stored["Firmware"]["drive"]
    assert drive["status"] == "pending" and drive["message"] == "2 to install"
    assert [(i["name"], i["serial"]) for i in drive["instances"]] == [("Disk 0", "S0"), ("Disk 1", "S1")]
    again = parse_install_task(stored)
    assert again == resolved
    # Planned again from what was written back (a reclaimed task): the same plan.
    assert build_plan(again, fleet.client.get_server(uuid), fleet.client.list_components(uuid), fleet.client) == plan


# --------------------------------------------------------------------------------------------------------------
# flasher plan


def _run(fleet: Fleet, *args: str) -> Any:
    env = {"FLASHER_INVENTORY__URL": fleet.inventory.url, "FLASHER_INVENTORY__RETRY_DEADLINE": "5", "COLUMNS": "250"}
    return invoke(app, ["plan", *args], env=env)


def test_cli_plan_reads_the_attribute(fleet: Fleet) -> None:
    uuid = fleet.uuid("r6515-a")
    fleet.client.create_attribute(uuid, TASK_NAMESPACE, {"firmwareSet": "dell-r6515"})
    result = _run(fleet, "--server", uuid)
    assert result.exit_code == 0, result.output
    out = result.output
    assert (
        f"server {uuid} (r6515-a): PredefinedFirmwareSet, firmware set dell-r6515 ({fleet.sets['dell-r6515']})" in out
    )
    assert f"from {TASK_NAMESPACE}" in out
    assert "upgrade from 2.75.75.75 to 2.80.80.80" in out
    assert "3 to install, 0 skipped, 2 refused" in out
    assert "the task would fail: refused: drive Disk 0 (S0)" in out


def test_cli_plan_what_if_and_json(fleet: Fleet) -> None:
    uuid = fleet.uuid("r6515-a")
    result = _run(fleet, "--server", uuid, "--firmware", "bmc=2.70.70.70", "--firmware", "BIOS=2.8.0", "--json")
    assert result.exit_code == 0, result.output
    plan = InstallPlan.model_validate_json(result.stdout)
    assert plan.mode is InstallMode.PREDEFINED_FIRMWARE
    assert [(i.component, i.decision) for i in plan.items] == [("bmc", Decision.REFUSE), ("bios", Decision.INSTALL)]
    forced = _run(fleet, "--server", uuid, "--firmware", "bmc=2.70.70.70", "--force", "--json")
    assert InstallPlan.model_validate_json(forced.stdout).items[0].decision is Decision.INSTALL
    # Nothing was written.
    assert fleet.client.get_server(uuid).attribute(TASK_NAMESPACE) is None


def test_cli_plan_without_attribute_shows_resolve_firmware(fleet: Fleet) -> None:
    result = _run(fleet, "--server", fleet.uuid("r6515-a"))
    assert result.exit_code == 0, result.output
    assert "ResolveFirmware, firmware set dell-r6515" in result.output
    assert "as ResolveFirmware would plan it" in result.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--firmware-set", "nope"], 1, "error: firmwareSet: no firmware set has the name or uuid 'nope'"),
        (["--firmware", "bmc"], 2, "use TYPE=VERSION"),
        (["--firmware", "bmc=1", "--firmware-set", "x"], 2, "give --firmware-set or --firmware, not both"),
    ],
)
def test_cli_plan_errors(fleet: Fleet, args: list[str], code: int, message: str) -> None:
    result = _run(fleet, "--server", fleet.uuid("r6515-a"), *args)
    assert result.exit_code == code
    assert message in result.output


def test_cli_plan_invalid_attribute_and_unknown_server(fleet: Fleet) -> None:
    uuid = fleet.uuid("r6515-a")
    fleet.client.create_attribute(uuid, TASK_NAMESPACE, {"priority": 7})
    result = _run(fleet, "--server", uuid)
    assert result.exit_code == 1
    assert "error: task attribute sh.hollow.flasher.task: field 'priority': value 7 is outside 0..3" in result.output
    missing = _run(fleet, "--server", "00000000-0000-4000-8000-000000000000")
    assert missing.exit_code == 1 and "resource not found" in missing.output
    malformed = _run(fleet, "--server", "not-a-uuid")
    assert malformed.exit_code == 2
