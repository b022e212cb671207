"""Onboarding against real peers: the DMTF mockups served read-only and the simulated BMCs (both shapes), into the
sandbox inventory.

The expected components of each mockup are written from reading its files (``/work/shared/fixtures/redfish``),
resource by resource, not from flasher's output: every present (not ``Absent``) Processor, Memory, Drive,
storage controller, NetworkAdapter (or, without one, physical EthernetInterface), PowerSupply, Chassis, Manager,
the host System's BIOS and TrustedModules, with the firmware version its FirmwareInventory member (else the
resource) gives.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from flasher.bmc import BMC
from flasher.config import BMCSettings, InventorySettings
from flasher.constants import (
    BMC_INFO_NAMESPACE,
    COLLECTION_NAMESPACE,
    INVENTORY_NAMESPACE,
    OUTOFBAND_METADATA_NAMESPACE,
    SERVER_VENDOR_NAMESPACE,
)
from flasher.inventory.client import InventoryClient
from flasher.inventory.models import Component
from flasher.netboot.lookup import mac_namespace
from flasher.onboard.collect import collect
from flasher.onboard.create import OnboardError, onboard
from flasher.onboard.write import InventoryWriter
from flasher_sandbox.servers import BmcFleet, InventoryServer

pytestmark = pytest.mark.integration

SETTINGS = BMCSettings(scheme="http", retries=1, retry_delay=0.05, read_timeout=5, connect_timeout=2)


def _open(address: str, username: str, password: str) -> BMC:
    return BMC(address, username, password, settings=SETTINGS)


def _client(inventory: InventoryServer) -> InventoryClient:
    return InventoryClient(InventorySettings(url=inventory.url, retry_deadline=2.0, retry_max_wait=0.1))


def _by_slot(components: list[Component]) -> dict[str, tuple[str, str | None, str]]:
    """``{slot: (type slug, installed firmware, serial)}`` from the inventory's components."""
    out = {}
    for component in components:
        metadata = next(a.as_object() for a in component.attributes if a.namespace == OUTOFBAND_METADATA_NAMESPACE)
        out[metadata["slot"]] = (component.component_type_slug, component.installed_firmware(), component.serial)
    return out


# --- the DMTF mockups: expected components written from the files -------------------------------------------------

_RACK = "Systems/437XR1138R2"
#: dmtf-public-rackmount1: Managers/BMC (FirmwareInventory/BMC 1.45.455b66-rev4), Chassis/1U, the System's BIOS
#: (FirmwareInventory/BIOS "P79 v1.45"), TrustedModules[0] 1.13b, Processors CPU1 and FPGA1 (CPU2 Absent),
#: Memory DIMM1-3 (DIMM4 Absent), SimpleStorage/1 (FirmwareInventory/SS 2.50), no NetworkAdapters: the two
#: physical EthernetInterfaces 12446A3B0411 and 12446A3B8890 (VLAN1 and the ToManager host interface are not
#: NICs), PowerSupplies Bay1 "PSU 1" 1.00 serial 3488247 (Bay2 Absent).
RACKMOUNT1 = {
    "Managers/BMC": ("bmc", "1.45.455b66-rev4"),
    "Chassis/1U": ("chassis", None),
    _RACK: ("bios", "P79 v1.45"),
    "TrustedModules/0": ("tpm", "1.13b"),
    f"{_RACK}/Processors/CPU1": ("cpu", None),
    f"{_RACK}/Processors/FPGA1": ("fpga", None),
    f"{_RACK}/Memory/DIMM1": ("physicalmemory", None),
    f"{_RACK}/Memory/DIMM2": ("physicalmemory", None),
    f"{_RACK}/Memory/DIMM3": ("physicalmemory", None),
    f"{_RACK}/SimpleStorage/1": ("storage-controller", "2.50"),
    f"{_RACK}/EthernetInterfaces/12446A3B0411": ("nic", None),
    f"{_RACK}/EthernetInterfaces/12446A3B8890": ("nic", None),
    "PSU 1": ("psu", "1.00"),
}
RACKMOUNT1_MACS = {"23:11:8a:33:cf:ea", "12:44:6a:3b:04:11", "12:44:6a:3b:88:90", "aa:bb:cc:dd:ee:00"}

