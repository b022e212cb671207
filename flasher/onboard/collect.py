"""A BMC's Redfish resources as inventory records, the way metal-toolbox alloy writes them (pure: no I/O).

:func:`collect` turns a :class:`~flasher.bmc.hardware.HardwareSnapshot` into a :class:`Collection`: the server's
identity (``sh.hollow.alloy.server_vendor_attributes``: vendor, model, serial; plus UUID, BIOS version, power
state and boot settings), its components, and its MACs. Which resource becomes which component:

================================================  =================  ==============================================
Redfish resource                                  component type     firmware version from
================================================  =================  ==============================================
the host System (``BiosVersion``)                 ``bios``           its FirmwareInventory member, else BiosVersion
each Manager of ManagerType BMC                   ``bmc``            its member, else ``FirmwareVersion``
each Chassis                                      ``chassis``        its member, if any
Chassis ``NetworkAdapters`` members               ``nic``            member, else ``Controllers[0]
                                                                     .FirmwarePackageVersion``
System ``EthernetInterfaces`` (only when no       ``nic``            none
NetworkAdapter exists; VLANs, host interfaces
and disabled interfaces skipped)
Storage ``StorageControllers`` / ``Controllers``  ``storage-controller``  member, else ``FirmwareVersion``
SimpleStorage members                             ``storage-controller``  member
Drives (Storage ``Drives``, Chassis ``Drives``)   ``drive``          member, else ``Revision``
System ``Processors``                             ``cpu``/``gpu``/...  member, else ``FirmwareVersion``
                                                  (``ProcessorType``
                                                  lowercase)
System ``Memory`` members                         ``physicalmemory`` member, else ``FirmwareRevision``
PowerSubsystem ``PowerSupplies`` (else the old    ``psu``            member, else ``FirmwareVersion``
``Power.PowerSupplies``)
System ``TrustedModules``                         ``tpm``            ``FirmwareVersion``
a FirmwareInventory member no resource above      its slug           the member
claims (a CPLD whose RelatedItem is the Chassis)  (:mod:`flasher.bmc.classify`)
================================================  =================  ==============================================

Resources whose ``Status.State`` is ``Absent`` (an empty DIMM slot or bay) are not components. Versions from the
FirmwareInventory are normalised by :mod:`flasher.bmc.inventory` exactly as the install steps read them, so an
install's read-back and a collection write the same text. A member is attached to the component its
``RelatedItem`` names when their slugs agree (or the member's slug is ``unknown``).

Only the host System counts: the one of ``SystemType`` ``Physical`` (the first when several; a SmartNIC's
``DPU`` System is the card's, its resources are skipped with a note). Types, vendors and models follow alloy
(``internal/store/serverservice/components.go``): ``vendor`` is the manufacturer as a known vendor slug
(:func:`vendor_slug`, after bmc-toolbox/common ``FormatVendorName``), a component without a serial gets its
position among its type (``"0"``, ``"1"``...), the BMC and BIOS have serial ``"0"``; ``name`` is the type's name.
What was read besides firmware goes into the component's ``sh.hollow.alloy.outofband.metadata`` attribute
(``description``, ``product_name``, ``macaddress``, ``capacity_bytes``, ``slot``...; keys as alloy's).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from flasher.bmc import inventory as bmc_inventory
from flasher.bmc.classify import UNKNOWN
from flasher.bmc.hardware import HardwareSnapshot, normalise_uri
from flasher.bmc.models import BMCComponent

#: Component type names by slug (the inventory's ``component_type_name``), as alloy and the sandbox name them.
TYPE_NAMES: Final[dict[str, str]] = {
    "bmc": "BMC",
    "bios": "BIOS",
    "cpld": "CPLD",
    "chassis": "Chassis",
    "drive": "Drive",
    "backplane": "Backplane",
    "storage-controller": "StorageController",
    "nic": "NIC",
    "psu": "Power Supply",
    "tpm": "TPM",
    "gpu": "GPU",
    "cpu": "CPU",
    "physicalmemory": "PhysicalMemory",
}
#: Known vendor slugs, found as a word in a manufacturer's name (bmc-toolbox/common ``FormatVendorName``).
_KNOWN_VENDORS: Final = (
    "asrockrack",
    "dell",
    "supermicro",
    "quanta",
    "gigabyte",
    "intel",
    "packet",
    "hynix",
    "infineon",
    "broadcom",
    "mellanox",
    "nvidia",
    "samsung",
    "micron",
    "marvell",
    "lenovo",
    "kingston",
    "toshiba",
    "seagate",
    "western digital",
)
_EXACT_VENDORS: Final = {"hp": "hpe", "hpe": "hpe", "hewlett packard enterprise": "hpe", "ami": "ami", "lsi": "lsi"}
#: Product-line words a System's ``Model`` carries before the model (``PowerEdge R6515`` → ``r6515``).
_PRODUCT_LINES: Final = re.compile(r"^(poweredge|proliant|thinksystem|primergy)\s+", re.IGNORECASE)
_MAC: Final = re.compile(r"^([0-9a-f]{2})([:-]?)([0-9a-f]{2})(\2[0-9a-f]{2}){4}$", re.IGNORECASE)


def vendor_slug(manufacturer: str | None) -> str:
    """The inventory's vendor slug for a Redfish ``Manufacturer``: a known vendor named in it (``Dell Inc.`` →
    ``dell``, ``Intel(R) Corporation`` → ``intel``, ``HPE`` → ``hpe``), else its first word in lower case
    (``Contoso Systems Inc.`` → ``contoso``); ``""`` for none."""
    text = " ".join((manufacturer or "").lower().replace("(r)", " ").replace("(tm)", " ").split())
    if not text:
        return ""
    if text in _EXACT_VENDORS:
        return _EXACT_VENDORS[text]
    for vendor in _KNOWN_VENDORS:
        if re.search(rf"\b{vendor}", text):
            return vendor.replace(" ", "")
    return text.split()[0].strip(".,")


def model_slug(model: str | None) -> str:
    """A System's ``Model`` as the inventory's model slug: product-line words dropped, lower case, spaces as
    ``-`` (``PowerEdge R6515`` → ``r6515``, ``X12STW`` → ``x12stw``, ``3500`` → ``3500``)."""
    text = _PRODUCT_LINES.sub("", (model or "").strip())
    return "-".join(text.lower().split())


def normalise_mac(value: Any) -> str | None:
    """A MAC address as ``aa:bb:cc:dd:ee:ff`` (lower case), or ``None`` for anything else (``00:00:...`` too)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _MAC.match(text):
        return None
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    if digits == "0" * 12:
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


