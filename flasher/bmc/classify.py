"""Component type slugs for FirmwareInventory members, and which members are installed firmware at all.

A member's slug (one of :data:`flasher.constants.INSTALL_ORDER`, or ``unknown``) is decided by the first rule
that matches, in this order:

1. **Dell FQDD.** iDRAC member Ids are ``<Kind>-<ComponentID>-<Version>[__<FQDD>]``
   (``Installed-25227-7.00.00.184__iDRAC.Embedded.1-1``). The FQDD's first segment names the device
   (``Disk.Bay.0:Enclosure.Internal.0-1:RAID.Slot.6-1`` is a drive, not a RAID controller): ``iDRAC.`` bmc,
   ``BIOS.`` bios, ``CPLD.`` cpld, ``Disk.`` drive, ``Enclosure.`` or ``*.Backplane.*`` backplane,
   ``RAID.``/``AHCI.``/``NonRAID.``/``BOSS.``/``HBA.``/``SAS.``/``PCIeSSD.`` storage-controller,
   ``NIC.``/``FC.``/``InfiniBand.`` nic, ``PSU.`` psu, ``TPM.`` tpm, ``Video.``/``GPU.`` gpu, ``CPU.`` cpu;
   Lifecycle Controller, driver pack, diagnostics, service module and OS collector packages are ``unknown``.
   Old iDRACs give no FQDD: Dell component IDs 25227 (iDRAC) and 159 (BIOS) decide. Source: iDRAC Redfish
   API guide (FirmwareInventory), Dell's iDRAC-Redfish-Scripting ``GetFirmwareInventoryREDFISH.py``.
2. **Words in Name, Id or SoftwareId** (Supermicro ``BMC``, ``BIOS``, ``CPLD_Motherboard``,
   ``CPLD_Backplane_1``; HPE ``iLO 5``, ``System ROM``; DMTF mockup ``BMC``, ``BIOS``, ``Contoso Simple Storage
   Firmware``), most specific first: a name that starts with Disk/Drive or names an SSD/HDD is a drive
   ("Disk 0 in Backplane 1 of RAID Controller in Slot 6"), then backplane, storage controller, bmc, bios, cpld,
   psu, nic, other drives (NVMe), tpm, gpu, cpu.
3. **RelatedItem** (the device the firmware runs on): ``/Managers/`` bmc, ``.../Drives/`` drive,
   ``/Storage/`` or ``/SimpleStorage/`` storage-controller, ``/NetworkAdapters/`` nic, ``PowerSupplies`` psu,
   ``/Processors/`` cpu, a System itself or its ``/Bios`` bios.

Members that are not installed firmware are skipped: Dell ``Previous-`` (rollback image) and ``Available-``
(staged) entries, members whose ``Status.State`` is ``Absent`` or a standby (``StandbyOffline``,
``StandbySpare``: backup banks).
"""

from __future__ import annotations

import re
from typing import Any, Final

UNKNOWN: Final = "unknown"

_DELL_ID = re.compile(
    r"^(?P<kind>Installed|Current|Previous|Available)-(?P<component>\d+)(?:-(?P<version>.*?))?(?:__(?P<fqdd>.+))?$"
)
_DELL_SKIP_KINDS: Final = frozenset({"Previous", "Available"})
_SKIP_STATES: Final = frozenset({"Absent", "StandbyOffline", "StandbySpare"})

# Dell component IDs that old iDRACs (no FQDD in the Id) need; source: Dell DUP catalogs (ComponentID).
_DELL_COMPONENT_IDS: Final[dict[str, str]] = {"25227": "bmc", "159": "bios"}

_DELL_FQDD_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern, re.IGNORECASE), slug)
    for pattern, slug in (
        (r"^(LC|USC|DriverPack|Diagnostics|ServiceModule|OSCollector)\.", UNKNOWN),
        (r"^iDRAC\.", "bmc"),
        (r"^BIOS\.", "bios"),
        (r"^CPLD\.", "cpld"),
        (r"^Disk\.", "drive"),
        (r"^Enclosure\.|\.Backplane\.", "backplane"),
        (r"^(RAID|AHCI|NonRAID|BOSS|HBA|SAS|PCIeSSD)\.", "storage-controller"),
        (r"^(NIC|FC|InfiniBand)\.", "nic"),
        (r"^PSU\.", "psu"),
        (r"^TPM\.", "tpm"),
        (r"^(Video|GPU)\.", "gpu"),
        (r"^CPU\.", "cpu"),
    )
)