_TOWER = "Systems/437XR1238R2"
#: dmtf-public-tower: 8 CPUs and 2 GPUs, DIMM1-8 (9-16 Absent), Storage NVMeSWRAID (1 controller), RAIDIntegrated
#: (1, 23.13.06.0006), NVMeSecondary (1), HAFiberChannel (2, 4.5.44); drives M.2-1/2, Disk-1-0..3 (1-4..7 Absent),
#: Disk-2-0..3 (2-4..7 Absent); NetworkAdapters/NIC1 (7.4.10); PowerSupplies Bay1 and Bay2 (1.00).
TOWER_COUNTS = Counter(
    {
        "bmc": 1,
        "chassis": 1,
        "bios": 1,
        "tpm": 1,
        "cpu": 8,
        "gpu": 2,
        "physicalmemory": 8,
        "storage-controller": 5,
        "drive": 10,
        "nic": 1,
        "psu": 2,
    }
)
TOWER_MACS = {"23:11:8a:33:cf:ea", "00:0c:29:9a:98:ed", "00:0c:29:9a:98:ef", "fb:aa:1d:4e:d0:7a", "fb:aa:1d:4e:d0:7c"}

#: dmtf-public-smartnic: two Systems (the host and the card's DPU, Card1-SoC, not the host); Chassis 1U, Card1 and
#: Card2 (Card2 only in 1U's Links.Contains); NetworkAdapters Card1/Slot1 and Card2/Slot2 (8.11.0); Drive
#: Card1/Drives/1 (Revision S20A); no UpdateService: versions from the resources.
SMARTNIC = {
    "Managers/BMC": ("bmc", "1.45.455b66-rev4"),
    "Chassis/1U": ("chassis", None),
    "Card Slot 1": ("chassis", None),
    "Card Slot 2": ("chassis", None),
    "Systems/437XR1138R2": ("bios", "P79 v1.45 (12/06/2017)"),
    "TrustedModules/0": ("tpm", "1.13b"),
    "Systems/437XR1138R2/Processors/CPU1": ("cpu", None),
    "Systems/437XR1138R2/Memory/DIMM1": ("physicalmemory", None),
    "Systems/437XR1138R2/Memory/DIMM2": ("physicalmemory", None),
    "Systems/437XR1138R2/Memory/DIMM3": ("physicalmemory", None),
    "Systems/437XR1138R2/SimpleStorage/1": ("storage-controller", None),
    "Chassis/Card1/NetworkAdapters/Slot1": ("nic", "8.11.0"),
    "Chassis/Card2/NetworkAdapters/Slot2": ("nic", "8.11.0"),
    "Chassis/Card1/Drives/1": ("drive", "S20A"),
    "PSU 1": ("psu", "1.00"),
}


def test_rackmount1_onboards_with_every_resource(
    clean_inventory: InventoryServer, redfish_mockups: dict[str, str]
) -> None:
    client = _client(clean_inventory)
    result = onboard(client, _open, redfish_mockups["rackmount1"], "root", "secret", facility="lab1")
    components = client.list_components(result.uuid)
    found = {slot: (slug, version) for slot, (slug, version, _) in _by_slot(components).items()}
    assert found == RACKMOUNT1
    server = client.get_server(result.uuid)
    assert server.attribute(SERVER_VENDOR_NAMESPACE).as_object() == {  # type: ignore[union-attr]
        "vendor": "contoso",
        "model": "3500",
        "serial": "437XR1138R2",
    }
    assert server.facility == "lab1"
    assert server.attribute(BMC_INFO_NAMESPACE).as_object() == {"address": redfish_mockups["rackmount1"]}  # type: ignore[union-attr]
    assert client.get_bmc_credentials(result.uuid).username == "root"
    macs = {a.namespace for a in server.attributes if a.namespace.startswith("sh.hollow.flasher.mac.")}
    assert macs == {mac_namespace(m) for m in RACKMOUNT1_MACS}
    psu = next(c for c in components if c.component_type_slug == "psu")
    assert (psu.vendor, psu.model, psu.serial) == ("contoso", "RKS-440DC", "3488247")
    task = server.attribute(INVENTORY_NAMESPACE).as_object()  # type: ignore[union-attr]
    assert task["status"] == "success"
    assert any("13 components: 13 added" in line for line in task["messages"])