@dataclass
class CollectedComponent:
    """One component as the inventory should hold it.

    ``slug``/``name``: type slug and type name; ``vendor`` (slug), ``model``, ``serial`` (as reported, else a
    placeholder: ``serial_reported`` false); ``slot``: where it sits (the resource's Id or service label,
    stable across collections, the fallback for matching); ``firmware``: installed version or ``None``;
    ``uri``: the Redfish resource; ``metadata``: the ``sh.hollow.alloy.outofband.metadata`` data; ``macs``:
    its MAC addresses; ``status``: Redfish ``Status`` (``state``, ``health``).
    """

    slug: str
    vendor: str
    model: str
    serial: str
    slot: str
    uri: str
    firmware: str | None = None
    serial_reported: bool = True
    metadata: dict[str, Any] = field(default_factory=dict)
    macs: list[str] = field(default_factory=list)
    status: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The component's name: its type's name (as alloy writes it)."""
        return TYPE_NAMES.get(self.slug, self.slug)

    def status_data(self) -> dict[str, Any]:
        """The ``sh.hollow.alloy.outofband.status`` versioned attribute's data: ``{"firmware": {"installed": V}}``
        (and ``status`` when the BMC gave one), or ``{}`` when there is neither."""
        data: dict[str, Any] = {}
        if self.firmware:
            data["firmware"] = {"installed": self.firmware}
        if self.status:
            data["status"] = dict(self.status)
        return data

    def metadata_data(self) -> dict[str, Any]:
        """The ``sh.hollow.alloy.outofband.metadata`` attribute's data (alloy's keys, plus ``slot`` and
        ``redfish_uri``; ``macaddress`` is the first MAC, ``macaddresses`` all of them)."""
        data = {key: value for key, value in self.metadata.items() if value not in (None, "", [], {})}
        data["slot"] = self.slot
        data["redfish_uri"] = self.uri
        if not self.serial_reported:
            data["serial_placeholder"] = True
        if self.macs:
            data["macaddress"] = self.macs[0]
            data["macaddresses"] = list(self.macs)
        return data


@dataclass
class Collection:
    """What one collection found: the server's identity, its components, its MACs, and notes on what the BMC
    lacks or what was skipped (one line each, for the task's messages)."""

    vendor: str
    model: str
    serial: str
    uuid: str | None
    bios_version: str | None
    power_state: str | None
    boot: dict[str, Any]
    components: list[CollectedComponent]
    notes: list[str] = field(default_factory=list)
    system_uri: str | None = None
    host_name: str = ""

    def vendor_attributes(self) -> dict[str, str]:
        """``sh.hollow.alloy.server_vendor_attributes`` data: vendor, model, serial (``unknown`` when the BMC
        says nothing, as alloy writes)."""
        return {
            "vendor": self.vendor or "unknown",
            "model": self.model or "unknown",
            "serial": self.serial or "unknown",
        }

    def macs(self) -> dict[str, dict[str, str]]:
        """Every MAC of the server (``aa:bb:...``) and where it is: ``{"slug", "slot", "serial"}`` of its
        component, or ``{"slug": "bmc"}`` for the BMC's own interfaces."""
        out: dict[str, dict[str, str]] = {}
        for component in self.components:
            for mac in component.macs:
                out.setdefault(mac, {"slug": component.slug, "slot": component.slot, "serial": component.serial})
        return out

    def digest(self) -> str:
        """SHA-256 over the components' identities, metadata and firmware: equal collections give equal
        digests (the server's ``sh.hollow.flasher.collection`` versioned attribute then only bumps its tally)."""
        rows = sorted(
            json.dumps(
                [c.slug, c.vendor, c.model, c.serial, c.slot, c.firmware, c.metadata_data()],
                sort_keys=True,
                default=str,
            )
            for c in self.components
        )
        head = json.dumps(self.vendor_attributes(), sort_keys=True)
        return hashlib.sha256("\n".join([head, *rows]).encode()).hexdigest()


def _text(value: Any) -> str:
    return str(value).strip() if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def _state(doc: dict[str, Any]) -> dict[str, str]:
    status = doc.get("Status")
    if not isinstance(status, dict):
        return {}
    out = {}
    for key, name in (("State", "state"), ("Health", "health")):
        if isinstance(status.get(key), str):
            out[name] = status[key]
    return out


def _absent(doc: dict[str, Any]) -> bool:
    status = doc.get("Status")
    return isinstance(status, dict) and status.get("State") == "Absent"


def identity_uri(uri: str) -> str:
    """``uri`` as a component's identity: the path (no host, query or trailing slash) with its ``#`` fragment
    kept, so that inline members (``Storage/1#/StorageControllers/0``) stay apart."""
    path, _, fragment = uri.partition("#")
    base = normalise_uri(path)
    return f"{base}#{fragment}" if fragment else base


def _uri(doc: dict[str, Any]) -> str:
    value = doc.get("@odata.id")
    return identity_uri(value) if isinstance(value, str) else ""


def _slot(doc: dict[str, Any], fallback: str) -> str:
    location = doc.get("Location")
    part = location.get("PartLocation") if isinstance(location, dict) else None
    label = part.get("ServiceLabel") if isinstance(part, dict) else None
    if isinstance(label, str) and label.strip():
        return label.strip()
    ident = _text(doc.get("Id")) or _text(doc.get("MemberId"))
    uri = _uri(doc)
    # Ids are unique within a collection only: keep the resource's parent too when it is not the collection.
    if uri:
        return uri.removeprefix("/redfish/v1/")
    return ident or fallback


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _links(doc: dict[str, Any]) -> dict[str, Any]:
    links = doc.get("Links")
    return links if isinstance(links, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Collector:
    def __init__(self, snapshot: HardwareSnapshot) -> None:
        self.snap = snapshot
        self.notes: list[str] = list(snapshot.notes)
        self.components: list[CollectedComponent] = []
        self.firmware = self._firmware_members()

    # -- the FirmwareInventory ------------------------------------------------------------------------------

    def _firmware_members(self) -> list[BMCComponent]:
        service = self.snap.linked(self.snap.root, "UpdateService")
        inventory = self.snap.linked(service, "FirmwareInventory")
        if service is None:
            self.notes.append("the BMC has no UpdateService: versions come from the resources themselves")
            return []
        if inventory is None:
            self.notes.append("the BMC has no FirmwareInventory: versions come from the resources themselves")
            return []
        members = self.snap.members(inventory)
        related: dict[str, dict[str, Any]] = {}
        for member in members:
            for item in member.get("RelatedItem") or []:
                uri = item.get("@odata.id") if isinstance(item, dict) else None
                found = self.snap.get(uri) if isinstance(uri, str) else None
                if isinstance(uri, str) and found is not None:
                    related[uri] = found
        return bmc_inventory.normalise(members, related)

    def _claim_firmware(self, component: CollectedComponent) -> str | None:
        """The version of the FirmwareInventory member whose RelatedItem is ``component``'s resource and whose slug
        fits; the member is then claimed (not made a component of its own)."""
        for member in list(self.firmware):
            if member.related_uri is None or identity_uri(member.related_uri) != component.uri:
                continue
            if member.slug not in (component.slug, UNKNOWN):
                continue
            self.firmware.remove(member)
            return member.version
        return None

    # -- building components --------------------------------------------------------------------------------

    def add(
        self,
        slug: str,
        doc: dict[str, Any],
        *,
        version: str | None = None,
        serial: str | None = None,
        model: str | None = None,
        metadata: dict[str, Any] | None = None,
        macs: list[str] | None = None,
        vendor: str | None = None,
    ) -> CollectedComponent:
        reported = _text(doc.get("SerialNumber")) if serial is None else serial
        placeholder = serial is not None and serial == "0"
        component = CollectedComponent(
            slug=slug,
            vendor=vendor if vendor is not None else vendor_slug(_text(doc.get("Manufacturer"))),
            model=(model if model is not None else _text(doc.get("Model"))) or _text(doc.get("PartNumber")),
            serial=reported,
            serial_reported=bool(reported) and not placeholder,
            slot=_slot(doc, slug),
            uri=_uri(doc),
            status=_state(doc),
            metadata={
                "id": _text(doc.get("Id")) or _text(doc.get("MemberId")),
                "description": _text(doc.get("Description")),
                "product_name": _text(doc.get("Name")),
                "part_number": _text(doc.get("PartNumber")),
                **(metadata or {}),
            },
            macs=[m for m in dict.fromkeys(macs or []) if m],
        )
        claimed = self._claim_firmware(component) if component.uri else None
        component.firmware = claimed or version or None
        self.components.append(component)
        return component

    # -- the host -------------------------------------------------------------------------------------------

    def host_system(self) -> dict[str, Any] | None:
        systems = self.snap.members(self.snap.linked(self.snap.root, "Systems"))
        if not systems:
            self.notes.append("the BMC lists no System: no BIOS, processors, memory or storage")
            return None
        physical = [s for s in systems if s.get("SystemType") in (None, "Physical")]
        host = (physical or systems)[0]
        for other in systems:
            if other is not host:
                kind = other.get("SystemType") or "another"
                self.notes.append(
                    f"System {other.get('Id')} ({kind}) is not the host: its processors, memory and storage "
                    "are not collected"
                )
        return host

    def system_parts(self, system: dict[str, Any]) -> None:
        bios_version = _text(system.get("BiosVersion")) or None
        self.add("bios", system, version=bios_version, serial="0", model=_text(system.get("Model")))
        # BIOS and System share a URI; keep the System's URI off the BIOS so that nothing else claims it.
        for index, module in enumerate(system.get("TrustedModules") or []):
            if not isinstance(module, dict) or _absent(module):
                continue
            tpm = CollectedComponent(
                slug="tpm",
                vendor=vendor_slug(_text(module.get("Manufacturer"))),
                model=_text(module.get("InterfaceType")),
                serial=str(index),
                serial_reported=False,
                slot=f"TrustedModules/{index}",
                uri=f"{_uri(system)}#/TrustedModules/{index}",
                firmware=_text(module.get("FirmwareVersion")) or None,
                status=_state(module),
                metadata={"interface_type": _text(module.get("InterfaceType"))},
            )
            self.components.append(tpm)
        self.processors(system)
        self.memory(system)
        self.storage(system)

    def processors(self, system: dict[str, Any]) -> None:
        collection = self.snap.linked(system, "Processors")
        if collection is None:
            self.notes.append("the System has no Processors")
            return
        for doc in self.snap.members(collection):
            if _absent(doc):
                continue
            kind = _text(doc.get("ProcessorType")) or "CPU"
            self.add(
                kind.lower(),
                doc,
                version=_text(doc.get("FirmwareVersion")) or None,
                metadata={
                    "architecture": _text(doc.get("ProcessorArchitecture")),
                    "cores": _int(doc.get("TotalCores")),
                    "threads": _int(doc.get("TotalThreads")),
                    "clock_speed_hz": (doc["MaxSpeedMHz"] * 1_000_000) if _int(doc.get("MaxSpeedMHz")) else None,
                    "slot": _text(doc.get("Socket")),
                },
            )

    def memory(self, system: dict[str, Any]) -> None:
        collection = self.snap.linked(system, "Memory")
        if collection is None:
            self.notes.append("the System has no Memory")
            return
        for doc in self.snap.members(collection):
            if _absent(doc):
                continue
            size = _int(doc.get("CapacityMiB"))
            self.add(
                "physicalmemory",
                doc,
                version=_text(doc.get("FirmwareRevision")) or None,
                metadata={
                    "size_bytes": size * 1024 * 1024 if size else None,
                    "clock_speed_hz": (doc["OperatingSpeedMhz"] * 1_000_000)
                    if _int(doc.get("OperatingSpeedMhz"))
                    else None,
                    "form_factor": _text(doc.get("MemoryDeviceType")),
                },
            )

    def storage(self, system: dict[str, Any]) -> None:
        storages = self.snap.members(self.snap.linked(system, "Storage"))
        simple = self.snap.members(self.snap.linked(system, "SimpleStorage"))
        if not storages and not simple:
            self.notes.append("the System has no Storage")
        for storage in storages:
            controllers = [c for c in storage.get("StorageControllers") or [] if isinstance(c, dict)]
            controllers += self.snap.members(self.snap.linked(storage, "Controllers"))
            for doc in controllers:
                if _absent(doc):
                    continue
                self.add(
                    "storage-controller",
                    doc,
                    version=_text(doc.get("FirmwareVersion")) or None,
                    metadata={
                        "speed_gbps": _int(doc.get("SpeedGbps")),
                        "supported_device_protocol": ",".join(
                            str(p) for p in doc.get("SupportedDeviceProtocols") or []
                        ),
                        "supported_raid_types": ",".join(str(p) for p in doc.get("SupportedRAIDTypes") or []),
                        "storage": _text(storage.get("Id")),
                    },
                )
            for drive in self.snap.linked_list(storage, "Drives"):
                self.drive(drive, controller=_text(storage.get("Id")))
        for doc in simple:
            if not _absent(doc):
                self.add("storage-controller", doc)

    def drive(self, doc: dict[str, Any], *, controller: str = "") -> None:
        uri = _uri(doc)
        if _absent(doc) or any(c.uri == uri for c in self.components if c.slug == "drive"):
            return
        self.add(
            "drive",
            doc,
            version=_text(doc.get("Revision")) or _text(doc.get("FirmwareVersion")) or None,
            metadata={
                "capacity_bytes": _int(doc.get("CapacityBytes")),
                "protocol": _text(doc.get("Protocol")),
                "drive_type": _text(doc.get("MediaType")),
                "block_size_bytes": _int(doc.get("BlockSizeBytes")),
                "storage_controller": controller,
            },
        )

    def host_interfaces(self, system: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The System's physical Ethernet interfaces (no VLANs, no Redfish host interfaces)."""
        if system is None:
            return []
        out = []
        for doc in self.snap.members(self.snap.linked(system, "EthernetInterfaces")):
            links = _links(doc)
            if _absent(doc) or "HostInterface" in links or "RelatedInterfaces" in links:
                continue
            if doc.get("EthernetInterfaceType") == "Virtual":
                continue
            if doc.get("InterfaceEnabled") is False:
                continue
            out.append(doc)
        return out

    # -- managers and chassis -------------------------------------------------------------------------------

    def managers(self) -> None:
        managers = self.snap.members(self.snap.linked(self.snap.root, "Managers"))
        if not managers:
            self.notes.append("the BMC lists no Manager")
        bmcs = [m for m in managers if m.get("ManagerType") in (None, "BMC")] or managers[:1]
        for doc in bmcs:
            macs = []
            for interface in self.snap.members(self.snap.linked(doc, "EthernetInterfaces")):
                if "HostInterface" in _links(interface):
                    continue
                macs += [normalise_mac(interface.get(k)) for k in ("PermanentMACAddress", "MACAddress")]
            self.add(
                "bmc",
                doc,
                version=_text(doc.get("FirmwareVersion")) or None,
                serial=_text(doc.get("SerialNumber")) or "0",
                macs=[m for m in macs if m],
            )

    def chassis(self) -> list[dict[str, Any]]:
        found = self.snap.members(self.snap.linked(self.snap.root, "Chassis"))
        for box in list(found):  # a chassis may list the ones it contains (cards) that the collection does not
            for inner in self.snap.linked_list(_links(box), "Contains"):
                if all(inner is not other for other in found):
                    found.append(inner)
        if not found:
            self.notes.append("the BMC lists no Chassis")
        for doc in found:
            if _absent(doc):
                continue
            self.add("chassis", doc, metadata={"chassis_type": _text(doc.get("ChassisType"))})
        return found

    def network_adapters(self, chassis: list[dict[str, Any]]) -> int:
        count = 0
        for box in chassis:
            for adapter in self.snap.members(self.snap.linked(box, "NetworkAdapters")):
                if _absent(adapter):
                    continue
                count += 1
                controllers = [c for c in adapter.get("Controllers") or [] if isinstance(c, dict)]
                version = next(
                    (_text(c.get("FirmwarePackageVersion")) for c in controllers if c.get("FirmwarePackageVersion")),
                    "",
                )
                macs: list[str | None] = []
                for port in self.snap.members(self.snap.linked(adapter, "Ports")):
                    ethernet = _object(port.get("Ethernet"))
                    macs += [normalise_mac(m) for m in ethernet.get("AssociatedMACAddresses") or []]
                    macs += [normalise_mac(m) for m in port.get("AssociatedNetworkAddresses") or []]
                for function in self.snap.members(self.snap.linked(adapter, "NetworkDeviceFunctions")):
                    ethernet = _object(function.get("Ethernet"))
                    macs += [normalise_mac(ethernet.get(k)) for k in ("PermanentMACAddress", "MACAddress")]
                self.add(
                    "nic",
                    adapter,
                    version=version or None,
                    macs=[m for m in macs if m],
                    metadata={"ports": len(self.snap.members(self.snap.linked(adapter, "Ports"))) or None},
                )
        return count

    def interfaces_as_nics(self, interfaces: list[dict[str, Any]]) -> None:
        for doc in interfaces:
            macs = [normalise_mac(doc.get(k)) for k in ("PermanentMACAddress", "MACAddress")]
            self.add("nic", doc, macs=[m for m in macs if m], metadata={"speed_bits": None})

    def interface_macs(self, interfaces: list[dict[str, Any]]) -> None:
        """MACs of host interfaces that no NIC component lists yet go to the NIC whose MACs they share, else to
        the only NIC, else they are noted."""
        nics = [c for c in self.components if c.slug == "nic"]
        known = {mac for c in nics for mac in c.macs}
        for doc in interfaces:
            macs = [m for m in (normalise_mac(doc.get(k)) for k in ("PermanentMACAddress", "MACAddress")) if m]
            new = [m for m in dict.fromkeys(macs) if m not in known]
            if not new:
                continue
            if len(nics) == 1:
                nics[0].macs.extend(new)
                known.update(new)
            else:
                self.notes.append(
                    f"EthernetInterface {doc.get('Id')} ({', '.join(new)}) belongs to no NetworkAdapter read"
                )

    def power_supplies(self, chassis: list[dict[str, Any]]) -> None:
        found = False
        for box in chassis:
            subsystem = self.snap.linked(box, "PowerSubsystem")
            supplies = self.snap.members(self.snap.linked(subsystem, "PowerSupplies"))
            if not supplies:
                legacy = self.snap.linked(box, "Power")
                supplies = [s for s in (legacy or {}).get("PowerSupplies") or [] if isinstance(s, dict)]
            for doc in supplies:
                found = True
                if _absent(doc):
                    continue
                self.add(
                    "psu",
                    doc,
                    version=_text(doc.get("FirmwareVersion")) or None,
                    metadata={"power_capacity_watts": _int(doc.get("PowerCapacityWatts"))},
                )
        if not found:
            self.notes.append("the BMC lists no power supplies")

    def chassis_drives(self, chassis: list[dict[str, Any]]) -> None:
        for box in chassis:
            drives = self.snap.members(self.snap.linked(box, "Drives"))
            drives += self.snap.linked_list(_links(box), "Drives")
            for doc in drives:
                self.drive(doc)

    def firmware_only(self) -> None:
        """FirmwareInventory members no resource claimed become components of their own (a CPLD, a backplane)."""
        for member in self.firmware:
            if member.slug == UNKNOWN:
                self.notes.append(f"firmware {member.id} ({member.name} {member.version}) is of no known type")
                continue
            if member.slug in ("bmc", "bios") and any(c.slug == member.slug for c in self.components):
                continue
            self.components.append(
                CollectedComponent(
                    slug=member.slug,
                    vendor=vendor_slug(member.manufacturer),
                    model=member.model or "",
                    serial=member.serial or "",
                    serial_reported=bool(member.serial),
                    slot=member.id,
                    uri=normalise_uri(member.uri) if member.uri else "",
                    firmware=member.version,
                    metadata={"id": member.id, "product_name": member.name, "software_id": member.software_id},
                )
            )
        self.firmware = []


def _fill_serials(components: list[CollectedComponent]) -> None:
    """Components without a serial get their position among their type (alloy); serials repeated within a type
    get ``-<slot>`` appended, so that (type, serial) identifies a component."""
    position: Counter[str] = Counter()
    for component in components:
        if not component.serial:
            component.serial = str(position[component.slug])
        position[component.slug] += 1
    seen: Counter[tuple[str, str]] = Counter((c.slug, c.serial.lower()) for c in components)
    for component in components:
        if seen[(component.slug, component.serial.lower())] > 1:
            # the slot without its System or Chassis (``Storage/RAID#/StorageControllers/0``)
            parts = component.slot.split("/", 2)
            where = parts[2] if len(parts) == 3 and parts[0] in ("Systems", "Chassis", "Managers") else component.slot
            component.serial = f"{component.serial}-{where}"


def collect(snapshot: HardwareSnapshot) -> Collection:
    """The inventory records for ``snapshot`` (rules in the module docstring). Never raises for missing or
    malformed resources: they become notes."""
    collector = _Collector(snapshot)
    system = collector.host_system()
    collector.managers()
    chassis = collector.chassis()
    if system is not None:
        collector.system_parts(system)
    interfaces = collector.host_interfaces(system)
    if collector.network_adapters(chassis) == 0:
        if interfaces:
            collector.interfaces_as_nics(interfaces)
        else:
            collector.notes.append("the BMC lists no NetworkAdapters and no Ethernet interfaces of the host")
    else:
        collector.interface_macs(interfaces)
    collector.chassis_drives(chassis)
    collector.power_supplies(chassis)
    collector.firmware_only()
    components = collector.components
    _fill_serials(components)
    host = system or {}
    boot = _object(host.get("Boot"))
    first_chassis = chassis[0] if chassis else {}
    return Collection(
        vendor=vendor_slug(_text(host.get("Manufacturer")) or _text(first_chassis.get("Manufacturer"))),
        model=model_slug(_text(host.get("Model")) or _text(first_chassis.get("Model"))),
        serial=_text(host.get("SerialNumber")) or _text(first_chassis.get("SerialNumber")),
        uuid=_text(host.get("UUID")) or None,
        bios_version=_text(host.get("BiosVersion")) or None,
        power_state=_text(host.get("PowerState")) or None,
        boot={
            key: boot[key]
            for key in ("BootSourceOverrideTarget", "BootSourceOverrideEnabled", "BootSourceOverrideMode")
            if key in boot
        },
        components=components,
        notes=collector.notes,
        system_uri=_uri(host) or None,
        host_name=_text(host.get("HostName")),
    )
