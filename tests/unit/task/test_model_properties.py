"""Property tests: any JSON value is a valid task or a TaskValidationError naming a field, never another error;
valid tasks survive the write-back round trip unchanged, with unknown keys preserved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flasher.task.model import (
    ACTION_PARAMETERS,
    BOOT_DEVICES,
    POWER_STATES,
    ComponentStatus,
    ControlAction,
    FirmwareAction,
    InstallMethod,
    InstallMode,
    TaskBase,
    TaskStatus,
    TaskValidationError,
    parse_install_task,
    parse_server_control_task,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=10,
)

SHA = "ab" * 32
urls = st.sampled_from(["https://fw.example.com/a.bin", "http://10.0.0.1:8080/x/y.exe", "HTTPS://h/x"])
checksums = st.sampled_from([SHA, f"sha256:{SHA}", "MD5:" + "c" * 32, "d" * 128, "sha512:" + "E" * 128])
versions = st.sampled_from(["2.80.80.80", "1.45.455b66-rev4", "P79 v1.45", "A43 v2.52 (10/29/2021)", "U46_1.20"])
slugs = st.sampled_from(["bmc", "bios", "cpld", "drive", "nic", "storage-controller", "psu", "gpu"])
offsets = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
timestamps = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz).isoformat(),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    offsets,
)
unknown_keys = st.text(min_size=1, max_size=10).filter(lambda k: k[0] == "x")  # never a known key
extras = st.dictionaries(unknown_keys, json_values, max_size=3)


def _with_extras(base: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda data, more: {**more, **data}, base, extras)


instance_results = _with_extras(
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(max_size=8),
            "serial": st.text(max_size=8),
            "version": versions,
            "status": st.sampled_from([s.value for s in ComponentStatus]),
            "installedVersion": versions,
            "message": st.text(max_size=20),
        },
    )
)
firmware_specs = _with_extras(
    st.fixed_dictionaries(
        {"version": versions},
        optional={
            "preActions": st.lists(st.sampled_from([a.value for a in FirmwareAction]), max_size=3),
            "postActions": st.lists(st.sampled_from([a.value for a in FirmwareAction]), max_size=3),
            "force": st.booleans(),
            "updateFileURL": urls,
            "updateFileChecksum": checksums,
            "status": st.sampled_from([s.value for s in ComponentStatus]),
            "installedVersion": versions,
            "message": st.text(max_size=20),
            "instances": st.lists(instance_results, max_size=3),
        },
    )
)
common_keys: dict[str, st.SearchStrategy[Any]] = {
    "status": st.sampled_from([s.value for s in TaskStatus]),
    "priority": st.integers(0, 3),
    "requester": st.text(max_size=10),
    "worker": st.text(max_size=10),
    "cancel": st.booleans(),
    "taskID": st.uuids().map(str),
    "attempts": st.integers(0, 10),
    "createdAt": timestamps,
    "updatedAt": timestamps,
    "completedAt": timestamps,
    "messages": st.lists(st.text(max_size=30), max_size=12),
    "error": st.text(max_size=30),
}
valid_install_data = _with_extras(
    st.fixed_dictionaries(
        {},
        optional={
            **common_keys,
            "method": st.sampled_from([m.value for m in InstallMethod]),
            "firmwareSet": st.text(min_size=1, max_size=12).filter(str.strip),  # empty is an error (issue 12)
            "Firmware": st.dictionaries(slugs, firmware_specs, min_size=1, max_size=4),
            "force": st.booleans(),
            "dryRun": st.booleans(),
            "mode": st.sampled_from([m.value for m in InstallMode]),
        },
    )
)


@st.composite
def valid_control_data(draw: st.DrawFn) -> dict[str, Any]:
    action = draw(st.sampled_from(list(ControlAction)))
    data = draw(
        st.fixed_dictionaries(
            {},
            optional={
                **common_keys,
                "set_next_boot_device_persistent": st.booleans(),
                "set_next_boot_device_efi": st.booleans(),
            },
        )
    )
    data["action"] = action.value
    choices = ACTION_PARAMETERS[action]
    if choices:
        data["action_parameter"] = draw(st.sampled_from(choices))
    elif draw(st.booleans()):
        data["action_parameter"] = ""
    return {**draw(extras), **data}


def _mutate(valid: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Valid-looking attributes with some values (top level or inside Firmware) replaced by arbitrary JSON."""

    @st.composite
    def mutated(draw: st.DrawFn) -> Any:
        data = dict(draw(valid))
        for key in draw(st.lists(st.sampled_from([*sorted(data), "priority", "Firmware", "action"]), max_size=3)):
            data[key] = draw(json_values)
        firmware = data.get("Firmware")
        if isinstance(firmware, dict) and firmware and draw(st.booleans()):
            slug = draw(st.sampled_from(sorted(firmware)))
            spec = dict(firmware[slug]) if isinstance(firmware[slug], dict) else {}
            spec[draw(st.sampled_from(["version", "preActions", "updateFileURL", "updateFileChecksum", "force"]))] = (
                draw(json_values)
            )
            firmware[slug] = spec
        if isinstance(firmware, dict) and draw(st.booleans()):  # the list form, sometimes with a duplicate
            entries = [
                {"component": slug, **spec} if isinstance(spec, dict) else spec for slug, spec in firmware.items()
            ]
            data["Firmware"] = entries + entries[:1] if draw(st.booleans()) else entries
        return data

    return mutated()


