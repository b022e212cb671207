"""Waves (sizes, order), cap groups (each server's value) and selectors (forms, what is sent, what is filtered here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flasher.constants import BMC_INFO_NAMESPACE, SERVER_VENDOR_NAMESPACE
from flasher.inventory.models import Attributes, Server
from flasher.rollout.groups import NO_VALUE, GroupError, GroupSpec, parse_cap, parse_group_names
from flasher.rollout.selectors import Selection, SelectorError, parse_selector
from flasher.rollout.waves import WaveError, assign_waves, parse_waves, rollout_order, wave_sizes

U1 = "11111111-1111-1111-1111-111111111111"
U2 = "22222222-2222-2222-2222-222222222222"


def server(
    facility: str = "ams1", vendor: str | None = "dell", model: str | None = "r6515", bmc: str | None = "10.1.2.3"
) -> Server:
    attrs = [Attributes(namespace="sh.example.location", data={"rack": "r3", "row": {"n": 7}, "ok": True})]
    vendor_data = {k: v for k, v in (("vendor", vendor), ("model", model)) if v}
    if vendor_data:
        attrs.append(Attributes(namespace=SERVER_VENDOR_NAMESPACE, data=vendor_data))
    if bmc:
        attrs.append(Attributes(namespace=BMC_INFO_NAMESPACE, data={"address": bmc}))
    return Server(uuid=U1, name="s1", facility=facility, attributes=attrs)


# -- waves ------------------------------------------------------------------------------------------------------


def test_canary_then_cumulative_percentages() -> None:
    targets = parse_waves("2,10%,50%,100%")
    assert wave_sizes(targets, 120) == [2, 10, 48, 60]
    assert wave_sizes(targets, 115) == [2, 10, 46, 57]  # 10% of 115 rounds up to 12
    assert wave_sizes(targets, 3) == [2, 1]  # 10% and 50% of 3 add nothing after the canary of 2
    assert wave_sizes(parse_waves("5,50%"), 20) == [5, 5, 10]  # the rest makes a last wave
    assert wave_sizes(targets, 0) == []
    assert assign_waves(5, parse_waves("1,60%")) == [1, 2, 2, 3, 3]


@pytest.mark.parametrize("text", ["", "2,,5", "0", "1.5", "150%", "0%", "x", "-1"])
def test_bad_waves(text: str) -> None:
    with pytest.raises(WaveError):
        parse_waves(text)


targets_text = st.lists(
    st.one_of(st.integers(1, 200).map(str), st.integers(1, 100).map(lambda p: f"{p}%")), min_size=1, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(targets_text, st.integers(0, 500))
def test_wave_sizes_cover_every_member_once(texts: list[str], total: int) -> None:
    targets = parse_waves(texts)
    sizes = wave_sizes(targets, total)
    assert sum(sizes) == total
    assert all(size >= 1 for size in sizes)
    waves = assign_waves(total, targets)
    assert len(waves) == total and waves == sorted(waves)
    assert set(waves) == set(range(1, len(sizes) + 1))
    if total:  # the first wave is the first target (capped by the members there are)
        assert sizes[0] == max(1, min(targets[0].members(total), total)) or targets[0].members(total) == 0


def test_rollout_order_alternates_models() -> None:
    members = [(f"d{i}", "dell/r6515", f"r6515-{i}") for i in range(3)] + [
        (f"s{i}", "supermicro/x12", f"x12-{i}") for i in range(2)
    ]
    assert rollout_order(members) == ["d0", "s0", "d1", "s1", "d2"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a/1", "b/2", "c/3"]), st.integers(0, 1000)), max_size=40, unique=True))
def test_every_prefix_of_the_order_spreads_the_models(items: list[tuple[str, int]]) -> None:
    members = [(f"{kind}-{n}", kind, f"n{n:04d}") for kind, n in items]
    order = rollout_order(members)
    assert sorted(order) == sorted(m[0] for m in members)
    kinds = {m[0]: m[1] for m in members}
    every = len(set(kinds.values()))
    for length in range(1, len(order) + 1):  # the first round holds one member of each model
        assert len({kinds[i] for i in order[:length]}) == min(length, every)


def test_within_a_model_the_order_spreads_over_the_racks() -> None:
    members = [(f"d{i}", "dell/r6515", f"r6515-{i:02d}") for i in range(6)]
    racks = {f"d{i}": (f"r{1 + i // 3}",) for i in range(6)}  # d0-d2 in r1, d3-d5 in r2
    assert rollout_order(members, racks) == ["d0", "d3", "d1", "d4", "d2", "d5"]
    assert rollout_order(members) == [f"d{i}" for i in range(6)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a/1", "b/2"]), st.sampled_from(["r1", "r2", "r3"])), max_size=40))
def test_every_prefix_of_a_models_order_spreads_its_racks(items: list[tuple[str, str]]) -> None:
    members = [(f"m{n}", kind, f"n{n:03d}") for n, (kind, _) in enumerate(items)]
    spread = {f"m{n}": (rack,) for n, (_, rack) in enumerate(items)}
    order = rollout_order(members, spread)
    for kind in ("a/1", "b/2"):
        mine = [i for i in order if dict((m[0], m[1]) for m in members)[i] == kind]
        racks = [spread[i][0] for i in mine]
        every = len(set(racks))
        for length in range(1, len(mine) + 1):
            assert len(set(racks[:length])) == min(length, every)


# -- groups -----------------------------------------------------------------------------------------------------


def test_group_values() -> None:
    s = server()
    assert GroupSpec.parse("facility").value(s) == "ams1"
    assert GroupSpec.parse("vendor").value(s) == "dell"
    assert GroupSpec.parse("model").value(s) == "r6515"
    assert GroupSpec.parse("vendor/model").value(s) == "dell/r6515"
    assert GroupSpec.parse("bmc-network/24").value(s) == "10.1.2.0/24"
    assert GroupSpec.parse("bmc-network/16").value(server(bmc="https://10.1.2.3:443/redfish")) == "10.1.0.0/16"
    assert GroupSpec.parse("attr:sh.example.location~rack").value(s) == "r3"
    assert GroupSpec.parse("attr:sh.example.location~row.n").value(s) == "7"
    assert GroupSpec.parse("attr:sh.example.location~ok").value(s) == "true"


def test_missing_values_are_one_group_of_their_own() -> None:
    s = server(vendor=None, model=None, bmc="bmc-7.example.com")
    assert GroupSpec.parse("vendor/model").value(s) == NO_VALUE
    assert GroupSpec.parse("bmc-network/24").value(s) == NO_VALUE
    assert GroupSpec.parse("attr:sh.example.location~pdu").value(s) == NO_VALUE
    assert GroupSpec.parse("attr:sh.nothing~rack").value(s) == NO_VALUE


@pytest.mark.parametrize("text", ["rack", "attr:ns", "attr:ns~a..b", "bmc-network/200", "bmc-network/x"])
def test_bad_groups(text: str) -> None:
    with pytest.raises(GroupError, match="group"):
        GroupSpec.parse(text)


def test_caps() -> None:
    names = parse_group_names({"rack": "attr:sh.example.location~rack"})
    cap = parse_cap("rack=2", names)
    assert (cap.label, cap.limit, cap.group.namespace) == ("rack", 2, "sh.example.location")
    inline = parse_cap("attr:sh.example.location~rack=3", names)
    assert inline.label == "attr:sh.example.location~rack" and inline.limit == 3
    assert parse_cap("vendor/model=5", {}).group.kind == "vendor/model"
    for bad, says in [
        ("rack", "GROUP=COUNT"),
        ("rack=0", "at least 1"),
        ("rack=x", "not a whole number"),
        ("pdu=2", "--group names: rack"),
    ]:
        with pytest.raises(GroupError, match=says):
            parse_cap(bad, names)
    with pytest.raises(GroupError, match="group name"):
        parse_group_names({"Rack!": "facility"})


# -- selectors --------------------------------------------------------------------------------------------------


def test_selector_forms() -> None:
    assert parse_selector("all").kind == "all"
    assert parse_selector("facility=ams1").values == ("ams1",)
    assert parse_selector(f"uuid={U1},{U2}").values == (U1, U2)
    assert parse_selector("attr=sh.example.location~rack~eq~r3").kind == "attr"
    assert parse_selector("component=nic:intel:e810").values == ("nic:intel:e810",)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rack=r3", "not a selector"),
        ("uuid=nope", "'nope' is not a server uuid"),
        ("attr=ns~key~op~v", "unknown operator"),
        ("component=:dell", "component=TYPE"),
        ("vendor=", "the value is empty"),
        ("vendor=de~ll", "may not contain"),
    ],
)
def test_bad_selectors(text: str, says: str) -> None:
    with pytest.raises(SelectorError, match=says):
        parse_selector(text)


def test_uuids_file(tmp_path: Path) -> None:
    path = tmp_path / "uuids.txt"
    path.write_text(f"# the canaries\n{U1}\n\n{U2}  # second\n")
    assert parse_selector(f"uuids-file={path}").text() == f"uuid={U1},{U2}"
    path.write_text("not-a-uuid\n")
    with pytest.raises(SelectorError, match="line 1"):
        parse_selector(f"uuids-file={path}")
    with pytest.raises(SelectorError, match="cannot read"):
        parse_selector(f"uuids-file={tmp_path / 'missing'}")


def test_selection_sends_what_the_inventory_filters_and_filters_the_rest() -> None:
    one: Any = Selection.of(["vendor=dell", "facility=ams1", "component=bios:dell", "attr=ns~k~eq~v"])
    assert one.facility == "ams1"
    assert sorted(one.attr) == ["ns~k~eq~v", f"{SERVER_VENDOR_NAMESPACE}~vendor~eq~dell"]
    assert [(c.type, c.vendor) for c in one.components] == [("bios", "dell")]
    assert one.local == {}
    two = Selection.of(["vendor=dell", "vendor=supermicro", f"uuid={U1}"])
    assert two.attr == [] and two.local == {"vendor": {"dell", "supermicro"}, "uuid": {U1}}
    assert two.matches(server())
    assert not two.matches(server(vendor="hpe"))
    with pytest.raises(SelectorError, match="give it alone"):
        Selection.of(["all", "vendor=dell"])
    with pytest.raises(SelectorError, match="no selector"):
        Selection.of([])
