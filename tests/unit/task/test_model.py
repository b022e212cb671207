"""The task attribute models: keys, defaults, validation messages, statuses and transitions, messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from flasher import redact
from flasher.task.model import (
    ACTION_PARAMETERS,
    BOOT_DEVICES,
    DEFAULT_PRIORITY,
    MAX_MESSAGES,
    POWER_STATES,
    TRANSITIONS,
    ComponentStatus,
    ControlAction,
    FirmwareAction,
    FirmwareSpec,
    InstallMethod,
    InvalidTransitionError,
    TaskStatus,
    TaskValidationError,
    aggregate_status,
    check_transition,
    failed_attribute,
    format_message,
    is_new,
    is_terminal,
    normalise_slug,
    parse_install_task,
    parse_server_control_task,
)

SHA256 = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
NOW = datetime(2026, 11, 20, 23, 55, 46, tzinfo=UTC)

DESIGN_EXAMPLE: dict[str, Any] = {
    "method": "out-of-band",
    "status": "",
    "priority": 2,
    "requester": "alice",
    "firmwareSet": "dell-r6515",
    "Firmware": {
        "bmc": {
            "version": "2.80.80.80",
            "preActions": ["resetBMC"],
            "postActions": ["resetHost"],
            "force": True,
            "updateFileURL": "https://firmware.example.com/bmc.bin",
            "updateFileChecksum": f"sha256:{SHA256}",
        },
        "bios": {"version": "2.7.3"},
    },
    "force": False,
    "dryRun": False,
}


def test_design_example_parses_with_its_keys() -> None:
    task = parse_install_task(DESIGN_EXAMPLE)
    assert task.method is InstallMethod.OUT_OF_BAND
    assert task.status is TaskStatus.NEW
    assert (task.priority, task.requester, task.firmware_set) == (2, "alice", "dell-r6515")
    assert task.firmware is not None
    bmc = task.firmware["bmc"]
    assert bmc.pre_actions == [FirmwareAction.RESET_BMC]
    assert bmc.post_actions == [FirmwareAction.RESET_HOST]
    assert bmc.force is True
    assert bmc.checksum is not None and bmc.checksum.hexdigest == SHA256
    assert task.firmware["bios"].update_file_url is None
    assert task.to_attribute() == DESIGN_EXAMPLE


def test_defaults_for_absent_keys_are_documented_values_and_not_written_back() -> None:
    task = parse_install_task({})
    assert task.status is TaskStatus.NEW
    assert task.priority == DEFAULT_PRIORITY == 1
    assert task.method is InstallMethod.OUT_OF_BAND
    assert (task.force, task.dry_run, task.cancel, task.attempts) == (False, False, False, 0)
    assert task.firmware is None and task.firmware_set is None and task.mode is None
    assert task.to_attribute() == {}


def test_unknown_keys_survive_write_back_at_every_level() -> None:
    data = {
        "status": "requested",
        "ticket": {"id": "OPS-1", "tags": ["a", None]},
        "Firmware": {
            "nic": {"version": "22.31.6", "note": "from the vendor", "instances": [{"name": "NIC 1", "x": 1}]}
        },
    }
    written = parse_install_task(data).to_attribute()
    assert written["ticket"] == {"id": "OPS-1", "tags": ["a", None]}
    assert written["Firmware"]["nic"]["note"] == "from the vendor"
    assert written["Firmware"]["nic"]["instances"][0]["x"] == 1


def test_snake_case_spellings_are_unknown_keys_not_fields() -> None:
    # Only the attribute's own keys are read; a "dry_run" key is kept but does not turn on a dry run.
    task = parse_install_task({"dry_run": True, "firmware_set": "x"})
    assert task.dry_run is False and task.firmware_set is None
    assert task.to_attribute() == {"dry_run": True, "firmware_set": "x"}


def test_firmware_list_form_is_normalised_to_the_map() -> None:
    task = parse_install_task(
        {
            "Firmware": [
                {"component": "BMC", "version": "2.80.80.80"},
                {"component": "Storage Controller", "version": "1"},
            ]
        }
    )
    assert task.firmware is not None
    assert list(task.firmware) == ["bmc", "storage-controller"]
    assert task.to_attribute() == {
        "Firmware": {"bmc": {"version": "2.80.80.80"}, "storage-controller": {"version": "1"}}
    }


@pytest.mark.parametrize(
    ("value", "slug"),
    [
        ("bmc", "bmc"),
        (" BIOS ", "bios"),
        ("storage_controller", "storage-controller"),
        ("Storage  Controller", "storage-controller"),
        ("bmc\ud800", ""),
        ("", ""),
        ("-x", ""),
    ],
)
def test_normalise_slug(value: str, slug: str) -> None:
    assert normalise_slug(value) == slug


# Every validation rule: (attribute data, the error's first field, its value, and the exact message).
INSTALL_ERRORS: list[tuple[Any, str, Any, str]] = [
    ([], "data", [], "field 'data': value [] is not a JSON object"),
    ("x", "data", "x", "field 'data': value \"x\" is not a JSON object"),
    (None, "data", None, "field 'data': value null is not a JSON object"),
    ({"priority": 7}, "priority", 7, "field 'priority': value 7 is outside 0..3"),
    ({"priority": -1}, "priority", -1, "field 'priority': value -1 is outside 0..3"),
    ({"priority": "2"}, "priority", "2", "field 'priority': value \"2\" is not an integer"),
    ({"priority": True}, "priority", True, "field 'priority': value true is not an integer"),
    ({"priority": 2.0}, "priority", 2.0, "field 'priority': value 2.0 is not an integer"),
    (
        {"method": "pxe"},
        "method",
        "pxe",
        "field 'method': value \"pxe\" is not a known install method (known: out-of-band, in-band)",
    ),
    (
        {"status": "pending"},
        "status",
        "pending",
        "field 'status': value \"pending\" is not a known task status"
        ' (known: "", requested, queued, active, success, failed, cancelled)',
    ),
    ({"force": "yes"}, "force", "yes", "field 'force': value \"yes\" is not a boolean (true or false)"),
    ({"dryRun": 1}, "dryRun", 1, "field 'dryRun': value 1 is not a boolean (true or false)"),
    ({"cancel": None}, "cancel", None, "field 'cancel': value null is not a boolean (true or false)"),
    ({"firmwareSet": 5}, "firmwareSet", 5, "field 'firmwareSet': value 5 is not a string"),
    ({"attempts": -2}, "attempts", -2, "field 'attempts': value -2 is negative"),
    (
        {"createdAt": "yesterday"},
        "createdAt",
        "yesterday",
        "field 'createdAt': value \"yesterday\" is not an RFC 3339 timestamp",
    ),
    ({"messages": "hello"}, "messages", "hello", "field 'messages': value \"hello\" is not a list"),
    ({"messages": ["ok", 3]}, "messages[1]", 3, "field 'messages[1]': value 3 is not a string"),
    (
        {"mode": "Magic"},
        "mode",
        "Magic",
        "field 'mode': value \"Magic\" is not a known install mode"
        " (known: PredefinedFirmware, PredefinedFirmwareSet, ResolveFirmware)",
    ),
    ({"Firmware": 5}, "Firmware", 5, "field 'Firmware': value 5 is not an object"),
    ({"Firmware": {"bmc": {}}}, "Firmware.bmc.version", None, "field 'Firmware.bmc.version': is missing"),
    ({"Firmware": {"bmc": "2.80"}}, "Firmware.bmc", "2.80", "field 'Firmware.bmc': value \"2.80\" is not an object"),
    (
        {"Firmware": {"bmc": {"version": " "}}},
        "Firmware.bmc.version",
        " ",
        "field 'Firmware.bmc.version': value \" \" is empty",
    ),
    (
        {"Firmware": {"bmc": {"version": "1", "preActions": ["reboot"]}}},
        "Firmware.bmc.preActions[0]",
        "reboot",
        "field 'Firmware.bmc.preActions[0]': value \"reboot\" is not a known firmware action"
        " (known: resetBMC, resetHost, powerOffHost)",
    ),
    (
        {"Firmware": {"bmc": {"version": "1", "postActions": "resetHost"}}},
        "Firmware.bmc.postActions",
        "resetHost",
        "field 'Firmware.bmc.postActions': value \"resetHost\" is not a list",
    ),
    (
        {"Firmware": {"bmc": {"version": "1", "updateFileURL": "ftp://host/bmc.bin"}}},
        "Firmware.bmc.updateFileURL",
        "ftp://host/bmc.bin",
        "field 'Firmware.bmc.updateFileURL': value \"ftp://host/bmc.bin\" is not an http(s) URL",
    ),
    (
        {"Firmware": {"bmc": {"version": "1", "updateFileURL": "https:///bmc.bin"}}},
        "Firmware.bmc.updateFileURL",
        "https:///bmc.bin",
        "field 'Firmware.bmc.updateFileURL': value \"https:///bmc.bin\" is not an http(s) URL",
    ),
    (
        {"Firmware": {"bmc": {"version": "1", "updateFileChecksum": "sha1:abcd"}}},
        "Firmware.bmc.updateFileChecksum",
        "sha1:abcd",
        "field 'Firmware.bmc.updateFileChecksum': value \"sha1:abcd\" is not a checksum (use sha256:, sha512:"
        " or md5: followed by hex, or plain hex of 32, 64 or 128 digits)",
    ),
    (
        {"Firmware": {"bmc": {"version": "1", "updateFileChecksum": "abc123"}}},
        "Firmware.bmc.updateFileChecksum",
        "abc123",
        "field 'Firmware.bmc.updateFileChecksum': value \"abc123\" is not a checksum (use sha256:, sha512:"
        " or md5: followed by hex, or plain hex of 32, 64 or 128 digits)",
    ),
    (
        {"Firmware": {"bmc": {"version": "1", "force": "true"}}},
        "Firmware.bmc.force",
        "true",
        "field 'Firmware.bmc.force': value \"true\" is not a boolean (true or false)",
    ),
    (
        {"Firmware": {"bmc": {"version": "1"}, "BMC": {"version": "2"}}},
        "Firmware.BMC",
        "BMC",
        "field 'Firmware.BMC': value \"BMC\" names component 'bmc' a second time",
    ),
    (
        {"Firmware": [{"component": "bmc", "version": "1"}, {"component": "bmc", "version": "2"}]},
        "Firmware[1].component",
        "bmc",
        "field 'Firmware[1].component': value \"bmc\" names component 'bmc' a second time",
    ),
    (
        {"Firmware": [{"version": "1"}]},
        "Firmware[0].component",
        None,
        "field 'Firmware[0].component': is missing (each entry names its component)",
    ),
    ({"Firmware": [7]}, "Firmware[0]", 7, "field 'Firmware[0]': value 7 is not an object"),
    (
        {"Firmware": [{"component": "  ", "version": "1"}]},
        "Firmware[0].component",
        "  ",
        "field 'Firmware[0].component': value \"  \" is not a component type slug (bmc, bios, drive, ...)",
    ),
    (
        {"Firmware": {" ": {"version": "1"}}},
        "Firmware. ",
        " ",
        "field 'Firmware. ': value \" \" is not a component type slug (bmc, bios, drive, ...)",
    ),
    (
        {"Firmware": {"drive": {"version": "1", "instances": [{"name": "Disk 0", "status": "done"}]}}},
        "Firmware.drive.instances[0].status",
        "done",
        "field 'Firmware.drive.instances[0].status': value \"done\" is not a known component status"
        " (known: pending, active, installed, skipped, failed)",
    ),
]


@pytest.mark.parametrize(("data", "field", "value", "message"), INSTALL_ERRORS)
def test_install_task_errors_name_the_field_and_the_value(data: Any, field: str, value: Any, message: str) -> None:
    with pytest.raises(TaskValidationError) as caught:
        parse_install_task(data)
    error = caught.value
    assert error.field == field
    if value is not None or "missing" not in message:
        assert error.value == value
    assert error.reason in message
    assert str(error) == message


def test_several_problems_are_all_named() -> None:
    with pytest.raises(TaskValidationError) as caught:
        parse_install_task({"priority": 9, "method": "magic", "force": "no"})
    fields = [field for field, _, _ in caught.value.problems]
    assert sorted(fields) == ["force", "method", "priority"]
    for name in fields:
        assert f"field {name!r}" in str(caught.value)


def test_a_timestamp_that_overflows_in_utc_is_a_validation_error() -> None:
    with pytest.raises(TaskValidationError) as caught:
        parse_install_task({"updatedAt": "9999-12-31T23:59:59-05:00"})
    assert caught.value.field == "updatedAt"
    assert "out of range" in str(caught.value)


def test_timestamps_are_kept_in_utc_and_written_rfc3339() -> None:
    task = parse_install_task({"createdAt": "2026-11-21T00:55:46+01:00", "updatedAt": "2026-11-20T23:55:46"})
    assert task.created_at == NOW and task.updated_at == NOW
    assert task.to_attribute() == {"createdAt": "2026-11-20T23:55:46Z", "updatedAt": "2026-11-20T23:55:46Z"}


def test_in_band_is_valid_but_unsupported_with_a_reason() -> None:
    task = parse_install_task({"method": "in-band"})
    assert task.method is InstallMethod.IN_BAND
    assert task.unsupported_reason() == "install method 'in-band' is known but not supported yet (use 'out-of-band')"
    assert parse_install_task({}).unsupported_reason() is None


def test_checksum_forms_accepted() -> None:
    for checksum in (SHA256, SHA256.upper(), f"SHA256:{SHA256}", "md5:" + "a" * 32, "b" * 128):
        spec = parse_install_task({"Firmware": {"bios": {"version": "1", "updateFileChecksum": checksum}}})
        assert spec.firmware is not None
        assert spec.firmware["bios"].update_file_checksum == checksum  # written back as given


def test_error_messages_mask_registered_secrets() -> None:
    redact.register("hunter2-secret")
    try:
        with pytest.raises(TaskValidationError) as caught:
            parse_install_task({"Firmware": {"bmc": {"version": "1", "updateFileURL": "ftp://u:hunter2-secret@h/x"}}})
        assert "hunter2-secret" not in str(caught.value)
    finally:
        redact.forget_all()


def test_assignments_are_validated() -> None:
    task = parse_install_task({})
    with pytest.raises(ValueError, match=r"outside 0\.\.3"):
        task.priority = 5


# --------------------------------------------------------------------------------------------------------------
# Server-control tasks


@pytest.mark.parametrize(("action", "parameters"), list(ACTION_PARAMETERS.items()))
def test_every_action_and_parameter_is_accepted(action: ControlAction, parameters: tuple[str, ...]) -> None:
    for parameter in parameters or ("", None):
        data: dict[str, Any] = {"action": action.value, "status": "", "priority": 3, "requester": "bob"}
        if parameter is not None:
            data["action_parameter"] = parameter
        task = parse_server_control_task(data)
        assert task.action is action and task.action_parameter == parameter
        assert task.to_attribute() == data


def test_server_control_flags_and_unknown_keys() -> None:
    data = {
        "action": "set_next_boot_device",
        "action_parameter": "pxe",
        "set_next_boot_device_persistent": True,
        "set_next_boot_device_efi": True,
        "ticket": "OPS-2",
    }
    task = parse_server_control_task(data)
    assert task.set_next_boot_device_persistent and task.set_next_boot_device_efi
    assert task.to_attribute() == data


CONTROL_ERRORS: list[tuple[Any, str, str]] = [
    ({}, "action", "field 'action': is missing"),
    (
        {"action": "reboot"},
        "action",
        "field 'action': value \"reboot\" is not a known server-control action (known: set_power_state,"
        " get_power_state, power_cycle_bmc, set_next_boot_device, pxe_boot_persistent, provision)",
    ),
    (
        {"action": "set_power_state"},
        "action_parameter",
        "field 'action_parameter': is missing: it is required by action 'set_power_state'"
        " (valid: on, off, soft, cycle, reset)",
    ),
    (
        {"action": "set_power_state", "action_parameter": "up"},
        "action_parameter",
        "field 'action_parameter': value \"up\" is not valid for action 'set_power_state'"
        " (valid: on, off, soft, cycle, reset)",
    ),
    (
        {"action": "set_next_boot_device", "action_parameter": "network"},
        "action_parameter",
        "field 'action_parameter': value \"network\" is not valid for action 'set_next_boot_device'"
        " (valid: pxe, disk, cdrom, bios, usb, diag, floppy, none, remote_drive, sd_card, utilities)",
    ),
    (
        {"action": "power_cycle_bmc", "action_parameter": "now"},
        "action_parameter",
        "field 'action_parameter': value \"now\" is not valid: action 'power_cycle_bmc' takes no parameter",
    ),
    (
        {"action": "set_power_state", "action_parameter": 1},
        "action_parameter",
        "field 'action_parameter': value 1 is not a string",
    ),
    (
        {"action": "pxe_boot_persistent", "set_next_boot_device_efi": "yes"},
        "set_next_boot_device_efi",
        "field 'set_next_boot_device_efi': value \"yes\" is not a boolean (true or false)",
    ),
    (
        {"action": "get_power_state", "priority": 4},
        "priority",
        "field 'priority': value 4 is outside 0..3",
    ),
    (7, "data", "field 'data': value 7 is not a JSON object"),
]


@pytest.mark.parametrize(("data", "field", "message"), CONTROL_ERRORS)
def test_server_control_errors_list_the_valid_choices(data: Any, field: str, message: str) -> None:
    with pytest.raises(TaskValidationError) as caught:
        parse_server_control_task(data)
    assert caught.value.field == field
    assert str(caught.value) == message


def test_issue_8_vocabulary() -> None:
    assert POWER_STATES == ("on", "off", "soft", "cycle", "reset")
    assert set(BOOT_DEVICES) == {
        "pxe",
        "disk",
        "cdrom",
        "bios",
        "usb",
        "diag",
        "floppy",
        "none",
        "remote_drive",
        "sd_card",
        "utilities",
    }


# --------------------------------------------------------------------------------------------------------------
# Statuses and transitions

S = TaskStatus
ALLOWED = {
    (S.NEW, S.QUEUED),
    (S.NEW, S.FAILED),
    (S.NEW, S.CANCELLED),
    (S.REQUESTED, S.QUEUED),
    (S.REQUESTED, S.FAILED),
    (S.REQUESTED, S.CANCELLED),
    (S.QUEUED, S.ACTIVE),
    (S.QUEUED, S.QUEUED),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.CANCELLED),
    (S.ACTIVE, S.ACTIVE),
    (S.ACTIVE, S.SUCCESS),
    (S.ACTIVE, S.FAILED),
    (S.ACTIVE, S.CANCELLED),
    (S.ACTIVE, S.QUEUED),
}


@pytest.mark.parametrize("old", list(TaskStatus))
@pytest.mark.parametrize("new", list(TaskStatus))
def test_transition_table(old: TaskStatus, new: TaskStatus) -> None:
    if (old, new) in ALLOWED:
        check_transition(old, new)
    else:
        with pytest.raises(InvalidTransitionError) as caught:
            check_transition(old, new)
        assert (caught.value.old, caught.value.new) == (old, new)
    operator_may = (old, new) in ALLOWED or (is_terminal(old) and is_new(new))
    if operator_may:
        check_transition(old, new, by_operator=True)
    else:
        with pytest.raises(InvalidTransitionError):
            check_transition(old, new, by_operator=True)


def test_transition_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(TaskStatus)


def test_helpers() -> None:
    assert is_new("") and is_new("requested") and is_new(TaskStatus.NEW)
    assert not is_new("queued")
    assert all(is_terminal(s) for s in ("success", "failed", "cancelled"))
    assert not any(is_terminal(s) for s in ("", "requested", "queued", "active"))


def test_transition_message_lists_what_is_allowed() -> None:
    with pytest.raises(
        InvalidTransitionError, match=r"status success cannot change to queued by flasher \(allowed: none\)"
    ):
        check_transition("success", "queued")
    with pytest.raises(InvalidTransitionError, match=r'status "" cannot change to active by flasher'):
        check_transition("", "active")


def test_task_transition_stamps_times_and_refuses_without_change() -> None:
    task = parse_install_task({"status": "requested"})
    task.transition(TaskStatus.QUEUED, now=NOW)
    assert task.status is TaskStatus.QUEUED and task.updated_at == NOW and task.completed_at is None
    with pytest.raises(InvalidTransitionError):
        task.transition(TaskStatus.SUCCESS, now=NOW)
    assert task.status is TaskStatus.QUEUED
    task.transition(TaskStatus.ACTIVE, now=NOW)
    task.transition(TaskStatus.SUCCESS, now=NOW)
    assert task.completed_at == NOW
    assert task.to_attribute() == {
        "status": "success",
        "updatedAt": "2026-11-20T23:55:46Z",
        "completedAt": "2026-11-20T23:55:46Z",
    }


# --------------------------------------------------------------------------------------------------------------
# Messages, per-instance results, failed attributes


def test_messages_are_timestamped_and_only_the_last_ten_kept() -> None:
    task = parse_install_task({"messages": ["old"]})
    line = task.add_message("installing 2.7.3: Running 40%", component="bios", now=NOW)
    assert line == "2026-11-20T23:55:46Z [bios] installing 2.7.3: Running 40%"
    assert task.messages == ["old", line]
    for index in range(15):
        task.add_message(f"step {index}", now=NOW)
    assert len(task.messages) == MAX_MESSAGES
    assert task.messages[-1] == "2026-11-20T23:55:46Z step 14"
    assert task.messages[0] == "2026-11-20T23:55:46Z step 5"


def test_message_without_component_and_with_secret() -> None:
    redact.register("s3cret-pass")
    try:
        assert format_message("login s3cret-pass failed", now=NOW) == "2026-11-20T23:55:46Z login *** failed"
    finally:
        redact.forget_all()


@pytest.mark.parametrize(
    ("statuses", "aggregate"),
    [
        ([], ComponentStatus.PENDING),
        (["pending", "pending"], ComponentStatus.PENDING),
        (["installed", "pending"], ComponentStatus.ACTIVE),
        (["skipped", "active"], ComponentStatus.ACTIVE),
        (["installed", "failed", "pending"], ComponentStatus.FAILED),
        (["skipped", "skipped"], ComponentStatus.SKIPPED),
        (["installed", "skipped"], ComponentStatus.INSTALLED),
        (["installed", "installed"], ComponentStatus.INSTALLED),
    ],
)
def test_aggregate_status(statuses: list[str], aggregate: ComponentStatus) -> None:
    assert aggregate_status(ComponentStatus(s) for s in statuses) is aggregate


def test_record_instance_upserts_and_aggregates() -> None:
    spec = FirmwareSpec.model_validate({"version": "GDC5902Q"})
    spec.record_instance("Disk 0", "S1", ComponentStatus.INSTALLED, installed_version="GDC5902Q")
    spec.record_instance("Disk 1", "S2", ComponentStatus.PENDING, installed_version="GDC5602Q")
    assert spec.status is ComponentStatus.ACTIVE
    spec.record_instance("Disk 1", "S2", ComponentStatus.FAILED, message="BMC task Exception")
    assert spec.status is ComponentStatus.FAILED  # type: ignore[comparison-overlap]  # record_instance changed it
    assert spec.model_dump(mode="json", by_alias=True, exclude_unset=True) == {
        "version": "GDC5902Q",
        "status": "failed",
        "instances": [
            {"name": "Disk 0", "serial": "S1", "status": "installed", "installedVersion": "GDC5902Q"},
            {
                "name": "Disk 1",
                "serial": "S2",
                "status": "failed",
                "installedVersion": "GDC5602Q",
                "message": "BMC task Exception",
            },
        ],
    }


def test_failed_attribute_keeps_the_operators_keys() -> None:
    data = {"priority": 9, "requester": "alice", "messages": ["earlier"]}
    with pytest.raises(TaskValidationError) as caught:
        parse_install_task(data)
    written = failed_attribute(data, caught.value, now=NOW)
    assert written == {
        "priority": 9,
        "requester": "alice",
        "status": "failed",
        "error": "field 'priority': value 9 is outside 0..3",
        "updatedAt": "2026-11-20T23:55:46Z",
        "completedAt": "2026-11-20T23:55:46Z",
        "messages": ["earlier", "2026-11-20T23:55:46Z failed: field 'priority': value 9 is outside 0..3"],
    }
    assert failed_attribute("junk", "not an object", now=NOW)["status"] == "failed"
    assert failed_attribute({"messages": [5, "kept"]}, "x", now=NOW)["messages"] == [
        "kept",
        "2026-11-20T23:55:46Z failed: x",
    ]


def test_the_inventory_task_kind() -> None:
    from flasher.constants import INVENTORY_NAMESPACE
    from flasher.task.model import InventoryTask, TaskKind, TaskStatus

    kind = TaskKind("inventory")
    assert kind.namespace == INVENTORY_NAMESPACE
    task = kind.parse({})
    assert isinstance(task, InventoryTask) and task.status is TaskStatus.NEW and task.to_attribute() == {}
    with pytest.raises(TaskValidationError, match=r"field 'priority': value 9 is outside 0\.\.3"):
        kind.parse({"priority": 9})
    assert {k.namespace for k in TaskKind} == {
        "sh.hollow.flasher.task",
        "sh.hollow.flasher.server_control",
        INVENTORY_NAMESPACE,
    }


def test_provision_takes_a_free_profile_name_or_none() -> None:
    assert parse_server_control_task({"action": "provision", "action_parameter": "rescue"}).action_parameter == "rescue"
    assert parse_server_control_task({"action": "provision"}).action_parameter is None
    with pytest.raises(TaskValidationError, match="field 'action_parameter': value \" rescue\" has spaces around it"):
        parse_server_control_task({"action": "provision", "action_parameter": " rescue"})
