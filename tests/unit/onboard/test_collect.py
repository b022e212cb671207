"""Redfish documents to inventory records (flasher.onboard.collect), from hand-written snapshots."""

from __future__ import annotations

from typing import Any

import pytest

from flasher.bmc.hardware import HardwareSnapshot, links_of, normalise_uri
from flasher.onboard.collect import collect, model_slug, normalise_mac, vendor_slug

R = "/redfish/v1"


def ref(uri: str) -> dict[str, str]:
    return {"@odata.id": uri}


def snapshot(docs: dict[str, dict[str, Any]], notes: list[str] | None = None) -> HardwareSnapshot:
    """A snapshot of ``docs`` (by URI), each given its ``@odata.id``; collections list their members."""
    for uri, doc in docs.items():
        doc.setdefault("@odata.id", uri)
    return HardwareSnapshot(root=docs[R], documents=dict(docs), notes=list(notes or []))


def collection(*members: str) -> dict[str, Any]:
    return {"Members": [ref(m) for m in members]}


@pytest.mark.parametrize(
    ("manufacturer", "slug"),
    [
        ("Dell Inc.", "dell"),
        ("Intel(R) Corporation", "intel"),
        ("HPE", "hpe"),
        ("Supermicro", "supermicro"),
        ("Broadcom Inc.", "broadcom"),
        ("Contoso Systems Inc.", "contoso"),
        ("Western Digital", "westerndigital"),
        ("", ""),
        (None, ""),
    ],
)
def test_vendor_slugs(manufacturer: str | None, slug: str) -> None:
    assert vendor_slug(manufacturer) == slug


@pytest.mark.parametrize(
    ("model", "slug"), [("PowerEdge R6515", "r6515"), ("X12STW", "x12stw"), ("ProLiant DL360 Gen10", "dl360-gen10")]
)
def test_model_slugs(model: str, slug: str) -> None:
    assert model_slug(model) == slug


@pytest.mark.parametrize(
    ("value", "mac"),
    [
        ("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"),
        ("aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:ff"),
        ("aabbccddeeff", "aa:bb:cc:dd:ee:ff"),
        ("00:00:00:00:00:00", None),
        ("aa:bb:cc:dd:ee", None),
        ("aa:bb-cc:dd:ee:ff", None),
        (42, None),
    ],
)
def test_macs(value: Any, mac: str | None) -> None:
    assert normalise_mac(value) == mac


def test_normalised_uris_and_followed_links() -> None:
    assert normalise_uri("https://bmc:443/redfish/v1/Systems/1/?$expand=.") == "/redfish/v1/Systems/1"
    doc = {
        "Systems": ref(f"{R}/Systems"),
        "Sensors": ref(f"{R}/Chassis/1/Sensors"),
        "Links": {"Drives": [ref(f"{R}/Chassis/1/Drives/0")], "ManagedBy": [ref(f"{R}/Managers/1")]},
    }
    assert sorted(links_of(doc)) == [f"{R}/Chassis/1/Drives/0", f"{R}/Systems"]


def _server(**system: Any) -> dict[str, dict[str, Any]]:
    return {
        R: {"Systems": ref(f"{R}/Systems"), "Managers": ref(f"{R}/Managers"), "Chassis": ref(f"{R}/Chassis")},
        f"{R}/Systems": collection(f"{R}/Systems/1"),
        f"{R}/Systems/1": {
            "Id": "1",
            "Manufacturer": "Dell Inc.",
            "Model": "PowerEdge R6515",
            "SerialNumber": "CN7X01",
            "UUID": "4c4c4544-0000-1000-8000-000000000001",
            "BiosVersion": "2.11.4",
            "PowerState": "Off",
            "Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"},
            **system,
        },
        f"{R}/Managers": collection(f"{R}/Managers/1"),
        f"{R}/Managers/1": {"Id": "1", "ManagerType": "BMC", "FirmwareVersion": "6.10.80.00", "Model": "iDRAC9"},
        f"{R}/Chassis": collection(f"{R}/Chassis/1"),
        f"{R}/Chassis/1": {
            "Id": "1",
            "Manufacturer": "Dell Inc.",
            "Model": "PowerEdge R6515",
            "SerialNumber": "CN7X01",
        },
    }


def test_a_bmc_without_update_service_memory_or_nics_gives_notes_not_failures() -> None:
    result = collect(snapshot(_server(), notes=["/redfish/v1/Systems/1/Storage: 404 not found"]))
    assert result.vendor_attributes() == {"vendor": "dell", "model": "r6515", "serial": "CN7X01"}
    assert (result.uuid, result.bios_version, result.power_state) == (
        "4c4c4544-0000-1000-8000-000000000001",
        "2.11.4",
        "Off",
    )
    assert result.boot == {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}
    slugs = {c.slug: c for c in result.components}
    assert set(slugs) == {"bmc", "bios", "chassis"}
    assert slugs["bmc"].firmware == "6.10.80.00" and slugs["bmc"].serial == "0"
    assert not slugs["bmc"].serial_reported
    assert slugs["bios"].firmware == "2.11.4"
    notes = " | ".join(result.notes)
    for expected in ("404 not found", "no UpdateService", "no Processors", "no Memory", "no Storage", "power supplies"):
        assert expected in notes


