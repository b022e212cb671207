"""Server-control tasks against sushy-tools' Redfish emulator (``--fake``): power on, cycle, off and the boot
override, each waiting until the emulator reports the change (its power changes land 1 to 11 s after the request;
its boot override always reads back ``Continuous``)."""

from __future__ import annotations

import pytest
import requests

from flasher.bmc import BMC, SystemIdentity
from flasher.task.run import Outcome
from flasher_sandbox.servers import InventoryServer
from tests.support.control_helpers import claimed_task, control_settings, messages_of
from tests.support.fixtures.sushy_emulator import TWO_SYSTEMS, SushyEmulator

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]


def _system(emulator: SushyEmulator) -> dict[str, object]:
    members = requests.get(f"{emulator.url}/redfish/v1/Systems", timeout=5).json()["Members"]
    system: dict[str, object] = requests.get(emulator.url + members[0]["@odata.id"], timeout=5).json()
    return system


def test_power_on_cycle_off_wait_for_the_emulator(
    clean_inventory: InventoryServer, sushy_emulator: SushyEmulator
) -> None:
    settings = control_settings(clean_inventory, power_timeout=30.0)
    start = str(_system(sushy_emulator)["PowerState"])
    plan = ["on", "cycle", "off"] if start == "Off" else ["off", "cycle", "on"]
    for parameter in plan:
        before = str(_system(sushy_emulator)["PowerState"])
        case = claimed_task(clean_inventory, sushy_emulator.url, "set_power_state", parameter, settings=settings)
        result = case.run()
        assert result.outcome is Outcome.SUCCESS, result
        messages = messages_of(case.attribute())
        assert messages[1] == f"identified current power state: {before.lower()}"
        if parameter == "cycle" and before == "Off":
            assert messages[-1] == "server powered on successfully"
        else:
            assert messages[-1] == f"server power state set successful: {parameter}"
        expected = "Off" if parameter == "off" else "On"
        assert _system(sushy_emulator)["PowerState"] == expected  # it waited until the change landed


@pytest.mark.parametrize(("device", "target"), [("pxe", "Pxe"), ("cdrom", "Cd"), ("disk", "Hdd")])
def test_boot_device_is_set_and_read_back(
    clean_inventory: InventoryServer, sushy_emulator: SushyEmulator, device: str, target: str
) -> None:
    case = claimed_task(
        clean_inventory, sushy_emulator.url, "set_next_boot_device", device, set_next_boot_device_efi=True
    )
    result = case.run()
    assert result.outcome is Outcome.SUCCESS, result
    assert messages_of(case.attribute())[-1] == f"next boot device set successfully: {device}"
    boot = _system(sushy_emulator)["Boot"]
    assert isinstance(boot, dict)
    assert boot["BootSourceOverrideTarget"] == target
    assert boot["BootSourceOverrideMode"] == "UEFI"


def test_power_cycle_bmc_fails_on_a_manager_without_reset(
    clean_inventory: InventoryServer, sushy_emulator: SushyEmulator
) -> None:
    case = claimed_task(clean_inventory, sushy_emulator.url, "power_cycle_bmc")
    result = case.run()
    assert result.outcome is Outcome.FAILED
    data = case.attribute()
    assert data["status"] == "failed"
    assert data["error"].startswith("error power cycling BMC: ") and "cannot be reset" in data["error"]


def _power_of(emulator: SushyEmulator, uuid: str) -> str:
    return str(requests.get(f"{emulator.url}/redfish/v1/Systems/{uuid}", timeout=5).json()["PowerState"])


def test_a_bmc_with_several_systems_acts_on_the_servers_own(
    clean_inventory: InventoryServer, sushy_emulator_two_systems: SushyEmulator
) -> None:
    # Issue 12, item 15: the server is the System whose UUID the inventory has; the other node is never touched.
    emulator = sushy_emulator_two_systems
    (_, node_a, _), (_, node_b, _) = TWO_SYSTEMS
    settings = control_settings(clean_inventory, power_timeout=30.0)
    try:
        case = claimed_task(
            clean_inventory, emulator.url, "set_power_state", "off", settings=settings, server={"uuid": node_b}
        )
        result = case.run()
        assert result.outcome is Outcome.SUCCESS, result
        assert (_power_of(emulator, node_a), _power_of(emulator, node_b)) == ("On", "Off")
    finally:
        with BMC(emulator.url, "root", "calvin", settings=settings.bmc, system=SystemIdentity(uuid=node_b)) as bmc:
            bmc.set_power("on", timeout=60)


def test_a_bmc_with_several_systems_none_of_them_the_server_is_refused(
    clean_inventory: InventoryServer, sushy_emulator_two_systems: SushyEmulator
) -> None:
    emulator = sushy_emulator_two_systems
    case = claimed_task(clean_inventory, emulator.url, "set_power_state", "off")
    result = case.run()
    assert result.outcome is Outcome.FAILED, result
    error = str(case.attribute()["error"])
    assert f"BMC {emulator.url} has 2 Systems (" in error
    assert f"found by its UUID '{case.server_id}': none matches; nothing was done" in error
    assert [_power_of(emulator, uuid) for _, uuid, _ in TWO_SYSTEMS] == ["On", "On"]