anything = json_values | _mutate(valid_install_data) | _mutate(valid_control_data())


def _check_never_raises_anything_else(parse: Callable[[object], TaskBase], data: Any) -> None:
    try:
        task = parse(data)
    except TaskValidationError as error:
        assert error.problems
        for field, _, reason in error.problems:
            assert isinstance(field, str) and field
            assert f"field {field!r}" in str(error)
            assert reason
        return
    _check_round_trip(parse, task)


def _check_round_trip(parse: Callable[[object], TaskBase], task: TaskBase) -> None:
    written = task.to_attribute()
    again = parse(written)
    assert again == task
    assert again.to_attribute() == written


@SETTINGS
@given(anything)
def test_any_json_is_a_valid_install_task_or_a_validation_error(data: Any) -> None:
    _check_never_raises_anything_else(parse_install_task, data)


@SETTINGS
@given(anything)
def test_any_json_is_a_valid_server_control_task_or_a_validation_error(data: Any) -> None:
    _check_never_raises_anything_else(parse_server_control_task, data)


def _unknown_keys_kept(data: dict[str, Any], written: dict[str, Any]) -> None:
    for key, value in data.items():
        if key.startswith("x"):
            assert written[key] == value


@SETTINGS
@given(valid_install_data)
def test_valid_install_tasks_round_trip_with_unknown_keys(data: dict[str, Any]) -> None:
    task = parse_install_task(data)
    _check_round_trip(parse_install_task, task)
    written = task.to_attribute()
    _unknown_keys_kept(data, written)
    assert set(written) == set(data)  # nothing added, nothing dropped
    for slug, spec in (data.get("Firmware") or {}).items():
        _unknown_keys_kept(spec, written["Firmware"][slug])
        for given_instance, written_instance in zip(
            spec.get("instances", []), written["Firmware"][slug].get("instances", []), strict=True
        ):
            _unknown_keys_kept(given_instance, written_instance)


@SETTINGS
@given(valid_control_data())
def test_valid_server_control_tasks_round_trip_with_unknown_keys(data: dict[str, Any]) -> None:
    task = parse_server_control_task(data)
    _check_round_trip(parse_server_control_task, task)
    written = task.to_attribute()
    _unknown_keys_kept(data, written)
    assert set(written) == set(data)


@SETTINGS
@given(valid_install_data, st.sampled_from(list(TaskStatus)), st.text(max_size=20))
def test_round_trip_after_flasher_writes(data: dict[str, Any], status: TaskStatus, text: str) -> None:
    task = parse_install_task(data)
    task.status = status
    task.task_id = "t-1"
    task.add_message(text, component="bios")
    written = task.to_attribute()
    assert written["status"] == status.value and written["taskID"] == "t-1"
    _check_round_trip(parse_install_task, task)


def test_vocabularies_used_here_match_the_models() -> None:
    assert set(ACTION_PARAMETERS[ControlAction.SET_POWER_STATE]) == set(POWER_STATES)
    assert set(ACTION_PARAMETERS[ControlAction.SET_NEXT_BOOT_DEVICE]) == set(BOOT_DEVICES)


def test_strings_with_lone_surrogates_are_handled() -> None:
    for data in ({"requester": "\ud800"}, {"x-extra": "\udfff"}, {"Firmware": {"\ud800": {"version": "1"}}}):
        try:
            task = parse_install_task(data)
        except TaskValidationError:
            continue
        assert parse_install_task(task.to_attribute()) == task