def test_tower_and_smartnic_collect_their_resources(
    clean_inventory: InventoryServer, redfish_mockups: dict[str, str]
) -> None:
    client = _client(clean_inventory)
    tower = onboard(client, _open, redfish_mockups["tower"], "root", "secret", name="tower")
    components = client.list_components(tower.uuid)
    assert Counter(c.component_type_slug for c in components) == TOWER_COUNTS
    slots = _by_slot(components)
    assert slots["Chassis/Tower/NetworkAdapters/NIC1"][:2] == ("nic", "7.4.10")
    assert slots["Systems/437XR1238R2/Storage/RAIDIntegrated#/StorageControllers/0"][:2] == (
        "storage-controller",
        "23.13.06.0006",
    )
    absent = {"Chassis/Tower/Drives/Disk-1-4", "Chassis/Tower/Drives/Disk-2-7", "Systems/437XR1238R2/Memory/DIMM9"}
    assert not absent & set(slots)
    nic = next(c for c in components if c.component_type_slug == "nic")
    metadata = next(a.as_object() for a in nic.attributes if a.namespace == OUTOFBAND_METADATA_NAMESPACE)
    assert set(metadata["macaddresses"]) == TOWER_MACS - {"23:11:8a:33:cf:ea"}
    # two controllers of one serial stay two components
    serials = [c.serial for c in components if c.component_type_slug == "storage-controller"]
    assert len(set(serials)) == len(serials)

    smartnic = onboard(client, _open, redfish_mockups["smartnic"], "root", "secret", name="smartnic")
    found = {
        slot: (slug, version) for slot, (slug, version, _) in _by_slot(client.list_components(smartnic.uuid)).items()
    }
    assert found == SMARTNIC
    assert smartnic.collection is not None
    notes = " | ".join(smartnic.collection.notes)
    assert "no UpdateService" in notes and "Card1-SoC (DPU) is not the host" in notes


def test_collecting_twice_changes_nothing_but_the_tally(
    clean_inventory: InventoryServer, redfish_mockups: dict[str, str]
) -> None:
    client = _client(clean_inventory)
    result = onboard(client, _open, redfish_mockups["tower"], "root", "secret", name="tower")
    before = {c.uuid: c for c in client.list_components(result.uuid)}
    with _open(redfish_mockups["tower"], "root", "secret") as bmc:
        collection = collect(bmc.read_hardware())
    report = InventoryWriter(client).write(result.uuid, collection)
    assert not report.changed and report.unchanged == len(before)
    after = {c.uuid: c for c in client.list_components(result.uuid)}
    assert after.keys() == before.keys()
    for uuid, component in after.items():
        assert component.versioned_attributes == before[uuid].versioned_attributes
    versions = [v for v in client.list_versioned_attributes(result.uuid) if v.namespace == COLLECTION_NAMESPACE]
    assert len(versions) == 1 and versions[0].tally == 1


def test_a_known_bmc_or_serial_is_refused_and_nothing_is_created(
    clean_inventory: InventoryServer, redfish_mockups: dict[str, str]
) -> None:
    client = _client(clean_inventory)
    onboard(client, _open, redfish_mockups["rackmount1"], "root", "secret")
    with pytest.raises(OnboardError, match="already in the inventory"):
        onboard(client, _open, redfish_mockups["rackmount1"], "root", "secret")
    # smartnic's host System has rackmount1's serial (437XR1138R2): refused too
    with pytest.raises(OnboardError, match="serial 437XR1138R2 is already"):
        onboard(client, _open, redfish_mockups["smartnic"], "root", "secret")
    assert len(client.list_servers()) == 1


# --- the simulated BMCs -------------------------------------------------------------------------------------------


def _expected_from_fleet(bmc: dict[str, Any]) -> dict[tuple[str, str], str | None]:
    """``{(type, serial): version}`` of the simulator's components as ``GET /fleet`` lists them (BMC and BIOS
    have serial ``0`` in the inventory, as alloy writes them)."""
    out = {}
    for component in bmc["components"]:
        serial = "0" if component["slug"] in ("bmc", "bios") else component["serial"]
        if component["slug"] == "cpld":
            serial = bmc["serial"]  # the CPLD's RelatedItem is the Chassis: its serial is the chassis'
        out[(component["slug"], serial)] = component["version"]
    return out


