"""Running server-control tasks in tests: a server in the sandbox inventory whose BMC is a simulated BMC (or the
sushy-tools emulator), its attribute written as a worker would have claimed it, and a fence the test controls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flasher.bmc import BMC
from flasher.config import BMCSettings, ControlSettings, InventorySettings, Settings
from flasher.constants import SERVER_CONTROL_NAMESPACE
from flasher.control import run_server_control
from flasher.inventory import InventoryClient
from flasher.task.fence import FenceState, LeaseLostError
from flasher.task.model import ServerControlTask, TaskKind, parse_server_control_task
from flasher.task.run import RunContext, RunResult
from flasher.task.writer import StatusWriter
from flasher_sandbox.servers import InventoryServer

TASK_ID = "t-control-1"


class TestFence:
    """A fence the test controls: ``lost`` makes checks fail, ``cancel`` reports a cancel through the lease."""

    __test__ = False

    def __init__(self) -> None:
        self.lost = False
        self.cancel = False
        self.checks = 0

    def check(self, *, min_remaining: float = 0.0) -> FenceState:
        self.checks += 1
        if self.lost:
            raise LeaseLostError("lease lost")
        return FenceState(cancel_requested=self.cancel)


def control_settings(
    inventory: InventoryServer,
    *,
    power_timeout: float = 10.0,
    bmc_reset_timeout: float = 30.0,
    ca_bundle: Path | None = None,
) -> Settings:
    """Settings for a run against loopback BMCs: polls every 0.1 s, short timeouts, the simulated BMCs' CA
    (``ca_bundle``, :attr:`BmcFleet.ca_bundle <flasher_sandbox.servers.BmcFleet.ca_bundle>`) trusted; addresses
    without a scheme are plain HTTP."""
    return Settings(
        inventory=InventorySettings(url=inventory.url, retry_deadline=2.0, retry_max_wait=0.1),
        bmc=BMCSettings(
            ca_bundle=ca_bundle,
            scheme="http",
            retries=1,
            retry_delay=0.05,
            poll_interval=0.1,
            offline_grace=30,
            read_timeout=5,
            connect_timeout=2,
        ),
        control=ControlSettings(power_timeout=power_timeout, bmc_reset_timeout=bmc_reset_timeout, boot_timeout=5),
    )


@dataclass
class ControlCase:
    """One claimed server-control task and what its run needs."""

    inventory: InventoryClient
    server_id: str
    settings: Settings
    fence: TestFence = field(default_factory=TestFence)
    stopping: threading.Event = field(default_factory=threading.Event)
    opened: list[BMC] = field(default_factory=list)
    #: Called right after the BMC session is opened (to start a fault once connected).
    on_open: Callable[[], object] | None = None

    def attribute(self) -> dict[str, Any]:
        data = self.inventory.get_attribute(self.server_id, SERVER_CONTROL_NAMESPACE).data
        assert isinstance(data, dict)
        return data

    def write(self, data: dict[str, Any]) -> None:
        self.inventory.replace_attribute(self.server_id, SERVER_CONTROL_NAMESPACE, data)

    def context(self) -> RunContext[ServerControlTask]:
        task = parse_server_control_task(self.attribute())
        writer = StatusWriter(
            self.inventory, self.server_id, TaskKind.SERVER_CONTROL, task, self.fence, write_timeout=2.0
        )
        return RunContext(
            server=self.inventory.get_server(self.server_id),
            kind=TaskKind.SERVER_CONTROL,
            writer=writer,
            inventory=self.inventory,
            settings=self.settings,
            open_bmc=self.open_bmc,
            stopping=self.stopping,
        )

    def open_bmc(self, address: str, username: str, password: str) -> BMC:
        bmc = BMC(address, username, password, settings=self.settings.bmc)
        self.opened.append(bmc)
        if self.on_open is not None:
            self.on_open()
        return bmc

    def run(self) -> RunResult:
        return run_server_control(self.context())


def claimed_task(
    inventory: InventoryServer,
    bmc_address: str,
    action: str,
    parameter: str | None = None,
    *,
    username: str = "root",
    password: str = "calvin",
    vendor: str = "dell",
    settings: Settings | None = None,
    ca_bundle: Path | None = None,
    server: dict[str, Any] | None = None,
    **extra: Any,
) -> ControlCase:
    """A server whose BMC is at ``bmc_address`` with a server-control task as a worker claimed it (``queued``,
    with ``taskID`` and ``worker``). ``server``: more fields of the server's seed entry (``uuid``, ``serial``).
    Without ``settings``, :func:`control_settings` trusting ``ca_bundle`` (the simulated BMCs' CA)."""
    data: dict[str, Any] = {
        "action": action,
        "status": "queued",
        "priority": 2,
        "requester": "alice",
        "taskID": TASK_ID,
        "worker": "flasher-test",
        **extra,
    }
    if parameter is not None:
        data["action_parameter"] = parameter
    seeded = inventory.seed(
        {
            "servers": [
                {
                    "name": f"control-{action}-{parameter}",
                    "vendor": vendor,
                    "model": "m1",
                    "bmc": {"address": bmc_address, "username": username, "password": password},
                    "attributes": {SERVER_CONTROL_NAMESPACE: data},
                    **(server or {}),
                }
            ]
        }
    )
    (server_id,) = seeded["server_ids"]
    settings = settings or control_settings(inventory, ca_bundle=ca_bundle)
    return ControlCase(InventoryClient(settings.inventory), server_id, settings)


def messages_of(data: dict[str, Any]) -> list[str]:
    """The attribute's messages without their timestamps."""
    return [line.split(" ", 1)[1] for line in data.get("messages", [])]
