"""Pure decisions of the install worker: actions and power, lease outcomes, component matching, the attribute."""

from __future__ import annotations

import pytest

from flasher.bmc import BMCComponent
from flasher.install.actions import (
    final_power,
    normal_power,
    ordered,
    post_actions_to_run,
    restore_action,
)
from flasher.install.attribute import initial_power_of, prior_items, started, write_state
from flasher.install.matching import match_components
from flasher.install.plan import Decision, InstallPlan, PlannedInstall
from flasher.install.state import InstallState
from flasher.service.outcomes import LeaseAction, lease_action
from flasher.task.model import ComponentStatus, FirmwareAction, InstallMode, parse_install_task
from flasher.task.run import Outcome

RESET_BMC, RESET_HOST, POWER_OFF = FirmwareAction.RESET_BMC, FirmwareAction.RESET_HOST, FirmwareAction.POWER_OFF_HOST


# -- actions and power -----------------------------------------------------------------------------------------------
def test_actions_run_in_the_operators_order_each_once() -> None:
    assert ordered([RESET_HOST, RESET_BMC, RESET_HOST, POWER_OFF]) == (RESET_HOST, RESET_BMC, POWER_OFF)
    assert ordered([]) == ()


def test_a_reset_host_post_action_is_dropped_once_the_install_reset_the_host() -> None:
    assert post_actions_to_run([RESET_BMC, RESET_HOST], host_reset_done=True) == (RESET_BMC,)
    assert post_actions_to_run([RESET_BMC, RESET_HOST], host_reset_done=False) == (RESET_BMC, RESET_HOST)
    assert post_actions_to_run([POWER_OFF, RESET_HOST, POWER_OFF], host_reset_done=True) == (POWER_OFF,)


@pytest.mark.parametrize(
    ("state", "normal"),
    [("On", "On"), ("PoweringOn", "On"), ("Off", "Off"), ("PoweringOff", "Off"), ("Paused", None), (None, None)],
)
def test_power_states_count_as_where_they_are_going(state: str | None, normal: str | None) -> None:
    assert normal_power(state) == normal


@pytest.mark.parametrize(
    ("initial", "post", "target"),
    [
        ("On", [], "On"),
        ("Off", [], "Off"),
        ("PoweringOff", [], "Off"),
        ("On", [POWER_OFF], "Off"),  # the operator asked for the host to end off
        ("On", [POWER_OFF, RESET_HOST], "On"),  # the last host-power action was a reset: back to the start
        ("Off", [RESET_HOST], "Off"),  # a reset serves the install; the host goes back off
        ("On", [RESET_BMC], "On"),
        (None, [], None),  # unknown at the start: left as it is
        (None, [POWER_OFF], "Off"),
    ],
)
def test_the_host_ends_where_it_started_unless_a_post_action_powered_it_off(
    initial: str | None, post: list[FirmwareAction], target: str | None
) -> None:
    assert final_power(initial, post) == target


@pytest.mark.parametrize(
    ("current", "target", "action"),
    [
        ("On", "On", None),
        ("Off", "On", "on"),
        ("On", "Off", "off"),
        ("PoweringOn", "Off", "off"),
        ("PoweringOff", "Off", None),
        ("On", None, None),
        ("Paused", "On", None),
    ],
)
def test_restore_action(current: str, target: str | None, action: str | None) -> None:
    assert restore_action(current, target) == action


# -- lease outcomes --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("outcome", "attempt", "cancel", "action"),
    [
        (Outcome.SUCCESS, 1, False, LeaseAction.ACK),
        (Outcome.FAILED, 3, False, LeaseAction.ACK),
        (Outcome.CANCELLED, 1, True, LeaseAction.ACK),
        (Outcome.REPLACED, 1, True, LeaseAction.ACK),
        (Outcome.RETRY, 1, False, LeaseAction.REQUEUE),
        (Outcome.RETRY, 2, False, LeaseAction.REQUEUE),
        (Outcome.RETRY, 3, False, LeaseAction.GIVE_UP),
        (Outcome.RETRY, 1, True, LeaseAction.CANCEL),
        (Outcome.RELEASED, 3, False, LeaseAction.RELEASE),  # a shutdown does not count as an attempt
        (Outcome.RELEASED, 1, True, LeaseAction.CANCEL),
        (Outcome.LOST, 1, True, LeaseAction.NONE),
    ],
)
def test_lease_action(outcome: Outcome, attempt: int, cancel: bool, action: LeaseAction) -> None:
    assert lease_action(outcome, attempt=attempt, max_attempts=3, cancel_requested=cancel) is action


# -- matching --------------------------------------------------------------------------------------------------------
def _planned(slug: str, uuid: str, name: str = "", serial: str = "", model: str = "") -> PlannedInstall:
    return PlannedInstall(
        component=slug,
        component_uuid=uuid,
        component_name=name,
        component_serial=serial,
        component_model=model,
        version="2",
        image_url="http://h/i.bin",
        checksum="sha256:" + "a" * 64,
        decision=Decision.INSTALL,
        reason="upgrade",
    )


def _reported(
    slug: str, ident: str, name: str = "", serial: str | None = None, model: str | None = None
) -> BMCComponent:
    return BMCComponent(ident, f"/fw/{ident}", slug, name or ident, "1", True, None, None, model, serial, None)


