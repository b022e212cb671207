"""Attribute and component filters: the server's syntax, and refusals of what the server would misread."""

from __future__ import annotations

import pytest

from flasher.constants import OUTOFBAND_STATUS_NAMESPACE, TASK_NAMESPACE
from flasher.inventory.filters import ComponentFilter, FilterError, attr_filter, check_attr_filter, server_query


@pytest.mark.parametrize(
    "text",
    [
        TASK_NAMESPACE,
        f"{TASK_NAMESPACE}~status",
        f"{TASK_NAMESPACE}~status~eq~queued",
        f"{TASK_NAMESPACE}~status~eq~",  # empty value: matches an empty string
        f"{TASK_NAMESPACE}~Firmware.bios.version~like~2.7",
        f"{TASK_NAMESPACE}~priority~gt~1",
        f"{TASK_NAMESPACE}~priority~lt~-3",
        f"{TASK_NAMESPACE}~status~eq~queued~or",
    ],
)
def test_good_filters_pass_unchanged(text: str) -> None:
    assert check_attr_filter(text) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "namespace is empty"),
        ("~status~eq~x", "namespace is empty"),
        (f"{TASK_NAMESPACE}~status~eq", "needs a value"),
        (f"{TASK_NAMESPACE}~status~is~queued", "unknown operator 'is'"),
        (f"{TASK_NAMESPACE}~priority~gt~high", "compares integers"),
        (f"{TASK_NAMESPACE}~Firmware..version", "empty segment"),
        (f"{TASK_NAMESPACE}~~eq~x", "empty segment"),
        (f"{TASK_NAMESPACE}~status~eq~a~b~c", "too many"),
        (f"{TASK_NAMESPACE}~status~eq~a~xor", "'and' or 'or'"),
    ],
)
def test_bad_filters_name_field_and_value(text: str, reason: str) -> None:
    with pytest.raises(FilterError) as info:
        check_attr_filter(text, "--attr")
    message = str(info.value)
    assert message.startswith(f"--attr {text!r}")
    assert reason in message


def test_attr_filter_builds_the_syntax() -> None:
    assert attr_filter(TASK_NAMESPACE) == TASK_NAMESPACE
    assert attr_filter(TASK_NAMESPACE, "status") == f"{TASK_NAMESPACE}~status"
    assert attr_filter(TASK_NAMESPACE, "status", "eq", "") == f"{TASK_NAMESPACE}~status~eq~"
    assert attr_filter(TASK_NAMESPACE, "priority", "gt", 1) == f"{TASK_NAMESPACE}~priority~gt~1"
    with pytest.raises(FilterError, match="needs a key"):
        attr_filter(TASK_NAMESPACE, op="eq", value="x")
    with pytest.raises(FilterError, match="needs an operator"):
        attr_filter(TASK_NAMESPACE, "status", value="x")
    with pytest.raises(FilterError, match="the value 'a~b~c' may not contain '~'"):
        attr_filter(TASK_NAMESPACE, "status", "eq", "a~b~c")


@pytest.mark.parametrize(
    ("key", "value"),
    [("vendor", "dell~or"), ("vendor", "dell~and"), ("vendor", "a~b"), ("vendor~eq~dell~or", None), ("a~b", "x")],
)
def test_attr_filter_refuses_a_key_or_value_that_would_change_the_filter(key: str, value: str | None) -> None:
    """'dell~or' would pass the syntax check as the value 'dell' OR-ed with the other filters."""
    with pytest.raises(FilterError, match="may not contain '~'"):
        attr_filter(TASK_NAMESPACE, key, "eq" if value is not None else None, value)


def test_component_filters_render_like_the_go_client() -> None:
    ver = f"{OUTOFBAND_STATUS_NAMESPACE}~firmware.installed~eq~2.75.75.75"
    params = server_query(
        attr=[TASK_NAMESPACE],
        components=[
            ComponentFilter(type="bmc", ver_attr=[ver]),
            ComponentFilter(type="nic", vendor="mellanox", model="cx5", attr=["ns~k"]),
        ],
        facility="ams1",
        include_deleted=True,
    )
    assert params == [
        ("attr", TASK_NAMESPACE),
        ("sc_0[type]", "bmc"),
        ("sc_0_ver_attr", ver),
        ("sc_1[type]", "nic"),
        ("sc_1[vendor]", "mellanox"),
        ("sc_1[model]", "cx5"),
        ("sc_1_attr", "ns~k"),
        ("facility-code", "ams1"),
        ("include-deleted", "true"),
    ]


def test_empty_component_filter_and_string_attr_are_refused() -> None:
    with pytest.raises(FilterError, match="component filter 0: empty"):
        server_query(components=[ComponentFilter()])
    with pytest.raises(FilterError, match="sc_0_ver_attr 'x~y~bad~1'"):
        server_query(components=[ComponentFilter(ver_attr=["x~y~bad~1"])])
    with pytest.raises(FilterError, match="lists of filters"):
        server_query(attr=TASK_NAMESPACE)
