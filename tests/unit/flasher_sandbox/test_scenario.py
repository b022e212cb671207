"""The sandbox demo's world (:func:`flasher_sandbox.up.scenario.build`): the one-component option of the benchmarks."""

from __future__ import annotations

import pytest

from flasher.constants import PDU_OUTLET_NAMESPACE, TASK_NAMESPACE
from flasher_sandbox.up.scenario import FLEET_BIOS_SET, FLEET_MIX, LOCATION_NAMESPACE, build


def test_one_component_per_server_installs_only_that_component() -> None:
    scenario = build(6, special=False, component="bios", shapes=FLEET_MIX)

    assert len(scenario.tasks) == 6
    targets = {(fw.vendor, fw.models[0]): fw.version for fw in scenario.firmware if fw.component == "bios"}
    for task, bmc in zip(scenario.tasks, scenario.fleet.bmcs, strict=True):
        assert task.namespace == TASK_NAMESPACE and task.expect == "success"
        assert list(task.data["Firmware"]) == ["bios"]
        assert "firmwareSet" not in task.data
        assert task.data["Firmware"]["bios"]["version"] == targets[bmc.vendor, bmc.model]
        assert task.versions == {"bios": targets[bmc.vendor, bmc.model]}
    assert {t.data["priority"] for t in scenario.tasks} == {0, 1, 2, 3}


def test_without_the_option_tasks_cycle_through_the_install_modes() -> None:
    scenario = build(6, special=False)

    assert "firmwareSet" in scenario.tasks[0].data and "Firmware" not in scenario.tasks[0].data
    assert list(scenario.tasks[1].data["Firmware"]) == ["bios"]
    assert "firmwareSet" not in scenario.tasks[2].data and "Firmware" not in scenario.tasks[2].data


def test_a_component_without_a_single_target_is_refused() -> None:
    with pytest.raises(ValueError, match="component: 'nic' is not one of bmc, bios"):
        build(4, component="nic")


def test_racks_pdus_the_fleet_bios_set_and_rollout_servers() -> None:
    scenario = build(12, special=False, racks=3, rollout_servers=3, shapes=FLEET_MIX)
    assert len(scenario.names) == 15 and scenario.rollout_names == scenario.names[12:]
    racks = [scenario.rack_of(name) for name in scenario.names]
    assert racks == sorted(racks) and set(racks) == {"r1", "r2", "r3"}  # consecutive blocks
    for rack in ("r1", "r2", "r3"):  # models take turns, so every rack holds Dell and Supermicro at least
        models = {bmc.model for bmc, r in zip(scenario.fleet.bmcs, racks, strict=True) if r == rack}
        assert models >= {"r6515", "x12stw"}
    assert {bmc.shape_name for bmc in scenario.fleet.bmcs} == {
        "dell",
        "supermicro",
        "lenovo",
        "supermicro-x13",
        "hpe",
        "openbmc",
    }
    seed = scenario.seed(bmc_base_port=1000, image_base_url="http://images")
    location = seed["servers"][4]["attributes"][LOCATION_NAMESPACE]
    assert location == {"rack": racks[4], "pdu": f"{racks[4]}-a"}
    assert PDU_OUTLET_NAMESPACE not in seed["servers"][4]["attributes"]  # no PDU given
    plugged = scenario.seed(bmc_base_port=1000, image_base_url="http://images", pdu_url="https://127.0.0.1:9")
    outlets = [s["attributes"][PDU_OUTLET_NAMESPACE]["outlet"] for s in plugged["servers"]]
    assert outlets[0] == "https://127.0.0.1:9/redfish/v1/PowerEquipment/RackPDUs/1/Outlets/A1"
    assert outlets[11] == outlets[0] and outlets[10].endswith("/Outlets/C3")  # eleven outlets, in turn
    fleet_bios = next(s for s in seed["firmware_sets"] if s["name"] == FLEET_BIOS_SET)
    vendors = sorted(fw["vendor"] for fw in fleet_bios["firmware"])
    assert vendors == ["dell", "hpe", "lenovo", "openbmc", "supermicro", "supermicro"]
    assert {fw["component"] for fw in fleet_bios["firmware"]} == {"bios"} and "labels" not in fleet_bios
    unflagged = [t for t in scenario.tasks if not t.flagged]
    assert [t.server for t in unflagged] == scenario.rollout_names and all(t.expect == "success" for t in unflagged)


def test_by_default_servers_take_the_two_first_shapes_in_turn() -> None:
    scenario = build(4, special=False)
    assert [b.shape for b in scenario.fleet.bmcs] == ["dell", "supermicro", "dell", "supermicro"]
    with pytest.raises(ValueError, match="shapes: name at least one BMC shape"):
        build(4, shapes=())
