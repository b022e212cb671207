"""An install world for tests: the sandbox inventory seeded to match a simulated BMC fleet, firmware images on
loopback HTTP, a real Redis queue, the service's admission, and a worker pool running the install runner.

:func:`seed_for` builds the inventory seed from the simulator's own description of its BMCs (vendors, models,
serials, component names and versions), plus firmware (images served by a :class:`ImageServer`) and firmware
sets. :class:`InstallWorld` wraps the lot with helpers to flag, admit, run and read back tasks.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flasher.bmc import BMC
from flasher.config import Settings
from flasher.constants import MODEL_AGNOSTIC_COMPONENTS, TASK_NAMESPACE
from flasher.control import run_server_control
from flasher.install.runner import InstallRunner
from flasher.inventory import InventoryClient
from flasher.onboard.runner import run_inventory
from flasher.queue import TaskQueue
from flasher.service.admission import Admission
from flasher.service.worker import WorkerPool
from flasher.store.fileserver import FileServer
from flasher.store.store import FirmwareStore
from flasher.task.model import TaskKind, is_terminal
from flasher_sandbox.images import make_image
from flasher_sandbox.servers import BmcFleet, ImageServer, InventoryServer

#: Upgrade target for each version the simulator's default components run (only comparable ones).
UPGRADES: dict[str, str] = {
    "6.10.80.00": "6.10.90.00",  # dell bmc
    "2.11.4": "2.12.0",  # dell bios
    "22.31.6": "22.32.0",  # dell nics (both models)
    "XCV1DL67": "XCV1DL69",  # dell drives
    "01.02.14": "01.02.20",  # supermicro bmc
    "1.4a": "1.5a",  # supermicro bios
    "4.20": "4.30",  # supermicro nic e810-xxv
    "9.20": "9.30",  # supermicro nic x710
    "TGB3A4E-5.10": "TGB3A6C-5.20",  # lenovo xcc
    "ESE1A2B-3.10": "ESE1A4D-3.20",  # lenovo uefi
    "26.36.1010": "26.38.1002",  # lenovo nic cx6lx
    "1.20": "1.24",  # lenovo drives
    "01.01.10": "01.02.05",  # supermicro x13 bmc
    "2.1": "2.2",  # supermicro x13 bios
    "3.1.0": "3.2.0",  # supermicro x13 drives
    "2.78": "2.81",  # hpe ilo
    "U46 v2.68": "U46 v2.72",  # hpe system rom
    "1.8.4": "1.8.5",  # hpe nic 640sfp28
    "20.18.31": "20.18.32",  # hpe nic 331i
    "3.10": "3.12",  # hpe drives
    "2.14.0": "2.15.0",  # openbmc bmc
    "1.10.0": "1.11.0",  # openbmc host firmware
    "2.0.0": "2.1.0",  # openbmc nvme drive
}
#: Component types the seed offers firmware for.
SLUGS = ("bmc", "bios", "nic", "drive")


def vendor_of(manufacturer: str) -> str:
    """The inventory's vendor slug for a Redfish manufacturer (``Dell Inc.`` → ``dell``)."""
    word = manufacturer.split(maxsplit=1)[0] if manufacturer.strip() else ""
    return "".join(ch for ch in word if ch.isalnum()).lower()


def fast_settings(
    inventory_url: str,
    redis_url: str,
    cache_dir: Path,
    *,
    steps: dict[str, dict[str, float]] | None = None,
    **sections: Any,
) -> Settings:
    """Settings for fast runs against the sandbox: short polls, timeouts and leases (``sections`` override:
    ``bmc={"ca_bundle": fleet.ca_bundle}`` to trust the simulated BMCs' HTTPS)."""
    base_steps: dict[str, dict[str, float]] = {
        "connect": {"timeout": 10, "attempts": 3, "backoff": 0.2},
        "read_versions": {"timeout": 10, "attempts": 3, "backoff": 0.2},
        "power": {"timeout": 15, "attempts": 2, "backoff": 0.2},
        "download": {"timeout": 30, "attempts": 2, "backoff": 0.1},
        "upload": {"timeout": 15, "attempts": 3, "backoff": 0.2},
        "install": {"timeout": 8, "attempts": 1, "backoff": 0},
        "confirm": {"timeout": 3, "attempts": 1, "backoff": 0},
        "bmc_reset": {"timeout": 30, "attempts": 1, "backoff": 0},
        "inventory_write": {"timeout": 5, "attempts": 3, "backoff": 0.1},
    }
    for name, policy in (steps or {}).items():
        base_steps[name] = {**base_steps[name], **policy}
    values: dict[str, Any] = {
        "inventory": {"url": inventory_url, "retry_deadline": 1.0, "retry_max_wait": 0.1},
        "redis": {"url": redis_url, "retry_deadline": 2.0},
        "queue": {"lease_seconds": 5, "max_attempts": 3, "retry_base_delay": 0, "retry_max_delay": 0},
        "bmc": {
            "scheme": "http",
            "poll_interval": 0.1,
            "offline_grace": 20,
            "retries": 1,
            "retry_delay": 0.05,
            "read_timeout": 5,
            "connect_timeout": 2,
        },
        "steps": base_steps,
        "store": {"cache_dir": str(cache_dir), "allowed_hosts": ["127.0.0.1"]},
        "fileserver": {"host": "127.0.0.1", "port": 0},
        "service": {"worker_id": "worker-a", "concurrency": 2, "heartbeat_interval": 0.5},
    }
    for section, overrides in sections.items():
        values[section] = {**values.get(section, {}), **overrides}
    return Settings(**values)


