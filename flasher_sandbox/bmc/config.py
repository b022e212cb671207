"""The simulated fleet's configuration: which BMCs, their vendor, model, credentials, components and faults.

``flasher-sandbox bmc --config fleet.yaml`` reads a :class:`FleetSpec` from YAML (format in
``docs/sandbox.md``, "Fleet config"); ``flasher-sandbox up`` builds one in Python (:func:`default_fleet`,
:func:`default_bmc`) so that the BMCs' components match the inventory it seeds.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flasher.constants import INSTALL_ORDER
from flasher_sandbox.bmc.faults import validate_faults

ShapeName = Literal["dell", "supermicro", "lenovo", "supermicro-x13", "hpe", "openbmc"]
InstallMethod = Literal["SimpleUpdate", "HttpPush", "MultipartHttpPush"]
PowerStateName = Literal["On", "Off"]
Scheme = Literal["https", "http"]

#: Install methods each shape offers unless the config says otherwise.
DEFAULT_INSTALL_METHODS: dict[ShapeName, tuple[InstallMethod, ...]] = {
    "dell": ("SimpleUpdate", "HttpPush", "MultipartHttpPush"),
    "supermicro": ("MultipartHttpPush",),
    "lenovo": ("HttpPush",),
    "supermicro-x13": ("MultipartHttpPush",),
    "hpe": ("SimpleUpdate",),
    "openbmc": ("HttpPush",),
}
#: The Redfish ``Manufacturer`` of each shape's system, unless the config says otherwise.
DEFAULT_MANUFACTURER: dict[ShapeName, str] = {
    "dell": "Dell Inc.",
    "supermicro": "Supermicro",
    "lenovo": "Lenovo",
    "supermicro-x13": "Supermicro",
    "hpe": "HPE",
    "openbmc": "OpenBMC",
}
#: The shape a vendor gets when the config names none.
_VENDOR_SHAPES: dict[str, ShapeName] = {
    "dell": "dell",
    "supermicro": "supermicro",
    "lenovo": "lenovo",
    "hpe": "hpe",
    "openbmc": "openbmc",
}
#: The (vendor slug, model slug) of each shape's default BMCs.
DEFAULT_MODEL: dict[ShapeName, tuple[str, str]] = {
    "dell": ("dell", "r6515"),
    "supermicro": ("supermicro", "x12stw"),
    "lenovo": ("lenovo", "sr650v3"),
    "supermicro-x13": ("supermicro", "x13sei"),
    "hpe": ("hpe", "dl360g10p"),
    "openbmc": ("openbmc", "romulus"),
}
#: The serial prefix of each shape's default BMCs.
_SERIAL_PREFIX: dict[ShapeName, str] = {
    "dell": "DL",
    "supermicro": "SM",
    "lenovo": "LN",
    "supermicro-x13": "SX",
    "hpe": "HP",
    "openbmc": "OB",
}


class ComponentSpec(BaseModel):
    """One component with firmware: a FirmwareInventory member and the resource its ``RelatedItem`` names.

    ``slug`` is the component type (``bmc``, ``bios``, ``cpld``, ``nic``, ``drive``, ``storage-controller``,
    ``psu``, ...); ``manufacturer`` and ``model`` are what Redfish reports; ``id`` overrides the
    FirmwareInventory member Id the shape would give it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str
    name: str
    manufacturer: str
    model: str
    serial: str
    version: str
    id: str | None = None
    updateable: bool = True
    software_id: str | None = None
    #: A NIC's port MACs (``aa:bb:cc:dd:ee:ff``); default: two locally administered MACs derived from the serial.
    macs: list[str] | None = None

    @field_validator("macs")
    @classmethod
    def _macs(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = []
        for mac in value:
            if not _MAC.fullmatch(mac.strip()):
                raise ValueError(f"{mac!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
            out.append(mac.strip().lower())
        return out

    @property
    def port_macs(self) -> list[str]:
        """The MACs of a NIC's ports: ``macs``, else two derived from the serial (``02:``..., stable)."""
        if self.macs is not None:
            return list(self.macs)
        return [derived_mac(f"{self.serial}/{port}") for port in (1, 2)] if self.slug == "nic" else []

    @field_validator("slug")
    @classmethod
    def _known_slug(cls, value: str) -> str:
        if value not in INSTALL_ORDER:
            raise ValueError(f"unknown component slug {value!r}; known: {', '.join(INSTALL_ORDER)}")
        return value

    @field_validator("name", "manufacturer", "model", "serial", "version")
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class OtherSystemSpec(BaseModel):
    """A ComputerSystem the BMC also lists that is not the server (a chassis manager of several nodes, a
    partitioned host). Only read: it reports ``PowerState``, ``SerialNumber``, ``UUID`` and ``BiosVersion``, and
    its ``ComputerSystem.Reset`` answers 404, so a client that acts on it is caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    serial: str
    power_state: PowerStateName = "On"
    bios_version: str = "1.0.0"


_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")


def derived_mac(seed: str) -> str:
    """A locally administered unicast MAC derived from ``seed`` (``02:xx:xx:xx:xx:xx``; the same seed gives the
    same MAC)."""
    digest = hashlib.sha256(seed.encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x02, *digest[:5]))


class BmcSpec(BaseModel):
    """One simulated BMC and the server behind it.

    ``vendor`` and ``model`` are the inventory's slugs (``dell``, ``r6515``); images must name this vendor (or
    the target component's manufacturer) and, when they list models, this model or the component's model.
    ``shape`` picks the Redfish dialect (Dell-like iDRAC or Supermicro-like); it defaults from ``vendor``.
    The ``*_seconds`` fields override the fleet's timings for this BMC; ``scheme`` the fleet's scheme (HTTPS with
    a certificate of its own, or plain HTTP).
    """

    model_config = ConfigDict(extra="forbid")

    vendor: str
    model: str
    serial: str
    shape: ShapeName | None = None
    scheme: Scheme | None = None
    manufacturer: str | None = None
    product: str | None = None
    username: str | None = None
    password: str | None = None
    components: list[ComponentSpec] | None = None
    install_methods: list[InstallMethod] | None = None
    faults: dict[str, Any] = Field(default_factory=dict)
    power_state: PowerStateName = "On"
    #: False: a BMC without an UpdateService (old firmware, some OEM stacks): no FirmwareInventory and no install
    #: method; versions only in the Manager's FirmwareVersion and the System's BiosVersion.
    update_service: bool = True
    #: Systems listed before the server's own: the BMC then has several (a client must pick the server's).
    other_systems: list[OtherSystemSpec] = Field(default_factory=list)
    install_seconds: float | None = Field(default=None, gt=0)
    offline_seconds: float | None = Field(default=None, ge=0)
    power_seconds: float | None = Field(default=None, ge=0)
    #: A program to run as the host: started (argv, no shell) when the host powers on, stopped (SIGTERM, then
    #: SIGKILL) when it powers off. It gets ``FLASHER_SANDBOX_BOOT`` (``pxe`` when the boot override is Pxe for
    #: this boot, else ``disk``) and ``FLASHER_SANDBOX_SERIAL`` in its environment: a QEMU VM, for netboot tests.
    host_command: list[str] | None = None
    #: ``UpdateService.MaxImageSizeBytes``: a larger pushed image is answered 413 (Lenovo-like BMCs) or 400.
    max_image_bytes: int | None = Field(default=None, gt=0)
    #: False: a Supermicro X13-like BMC without the out-of-band licence (``SFT-DCMS-SINGLE``) answers 403 to a
    #: BIOS update, as Supermicro's BMCs do.
    licensed: bool = True

    @field_validator("vendor", "model")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not value or value != value.lower() or value.strip() != value:
            raise ValueError(f"must be a lowercase slug without spaces around it, got {value!r}")
        return value

    @field_validator("faults")
    @classmethod
    def _faults(cls, value: dict[str, Any]) -> dict[str, Any]:
        return validate_faults(value)

    @field_validator("install_methods")
    @classmethod
    def _methods(cls, value: list[InstallMethod] | None) -> list[InstallMethod] | None:
        if value is not None and not value:
            raise ValueError("must name at least one install method")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> BmcSpec:
        shape = self.shape or _VENDOR_SHAPES.get(self.vendor)
        if shape is None:
            shapes = ", ".join(DEFAULT_MODEL)
            raise ValueError(f"vendor {self.vendor!r} has no default shape: set shape to one of {shapes}")
        self.shape = shape
        if self.manufacturer is None:
            self.manufacturer = DEFAULT_MANUFACTURER[shape]
        if self.product is None:
            self.product = {"dell": "PowerEdge ", "hpe": "ProLiant "}.get(shape, "") + self.model.upper()
        if self.components is None:
            self.components = default_components(shape, self.serial)
        if not self.components:
            raise ValueError("a BMC needs at least one component")
        if self.install_methods is None:
            self.install_methods = list(DEFAULT_INSTALL_METHODS[shape])
        ids = [c.id for c in self.components if c.id is not None]
        if len(ids) != len(set(ids)):
            raise ValueError("component ids must be unique")
        others = [o.id for o in self.other_systems]
        if len(others) != len(set(others)):
            raise ValueError("other_systems ids must be unique")
        return self

    @property
    def shape_name(self) -> ShapeName:
        """The shape, filled in by validation."""
        assert self.shape is not None
        return self.shape

    @property
    def component_specs(self) -> list[ComponentSpec]:
        """The components, filled in by validation."""
        assert self.components is not None
        return self.components


class FleetSpec(BaseModel):
    """A fleet: default timings, credentials and scheme, and one entry per BMC (ports are ``base_port + index``).

    ``scheme`` is ``https`` (each BMC with its own certificate, signed by the sandbox CA: see
    :mod:`flasher_sandbox.bmc.tls`) or ``http``, for BMCs that set none of their own.
    """

    model_config = ConfigDict(extra="forbid")

    install_seconds: float = Field(default=10.0, gt=0)
    offline_seconds: float = Field(default=8.0, ge=0)
    power_seconds: float = Field(default=2.0, ge=0)
    username: str = "root"
    password: str = "calvin"  # noqa: S105 (the well-known iDRAC default the sandbox mimics)
    scheme: Scheme = "https"
    bmcs: list[BmcSpec]

    def scheme_of(self, index: int) -> Scheme:
        """The scheme BMC ``index`` serves: its own, else the fleet's."""
        return self.bmcs[index].scheme or self.scheme

    def dump_yaml(self, path: Path) -> None:
        """Write the fleet as YAML that :func:`load_fleet` reads back."""
        path.write_text(yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False))


def load_fleet(path: Path) -> FleetSpec:
    """Read a fleet config from YAML. Raises ``ValueError`` with one line per bad field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read fleet config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ValueError(f"fleet config {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ValueError(f"fleet config {path} must be a mapping with a 'bmcs' list")
    try:
        return FleetSpec.model_validate(raw)
    except ValidationError as exc:
        lines = [f"invalid fleet config {path}"]
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top)"
            lines.append(f"  {where}: {error['msg']} (got {error.get('input')!r})")
        raise ValueError("\n".join(lines)) from exc


_COMPONENT_FIELDS = ("slug", "name", "manufacturer", "model", "serial", "version")
#: Per shape: (slug, name, manufacturer, model, serial suffix, version) of a typical rack server's components.
_DEFAULT_COMPONENTS: dict[ShapeName, tuple[tuple[str, ...], ...]] = {
    "dell": (
        ("bmc", "Integrated Dell Remote Access Controller", "Dell Inc.", "r6515", "", "6.10.80.00"),
        ("bios", "BIOS", "Dell Inc.", "r6515", "", "2.11.4"),
        ("cpld", "System CPLD", "Dell Inc.", "r6515", "-CPLD", "1.0.6"),
        ("nic", "Broadcom Adv. Dual 25Gb Ethernet", "Broadcom Inc.", "bcm57414", "-NIC1", "22.31.6"),
        ("nic", "Broadcom Gigabit Ethernet BCM5720", "Broadcom Inc.", "bcm5720", "-NIC2", "22.31.6"),
        ("drive", "SSD 480GB", "Intel", "ssdsc2kb480g8r", "-D0", "XCV1DL67"),
        ("drive", "SSD 480GB", "Intel", "ssdsc2kb480g8r", "-D1", "XCV1DL67"),
        ("storage-controller", "PERC H745 Front", "Dell Inc.", "perc-h745", "-RAID", "51.16.0-4076"),
        ("psu", "Power Supply 750W", "Dell Inc.", "d750e-s6", "-PSU1", "00.1D.7D"),
    ),
    "supermicro": (
        ("bmc", "BMC", "Supermicro", "x12stw", "", "01.02.14"),
        ("bios", "BIOS", "Supermicro", "x12stw", "", "1.4a"),
        ("cpld", "CPLD Motherboard", "Supermicro", "x12stw", "-CPLD", "f1.02.1f"),
        ("nic", "Intel Ethernet Controller E810-XXV", "Intel", "e810-xxv", "-NIC1", "4.20"),
        ("nic", "Intel Ethernet Controller X710", "Intel", "x710", "-NIC2", "9.20"),
        ("drive", "Samsung SSD 960GB", "Samsung", "mz7lh960hajr", "-D0", "HXT7404Q"),
        ("drive", "Samsung SSD 960GB", "Samsung", "mz7lh960hajr", "-D1", "HXT7404Q"),
        ("storage-controller", "Broadcom SAS3908", "Broadcom", "sas3908", "-RAID", "52.20.0-4341"),
        ("psu", "PWS-1K62A-1R", "Supermicro", "pws-1k62a-1r", "-PSU1", "1.3"),
    ),
    # Lenovo XCC names its firmware "XCC" (the BMC) and "UEFI" (the BIOS), versions prefixed by a build id.
    "lenovo": (
        ("bmc", "XCC Primary Firmware", "Lenovo", "sr650v3", "", "TGB3A4E-5.10"),
        ("bios", "UEFI", "Lenovo", "sr650v3", "", "ESE1A2B-3.10"),
        ("nic", "Mellanox ConnectX-6 Lx 2x25GbE", "Mellanox", "cx6lx", "-NIC1", "26.36.1010"),
        ("nic", "Broadcom 57414 10/25GbE", "Broadcom", "bcm57414", "-NIC2", "22.31.6"),
        ("drive", "Micron 5300 480GB", "Micron", "mtfddak480tds", "-D0", "1.20"),
        ("drive", "Micron 5300 480GB", "Micron", "mtfddak480tds", "-D1", "1.20"),
        ("psu", "Lenovo 1100W Platinum", "Lenovo", "sp57a02", "-PSU1", "7.80"),
    ),
    "supermicro-x13": (
        ("bmc", "BMC", "Supermicro", "x13sei", "", "01.01.10"),
        ("bios", "BIOS", "Supermicro", "x13sei", "", "2.1"),
        ("cpld", "CPLD Motherboard", "Supermicro", "x13sei", "-CPLD", "f1.03.05"),
        ("nic", "Intel Ethernet Controller E810-CAM2", "Intel", "e810-cam2", "-NIC1", "4.20"),
        ("drive", "Samsung PM9A3 1.92TB", "Samsung", "mzql21t9hcjr", "-D0", "3.1.0"),
        ("drive", "Samsung PM9A3 1.92TB", "Samsung", "mzql21t9hcjr", "-D1", "3.1.0"),
        ("psu", "PWS-2K08A-1R", "Supermicro", "pws-2k08a-1r", "-PSU1", "1.1"),
    ),
    "hpe": (
        ("bmc", "iLO 5", "HPE", "dl360g10p", "", "2.78"),
        ("bios", "System ROM", "HPE", "dl360g10p", "", "U46 v2.68"),
        ("nic", "HPE Ethernet 10/25Gb 2-port 640SFP28 Adapter", "HPE", "640sfp28", "-NIC1", "1.8.4"),
        ("nic", "HPE Ethernet 1Gb 4-port 331i Adapter", "HPE", "331i", "-NIC2", "20.18.31"),
        ("drive", "480GB 6G SATA SSD", "HPE", "vk000480gwsrr", "-D0", "3.10"),
        ("drive", "480GB 6G SATA SSD", "HPE", "vk000480gwsrr", "-D1", "3.10"),
        ("storage-controller", "HPE Smart Array P408i-a SR Gen10", "HPE", "p408i-a", "-RAID", "5.32"),
        ("psu", "HPE 800W Flex Slot Platinum", "HPE", "865414-b21", "-PSU1", "1.00"),
    ),
    "openbmc": (
        ("bmc", "BMC", "OpenBMC", "romulus", "", "2.14.0"),
        ("bios", "Host Firmware", "OpenBMC", "romulus", "", "1.10.0"),
        ("nic", "Intel Ethernet Controller E810-C", "Intel", "e810-c", "-NIC1", "4.20"),
        ("drive", "Micron 7450 NVMe 960GB", "Micron", "mtfdkcc960tfr", "-D0", "2.0.0"),
        ("psu", "Power Supply", "OpenBMC", "psu-1200", "-PSU1", "1.0"),
    ),
}


def default_components(shape: ShapeName, serial: str) -> list[ComponentSpec]:
    """A typical rack server's components for ``shape`` (bmc, bios, cpld, two NICs, two drives, a storage
    controller, a PSU), with serials derived from the server's ``serial``."""
    return [
        ComponentSpec(**dict(zip(_COMPONENT_FIELDS, (*row[:4], serial + row[4], row[5]), strict=True)))
        for row in _DEFAULT_COMPONENTS[shape]
    ]


def default_bmc(index: int, shape: ShapeName | None = None) -> BmcSpec:
    """The default BMC at ``index``: Dell-like at even indexes, Supermicro-like at odd ones (unless ``shape``)."""
    chosen: ShapeName = shape or ("dell" if index % 2 == 0 else "supermicro")
    vendor, model = DEFAULT_MODEL[chosen]
    serial = f"{_SERIAL_PREFIX[chosen]}{index:06d}"
    return BmcSpec(vendor=vendor, model=model, serial=serial, shape=chosen)


def default_fleet(count: int, **settings: Any) -> FleetSpec:
    """``count`` default BMCs (alternating shapes); ``settings`` are :class:`FleetSpec` fields (timings,
    credentials)."""
    if count < 1:
        raise ValueError(f"a fleet needs at least one BMC, got count={count}")
    return FleetSpec(bmcs=[default_bmc(i) for i in range(count)], **settings)
