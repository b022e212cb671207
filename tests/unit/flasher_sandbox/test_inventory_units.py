"""The sandbox inventory's pure parts: Go-compatible JSON, binding errors, filters, paging links, fault rules."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flasher_sandbox.inventory import binding, gojson
from flasher_sandbox.inventory.faults import FaultInjector, FaultRule, FaultSpecError
from flasher_sandbox.inventory.filters import (
    AttributeFilter,
    like_to_glob,
    parse_attribute_filter,
    parse_component_filters,
)
from flasher_sandbox.inventory.payloads import FIRMWARE, SERVER_COMPONENT
from flasher_sandbox.inventory.responses import Pager, list_response, parse_go_query
from flasher_sandbox.inventory.times import rfc3339


def test_dumps_escapes_like_go() -> None:
    assert (
        gojson.dumps({"href": "/a?x=1&y=<2>", "u": "é\u2028"})
        == '{"href":"/a?x=1\\u0026y=\\u003c2\\u003e","u":"é\\u2028"}'
    )


def test_normalize_orders_keys_like_jsonb() -> None:
    data = {"requester": "alice", "firmwareSet": "s", "status": "", "priority": 2, "worker": "w", "method": "m"}
    assert list(gojson.normalize(data)) == ["method", "status", "worker", "priority", "requester", "firmwareSet"]
    assert list(gojson.normalize({"b": {"zz": 1, "a": 2}})["b"]) == ["a", "zz"]


@settings(max_examples=40, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    )
)
def test_normalize_keeps_the_value(value: object) -> None:
    assert gojson.json_equal(gojson.normalize(value), value)
    assert json.loads(gojson.store_text(value)) == value


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "EOF"),
        (b"  ", "EOF"),
        (b"{", "unexpected EOF"),
        (b"x", "invalid character 'x' looking for beginning of value"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b"[1 2]", "invalid character '2' after array element"),
    ],
)
def test_request_bodies_fail_with_go_texts(body: bytes, error: str) -> None:
    with pytest.raises(gojson.GoJSONError) as raised:
        gojson.loads_request(body)
    assert str(raised.value) == error


def test_trailing_data_after_the_first_value_is_ignored() -> None:
    assert gojson.loads_request(b'{"a": 1} trailing') == {"a": 1}


def test_json_equal_tells_true_from_one() -> None:
    assert gojson.json_equal({"a": [1, 2.0]}, {"a": [1.0, 2]})
    assert not gojson.json_equal({"a": True}, {"a": 1})


def test_rfc3339_trims_trailing_zeros() -> None:
    assert rfc3339(1_795_132_546_408_150) == "2026-11-19T23:55:46.40815Z"
    assert rfc3339(1_795_132_546_000_000) == "2026-11-19T23:55:46Z"


@pytest.mark.parametrize(("text", "error"), [("abc", "invalid UUID length: 3"), ("x" * 36, "invalid UUID format")])
def test_uuid_errors(text: str, error: str) -> None:
    with pytest.raises(binding.BindError, match=error):
        binding.parse_uuid(text)


def test_uuid_forms_google_uuid_accepts() -> None:
    value = uuid.uuid4()
    for text in (str(value), value.hex, f"{{{value}}}", f"urn:uuid:{value}", str(value).upper()):
        assert binding.parse_uuid(text) == value


def test_bind_reports_each_failing_field_once_in_struct_order() -> None:
    with pytest.raises(binding.BindError) as raised:
        binding.bind(FIRMWARE, {"vendor": "Dell", "model": [], "component": "", "checksum": "AB"})
    assert str(raised.value).splitlines() == [
        f"Key: 'ComponentFirmwareVersion.{name}' Error:Field validation for '{name}' failed on the '{tag}' tag"
        for name, tag in [
            ("Vendor", "lowercase"),
            ("Filename", "required"),
            ("Version", "required"),
            ("Component", "required"),
            ("Checksum", "lowercase"),
            ("UpstreamURL", "required"),
            ("RepositoryURL", "required"),
        ]
    ]


def test_bind_type_errors_name_the_go_field() -> None:
    with pytest.raises(binding.BindError) as raised:
        binding.bind(FIRMWARE, {"vendor": 5})
    assert str(raised.value) == (
        "json: cannot unmarshal number into Go struct field ComponentFirmwareVersion.vendor of type string"
    )
    with pytest.raises(binding.BindError) as raised:
        binding.bind_slice(SERVER_COMPONENT, {"name": "x"}, "ServerComponentSlice")
    assert str(raised.value) == "json: cannot unmarshal object into Go value of type serverservice.ServerComponentSlice"


def test_bind_matches_keys_case_insensitively_like_go() -> None:
    assert (
        binding.bind(
            FIRMWARE,
            {"Vendor": "x"}
            | {k: "y" for k in ("filename", "version", "component", "checksum", "upstream_url", "repository_url")}
            | {"model": ["m"]},
        )["vendor"]
        == "x"
    )


def test_slice_errors_number_the_failing_elements_only() -> None:
    good = {
        "server_uuid": str(uuid.uuid4()),
        "name": "BMC",
        "serial": "0",
        "component_type_id": "t",
        "component_type_name": "BMC",
        "component_type_slug": "bmc",
    }
    with pytest.raises(binding.BindError) as raised:
        binding.bind_slice(SERVER_COMPONENT, [good, {**good, "serial": ""}], "ServerComponentSlice")
    assert str(raised.value) == (
        "[0]: Key: 'ServerComponent.Serial' Error:Field validation for 'Serial' failed on the 'required' tag"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ns", AttributeFilter("ns")),
        ("ns~a.b", AttributeFilter("ns", ("a", "b"))),
        ("ns~a~eq", AttributeFilter("ns", ("a",))),
        ("ns~a~eq~", AttributeFilter("ns", ("a",), "eq", "")),
        ("ns~a~like~de", AttributeFilter("ns", ("a",), "like", "de%")),
        ("ns~a~like~%de", AttributeFilter("ns", ("a",), "like", "%de")),
        ("ns~a~gt~3~or", AttributeFilter("ns", ("a",), "gt", "3")),
        ("ns~a~near~3", AttributeFilter("ns", ("a",))),
    ],
)
def test_parse_attribute_filter(text: str, expected: AttributeFilter) -> None:
    assert parse_attribute_filter(text) == expected


def test_component_filters_stop_at_the_first_missing_index() -> None:
    params = [("sc_0[type]", "bmc"), ("sc_0[type]", "nic"), ("sc_0_attr", "ns"), ("sc_2[vendor]", "x")]
    (only,) = parse_component_filters(params)
    assert only.fields == {"type": "bmc"}
    assert only.attributes == [AttributeFilter("ns")]


@pytest.mark.parametrize(
    ("like", "glob"), [("de%", "de*"), ("a_c", "a?c"), ("100\\%", "100%"), ("x*y?[z", "x[*]y[?][[]z")]
)
def test_like_to_glob(like: str, glob: str) -> None:
    assert like_to_glob(like) == glob


def test_pager_parses_like_atoi() -> None:
    assert Pager.from_query([("limit", "abc"), ("page", "2")]) == Pager(limit=0, page=2)
    assert Pager(limit=0).limit_used == 100
    assert Pager(limit=5000).limit_used == 1000
    assert Pager(limit=10, page=3).offset == 20
    assert Pager(limit=10, page=0).offset == 0


def test_go_query_parsing_drops_what_go_drops() -> None:
    assert parse_go_query("a=1&b=%zz&c;d=2&e=x+y&&f") == [("a", "1"), ("e", "x y"), ("f", "")]


def test_list_links_reencode_the_query_like_go() -> None:
    response = list_response("/api/v1/x?vendor=dell&model=r6515&page=2&limit=1", [{}], 3, Pager(limit=1, page=2))
    links = json.loads(response.get_data(as_text=True))["_links"]
    assert links == {
        "self": {"href": "/api/v1/x?vendor=dell&model=r6515&page=2&limit=1"},
        "first": {"href": "/api/v1/x?limit=1&model=r6515&page=1&vendor=dell"},
        "previous": {"href": "/api/v1/x?limit=1&model=r6515&page=1&vendor=dell"},
        "next": {"href": "/api/v1/x?limit=1&model=r6515&page=3&vendor=dell"},
        "last": {"href": "/api/v1/x?limit=1&model=r6515&page=3&vendor=dell"},
    }


def test_fault_rule_from_error_rate() -> None:
    assert FaultRule.from_spec({"error_rate": 0.2}).every == 5
    with pytest.raises(FaultSpecError, match="methods"):
        FaultRule.from_spec({"every": 1, "methods": []})


def test_fault_injector_counts_only_matching_requests() -> None:
    injector = FaultInjector()
    injector.configure(FaultRule.from_spec({"every": 2, "methods": ["PUT"], "times": 2}))
    decisions = [injector.decide(method, "/api/v1/servers") for method in ["PUT", "GET", "PUT", "PUT", "PUT", "PUT"]]
    assert [d.ordinal if d else None for d in decisions] == [None, None, 2, None, 4, None]
    assert injector.decide("PUT", "/healthz") is None
    assert injector.snapshot()["matched"] == 5
    injector.clear()
    assert injector.decide("PUT", "/api/v1/servers") is None