def seed_for(fleet: BmcFleet, indexes: Sequence[int], images: ImageServer) -> dict[str, Any]:
    """A seed with one server per BMC index (named ``srv-<index>``), their components as the simulator has
    them, firmware for every upgradable bmc/bios/nic/drive (one entry per vendor, type and version, listing
    every model; images served by ``images``), and per vendor and model the firmware sets ``<vendor>-<model>``
    (labelled, for ResolveFirmware: nics and drives) and ``<vendor>-<model>-platform`` (bmc and bios)."""
    described = fleet.fleet()
    models: dict[tuple[str, str, str], list[str]] = {}
    servers = []
    sets: dict[tuple[str, str], dict[str, list[tuple[str, str, str]]]] = {}
    for index in indexes:
        bmc = described[index]
        components = []
        for c in bmc["components"]:
            vendor = vendor_of(c["manufacturer"])
            components.append(
                {
                    "type": c["slug"],
                    "name": c["name"],
                    "vendor": vendor,
                    "model": c["model"],
                    "serial": c["serial"],
                    "installed": c["version"],
                }
            )
            target = UPGRADES.get(c["version"])
            if c["slug"] not in SLUGS or target is None:
                continue
            key = (vendor, c["slug"], target)
            model = bmc["model"] if c["slug"] in MODEL_AGNOSTIC_COMPONENTS else c["model"]
            if model not in models.setdefault(key, []):
                models[key].append(model)
            group = "platform" if c["slug"] in ("bmc", "bios") else "devices"
            refs = sets.setdefault((bmc["vendor"], bmc["model"]), {"platform": [], "devices": []})[group]
            if key not in refs:
                refs.append(key)
        servers.append(
            {
                "name": f"srv-{index}",
                "vendor": bmc["vendor"],
                "model": bmc["model"],
                "serial": bmc["serial"],
                "bmc": {"address": fleet.address(index), "username": fleet.username, "password": fleet.password},
                "components": components,
            }
        )
    firmware = []
    for (vendor, slug, version), listed in models.items():
        data = make_image(slug, vendor, version, listed)
        filename = f"{vendor}-{slug}-{version.replace(' ', '_')}.bin"
        firmware.append(
            {
                "vendor": vendor,
                "model": listed,
                "component": slug,
                "version": version,
                "filename": filename,
                "checksum": "sha256:" + hashlib.sha256(data).hexdigest(),
                "repository_url": images.add(filename, data),
                "upstream_url": f"https://downloads.example/{filename}",
            }
        )
    firmware_sets = []
    for (vendor, model), groups in sets.items():
        devices = [{"component": s, "version": v, "vendor": fv} for fv, s, v in groups["devices"]]
        platform = [{"component": s, "version": v, "vendor": fv} for fv, s, v in groups["platform"]]
        firmware_sets.append(
            {"name": f"{vendor}-{model}", "labels": {"vendor": vendor, "model": model}, "firmware": devices}
        )
        firmware_sets.append({"name": f"{vendor}-{model}-platform", "firmware": platform})
    return {"firmware": firmware, "firmware_sets": firmware_sets, "servers": servers}


def build_pool(
    settings: Settings, *, worker_id: str | None = None, server_control: bool = False, inventory: bool = False
) -> tuple[WorkerPool, FileServer]:
    """A worker pool running the install runner, the server-control runner with ``server_control`` and the
    inventory runner with ``inventory`` (file server started; the caller stops both)."""
    store = FirmwareStore(settings.store, attempts=2, backoff=0.1)
    fileserver = FileServer(settings.fileserver, store)
    fileserver.start()
    runners: dict[TaskKind, Any] = {TaskKind.INSTALL: InstallRunner(store, fileserver)}
    if server_control:
        runners[TaskKind.SERVER_CONTROL] = run_server_control
    if inventory:
        runners[TaskKind.INVENTORY] = run_inventory
    pool = WorkerPool(
        TaskQueue.from_settings(settings),
        InventoryClient(settings.inventory),
        settings,
        runners,
        lambda address, username, password: BMC(address, username, password, settings=settings.bmc),
        worker_id=worker_id or settings.service.worker_id,
        idle_wait=0.1,
    )
    return pool, fileserver


