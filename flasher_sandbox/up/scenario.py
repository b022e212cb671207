"""The demo's world: a fleet of simulated servers, the inventory that describes them, the firmware to install,
and the tasks an operator flags — each with the end it is expected to reach.

:func:`build` makes all of it from a count and a seed, deterministically:

* servers take the given shapes in turn: by default (:data:`TWO_SHAPES`, what the tests and benchmarks built on
  this world count on) a Dell-like R6515 and a Supermicro-like X12; ``flasher-sandbox up`` and ``serve`` pass
  :data:`FLEET_MIX`, every shape the simulator has (also a Lenovo XCC-like SR650 V3, a Supermicro X13-like
  X13SEI, an HPE iLO-like DL360 and an OpenBMC-like Romulus: every shape in six servers); each server has the
  simulator's default components for its shape (BMC, BIOS, NICs, drives, and the storage controller, CPLD and PSU
  where the shape has them);
* per vendor, newer firmware for the BMC, the BIOS and the first NIC model, as sandbox images (files whose
  header names component, vendor, models and version: :mod:`flasher_sandbox.images`) with their sha256, and one
  firmware set labelled with the vendor and model;
* the inventory seed (servers, BMC addresses and credentials, components with installed versions, firmware,
  sets) — the same versions the simulated BMCs report;
* a task per server, cycling through the install modes (named set, explicit ``Firmware``, resolved set) and
  priorities 0..3, plus a few with a known different end: a BIOS install the BMC fails (``failed``), a dry run
  (``success``, nothing changes), a cancelled request, a downgrade refused at admission, and power cycles sent
  to servers that also install (a server-control task waits for the install on the same server);
* or, for benchmarks (``special=False, component="bios"``), one plain install of that one component per server;
* every server's rack and PDU in attribute ``sh.hollow.sandbox.location`` (``{"rack": "r2", "pdu": "r2-b"}``:
  ``racks`` racks of consecutive servers, so each holds both models), for rollouts capped per rack;
* a firmware set ``fleet-bios`` (no labels) with the newer BIOS of both models, a rollout's baseline;
* ``rollout_servers`` more servers at the end of the fleet that get no task of their own: the demo rolls the
  BIOS out to them (:attr:`Scenario.rollout_names`).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flasher.constants import PDU_OUTLET_NAMESPACE, SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from flasher_sandbox.bmc.config import BmcSpec, FleetSpec, ShapeName, default_bmc
from flasher_sandbox.images import make_image

#: Newer firmware per shape: (component slug, component model or None for model-agnostic, version).
_TARGETS: dict[str, tuple[tuple[str, str | None, str], ...]] = {
    "dell": (("bmc", None, "7.00.00.00"), ("bios", None, "2.12.2"), ("nic", "bcm57414", "22.41.3")),
    "supermicro": (("bmc", None, "01.03.05"), ("bios", None, "1.5a"), ("nic", "e810-xxv", "4.40")),
    "lenovo": (("bmc", None, "TGB3A8F-5.30"), ("bios", None, "ESE1A6E-3.40"), ("nic", "cx6lx", "26.40.1000")),
    "supermicro-x13": (("bmc", None, "01.03.02"), ("bios", None, "2.3"), ("nic", "e810-cam2", "4.40")),
    "hpe": (("bmc", None, "2.81"), ("bios", None, "U46 v2.72"), ("nic", "640sfp28", "1.8.5")),
    "openbmc": (("bmc", None, "2.15.0"), ("bios", None, "1.11.0"), ("nic", "e810-c", "4.50")),
}
#: Older BMC firmware per shape, in the inventory too: asking for it without ``force`` is a refused downgrade.
_OLDER_BMC: dict[str, str] = {
    "dell": "5.10.50.00",
    "supermicro": "01.01.06",
    "lenovo": "TGB3A1B-5.00",
    "supermicro-x13": "01.00.25",
    "hpe": "2.70",
    "openbmc": "2.12.0",
}
_NAME_PREFIX = {
    "dell": "r6515",
    "supermicro": "x12",
    "lenovo": "sr650v3",
    "supermicro-x13": "x13",
    "hpe": "dl360",
    "openbmc": "romulus",
}
#: The shapes servers of ``flasher-sandbox up`` and ``serve`` take in turn (server ``i`` gets
#: ``FLEET_MIX[i % len(FLEET_MIX)]``): every shape the simulator has, each once in a fleet of six or more.
FLEET_MIX: tuple[ShapeName, ...] = ("dell", "supermicro", "lenovo", "supermicro-x13", "hpe", "openbmc")
#: The shapes of :func:`build` by default (the tests and benchmarks built on the demo's world count on them).
TWO_SHAPES: tuple[ShapeName, ...] = ("dell", "supermicro")
#: The components :func:`build` can make every task install alone: model-agnostic, one per server, newer firmware
#: for both shapes.
ONE_COMPONENT_CHOICES: tuple[str, ...] = ("bmc", "bios")
_NAMESPACE_UUID = uuid.UUID("6f1b7f1e-5b0c-4a4e-9d7a-0c6f1a5e2b10")
#: Where the sandbox keeps a server's rack and PDU: ``{"rack": "r1", "pdu": "r1-a"}``.
LOCATION_NAMESPACE = "sh.hollow.sandbox.location"
#: The outlets of the simulated PDU (DMTF's rack-PDU mockup, ``RackPDUs/1``) servers are plugged into, in turn.
PDU_OUTLETS: tuple[str, ...] = ("A1", "A2", "A3", "A4", "A5", "B1", "B2", "B3", "C1", "C2", "C3")
#: The firmware set holding the newer BIOS of both models (no labels: ResolveFirmware never picks it).
FLEET_BIOS_SET = "fleet-bios"


def vendor_slug(manufacturer: str) -> str:
    """The inventory's vendor slug for a Redfish manufacturer: its first word, lowercase (``Dell Inc.`` →
    ``dell``), as the simulated BMCs accept it on images."""
    return manufacturer.split(maxsplit=1)[0].lower().rstrip(".,")


@dataclass(frozen=True)
class Firmware:
    """One firmware version in the inventory, with its image file."""

    vendor: str
    models: tuple[str, ...]
    component: str
    version: str
    filename: str
    checksum: str
    size: int

    def seed(self, image_base_url: str) -> dict[str, Any]:
        """The seed entry (``firmware:``) with the image served at ``image_base_url/<vendor>/<filename>``."""
        url = f"{image_base_url}/{self.vendor}/{self.filename}"
        return {
            "vendor": self.vendor,
            "model": list(self.models),
            "component": self.component,
            "version": self.version,
            "filename": self.filename,
            "checksum": self.checksum,
            "upstream_url": f"https://downloads.example/{self.vendor}/{self.filename}",
            "repository_url": url,
        }


@dataclass
class FlaggedTask:
    """A task the demo writes and the end it should reach.

    ``namespace`` is the attribute; ``data`` what the operator writes; ``expect`` the final status; ``versions``
    the installed versions (component slug → version, for the first component of the type) the BMC should
    report afterwards, when the task installs. ``flagged`` is false for a rollout's member: ``flasher rollout
    create`` writes its attribute, not the demo.
    """

    server: str
    namespace: str
    data: dict[str, Any]
    expect: str
    why: str
    versions: dict[str, str] = field(default_factory=dict)
    flagged: bool = True

    @property
    def kind(self) -> str:
        """``install`` or ``server_control``."""
        return "install" if self.namespace == TASK_NAMESPACE else "server_control"


@dataclass
class Scenario:
    """Everything :func:`build` makes: the fleet, the firmware, the tasks."""

    fleet: FleetSpec
    names: list[str]
    uuids: dict[str, str]
    firmware: list[Firmware]
    sets: dict[str, dict[str, Any]]
    tasks: list[FlaggedTask]
    racks: dict[str, str] = field(default_factory=dict)
    rollout_names: list[str] = field(default_factory=list)

    def rack_of(self, name: str) -> str:
        """The rack of server ``name``."""
        return self.racks[name]

    def shape_of(self, name: str) -> str:
        """The BMC shape of server ``name`` (a key of :attr:`sets`); ``ValueError`` for an unknown name."""
        return self.fleet.bmcs[self.names.index(name)].shape_name

    def write_images(self, directory: Path) -> None:
        """Write every firmware image to ``directory/<vendor>/<filename>``."""
        for fw in self.firmware:
            path = directory / fw.vendor / fw.filename
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_image(fw))

    def seed(
        self,
        *,
        bmc_base_port: int,
        image_base_url: str,
        facility: str = "sandbox",
        servers_too: bool = True,
        pdu_url: str | None = None,
    ) -> dict[str, Any]:
        """The inventory seed: BMC ``i`` of the fleet listens on ``bmc_base_port + i``; its address is
        ``127.0.0.1:<port>`` (flasher's ``bmc.scheme``, https, applies) or, for a BMC serving plain HTTP,
        ``http://127.0.0.1:<port>``. With ``pdu_url`` (the simulated PDU's base URL) server ``i`` is plugged into
        outlet ``PDU_OUTLETS[i % 11]`` (attribute ``sh.hollow.flasher.pdu_outlet``). Without ``servers_too`` only
        the firmware and the firmware sets: the servers come from onboarding (``flasher onboard``)."""
        if not servers_too:
            return {
                "firmware": [fw.seed(image_base_url) for fw in self.firmware],
                "firmware_sets": list(self.sets.values()),
            }
        servers = []
        for index, (name, bmc) in enumerate(zip(self.names, self.fleet.bmcs, strict=True)):
            address = f"127.0.0.1:{bmc_base_port + index}"
            if self.fleet.scheme_of(index) == "http":
                address = f"http://{address}"
            servers.append(
                {
                    "name": name,
                    "uuid": self.uuids[name],
                    "facility": facility,
                    "vendor": bmc.vendor,
                    "model": bmc.model,
                    "serial": bmc.serial,
                    "attributes": {
                        LOCATION_NAMESPACE: {"rack": self.racks[name], "pdu": f"{self.racks[name]}-{'ab'[index % 2]}"},
                        **({PDU_OUTLET_NAMESPACE: {"outlet": _outlet(pdu_url, index)}} if pdu_url is not None else {}),
                    },
                    "bmc": {
                        "address": address,
                        "username": bmc.username or self.fleet.username,
                        "password": bmc.password or self.fleet.password,
                    },
                    "components": [
                        {
                            "type": c.slug,
                            "name": c.name,
                            "vendor": vendor_slug(c.manufacturer),
                            "model": c.model,
                            "serial": c.serial,
                            "installed": c.version,
                        }
                        for c in bmc.component_specs
                    ],
                }
            )
        return {
            "firmware": [fw.seed(image_base_url) for fw in self.firmware],
            "firmware_sets": list(self.sets.values()),
            "servers": servers,
        }


def _outlet(pdu_url: str, index: int) -> str:
    return f"{pdu_url}/redfish/v1/PowerEquipment/RackPDUs/1/Outlets/{PDU_OUTLETS[index % len(PDU_OUTLETS)]}"


def _image(fw: Firmware) -> bytes:
    return make_image(fw.component, fw.vendor, fw.version, list(fw.models), size=fw.size)


def _firmware_for(bmc: BmcSpec, image_size: int) -> list[Firmware]:
    result = []
    components = bmc.component_specs
    for slug, model, version in (*_TARGETS[bmc.shape_name], ("bmc", None, _OLDER_BMC[bmc.shape_name])):
        matching = [c for c in components if c.slug == slug and (model is None or c.model == model)]
        if not matching:
            continue
        vendor = bmc.vendor if model is None else vendor_slug(matching[0].manufacturer)
        models = (bmc.model,) if model is None else (model,)
        filename = f"{vendor}-{models[0]}-{slug}-{version.replace(' ', '_')}.bin"
        draft = Firmware(vendor, models, slug, version, filename, "", image_size)
        checksum = hashlib.sha256(_image(draft)).hexdigest()
        result.append(Firmware(vendor, models, slug, version, filename, checksum, image_size))
    return result


def _installed(bmc: BmcSpec, slug: str, model: str | None = None) -> str:
    for component in bmc.component_specs:
        if component.slug == slug and (model is None or component.model == model):
            return component.version
    raise KeyError(slug)


def build(
    servers: int,
    *,
    install_seconds: float = 1.5,
    offline_seconds: float = 3.0,
    power_seconds: float = 0.5,
    image_size: int = 256 * 1024,
    special: bool = True,
    component: str | None = None,
    racks: int = 2,
    rollout_servers: int = 0,
    shapes: tuple[ShapeName, ...] = TWO_SHAPES,
) -> Scenario:
    """The demo world for ``servers`` servers (at least 2). ``special`` adds the tasks with a different end
    (failed BIOS install, dry run, cancel, refused downgrade, power cycles); without it every task is a plain
    install expected to succeed (benchmarks).

    ``component`` (one of :data:`ONE_COMPONENT_CHOICES`: ``bmc`` or ``bios``) makes every plain task install
    that one component only, as an explicit ``Firmware`` request (benchmarks: one install of
    ``install_seconds`` per server); without it the tasks cycle through the install modes. A ``ValueError``
    names a count or a component that cannot be built. ``racks``: racks the servers stand in (consecutive
    blocks); ``rollout_servers``: servers added after the ``servers`` flagged ones, without tasks; ``shapes``: the
    simulated BMCs' shapes, taken in turn (:data:`FLEET_MIX` for every shape)."""
    if servers < 2:
        raise ValueError(f"the demo needs at least 2 servers (one per vendor), got {servers}")
    if component is not None and component not in ONE_COMPONENT_CHOICES:
        raise ValueError(f"component: {component!r} is not one of {', '.join(ONE_COMPONENT_CHOICES)}")
    if racks < 1 or rollout_servers < 0:
        raise ValueError(f"racks must be at least 1 and rollout_servers at least 0, got {racks} and {rollout_servers}")
    total = servers + rollout_servers
    if not shapes:
        raise ValueError("shapes: name at least one BMC shape")
    bmcs = [default_bmc(i, shape=shapes[i % len(shapes)]) for i in range(total)]
    names = [f"{_NAME_PREFIX[b.shape_name]}-{i:03d}" for i, b in enumerate(bmcs)]
    rack_of = {name: f"r{1 + index * racks // total}" for index, name in enumerate(names)}
    uuids = {name: str(uuid.uuid5(_NAMESPACE_UUID, name)) for name in names}
    firmware: list[Firmware] = []
    sets: dict[str, dict[str, Any]] = {}
    for shape in dict.fromkeys(b.shape_name for b in bmcs):
        sample = next(b for b in bmcs if b.shape_name == shape)
        every = _firmware_for(sample, image_size)
        firmware.extend(every)
        catalog = [fw for fw in every if fw.version != _OLDER_BMC[shape]]
        set_name = f"{sample.vendor}-{sample.model}"
        sets[shape] = {
            "name": set_name,
            "labels": {"vendor": sample.vendor, "model": sample.model},
            "firmware": [
                {"component": fw.component, "version": fw.version, "vendor": fw.vendor, "filename": fw.filename}
                for fw in catalog
            ],
        }
    sets[FLEET_BIOS_SET] = {
        "name": FLEET_BIOS_SET,
        "firmware": [
            {"component": fw.component, "version": fw.version, "vendor": fw.vendor, "filename": fw.filename}
            for fw in firmware
            if fw.component == "bios"
        ],
    }
    tasks = [
        _plain_task(index, name, sets[bmc.shape_name]["name"], _full_versions(bmc), component)
        for index, (name, bmc) in enumerate(zip(names[:servers], bmcs[:servers], strict=True))
    ]
    if special:
        _add_special(tasks, bmcs[:servers], names[:servers])
    for name, bmc in zip(names[servers:], bmcs[servers:], strict=True):
        bios = _full_versions(bmc)["bios"]
        tasks.append(
            FlaggedTask(name, TASK_NAMESPACE, {}, "success", "rollout member (BIOS)", {"bios": bios}, flagged=False)
        )
    fleet = FleetSpec(
        bmcs=bmcs, install_seconds=install_seconds, offline_seconds=offline_seconds, power_seconds=power_seconds
    )
    return Scenario(
        fleet=fleet,
        names=names,
        uuids=uuids,
        firmware=firmware,
        sets=sets,
        tasks=tasks,
        racks=rack_of,
        rollout_names=names[servers:],
    )


def _full_versions(bmc: BmcSpec) -> dict[str, str]:
    versions = {}
    for slug, model, version in _TARGETS[bmc.shape_name]:
        if any(c.slug == slug and (model is None or c.model == model) for c in bmc.component_specs):
            versions[slug] = version
    return versions


def _plain_task(
    index: int, name: str, set_name: str, full: dict[str, str], component: str | None = None
) -> FlaggedTask:
    priority = index % 4
    mode = index % 3
    base = {"status": "", "priority": priority, "requester": "sandbox-demo", "method": "out-of-band"}
    if component is not None:
        version = full[component]
        data = {**base, "Firmware": {component: {"version": version}}}
        return FlaggedTask(name, TASK_NAMESPACE, data, "success", f"{component} only", {component: version})
    if mode == 0:
        return FlaggedTask(name, TASK_NAMESPACE, {**base, "firmwareSet": set_name}, "success", "named set", full)
    if mode == 1:
        bios = full["bios"]
        data = {**base, "Firmware": {"bios": {"version": bios}}}
        return FlaggedTask(name, TASK_NAMESPACE, data, "success", "explicit Firmware", {"bios": bios})
    return FlaggedTask(name, TASK_NAMESPACE, base, "success", "resolved set", full)


def _add_special(tasks: list[FlaggedTask], bmcs: list[BmcSpec], names: list[str]) -> None:
    count = len(tasks)
    # A BIOS install the BMC fails (its task ends in Exception): the task must end failed, the BMC flash done
    # before it (the BMC's own) stays.
    failing = 1 % count
    bmcs[failing].faults = {"task_exception": {"component": "bios", "sticky": True}}
    tasks[failing].expect = "failed"
    tasks[failing].why = "BMC fails the BIOS install"
    tasks[failing].versions = {}
    if count >= 4:
        # A dry run: success, and nothing installed.
        dry = 3
        tasks[dry].data["dryRun"] = True
        tasks[dry].expect = "success"
        tasks[dry].why = "dry run (nothing changes)"
        tasks[dry].versions = {"bios": _installed(bmcs[dry], "bios")}
    if count >= 6:
        # Cancelled before it was queued.
        tasks[5].data["cancel"] = True
        tasks[5].expect = "cancelled"
        tasks[5].why = "cancelled by the operator"
        tasks[5].versions = {"bios": _installed(bmcs[5], "bios")}
    if count >= 8:
        # A downgrade without force: refused at admission, nothing installed.
        bmc = bmcs[7]
        tasks[7].data = {
            "status": "",
            "priority": 1,
            "requester": "sandbox-demo",
            "Firmware": {"bmc": {"version": _OLDER_BMC[bmc.shape_name]}},
        }
        tasks[7].expect = "failed"
        tasks[7].why = "downgrade refused"
        tasks[7].versions = {"bmc": _installed(bmc, "bmc")}
    # Power cycles on servers that also install: each waits for the install on its server.
    for index in range(0, count, 5):
        if tasks[index].expect != "success" or tasks[index].data.get("dryRun"):
            continue
        tasks.append(
            FlaggedTask(
                names[index],
                SERVER_CONTROL_NAMESPACE,
                {"status": "", "action": "set_power_state", "action_parameter": "cycle", "priority": 3},
                "success",
                "power cycle (waits for the install)",
            )
        )
