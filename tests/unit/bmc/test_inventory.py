"""Normalisation of FirmwareInventory members: type slugs, skipped entries, identity across versions."""

from __future__ import annotations

from typing import Any

import pytest

from flasher.bmc import classify, inventory
from flasher.bmc.models import BMCComponent
from flasher.constants import INSTALL_ORDER

# (member Id, Name, SoftwareId, RelatedItem URIs, expected slug). Dell rows are real iDRAC 9 Ids and names.
CASES = [
    ("Installed-25227-7.00.00.184__iDRAC.Embedded.1-1", "Integrated Dell Remote Access Controller", "25227", [], "bmc"),
    ("Current-159-2.26.1__BIOS.Setup.1-1", "BIOS", "159", [], "bios"),
    ("Installed-27763-1.1.4__CPLD.Embedded.1", "System CPLD", "27763", [], "cpld"),
    ("Current-104893-51.16.0-5150__RAID.Slot.6-1", "PERC H740P Adapter", "104893", [], "storage-controller"),
    (
        "Installed-106441-ST33__Disk.Bay.0:Enclosure.Internal.0-1:RAID.Slot.6-1",
        "Disk 0 in Backplane 1 of RAID Controller in Slot 6",
        "106441",
        [],
        "drive",
    ),
    ("Current-104102-2.41__RAID.Backplane.Firmware.1", "Backplane 1", "104102", [], "backplane"),
    ("Current-27481-23.61.3__NIC.Integrated.1-1-1", "Broadcom NetXtreme Gigabit Ethernet (BCM5720)", "", [], "nic"),
    ("Installed-101097-00.1B.53__PSU.Slot.1", "Power Supply.Slot.1", "101097", [], "psu"),
    # Packages that are not devices must not fall through to the name rules ("iDRAC Service Module" is no BMC).
    ("Installed-104684-3.4.0__ServiceModule.Embedded.1", "iDRAC Service Module Embedded Package", "", [], "unknown"),
    ("Installed-28897-7.00.00.184__USC.Embedded.1:LC.Embedded.1", "Lifecycle Controller", "", [], "unknown"),
    (
        "Installed-25806-4301A34__Diagnostics.Embedded.1:LC.Embedded.1",
        "Dell 64 Bit uEFI Diagnostics",
        "",
        [],
        "unknown",
    ),
    # Old iDRAC: no FQDD; the Dell component ID decides.
    ("Installed-25227-2.84.84.84", "Integrated Remote Access Controller", "25227", [], "bmc"),
    # Supermicro X12/X13 member Ids.
    ("BMC", "BMC", None, [], "bmc"),
    ("BIOS", "BIOS", None, [], "bios"),
    ("CPLD_Motherboard", "Motherboard CPLD", None, [], "cpld"),
    ("CPLD_Backplane_1", "Backplane CPLD", None, [], "backplane"),
    # DMTF public rack-server mockup.
    (
        "SS",
        "Contoso Simple Storage Firmware",
        None,
        ["/redfish/v1/Systems/437XR1138R2/SimpleStorage/1"],
        "storage-controller",
    ),
    # HPE iLO names.
    ("1", "iLO 5", None, [], "bmc"),
    ("2", "System ROM", None, [], "bios"),
    ("11", "TPM Firmware", None, [], "tpm"),
    ("21", "8 SFF 24G x1NVMe/SAS UBM3 BC BP", None, [], "backplane"),
    ("19", "1.60TB 22.5G SAS SSD", None, [], "drive"),
    # Nothing in the words: the related item decides.
    ("fw-7", "Firmware", None, ["/redfish/v1/Chassis/1/NetworkAdapters/2"], "nic"),
    ("fw-8", "Firmware", None, ["/redfish/v1/Managers/bmc"], "bmc"),
    ("fw-9", "Firmware", None, ["/redfish/v1/Systems/1/Bios"], "bios"),
    ("AC-RoT0", "AC-RoT0 firmware", None, [], "unknown"),
]


@pytest.mark.parametrize(("member_id", "name", "software_id", "related", "expected"), CASES)
def test_slug_rules(member_id: str, name: str, software_id: str | None, related: list[str], expected: str) -> None:
    assert classify.slug_for(member_id, name, software_id, related) == expected


def test_slugs_are_from_the_install_order_vocabulary() -> None:
    assert {case[-1] for case in CASES} - {"unknown"} <= set(INSTALL_ORDER)


def test_dell_id_parses_every_form() -> None:
    assert classify.dell_id("Installed-25227-7.00.00.184__iDRAC.Embedded.1-1") == (
        "Installed",
        "25227",
        "iDRAC.Embedded.1-1",
    )
    assert classify.dell_id("Installed-25227-2.84.84.84") == ("Installed", "25227", None)
    assert classify.dell_id("Installed-159__BIOS.Setup.1-1") == ("Installed", "159", "BIOS.Setup.1-1")
    assert classify.dell_id("BMC") is None


