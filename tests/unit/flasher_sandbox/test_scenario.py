"""The sandbox demo's world (:func:`flasher_sandbox.up.scenario.build`): the one-component option of the benchmarks."""

from __future__ import annotations

import pytest

from flasher.constants import TASK_NAMESPACE
from flasher_sandbox.up.scenario import build


def test_one_component_per_server_installs_only_that_component() -> None:
    scenario = build(6, special=False, component="bios")

    assert len(scenario.tasks) == 6
    targets = {fw.vendor: fw.version for fw in scenario.firmware if fw.component == "bios"}
    for task, bmc in zip(scenario.tasks, scenario.fleet.bmcs, strict=True):
        assert task.namespace == TASK_NAMESPACE and task.expect == "success"
        assert list(task.data["Firmware"]) == ["bios"]
        assert "firmwareSet" not in task.data
        assert task.data["Firmware"]["bios"]["version"] == targets[bmc.vendor]
        assert task.versions == {"bios": targets[bmc.vendor]}
    assert {t.data["priority"] for t in scenario.tasks} == {0, 1, 2, 3}


def test_without_the_option_tasks_cycle_through_the_install_modes() -> None:
    scenario = build(6, special=False)

    assert "firmwareSet" in scenario.tasks[0].data and "Firmware" not in scenario.tasks[0].data
    assert list(scenario.tasks[1].data["Firmware"]) == ["bios"]
    assert "firmwareSet" not in scenario.tasks[2].data and "Firmware" not in scenario.tasks[2].data


def test_a_component_without_a_single_target_is_refused() -> None:
    with pytest.raises(ValueError, match="component: 'nic' is not one of bmc, bios"):
        build(4, component="nic")