def test_absent_parts_are_skipped_and_the_old_power_resource_is_a_fallback() -> None:
    docs = _server(Memory=ref(f"{R}/Systems/1/Memory"))
    docs[f"{R}/Systems/1/Memory"] = collection(f"{R}/Systems/1/Memory/A1", f"{R}/Systems/1/Memory/A2")
    docs[f"{R}/Systems/1/Memory/A1"] = {"Id": "A1", "CapacityMiB": 16384, "Status": {"State": "Enabled"}}
    docs[f"{R}/Systems/1/Memory/A2"] = {"Id": "A2", "Status": {"State": "Absent"}}
    docs[f"{R}/Chassis/1"]["Power"] = ref(f"{R}/Chassis/1/Power")
    docs[f"{R}/Chassis/1/Power"] = {
        "PowerSupplies": [
            {
                "@odata.id": f"{R}/Chassis/1/Power#/PowerSupplies/0",
                "MemberId": "0",
                "SerialNumber": "PS1",
                "FirmwareVersion": "00.1D",
                "Manufacturer": "Dell Inc.",
                "Model": "D750E",
            },
            {"@odata.id": f"{R}/Chassis/1/Power#/PowerSupplies/1", "MemberId": "1", "Status": {"State": "Absent"}},
        ]
    }
    result = collect(snapshot(docs))
    memory = [c for c in result.components if c.slug == "physicalmemory"]
    assert len(memory) == 1 and memory[0].metadata_data()["size_bytes"] == 16384 * 1024 * 1024
    (psu,) = [c for c in result.components if c.slug == "psu"]
    assert (psu.serial, psu.firmware, psu.uri) == ("PS1", "00.1D", f"{R}/Chassis/1/Power#/PowerSupplies/0")


def test_firmware_inventory_versions_win_and_unclaimed_members_become_components() -> None:
    docs = _server()
    docs[R]["UpdateService"] = ref(f"{R}/UpdateService")
    docs[f"{R}/UpdateService"] = {"FirmwareInventory": ref(f"{R}/UpdateService/FirmwareInventory")}
    inventory = f"{R}/UpdateService/FirmwareInventory"
    docs[inventory] = collection(f"{inventory}/BIOS", f"{inventory}/CPLD", f"{inventory}/Mystery")
    docs[f"{inventory}/BIOS"] = {
        "Id": "BIOS",
        "Name": "BIOS",
        "Version": "2.12.0",
        "RelatedItem": [ref(f"{R}/Systems/1")],
    }
    docs[f"{inventory}/CPLD"] = {
        "Id": "CPLD",
        "Name": "System CPLD",
        "Version": "1.0.6",
        "RelatedItem": [ref(f"{R}/Chassis/1")],
        "Manufacturer": "Dell Inc.",
    }
    docs[f"{inventory}/Mystery"] = {"Id": "Mystery", "Name": "Thing", "Version": "9"}
    result = collect(snapshot(docs))
    by_slug = {c.slug: c for c in result.components}
    assert by_slug["bios"].firmware == "2.12.0"  # the member, not BiosVersion 2.11.4
    assert by_slug["cpld"].firmware == "1.0.6" and by_slug["chassis"].firmware is None
    assert any("Mystery" in note and "no known type" in note for note in result.notes)


def test_nics_carry_port_and_function_macs_and_duplicate_serials_stay_apart() -> None:
    docs = _server(EthernetInterfaces=ref(f"{R}/Systems/1/EthernetInterfaces"))
    adapters = f"{R}/Chassis/1/NetworkAdapters"
    docs[f"{R}/Chassis/1"]["NetworkAdapters"] = ref(adapters)
    docs[adapters] = collection(f"{adapters}/A", f"{adapters}/B")
    for name in ("A", "B"):
        docs[f"{adapters}/{name}"] = {
            "Id": name,
            "Manufacturer": "Broadcom Inc.",
            "Model": "BCM57414",
            "SerialNumber": "SAME",
            "Controllers": [{"FirmwarePackageVersion": "22.31.6"}],
            "Ports": ref(f"{adapters}/{name}/Ports"),
        }
        docs[f"{adapters}/{name}/Ports"] = collection(f"{adapters}/{name}/Ports/1")
        mac = "52:54:00:00:00:0a" if name == "A" else "52:54:00:00:00:0b"
        docs[f"{adapters}/{name}/Ports/1"] = {"Id": "1", "Ethernet": {"AssociatedMACAddresses": [mac.upper()]}}
    docs[f"{R}/Systems/1/EthernetInterfaces"] = collection(f"{R}/Systems/1/EthernetInterfaces/X")
    docs[f"{R}/Systems/1/EthernetInterfaces/X"] = {"Id": "X", "MACAddress": "52:54:00:00:00:0c"}
    result = collect(snapshot(docs))
    nics = [c for c in result.components if c.slug == "nic"]
    assert [c.macs for c in nics] == [["52:54:00:00:00:0a"], ["52:54:00:00:00:0b"]]
    assert len({c.serial for c in nics}) == 2 and all(c.serial.startswith("SAME-") for c in nics)
    assert all(c.vendor == "broadcom" and c.firmware == "22.31.6" for c in nics)
    assert any("52:54:00:00:00:0c" in note for note in result.notes)  # an interface on no adapter read
    assert set(result.macs()) == {"52:54:00:00:00:0a", "52:54:00:00:00:0b"}
    assert nics[0].metadata_data()["macaddress"] == "52:54:00:00:00:0a"


def test_equal_collections_have_equal_digests() -> None:
    first, second = collect(snapshot(_server())), collect(snapshot(_server()))
    assert first.digest() == second.digest()
    changed = collect(snapshot(_server(BiosVersion="2.12.0")))
    assert changed.digest() != first.digest()