def _member(member_id: str, version: str = "1.0", **extra: Any) -> dict[str, Any]:
    return {
        "@odata.id": f"/redfish/v1/UpdateService/FirmwareInventory/{member_id}",
        "Id": member_id,
        "Name": extra.pop("Name", member_id),
        "Version": version,
        "Updateable": True,
        **extra,
    }


def test_previous_available_and_standby_entries_are_skipped() -> None:
    members = [
        _member("Installed-25227-7.00__iDRAC.Embedded.1-1", "7.00"),
        _member("Previous-25227-6.10__iDRAC.Embedded.1-1", "6.10"),
        _member("Available-159-2.20__BIOS.Setup.1-1", "2.20"),
        _member("BMC-backup", "1.0", Name="BMC", Status={"State": "StandbySpare"}),
        _member("Absent-PSU", "1.0", Name="Power Supply 2", Status={"State": "Absent"}),
    ]
    components = inventory.normalise(members, {})
    assert [(c.slug, c.version) for c in components] == [("bmc", "7.00")]


def test_installed_wins_over_current_for_one_dell_device() -> None:
    members = [
        _member("Current-159-2.26.1__BIOS.Setup.1-1", "2.26.1", Name="BIOS"),
        _member("Installed-159-2.27.0__BIOS.Setup.1-1", "2.27.0", Name="BIOS"),
        _member("Current-27481-23.61.3__NIC.Integrated.1-1-1", "23.61.3", Name="Broadcom NIC"),
    ]
    components = inventory.normalise(members, {})
    assert [(c.slug, c.id, c.version) for c in components] == [
        ("bios", "Installed-159-2.27.0__BIOS.Setup.1-1", "2.27.0"),
        ("nic", "Current-27481-23.61.3__NIC.Integrated.1-1-1", "23.61.3"),
    ]


def test_related_item_fills_manufacturer_model_serial() -> None:
    member = _member(
        "NIC_1",
        "22.31",
        Name="NIC firmware",
        Manufacturer="Broadcom Inc.",
        RelatedItem=[{"@odata.id": "/redfish/v1/Chassis/1/NetworkAdapters/1"}],
        SoftwareId="0x16D7",
    )
    related = {
        "/redfish/v1/Chassis/1/NetworkAdapters/1": {
            "Model": "BCM957414",
            "SerialNumber": "N1",
            "Manufacturer": "Broadcom",
        }
    }
    (component,) = inventory.normalise([member], related)
    assert component == BMCComponent(
        id="NIC_1",
        uri="/redfish/v1/UpdateService/FirmwareInventory/NIC_1",
        slug="nic",
        name="NIC firmware",
        version="22.31",
        updateable=True,
        software_id="0x16D7",
        manufacturer="Broadcom",
        model="BCM957414",
        serial="N1",
        related_uri="/redfish/v1/Chassis/1/NetworkAdapters/1",
    )


def test_missing_fields_become_none_and_not_updateable() -> None:
    (component,) = inventory.normalise([{"@odata.id": "/x/BMC", "Id": "BMC"}], {})
    assert (component.slug, component.version, component.updateable, component.name) == ("bmc", None, False, "BMC")


def test_find_component_follows_a_dell_id_across_versions() -> None:
    before = inventory.normalise([_member("Installed-25227-6.10__iDRAC.Embedded.1-1", "6.10")], {})[0]
    after = inventory.normalise(
        [
            _member("Installed-159-2.1__BIOS.Setup.1-1", "2.1"),
            _member("Installed-25227-7.00__iDRAC.Embedded.1-1", "7.00"),
        ],
        {},
    )
    found = inventory.find_component(after, before)
    assert found is not None and found.version == "7.00"


@pytest.mark.parametrize(
    ("reported", "expected", "match"),
    [
        ("2.7.3", "2.7.3", True),
        (" 2.7.3 ", "2.7.3", True),
        ("P79 v1.45 (12/06/2017)", "P79 v1.45", True),
        ("2.78 Jun 01 2023", "2.78", True),  # HPE iLO appends the build date
        ("1.45 12/06/2017", "1.45", True),
        ("2.7.3 beta", "2.7.3", False),  # a pre-release is not the release it precedes
        ("2.7.3 rc1", "2.7.3", False),
        ("2.7.3 build 5", "2.7.3", False),
        ("2.7.30", "2.7.3", False),
        ("2.7.2", "2.7.3", False),
        (None, "2.7.3", False),
    ],
)
def test_versions_match(reported: str | None, expected: str, match: bool) -> None:
    assert inventory.versions_match(reported, expected) is match