def test_singletons_pair_whatever_their_names_and_several_pair_by_serial_then_name_then_model() -> None:
    items = [
        _planned("bmc", "u-bmc", name="BMC", serial="S1"),
        _planned("drive", "u-d0", name="SSD", serial="D0"),
        _planned("drive", "u-d1", name="SSD", serial="D1"),
        _planned("nic", "u-n1", name="Broadcom 25Gb", serial="x"),
        _planned("nic", "u-n2", name="Intel X710", model="x710"),
    ]
    reported = [
        _reported("bmc", "iDRAC", name="Integrated Dell Remote Access Controller"),
        _reported("drive", "Disk.1", name="SSD", serial="d1"),
        _reported("drive", "Disk.0", name="SSD", serial="D0"),
        _reported("nic", "NIC.2", name="Intel X710 10Gb", model="X710"),
        _reported("nic", "NIC.1", name="Broadcom 25Gb"),
    ]
    matched = {uuid: c.id for uuid, c in match_components(items, reported).items()}
    assert matched == {"u-bmc": "iDRAC", "u-d0": "Disk.0", "u-d1": "Disk.1", "u-n1": "NIC.1", "u-n2": "NIC.2"}


def test_what_cannot_be_told_apart_is_left_unmatched() -> None:
    items = [_planned("drive", "u-d0", name="SSD"), _planned("drive", "u-d1", name="SSD")]
    reported = [_reported("drive", "Disk.0", name="SSD"), _reported("drive", "Disk.1", name="SSD")]
    assert match_components(items, reported) == {}
    # the BMC reports one of two planned drives: neither is guessed
    assert match_components(items, [_reported("drive", "Disk.0", name="SSD")]) == {}
    # the last one left on each side pairs once the others are told apart
    items.append(_planned("drive", "u-d2", name="SSD", serial="S2"))
    reported.append(_reported("drive", "Disk.2", name="SSD", serial="s2"))
    assert {u: c.id for u, c in match_components(items, reported).items()} == {"u-d2": "Disk.2"}


def test_one_shot_plans_match_by_firmware_inventory_id() -> None:
    items = [_planned("nic", "NIC.1"), _planned("nic", "NIC.2")]
    reported = [_reported("nic", "NIC.2"), _reported("nic", "NIC.1")]
    assert {u: c.id for u, c in match_components(items, reported).items()} == {"NIC.1": "NIC.1", "NIC.2": "NIC.2"}


# -- the attribute ---------------------------------------------------------------------------------------------------
def _plan() -> InstallPlan:
    return InstallPlan(
        server_uuid="s",
        mode=InstallMode.PREDEFINED_FIRMWARE,
        items=(
            _planned("bios", "u-bios", name="BIOS"),
            _planned("drive", "u-d0", name="SSD", serial="D0"),
            _planned("drive", "u-d1", name="SSD", serial="D1"),
        ),
    )


def test_the_state_written_into_the_attribute_reads_back_for_a_resumed_task() -> None:
    task = parse_install_task(
        {"taskID": "t", "status": "active", "Firmware": {"bios": {"version": "2"}, "drive": {"version": "2"}}}
    )
    state = InstallState.of(_plan(), initial_power="Off")
    bios, d0, _ = state.items
    bios.status, bios.installed_version, bios.message = ComponentStatus.INSTALLED, "2", "installed 2"
    d0.status, d0.bmc_task, d0.message = ComponentStatus.ACTIVE, "/redfish/v1/TaskService/Tasks/7", "Running 40%"
    write_state(task, state)

    data = task.to_attribute()
    assert data["initialPowerState"] == "Off"
    assert data["Firmware"]["bios"] | {"updateFileURL": None} == {
        "version": "2",
        "status": "installed",
        "installedVersion": "2",
        "message": "installed 2",
        "updateFileURL": None,
        "updateFileChecksum": "sha256:" + "a" * 64,
    }
    drive = data["Firmware"]["drive"]
    assert drive["status"] == "active" and drive["message"] == "1 active, 1 pending"
    assert [(i["serial"], i["status"]) for i in drive["instances"]] == [("D0", "active"), ("D1", "pending")]
    assert drive["instances"][0]["bmcTask"] == "/redfish/v1/TaskService/Tasks/7"

    again = parse_install_task(data)
    prior = prior_items(again, _plan())
    assert prior["u-bios"].status is ComponentStatus.INSTALLED
    assert (prior["u-d0"].status, prior["u-d0"].bmc_task) == (ComponentStatus.ACTIVE, "/redfish/v1/TaskService/Tasks/7")
    assert prior["u-d1"].status is ComponentStatus.PENDING and prior["u-d1"].bmc_task is None
    assert started(prior) and initial_power_of(again) == "Off"


def test_a_freshly_admitted_task_has_nothing_to_resume() -> None:
    task = parse_install_task({"taskID": "t", "status": "queued", "Firmware": {"bios": {"version": "2"}}})
    write_state(task, InstallState.of(_plan()))
    again = parse_install_task(task.to_attribute())
    assert not started(prior_items(again, _plan()))
    assert initial_power_of(again) is None
