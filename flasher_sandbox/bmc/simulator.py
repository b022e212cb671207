"""One simulated BMC: its state (components, host power, sessions, tasks, faults, audit) and its listening port.

A BMC reboot (``Manager.Reset`` or a BMC firmware update) closes the port (new connections are refused), aborts
open connections (they are reset), drops every session and reopens the port ``offline_seconds`` later.
It serves HTTPS with the certificate the fleet gave it (:mod:`flasher_sandbox.bmc.tls`), or plain HTTP.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from loguru import logger

from flasher_sandbox.bmc.audit import AuditLog, now_iso
from flasher_sandbox.bmc.components import Component, build_components
from flasher_sandbox.bmc.config import BmcSpec, Scheme, derived_mac
from flasher_sandbox.bmc.faults import FaultBook
from flasher_sandbox.bmc.host import HostProcess
from flasher_sandbox.bmc.power import HostPower
from flasher_sandbox.bmc.runner import RedfishAppRunner
from flasher_sandbox.bmc.sessions import SessionStore
from flasher_sandbox.bmc.shapes import SHAPES
from flasher_sandbox.bmc.tasks import InstallTask

#: Seconds between the answer to a request that reboots the BMC and the port closing.
REBOOT_GRACE = 0.05
#: Tasks a BMC keeps; past this the oldest ended ones are forgotten (``CompletedTaskOverWritePolicy: Oldest``).
MAX_TASKS = 256


@dataclass(frozen=True)
class Timings:
    """Seconds an install takes (acceptance to Completed, for an immediate install), a BMC reboot keeps the
    BMC unreachable, and a power transition takes."""

    install_seconds: float
    offline_seconds: float
    power_seconds: float


class SimulatedBmc:
    """One BMC on ``host:port`` speaking ``scheme``. Everything runs on the fleet's event loop."""

    def __init__(
        self,
        spec: BmcSpec,
        *,
        index: int,
        host: str,
        port: int,
        scheme: Scheme = "http",
        timings: Timings,
        username: str,
        password: str,
        http: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self.spec = spec
        self.shape = SHAPES[spec.shape_name]
        self.index = index
        self.host = host
        self.port = port
        self.scheme: Scheme = scheme
        self.timings = Timings(
            spec.install_seconds or timings.install_seconds,
            timings.offline_seconds if spec.offline_seconds is None else spec.offline_seconds,
            timings.power_seconds if spec.power_seconds is None else spec.power_seconds,
        )
        self.username = spec.username or username
        self.password = spec.password or password
        self.http = http
        if any(other.id == self.shape.system_id for other in spec.other_systems):
            raise ValueError(f"other_systems: id {self.shape.system_id!r} is the server's own System")
        self.components = build_components(spec.component_specs, self.shape)
        self.audit = AuditLog()
        self.faults = FaultBook()
        self.faults.update(spec.faults)
        self.sessions = SessionStore()
        self.power = HostPower(
            self.shape,
            self.audit,
            self.timings.power_seconds,
            spec.power_state,
            self._host_booted,
            on_off=self._host_off,
        )
        self.host_process = HostProcess(spec.host_command, spec.serial) if spec.host_command else None
        self.tasks: dict[str, InstallTask] = {}
        self.monitors: dict[str, InstallTask] = {}
        self.http_push_targets: list[str] = []
        self.http_push_apply_time = "Immediate"
        #: ``HttpPushUriTargetsBusy``: a client has claimed the push targets.
        self.http_push_busy = False
        #: Monotonic time of the host's last boot (a host on at start booted long ago).
        self.booted_at = float("-inf")
        #: HPE-like: ended BIOS tasks whose image activates at the next host boot.
        self.staged: list[InstallTask] = []
        #: Counts of vendor refusals (``post_refusals``, ``network_adapter_refusals``), for tests.
        self.quirks: dict[str, int] = {}
        self.uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{spec.serial}.bmc.sandbox"))
        #: The BMC's own MAC (its Manager's EthernetInterface).
        self.mac = derived_mac(f"{spec.serial}/bmc")
        self.epoch = int(time.time())
        self.online = False
        self.offline_until: float | None = None
        self._task_sequence = 0
        self._background: set[asyncio.Task[Any]] = set()
        self._reboot_lock = asyncio.Lock()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._ssl: ssl.SSLContext | None = None

    # ---- identity -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``scheme://host:port``."""
        return f"{self.scheme}://{self.host}:{self.port}"

    def component(self, slug: str) -> Component | None:
        """The first component of type ``slug``."""
        return next((c for c in self.components if c.slug == slug), None)

    def component_by_uri(self, uri: str) -> Component | None:
        """The component a ``Targets`` entry names: its FirmwareInventory member URI or its RelatedItem URI."""
        path = (urlsplit(uri).path if "://" in uri else uri).rstrip("/")
        for component in self.components:
            if path == component.uri:
                return component
        related = [c for c in self.components if c.related.uri == path]
        return related[0] if len(related) == 1 else None

    def next_task_id(self) -> str:
        self._task_sequence += 1
        return self.shape.task_id(self._task_sequence, self.epoch)

    # ---- tasks ----------------------------------------------------------------------------------------------

    def active_tasks(self) -> list[InstallTask]:
        """Tasks not yet terminal (New, Running, Pending)."""
        return [t for t in self.tasks.values() if not t.terminal]

    def remember(self, task: InstallTask) -> None:
        """Add ``task`` to the TaskService, forgetting the oldest ended tasks past :data:`MAX_TASKS`."""
        self.tasks[task.id] = task
        if task.monitor_uri is not None:
            self.monitors[task.id] = task
        for old_id, old in list(self.tasks.items()):
            if len(self.tasks) <= MAX_TASKS:
                break
            if old.terminal:
                del self.tasks[old_id]
                self.monitors.pop(old_id, None)

    def installing_slugs(self) -> list[str]:
        """Component types of the installs in progress (for component-scoped request faults)."""
        return [slug for task in self.active_tasks() for slug in task.slugs]

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background; it is cancelled when the BMC stops."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _host_booted(self) -> None:
        self.booted_at = time.monotonic()
        self._activate_staged()
        for task in self.active_tasks():
            if task.state == "Pending":
                task.host_booted.set()
        if self.host_process is not None:
            boot = "pxe" if self.power.last_boot_target == "Pxe" else "disk"
            self.spawn(self.host_process.start(boot))

    def _activate_staged(self) -> None:
        """HPE-like, at host boot: staged images become the running versions (:mod:`.vendors.hpe`), and the install
        queue behind them moves on."""
        for task in self.staged:
            if task.header is not None and "version_unchanged" not in task.faults:
                for component in task.components:
                    component.version = task.header.version
        self.staged.clear()

    def _forget_ended_tasks(self) -> None:
        """OpenBMC-like, after a BMC reboot: every ended task is gone, its URI answers 404 (:mod:`.vendors.openbmc`)."""
        for task_id, task in list(self.tasks.items()):
            if task.terminal:
                del self.tasks[task_id]
                self.monitors.pop(task_id, None)

    def _host_off(self) -> None:
        if self.host_process is not None:
            self.spawn(self.host_process.stop())

    # ---- listening and rebooting ----------------------------------------------------------------------------

    async def start(self, app: web.Application, ssl_context: ssl.SSLContext | None = None) -> None:
        """Start serving ``app`` on the BMC's port, over TLS with ``ssl_context`` (required when the scheme is
        https)."""
        if (self.scheme == "https") != (ssl_context is not None):
            need = "a" if ssl_context is None else "no"
            raise ValueError(f"BMC {self.port}: scheme {self.scheme} needs {need} TLS context")
        self._ssl = ssl_context
        self._runner = RedfishAppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()
        if self.host_process is not None and self.power.state == "On":
            self.spawn(self.host_process.start("disk"))

    async def stop(self) -> None:
        """Stop serving, stop the host program, and cancel background work."""
        await self.power.stop()
        if self.host_process is not None:
            await self.host_process.stop()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None
        self.online = False

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(
            self._runner, self.host, self.port, ssl_context=self._ssl, reuse_address=True, backlog=256
        )
        await self._site.start()
        self.online = True
        self.offline_until = None

    async def _unlisten(self) -> None:
        self.online = False
        if self._site is not None:
            await self._site.stop()
            self._site = None
        assert self._runner is not None and self._runner.server is not None
        for handler in self._runner.server.connections:
            if handler.transport is not None:
                handler.transport.abort()

    async def reboot(self, reason: str, on_return: Callable[[], None] | None = None) -> None:
        """Reboot the BMC: unreachable for ``offline_seconds``, then serving again with no sessions.

        ``on_return`` runs just before the port reopens (a firmware update applies its version there).
        Installs still running when a ``Manager.Reset`` hits are interrupted; pending ones survive.
        """
        async with self._reboot_lock:
            record = self.audit.begin_reset(reason)
            logger.info("BMC {} rebooting ({}) for {} s", self.port, reason, self.timings.offline_seconds)
            await asyncio.sleep(REBOOT_GRACE)
            self.offline_until = time.time() + self.timings.offline_seconds
            await self._unlisten()
            self.sessions.clear()
            if reason == "Manager.Reset":
                for task in self.active_tasks():
                    if task.state != "Pending" and task.runner is not None:
                        task.runner.cancel()
            await asyncio.sleep(self.timings.offline_seconds)
            if on_return is not None:
                on_return()
            if self.shape.forgets_tasks_on_reboot:
                self._forget_ended_tasks()
            self.sessions.clear()
            await self._listen()
            record.end = now_iso()
            logger.info("BMC {} back after reboot ({})", self.port, reason)

    async def restore(self) -> None:
        """Back to the configured initial state: tasks, reboots and power transitions cancelled, versions, power,
        boot override and faults as configured, no sessions, an empty audit, and the port open."""
        await self.power.stop()
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self.host_process is not None:
            await self.host_process.stop()
        for component in self.components:
            component.version = component.spec.version
        self.power.restore(self.spec.power_state)
        self.faults.clear()
        self.faults.update(self.spec.faults)
        self.sessions.clear()
        self.tasks.clear()
        self.monitors.clear()
        self.http_push_targets, self.http_push_apply_time, self.http_push_busy = [], "Immediate", False
        self.booted_at, self.quirks = float("-inf"), {}
        self.staged.clear()
        self.audit.clear(forget_in_progress=True)
        if not self.online:
            await self._listen()

    # ---- views ----------------------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """Identity of this BMC (``GET /fleet`` lists these)."""
        return {
            "index": self.index,
            "port": self.port,
            "url": self.url,
            "shape": self.shape.name,
            "vendor": self.spec.vendor,
            "model": self.spec.model,
            "manufacturer": self.spec.manufacturer,
            "serial": self.spec.serial,
            "username": self.username,
            "install_methods": list(self.spec.install_methods or []),
            "components": [
                {
                    "id": c.id,
                    "slug": c.slug,
                    "name": c.spec.name,
                    "manufacturer": c.spec.manufacturer,
                    "model": c.spec.model,
                    "serial": c.spec.serial,
                    "version": c.version,
                    "uri": c.uri,
                }
                for c in self.components
            ],
        }

    def state(self) -> dict[str, Any]:
        """Everything tests look at (``GET /sim/state``)."""
        return {
            **self.summary(),
            "online": self.online,
            "offline_until": self.offline_until,
            "power": {
                "state": self.power.state,
                "in_transition": self.power.in_transition,
                "boots": self.power.boots,
                "last_boot": self.power.last_boot,
                "last_boot_target": self.power.last_boot_target,
                "host_running": self.host_process.running if self.host_process is not None else None,
                "host_starts": self.host_process.starts if self.host_process is not None else None,
            },
            "boot": self.power.boot.as_json(),
            "versions": {c.id: c.version for c in self.components},
            "sessions": [{"id": s.id, "username": s.username, "created": s.created} for s in self.sessions.all()],
            "tasks": [
                {
                    "id": t.id,
                    "state": t.state,
                    "status": t.status,
                    "percent": t.percent,
                    "method": t.method,
                    "apply_time": t.apply_time,
                    "targets": [c.id for c in t.components],
                    "purged": t.purged,
                }
                for t in self.tasks.values()
            ],
            "faults": self.faults.as_json(),
            "http_push": {"busy": self.http_push_busy, "targets": list(self.http_push_targets)},
            "staged": [t.id for t in self.staged],
            "quirks": dict(self.quirks),
            "installs_in_progress": self.audit.installs_in_progress,
        }