def test_both_simulated_shapes_onboard_with_their_versions(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    client = _client(clean_inventory)
    trusted = SETTINGS.model_copy(update={"ca_bundle": bmcsim.ca_bundle})  # the simulated BMCs serve HTTPS

    def open_simulated(address: str, username: str, password: str) -> BMC:
        return BMC(address, username, password, settings=trusted)

    for index, bmc in enumerate(bmcsim.fleet()):
        result = onboard(client, open_simulated, bmcsim.address(index), "root", "calvin")
        components = client.list_components(result.uuid)
        got = {
            (c.component_type_slug, c.serial): c.installed_firmware()
            for c in components
            if c.component_type_slug != "chassis"
        }
        assert got == _expected_from_fleet(bmc), bmc["shape"]
        server = client.get_server(result.uuid)
        assert (server.vendor, server.model, server.serial) == (bmc["vendor"], bmc["model"], bmc["serial"])
        nics = [c for c in components if c.component_type_slug == "nic"]
        assert {c.vendor for c in nics} == {"broadcom"} if bmc["shape"] == "dell" else {"intel"}
        assert {c.model for c in nics} == {c["model"] for c in bmc["components"] if c["slug"] == "nic"}


def test_the_onboard_command_never_prints_the_password(
    clean_inventory: InventoryServer, redfish_mockups: dict[str, str], tmp_path: Any
) -> None:
    from flasher.cli import app
    from tests.support.cli import invoke

    secret = tmp_path / "password"
    secret.write_text("s3cr3t-Pa55\n")
    env = {"FLASHER_INVENTORY__URL": clean_inventory.url, "FLASHER_BMC__SCHEME": "http"}
    args = ["onboard", "--bmc", redfish_mockups["rackmount1"], "--password-file", str(secret), "--name", "web483"]
    first = invoke(app, args, env=env)
    assert first.exit_code == 0, first.output
    assert "web483" in first.output and "success: collected contoso 3500 437XR1138R2" in first.output
    again = invoke(app, args, env=env)
    assert again.exit_code == 1 and "already in the inventory" in again.output
    missing = invoke(app, ["onboard", "--bmc", "http://127.0.0.1:9"], env={**env, "FLASHER_BMC__PASSWORD": ""})
    assert missing.exit_code == 2 and "no BMC password" in missing.output
    for result in (first, again):
        assert "s3cr3t-Pa55" not in result.output
    (server,) = _client(clean_inventory).list_servers()
    assert _client(clean_inventory).get_bmc_credentials(str(server.uuid)).password.get_secret_value() == "s3cr3t-Pa55"


def test_an_inventory_failure_after_the_server_was_created_names_it(
    clean_inventory: InventoryServer, redfish_mockups: dict[str, str]
) -> None:
    client = _client(clean_inventory)
    created = r"server \S+ \(web483\) was created, but the inventory then failed"
    with (
        clean_inventory.faults(every=1, status=503, methods=["PUT"], path_regex="/credentials/"),
        pytest.raises(OnboardError, match=created),
    ):
        onboard(client, _open, redfish_mockups["rackmount1"], "root", "secret")
    (server,) = client.list_servers()
    assert server.bmc_address == redfish_mockups["rackmount1"]


def test_a_changed_component_is_updated_and_a_vanished_one_removed(
    clean_inventory: InventoryServer, redfish_mockups: dict[str, str]
) -> None:
    client = _client(clean_inventory)
    result = onboard(client, _open, redfish_mockups["tower"], "root", "secret", name="tower")
    before = {c.uuid: c for c in client.list_components(result.uuid)}
    with _open(redfish_mockups["tower"], "root", "secret") as bmc:
        snapshot = bmc.read_hardware()
    drifted = collect(snapshot)
    nic = next(c for c in drifted.components if c.slug == "nic")
    nic.firmware = "7.5.0"  # the NIC was updated by hand
    gone = next(c for c in drifted.components if c.slot == "Chassis/Tower/Drives/Disk-1-3")
    drifted.components.remove(gone)  # and a drive pulled
    report = InventoryWriter(client).write(result.uuid, drifted)
    assert report.updated == [f"nic {nic.serial}"] and report.removed == [f"drive {gone.serial}"]
    assert report.added == [] and report.unchanged == len(before) - 2
    after = {c.uuid: c for c in client.list_components(result.uuid)}
    assert set(after) == set(before) - {
        u for u, c in before.items() if c.serial == gone.serial and c.component_type_slug == "drive"
    }
    updated = next(c for c in after.values() if c.component_type_slug == "nic")
    assert updated.installed_firmware() == "7.5.0"
    for uuid, component in after.items():  # the others kept their uuids and versions
        if component.component_type_slug != "nic":
            assert component.installed_firmware() == before[uuid].installed_firmware()

    back = InventoryWriter(client).write(result.uuid, collect(snapshot))
    assert back.added == [f"drive {gone.serial}"] and back.updated == [f"nic {nic.serial}"] and back.removed == []