_WORD_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern, re.IGNORECASE), slug)
    for pattern, slug in (
        (r"diagnostic|driver ?pack|service module|os collector|lifecycle controller|redundant system rom", UNKNOWN),
        (r"^(disk|drive|physical disk)\b|\b(ssd|hdd)\b", "drive"),
        (r"backplane|\bbp\b|\bubm\d*\b|drive cage", "backplane"),
        (
            r"raid|perc\b|\bhba\b|\bboss\b|smart array|storage controller|simple storage|sas controller|tri-mode",
            "storage-controller",
        ),
        (r"\bbmc\b|idrac|integrated dell remote access|\bilo\b|lights-out|management controller|\bxcc\b", "bmc"),
        (r"\bbios\b|system rom|\buefi\b", "bios"),
        (r"cpld|spld|programmable logic|\bfpga\b", "cpld"),
        (r"power supply|\bpsu\d*\b|\bps\d+\b", "psu"),
        (r"ethernet|\bnic\d*\b|network|connectx|\blom\b|\bocp\b|fibre channel|infiniband|\bhca\b|\bcna\b", "nic"),
        (r"nvme|\bdrive\b|\bdisk\b", "drive"),
        (r"\btpm\b|trusted platform", "tpm"),
        (r"\bgpu\b|graphics|accelerator", "gpu"),
        (r"\bcpu\d*\b|processor|microcode", "cpu"),
    )
)

_RELATED_RULES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern, re.IGNORECASE), slug)
    for pattern, slug in (
        (r"/Managers/[^/]+/?$", "bmc"),
        (r"/Drives/[^/]+/?$", "drive"),
        (r"/(Storage|SimpleStorage)/[^/]+(/StorageControllers/[^/]+)?/?$", "storage-controller"),
        (r"/NetworkAdapters/", "nic"),
        (r"PowerSupplies", "psu"),
        (r"/Processors/[^/]+/?$", "cpu"),
        (r"/Systems/[^/]+(/Bios)?/?$", "bios"),
    )
)


def dell_id(member_id: str) -> tuple[str, str, str | None] | None:
    """``(kind, component_id, fqdd)`` for a Dell FirmwareInventory Id, else ``None``.

    ``Installed-25227-7.00.00.184__iDRAC.Embedded.1-1`` → ``("Installed", "25227", "iDRAC.Embedded.1-1")``;
    ``Installed-25227-2.84.84.84`` (old iDRAC) → ``("Installed", "25227", None)``; the version segment may be
    missing (``Installed-159__BIOS.Setup.1-1``).
    """
    match = _DELL_ID.match(member_id or "")
    if match is None:
        return None
    return match["kind"], match["component"], match["fqdd"] or None


def _words(text: str | None) -> str:
    # "CPLD_Backplane_1" → "CPLD Backplane 1" so that word boundaries work on Ids.
    return re.sub(r"[_\-]+", " ", text or "").strip()


def _first(rules: tuple[tuple[re.Pattern[str], str], ...], texts: list[str]) -> str | None:
    for pattern, slug in rules:
        if any(pattern.search(text) for text in texts if text):
            return slug
    return None


def slug_for(member_id: str, name: str | None, software_id: str | None, related: list[str]) -> str:
    """The component type slug of a FirmwareInventory member (rules in the module docstring)."""
    dell = dell_id(member_id)
    if dell is not None:
        _, component_id, fqdd = dell
        if fqdd is not None:
            first_segment = fqdd.split(":", 1)[0]
            slug = _first(_DELL_FQDD_RULES, [first_segment])
            if slug is not None:
                return slug
        if component_id in _DELL_COMPONENT_IDS:
            return _DELL_COMPONENT_IDS[component_id]
    slug = _first(_WORD_RULES, [name or "", _words(member_id), _words(software_id)])
    if slug is not None:
        return slug
    return _first(_RELATED_RULES, related) or UNKNOWN


def is_installed(member: dict[str, Any]) -> bool:
    """False for members that are not installed firmware (Dell Previous-/Available-, absent or standby)."""
    dell = dell_id(str(member.get("Id") or ""))
    if dell is not None and dell[0] in _DELL_SKIP_KINDS:
        return False
    status = member.get("Status")
    state = status.get("State") if isinstance(status, dict) else None
    return state not in _SKIP_STATES


def identity_key(member_id: str, uri: str) -> str:
    """A key that stays the same for one device across version changes: Dell Ids embed the version
    (``Installed-25227-7.00.00.184__iDRAC.Embedded.1-1``), so they are keyed by FQDD (or component ID on old
    iDRACs); other BMCs by the member URI."""
    dell = dell_id(member_id)
    if dell is not None:
        _, component_id, fqdd = dell
        return f"dell:{fqdd}" if fqdd else f"dell-component:{component_id}"
    return uri.rstrip("/")
