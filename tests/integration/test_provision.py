"""``provision`` through a simulated BMC, with the test playing the booted machine (no QEMU: this always runs;
``test_netboot_qemu.py`` boots a real VM). Sandbox inventory, simulated BMC, the netboot endpoints on loopback."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from flasher.bmc import BMC
from flasher.config import (
    BMCSettings,
    BootProfileSettings,
    ControlSettings,
    InventorySettings,
    NetbootSettings,
    Settings,
)
from flasher.constants import PROVISION_NAMESPACE, SERVER_CONTROL_NAMESPACE
from flasher.control.runner import run_server_control
from flasher.inventory.client import InventoryClient
from flasher.onboard.create import onboard
from flasher.task.run import Outcome
from flasher_sandbox.procs import free_port
from flasher_sandbox.servers import BmcFleet, InventoryServer
from tests.support.control_helpers import ControlCase, messages_of
from tests.support.netboot import serve_netboot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _settings(inventory: InventoryServer, port: int, timeout: float, ca_bundle: Path | None) -> Settings:
    """Settings trusting ``ca_bundle``, the simulated BMCs' CA (they serve HTTPS)."""
    return Settings(
        inventory=InventorySettings(url=inventory.url, retry_deadline=2.0, retry_max_wait=0.1),
        bmc=BMCSettings(
            scheme="http", ca_bundle=ca_bundle, retries=1, retry_delay=0.05, poll_interval=0.1, read_timeout=5
        ),
        control=ControlSettings(power_timeout=10, boot_timeout=5, provision_timeout=timeout),
        netboot=NetbootSettings(
            host="127.0.0.1",
            port=port,
            profiles={"rescue": BootProfileSettings(kernel="http://boot/vmlinuz", cmdline="cb={callback_url}")},
        ),
    )


def _onboarded(inventory: InventoryClient, fleet: BmcFleet, settings: Settings) -> tuple[str, str]:
    """The Dell-like BMC 0 onboarded; returns (server uuid, its first NIC port's MAC)."""

    def open_bmc(address: str, username: str, password: str) -> BMC:
        return BMC(address, username, password, settings=settings.bmc)

    result = onboard(inventory, open_bmc, fleet.address(0), "root", "calvin", name="prov-0")
    assert result.collection is not None
    nic = next(c for c in result.collection.components if c.slug == "nic")
    return result.uuid, nic.macs[0]


def _request(inventory: InventoryClient, server: str, **extra: Any) -> None:
    inventory.upsert_attribute(
        server,
        SERVER_CONTROL_NAMESPACE,
        {"action": "provision", "status": "queued", "taskID": "t-prov", "worker": "flasher-test", **extra},
    )


def test_provision_power_cycles_into_pxe_and_waits_for_the_callback(
    clean_inventory: InventoryServer, bmcsim: BmcFleet
) -> None:
    port = free_port()
    settings = _settings(clean_inventory, port, timeout=30, ca_bundle=bmcsim.ca_bundle)
    inventory = InventoryClient(settings.inventory)
    server, mac = _onboarded(inventory, bmcsim, settings)
    _request(inventory, server, action_parameter="rescue")
    boots_before = bmcsim.state(0)["power"]["boots"]
    seen: dict[str, Any] = {}

    def booted_machine() -> None:  # what a PXE-booted host does: ask by MAC, boot, call back
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            power = bmcsim.state(0)["power"]
            if power["boots"] > boots_before and power["last_boot_target"] == "Pxe":
                answer = requests.get(f"http://127.0.0.1:{port}/v1/boot/{mac}", timeout=5)
                seen["boot"] = answer.json()
                callback = re.search(r"cb=(\S+)", answer.json()["cmdline"])
                assert callback is not None
                seen["callback"] = requests.post(callback.group(1), data={"hostname": "booted"}, timeout=5).status_code
                return
            time.sleep(0.1)

    with serve_netboot(settings):
        machine = threading.Thread(target=booted_machine, daemon=True)
        machine.start()
        result = run_server_control(ControlCase(inventory, server, settings).context())
        machine.join(timeout=5)
    attribute = inventory.get_attribute(server, SERVER_CONTROL_NAMESPACE).as_object()
    assert result.outcome is Outcome.SUCCESS, attribute
    assert seen["callback"] == 200 and seen["boot"]["kernel"] == "http://boot/vmlinuz"
    lines = messages_of(attribute)
    assert lines[:2] == ["running condition action: provision rescue", "provisioning with boot profile rescue"]
    assert "setting next boot device to: pxe (once, legacy)" in lines
    assert "waiting for the booted machine to call back (up to 30 s)" in lines
    assert lines[-1].startswith("provisioned: the booted machine called back at ")
    record = inventory.get_attribute(server, PROVISION_NAMESPACE).as_object()
    assert record["state"] == "called-back" and record["callback"] == {"hostname": "booted"} and record["mac"] == mac
    assert bmcsim.state(0)["boot"]["enabled"] == "Disabled"  # the Once override was used by that boot


def test_no_callback_fails_after_the_timeout_and_a_bad_profile_before_any_bmc_write(
    clean_inventory: InventoryServer, bmcsim: BmcFleet, tmp_path: Path
) -> None:
    port = free_port()
    settings = _settings(clean_inventory, port, timeout=2, ca_bundle=bmcsim.ca_bundle)
    inventory = InventoryClient(settings.inventory)
    server, _ = _onboarded(inventory, bmcsim, settings)

    _request(inventory, server, action_parameter="nope")
    result = run_server_control(ControlCase(inventory, server, settings).context())
    assert result.outcome is Outcome.FAILED
    assert "boot profile 'nope' is not configured (known: rescue)" in result.reason
    assert bmcsim.audit(0)["power"] == []  # nothing was sent to the BMC

    _request(inventory, server, action_parameter="rescue")
    result = run_server_control(ControlCase(inventory, server, settings).context())
    assert result.outcome is Outcome.FAILED
    assert "no callback from the booted machine within 2 s (record: waiting)" in result.reason
    assert bmcsim.state(0)["power"]["last_boot_target"] == "Pxe"
