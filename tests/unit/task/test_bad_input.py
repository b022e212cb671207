"""Issue 12, items 2, 3 and 7: what the task models refuse, and how they say it.

Each class of bad input is generated: empty choices of firmware (item 2), data that is not a JSON object (item 3),
URLs with bad ports, spaces or control characters, timestamps that are not RFC 3339 text, values of any length in
messages, attributes past the size and depth bounds (item 7)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flasher.task.model import (
    INVALID_DATA_KEY,
    MAX_DEPTH,
    MAX_MESSAGES,
    MAX_REQUEST_BYTES,
    MAX_TEXT_CHARS,
    TaskStatus,
    TaskValidationError,
    failed_attribute,
    format_message,
    json_size,
    message_time,
    parse_install_task,
    parse_server_control_task,
    shorten,
)
from tests.unit.task.test_model_properties import json_scalars, json_values

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 11, 20, 23, 55, 46, tzinfo=UTC)


def refused(data: Any, parse: Any = parse_install_task) -> TaskValidationError:
    with pytest.raises(TaskValidationError) as caught:
        parse(data)
    return caught.value


def entry(**keys: Any) -> dict[str, Any]:
    return {"Firmware": {"bmc": {"version": "2.80.80.80", **keys}}}


# --------------------------------------------------------------------------------------------------------------
# Item 2: an empty choice of firmware is an error, never "resolve the whole set"

blank = st.text(alphabet=" \t\r\n\u00a0\u2003", max_size=5)


@SETTINGS
@given(st.sampled_from([{}, [], None]), st.dictionaries(st.sampled_from(["force", "dryRun"]), st.booleans()))
def test_an_empty_or_null_firmware_fails_naming_it(firmware: Any, more: dict[str, Any]) -> None:
    error = refused({"status": "", "Firmware": firmware, **more})
    assert error.field == "Firmware"
    assert str(error).startswith("field 'Firmware': is ")
    assert "leave the key out" in str(error)


@SETTINGS
@given(blank | st.none())
def test_an_empty_blank_or_null_firmware_set_fails_naming_it(name: str | None) -> None:
    error = refused({"status": "", "firmwareSet": name})
    assert error.field == "firmwareSet"
    assert ("is empty" in str(error)) if name is not None else ("is not a firmware set's name" in str(error))


def test_the_issues_examples_of_empty_firmware() -> None:
    assert str(refused({"status": "", "Firmware": {}})).startswith("field 'Firmware': is empty")
    assert str(refused({"status": "", "Firmware": []})).startswith("field 'Firmware': is empty")
    assert str(refused({"status": "", "firmwareSet": ""})).startswith("field 'firmwareSet': value \"\" is empty")


# --------------------------------------------------------------------------------------------------------------
# Item 3: data that is not a JSON object


@SETTINGS
@given(json_scalars | st.lists(json_values, max_size=3))
def test_data_that_is_not_an_object_fails_as_data_and_is_kept(data: Any) -> None:
    for parse in (parse_install_task, parse_server_control_task):
        error = refused(data, parse)
        assert error.field == "data" and str(error).endswith("is not a JSON object")
    written = failed_attribute(data, refused(data), now=NOW)
    assert written[INVALID_DATA_KEY] == data  # nothing the operator wrote is lost
    assert written["status"] == "failed" and written["error"].startswith("field 'data': value ")
    assert parse_install_task(written).status is TaskStatus.FAILED  # an object, and a task that ended


# --------------------------------------------------------------------------------------------------------------
# Item 7: URLs


hosts = st.sampled_from(["fw.example.com", "10.0.0.1", "[2001:db8::1]", "h"])
paths = st.sampled_from(["/bmc.bin", "/a/b/c.exe", "", "/x?sig=abc"])


@SETTINGS
@given(hosts, st.integers(min_value=1, max_value=65535), paths, st.sampled_from(["http", "https", "HTTPS"]))
def test_a_url_with_a_port_in_range_is_accepted(host: str, port: int, path: str, scheme: str) -> None:
    url = f"{scheme}://{host}:{port}{path}"
    task = parse_install_task(entry(updateFileURL=url, updateFileChecksum="ab" * 32))
    assert task.firmware is not None and task.firmware["bmc"].update_file_url == url


@SETTINGS
@given(
    hosts,
    st.one_of(
        st.integers(min_value=65536, max_value=10**12).map(str),
        st.just("0"),
        st.just("00000"),
        st.text(alphabet="abcxyz-+_.:", min_size=1, max_size=6),
        st.integers(min_value=1, max_value=9999).map(lambda n: f"{n}a"),
    ),
    paths,
)
def test_a_url_whose_port_is_not_a_number_from_1_to_65535_is_refused(host: str, port: str, path: str) -> None:
    url = f"http://{host}:{port}{path}"
    error = refused(entry(updateFileURL=url))
    assert error.field == "Firmware.bmc.updateFileURL"
    assert "port" in error.reason or "is not an http(s) URL" in error.reason


@SETTINGS
@given(
    st.sampled_from(["http://fw.example.com/bmc.bin", "https://10.0.0.1:8443/a/b.exe"]),
    st.integers(min_value=0, max_value=40),
    st.sampled_from([" ", "\t", "\r", "\n", "\r\n", "\x00", "\x7f", "\u00a0", "\u2028", "\x0b"]),
)
def test_a_url_with_a_space_or_a_control_character_anywhere_is_refused(url: str, at: int, bad: str) -> None:
    at = min(at, len(url))
    error = refused(entry(updateFileURL=url[:at] + bad + url[at:]))
    assert error.field == "Firmware.bmc.updateFileURL"
    assert "space or a control character" in error.reason or "is not an http(s) URL" in error.reason


def test_the_issues_url_examples() -> None:
    for url, reason in (
        ("http://fw.example.com:99999/bmc.bin", "has a port that is not a number from 1 to 65535"),
        ("http://fw.example.com:http/bmc.bin", "has a port that is not a number from 1 to 65535"),
        ("http://fw.example.com/bmc 2.bin", "contains a space or a control character"),
        ("http://fw.example.com/bmc.bin\r\nX-Injected: 1", "contains a space or a control character"),
    ):
        assert reason in str(refused(entry(updateFileURL=url)))


# --------------------------------------------------------------------------------------------------------------
# Item 7: flasher's own fields keep strict types


timestamp_keys = st.sampled_from(["createdAt", "updatedAt", "completedAt"])


@SETTINGS
@given(
    timestamp_keys,
    st.one_of(
        st.integers(),
        st.floats(allow_nan=False),
        st.booleans(),
        st.lists(st.integers(), max_size=2),
        st.integers(min_value=0, max_value=2**40).map(str),  # a Unix time as text
        st.dates().map(lambda d: d.isoformat()),  # a date without a time
        st.sampled_from(["yesterday", "", "2026-11-20T23:55", "2026-13-01T00:00:00Z", "20261120T235546Z"]),
    ),
)
def test_a_timestamp_that_is_not_rfc3339_text_is_refused(key: str, value: Any) -> None:
    for parse, data in (
        (parse_install_task, {key: value}),
        (parse_server_control_task, {"action": "get_power_state", key: value}),
    ):
        error = refused(data, parse)
        assert error.field == key and error.value == value


@SETTINGS
@given(timestamp_keys, st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)), st.booleans())
def test_rfc3339_timestamps_are_accepted(key: str, moment: datetime, zulu: bool) -> None:
    text = moment.replace(tzinfo=UTC).isoformat()
    if zulu:
        text = text.replace("+00:00", "Z")
    task = parse_install_task({key: text})
    assert task.to_attribute()[key].endswith("Z")


@SETTINGS
@given(
    st.one_of(
        st.just(""),
        st.text(min_size=257, max_size=300),
        st.text(alphabet=" \t", min_size=1),
        st.just("t 1"),
        st.integers(),
    )
)
def test_a_task_id_that_could_not_name_a_queue_entry_is_refused(task_id: Any) -> None:
    error = refused({"status": "queued", "taskID": task_id})
    assert error.field == "taskID"


# --------------------------------------------------------------------------------------------------------------
# Item 7: messages cut what the operator wrote


long_text = st.text(min_size=81, max_size=6000)


@SETTINGS
@given(
    long_text,
    st.sampled_from(
        [
            lambda v: {"priority": v},
            lambda v: {"createdAt": v},
            lambda v: {"method": v},
            lambda v: {"Firmware": {v: {"version": "1"}}},
            lambda v: entry(updateFileURL=v),
            lambda v: entry(updateFileChecksum=v),
            lambda v: entry(preActions=[v]),
            lambda v: {"Firmware": [{"component": v, "version": "1"}]},
            lambda v: {"status": v},
        ]
    ),
)
def test_a_long_value_is_cut_to_about_80_characters_in_every_message(value: str, where: Any) -> None:
    error = refused(where(value))
    message = str(error)
    shown = json.dumps(value, ensure_ascii=True)
    assert shown not in message and value not in message  # never in full
    assert len(message) < 600
    for field, _, _ in error.problems:
        assert len(field) <= 80


@SETTINGS
@given(st.lists(st.text(max_size=8).map(lambda k: f"y{k}!"), min_size=11, max_size=40, unique=True))
def test_many_problems_are_counted_not_all_spelled_out(keys: list[str]) -> None:
    error = refused({"Firmware": {key: {"version": "1"} for key in keys}})
    assert len(error.problems) == len(keys)
    assert str(error).endswith(f"... and {len(keys) - 10} more problems")


@SETTINGS
@given(st.text(max_size=5000), st.sampled_from([None, "bios", "x" * 3000]))
def test_status_messages_and_errors_are_bounded(text: str, component: str | None) -> None:
    line = format_message(text, component=component, now=NOW)
    assert len(line) <= MAX_TEXT_CHARS
    assert message_time(line) == NOW
    task = parse_install_task({"status": "queued", "taskID": "t-1"})
    task.set_error(text or "x")
    assert task.error is not None and len(task.error) <= MAX_TEXT_CHARS
    for _ in range(MAX_MESSAGES + 3):
        task.add_message(text, component=component, now=NOW)
    assert len(task.messages) == MAX_MESSAGES and all(len(m) <= MAX_TEXT_CHARS for m in task.messages)
    written = failed_attribute({"status": ""}, "x" * 10_000 + text, now=NOW)
    assert len(written["error"]) <= MAX_TEXT_CHARS and all(len(m) <= MAX_TEXT_CHARS for m in written["messages"])


def test_the_issues_5000_character_value() -> None:
    value = "9" * 5000
    attribute = {"status": "", "priority": value}
    written = failed_attribute(attribute, refused(attribute), now=NOW)
    assert written["priority"] == value  # the operator's value is kept
    assert len(written["error"]) < 200 and value[:100] not in written["error"]
    assert json_size(written) < json_size(attribute) + 600  # not 15 KB of repeats


def test_shorten() -> None:
    assert shorten("abc") == "abc"
    assert shorten("x" * 80) == "x" * 80
    assert shorten("x" * 81) == "x" * 77 + "..."


# --------------------------------------------------------------------------------------------------------------
# Item 7: the attribute's size and depth are bounded


@SETTINGS
@given(st.integers(min_value=1, max_value=3 * MAX_REQUEST_BYTES), st.sampled_from(["", "requested", None]))
def test_a_new_request_past_the_size_limit_fails_naming_data(size: int, status: str | None) -> None:
    data: dict[str, Any] = {"firmwareSet": "dell-r6515", "x-note": "n" * size}
    if status is not None:
        data["status"] = status
    if json_size(data) <= MAX_REQUEST_BYTES:
        parse_install_task(data)
        return
    error = refused(data)
    assert error.field == "data"
    assert re.fullmatch(rf"field 'data': is \d+ bytes of JSON, more than the limit of {MAX_REQUEST_BYTES}", str(error))


@SETTINGS
@given(st.sampled_from([s.value for s in TaskStatus if s.value not in ("", "requested")]))
def test_only_new_requests_are_measured(status: str) -> None:
    data = {"status": status, "taskID": "t-1", "x-note": "n" * (2 * MAX_REQUEST_BYTES)}
    assert parse_install_task(data).status.value == status


def _nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return value


@SETTINGS
@given(st.integers(min_value=1, max_value=400), st.sampled_from(["top", "entry"]), json_scalars)
def test_nesting_past_the_limit_fails_naming_data(depth: int, where: str, leaf: Any) -> None:
    nested = _nested(depth, leaf)
    data = {"x-deep": nested} if where == "top" else entry(note=nested)
    levels = depth + (1 if where == "top" else 3)  # the data itself is level 1; Firmware.bmc adds 2
    if levels <= MAX_DEPTH:
        assert parse_install_task(data).to_attribute() == data
        return
    error = refused(data)
    assert error.field == "data" and f"nests more than {MAX_DEPTH} levels deep" in str(error)
    json.dumps(failed_attribute(data, error, now=NOW))  # what is written back can be written


def test_the_issues_300_deep_unknown_keys() -> None:
    data = {"status": "", "firmwareSet": "s", "x": _nested(300, 1)}
    assert "nests more than 32 levels deep (at 'x.k[0].k[0]" in str(refused(data))