@dataclass
class InstallWorld:
    """The seeded inventory, the fleet and the queue, with helpers. ``servers``: BMC index → server uuid."""

    fleet: BmcFleet
    inventory_server: InventoryServer
    images: ImageServer
    settings: Settings
    servers: dict[int, str]
    inventory: InventoryClient = field(init=False)
    queue: TaskQueue = field(init=False)

    def __post_init__(self) -> None:
        self.inventory = InventoryClient(self.settings.inventory)
        self.queue = TaskQueue.from_settings(self.settings)

    def with_settings(self, **sections: Any) -> Settings:
        """The world's settings with ``sections`` merged in (``steps={"install": {"timeout": 2}}``...)."""
        data = self.settings.model_dump(mode="json")
        for section, overrides in sections.items():
            data[section] = {**data[section], **overrides} if section != "steps" else _merge_steps(data, overrides)
        return Settings(**data)

    def flag(self, index: int, data: dict[str, Any]) -> str:
        """Write the install attribute ``data`` on server ``index`` and admit it (queued + enqueued)."""
        uuid = self.servers[index]
        self.inventory.upsert_attribute(uuid, TASK_NAMESPACE, {"method": "out-of-band", "status": "", **data})
        result = Admission(self.inventory, self.queue, self.settings, worker_id="admission").reconcile(
            self.inventory.get_server(uuid), TaskKind.INSTALL
        )
        assert result.action.value == "queued", f"admission: {result}"
        return uuid

    def cancel(self, uuid: str, timeout: float = 10.0) -> None:
        """Cancel as an operator and the poller do: ``cancel: true`` in the attribute, then admission flags the
        running task in the queue (tried again if a status write of the worker overwrote the edit first)."""
        admission = Admission(self.inventory, self.queue, self.settings, worker_id="admission")
        deadline = time.monotonic() + timeout
        while True:
            self.set_attribute(uuid, cancel=True)
            result = admission.reconcile(self.inventory.get_server(uuid), TaskKind.INSTALL)
            if result.action.value in ("cancel-flagged", "cancelled"):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"cancel not taken: {result}")

    def attribute(self, uuid: str) -> dict[str, Any]:
        """The install attribute's data now."""
        data = self.inventory.get_attribute(uuid, TASK_NAMESPACE).data
        assert isinstance(data, dict)
        return data

    def set_attribute(self, uuid: str, **changes: Any) -> None:
        """Change keys of the attribute (as an operator would)."""
        self.inventory.replace_attribute(uuid, TASK_NAMESPACE, {**self.attribute(uuid), **changes})

    def wait_until(
        self, uuid: str, check: Callable[[dict[str, Any]], Any], what: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait until ``check(attribute)`` is true (``what`` names it in the failure); returns the attribute.
        Fails at once when the task ended first."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.attribute(uuid)
            if check(data):
                return data
            if is_terminal(str(data.get("status"))) or time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}; attribute: {data}")
            time.sleep(0.02)

    def wait_for_task(self, uuid: str, slug: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until component ``slug`` has a BMC task recorded (the BMC is installing it)."""
        return self.wait_until(uuid, lambda d: d["Firmware"][slug].get("bmcTask"), f"a BMC task for {slug}", timeout)

    def wait_final(self, uuid: str, timeout: float = 60.0) -> dict[str, Any]:
        """Wait until the task ends; returns the attribute."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.attribute(uuid)
            if is_terminal(str(data.get("status"))):
                return data
            if time.monotonic() > deadline:
                raise AssertionError(f"task did not end in {timeout} s: {data}")
            time.sleep(0.05)

    @contextmanager
    def pool(
        self,
        settings: Settings | None = None,
        *,
        worker_id: str | None = None,
        server_control: bool = False,
        inventory: bool = False,
    ) -> Iterator[WorkerPool]:
        """A running worker pool (stopped on exit); ``server_control`` adds the server-control runner, ``inventory``
        the inventory runner."""
        pool, fileserver = build_pool(
            settings or self.settings, worker_id=worker_id, server_control=server_control, inventory=inventory
        )
        pool.start()
        try:
            yield pool
        finally:
            pool.stop(10)
            fileserver.stop()

    def run(self, index: int, data: dict[str, Any], settings: Settings | None = None) -> tuple[str, dict[str, Any]]:
        """Flag server ``index`` with ``data``, run a pool until the task ends; returns (uuid, final attribute)."""
        uuid = self.flag(index, data)
        with self.pool(settings):
            return uuid, self.wait_final(uuid)

    def installed(self, uuid: str) -> dict[str, str | None]:
        """The inventory's installed version of each component, by ``<slug>:<serial>``."""
        return {
            f"{c.component_type_slug}:{c.serial}": c.installed_firmware() for c in self.inventory.list_components(uuid)
        }

    def installs(self, index: int) -> list[dict[str, Any]]:
        """The simulator's audit of install requests on BMC ``index``."""
        return list(self.fleet.audit(index)["installs"])


def _merge_steps(data: dict[str, Any], overrides: dict[str, dict[str, float]]) -> dict[str, Any]:
    steps = dict(data["steps"])
    for name, policy in overrides.items():
        steps[name] = {**steps[name], **policy}
    return steps
