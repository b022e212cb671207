"""A real network boot, end to end: ``provision`` through a simulated BMC whose host is a QEMU VM.

One path: the simulated BMC (Dell-like, host off) is onboarded from Redfish into the sandbox inventory, which so
learns the VM's MAC (its first NIC's port). ``provision rescue`` then sets the boot profile, PXE once and power
cycles through the BMC; the BMC starts its host command, QEMU (TCG, no KVM) whose iPXE ROM gets DHCP and
``boot.ipxe`` from QEMU's own TFTP and chains to flasher's ``/v1/ipxe?mac=${net0/mac}`` (the host's loopback is
10.0.2.2 inside); flasher answers by that MAC with Debian's kernel and a busybox initrd built by the test; the
initrd's init brings up the e1000 NIC and calls back the one-time URL from its command line; ``provision`` sees the
callback and succeeds. Skipped, naming what is missing, where QEMU, iPXE, busybox or the kernel are not installed
(``scripts/bootstrap`` installs them). About 30-60 s under TCG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flasher.config import (
    BMCSettings,
    BootProfileSettings,
    ControlSettings,
    InventorySettings,
    NetbootSettings,
    Settings,
)
from flasher.constants import BOOT_NAMESPACE, PROVISION_NAMESPACE, SERVER_CONTROL_NAMESPACE
from flasher.control.runner import run_server_control
from flasher.inventory.client import InventoryClient
from flasher.onboard.create import onboard
from flasher.task.run import Outcome
from flasher_sandbox.bmc.config import BmcSpec, FleetSpec, default_components
from flasher_sandbox.procs import free_port
from flasher_sandbox.servers import BmcFleet, InventoryServer
from tests.support import netboot_vm
from tests.support.control_helpers import ControlCase, messages_of
from tests.support.netboot import serve_netboot

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

VM_MAC = "52:54:00:12:34:56"


def _fleet(directory: Path, log: Path) -> FleetSpec:
    components = default_components("dell", "VM000001")
    first_nic = next(i for i, c in enumerate(components) if c.slug == "nic")
    components[first_nic] = components[first_nic].model_copy(update={"macs": [VM_MAC]})
    bmc = BmcSpec(
        vendor="dell",
        model="r6515",
        serial="VM000001",
        power_state="Off",
        components=components,
        host_command=netboot_vm.vm_command(directory, VM_MAC, log),
    )
    return FleetSpec(bmcs=[bmc], power_seconds=0.5, install_seconds=1.0, offline_seconds=1.0)


def test_provision_boots_the_vm_by_its_mac_and_it_calls_back(
    clean_inventory: InventoryServer, bmcsim_factory: Any, tmp_path: Path
) -> None:
    reason = netboot_vm.why_not()
    if reason is not None:
        pytest.skip(reason)
    port = free_port()
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "vmlinuz").write_bytes((netboot_vm.KERNEL_DIR / "vmlinuz").read_bytes())
    netboot_vm.build_initrd(assets / "initrd")
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    (tftp / "boot.ipxe").write_text(netboot_vm.ipxe_script(port))
    console = tmp_path / "console.log"
    fleet: BmcFleet = bmcsim_factory(config=_fleet(tftp, console))

    settings = Settings(
        inventory=InventorySettings(url=clean_inventory.url, retry_deadline=2.0, retry_max_wait=0.1),
        bmc=BMCSettings(ca_bundle=fleet.ca_bundle, retries=1, retry_delay=0.05, poll_interval=0.2, read_timeout=5),
        control=ControlSettings(power_timeout=20, boot_timeout=10, provision_timeout=150),
        netboot=NetbootSettings(
            host="127.0.0.1",
            port=port,
            public_url=f"http://10.0.2.2:{port}",
            assets_dir=assets,
            profiles={
                "rescue": BootProfileSettings(
                    kernel="{base_url}/assets/vmlinuz",
                    initrd=["{base_url}/assets/initrd"],
                    cmdline="console=ttyS0 quiet flasher.uuid={uuid} flasher.callback={callback_url}",
                )
            },
        ),
    )
    inventory = InventoryClient(settings.inventory)

    def open_bmc(address: str, username: str, password: str) -> Any:
        from flasher.bmc import BMC

        return BMC(address, username, password, settings=settings.bmc)

    server = onboard(inventory, open_bmc, fleet.address(0), "root", "calvin", name="netboot-vm").uuid
    inventory.upsert_attribute(
        server,
        SERVER_CONTROL_NAMESPACE,
        {
            "action": "provision",
            "action_parameter": "rescue",
            "status": "queued",
            "taskID": "t-provision-1",
            "worker": "flasher-test",
        },
    )
    with serve_netboot(settings):
        result = run_server_control(ControlCase(inventory, server, settings).context())
    attribute = inventory.get_attribute(server, SERVER_CONTROL_NAMESPACE).as_object()
    log = console.read_text(errors="replace") if console.exists() else "(no console log)"
    assert result.outcome is Outcome.SUCCESS, f"{result.reason}\n{attribute}\nconsole:\n{log[-3000:]}"
    lines = messages_of(attribute)
    assert "provisioning with boot profile rescue" in lines
    assert "next boot device set successfully: pxe" in lines
    assert lines[-1].startswith("provisioned: the booted machine called back at ")
    record = inventory.get_attribute(server, PROVISION_NAMESPACE).as_object()
    assert record["state"] == "called-back" and record["mac"] == VM_MAC
    assert record["callback"]["hostname"] == "netboot-vm"
    assert record["callback"]["kernel"].endswith("-amd64")  # Debian's kernel ran
    assert inventory.get_attribute(server, BOOT_NAMESPACE).as_object() == {"profile": "rescue"}
    state = fleet.state(0)
    assert state["power"]["last_boot_target"] == "Pxe" and state["power"]["host_starts"] == 1
    assert "flasher-initrd: called back" in log
