"""Issue 12, item 1: only the documented keys mean anything. A key spelled as a field's Python name, in another
case, or otherwise close to a documented key is kept untouched and never read: not by parsing, not after flasher
assigns fields or copies the task, not by planning. Properties over every field of every part of the attribute
(top level, ``Firmware`` entries and their ``instances``, server-control tasks)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flasher.install.modes import build_plan
from flasher.install.plan import InstallPlan, PlanError
from flasher.task.model import (
    ComponentStatus,
    FirmwareSpec,
    InstallMode,
    InstallTask,
    InstanceResult,
    ServerControlTask,
    TaskBase,
    TaskStatus,
    TaskValidationError,
    parse_install_task,
    parse_server_control_task,
)
from tests.unit.install.test_modes import Catalog, component, firmware, firmware_set, server
from tests.unit.task.test_model_properties import (
    firmware_specs,
    instance_results,
    json_values,
    valid_control_data,
    valid_install_data,
)

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 11, 20, 23, 55, 46, tzinfo=UTC)


def _snake(key: str) -> str:
    out = ""
    for char in key:
        out += f"_{char.lower()}" if char.isupper() and out else char.lower()
    return out


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def spellings(model: type[TaskBase] | type[FirmwareSpec] | type[InstanceResult]) -> list[str]:
    """Every near spelling of every documented key of ``model`` that is not itself a documented key: the Python
    name, snake_case, camelCase, lower, upper, swapped and capitalised forms, with ``-`` for ``_``."""
    known = model.attribute_keys()
    found: set[str] = set()
    for name, info in model.model_fields.items():
        key = info.alias or name
        forms = {name, _snake(key), _camel(name), key.lower(), key.upper(), key.swapcase(), key.capitalize()}
        forms |= {name.upper(), name.replace("_", "-"), key[:1].swapcase() + key[1:], _camel(name).capitalize()}
        found |= {form for form in forms if form not in known}
    return sorted(found)


@st.composite
def case_flips(draw: st.DrawFn, model: type[TaskBase] | type[FirmwareSpec] | type[InstanceResult]) -> str:
    """A documented key of ``model`` with the case of some of its letters flipped (not the key itself)."""
    key = draw(st.sampled_from(sorted(model.attribute_keys())))
    flips = draw(st.lists(st.booleans(), min_size=len(key), max_size=len(key)))
    spelled = "".join(c.swapcase() if flip else c for c, flip in zip(key, flips, strict=True))
    assume(spelled not in model.attribute_keys())
    return spelled


def lookalike(model: type[TaskBase] | type[FirmwareSpec] | type[InstanceResult]) -> st.SearchStrategy[str]:
    return st.sampled_from(spellings(model)) | case_flips(model)


def test_the_spellings_cover_the_issues_examples() -> None:
    top = spellings(InstallTask)
    assert {"dry_run", "firmware_set", "firmware", "task_id", "created_at", "DryRun", "FIRMWARE"} <= set(top)
    assert {"update_file_url", "update_file_checksum", "pre_actions", "Version"} <= set(spellings(FirmwareSpec))
    assert {"installed_version", "bmc_task", "Status"} <= set(spellings(InstanceResult))
    assert {"actionParameter", "Action", "ACTION_PARAMETER"} <= set(spellings(ServerControlTask))


# --------------------------------------------------------------------------------------------------------------
# Where a look-alike key goes, and what flasher does with a task before it writes it back


@st.composite
def with_entry(draw: st.DrawFn, instances: bool) -> dict[str, Any]:
    """A valid install attribute whose ``Firmware`` has one entry (with ``instances`` when asked)."""
    base = dict(draw(valid_install_data))
    spec = dict(draw(firmware_specs))
    if instances:
        spec["instances"] = draw(st.lists(instance_results, min_size=1, max_size=3))
    base["Firmware"] = {"drive": spec}
    return base


def _inject(data: dict[str, Any], where: str, key: str, value: Any) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """``data`` with ``key: value`` added at ``where`` (``top``, ``entry``, ``instance``), and the path of the
    object it went into; ``None`` when ``data`` has no such place."""
    data = copy.deepcopy(data)
    if where == "top":
        if key in data:
            return None
        data[key] = value
        return data, ()
    entries = data.get("Firmware")
    if not isinstance(entries, dict) or not entries:
        return None
    slug = sorted(entries)[0]
    target: dict[str, Any] = entries[slug]
    path: tuple[str, ...] = ("Firmware", slug)
    if where == "instance":
        instances = target.get("instances")
        if not instances:
            return None
        target, path = instances[0], (*path, "instances", "0")
    if key in target:
        return None
    target[key] = value
    return data, path


def _without(written: dict[str, Any], path: tuple[str, ...], key: str) -> tuple[dict[str, Any], Any]:
    """``written`` without ``key`` at ``path``, and the value it had there."""
    written = copy.deepcopy(written)
    target: Any = written
    for part in path:
        target = target[int(part)] if isinstance(target, list) else target[part]
    return written, target.pop(key)


def _as_flasher_would(task: TaskBase) -> TaskBase:
    """What admission and a worker do to a task before writing it back: copy it, assign fields at every level
    (validated assignments), move its status, stamp it, add messages, and copy it with an update (a plan)."""
    task = task.model_copy(deep=True)
    task.task_id = "t-0123456789abcdef01234567"
    if isinstance(task, InstallTask):
        task.clear_run_state()
        for spec in (task.firmware or {}).values():
            spec.status = ComponentStatus.PENDING
            spec.installed_version = "1.0"
            for instance in spec.instances or []:
                instance.status = ComponentStatus.ACTIVE
        update: dict[str, Any] = {"mode": InstallMode.PREDEFINED_FIRMWARE_SET}
        if task.firmware:
            update["firmware"] = task.firmware
        task = task.model_copy(update=update)
        if task.firmware:
            task.firmware = dict(task.firmware)
    task.status = TaskStatus.QUEUED
    task.worker = "flasher-a"
    task.created_at = NOW
    task.attempts = 0
    task.set_error("x")
    task.set_error(None)
    task.add_message("queued by flasher-a", now=NOW)
    task.transition(TaskStatus.ACTIVE, now=NOW)
    task.priority = 2
    return task


def _check_never_read(parse: Any, base: dict[str, Any], where: str, key: str, value: Any) -> None:
    injected = _inject(base, where, key, value)
    assume(injected is not None)
    assert injected is not None
    data, path = injected
    expected = parse(base)
    got = parse(data)  # a look-alike key never makes a valid attribute invalid: it is not read
    written, kept = _without(got.to_attribute(), path, key)
    assert kept == value  # kept untouched, with its value
    assert written == expected.to_attribute()  # and nothing else differs
    after, kept = _without(_as_flasher_would(got).to_attribute(), path, key)
    assert kept == value
    assert after == _as_flasher_would(expected).to_attribute()
    assert parse(_as_flasher_would(got).to_attribute()) == _as_flasher_would(got)


@SETTINGS
@given(valid_install_data, st.data(), json_values)
def test_a_look_alike_key_at_the_top_level_of_an_install_task_is_never_read(
    base: dict[str, Any], draw: st.DataObject, value: Any
) -> None:
    _check_never_read(parse_install_task, base, "top", draw.draw(lookalike(InstallTask)), value)


@SETTINGS
@given(with_entry(instances=False), st.data(), json_values)
def test_a_look_alike_key_in_a_firmware_entry_is_never_read(
    base: dict[str, Any], draw: st.DataObject, value: Any
) -> None:
    _check_never_read(parse_install_task, base, "entry", draw.draw(lookalike(FirmwareSpec)), value)


@SETTINGS
@given(with_entry(instances=True), st.data(), json_values)
def test_a_look_alike_key_in_an_instance_is_never_read(base: dict[str, Any], draw: st.DataObject, value: Any) -> None:
    _check_never_read(parse_install_task, base, "instance", draw.draw(lookalike(InstanceResult)), value)


@SETTINGS
@given(valid_control_data(), st.data(), json_values)
def test_a_look_alike_key_in_a_server_control_task_is_never_read(
    base: dict[str, Any], draw: st.DataObject, value: Any
) -> None:
    _check_never_read(parse_server_control_task, base, "top", draw.draw(lookalike(ServerControlTask)), value)


# --------------------------------------------------------------------------------------------------------------
# What would be installed


BIOS_SHA = "ab" * 32
COMPONENTS = [component("bmc", "2.75.75.75"), component("bios", "2.6.6"), component("nic", "22.0", model="x710")]
CATALOG = Catalog(
    firmware=[firmware("bmc", "2.80.80.80", n=1), firmware("bios", "2.7.3", n=2)],
    sets=[firmware_set("dell-r6515", [firmware("bmc", "2.80.80.80", n=1), firmware("bios", "2.7.3", n=2)])],
)
entries = st.fixed_dictionaries(
    {},
    optional={
        "bmc": st.fixed_dictionaries(
            {"version": st.sampled_from(["2.80.80.80", "2.70.70.70", "2.75.75.75"])},
            optional={"force": st.booleans(), "preActions": st.sampled_from([[], ["resetBMC"]])},
        ),
        "bios": st.fixed_dictionaries(
            {
                "version": st.just("2.7.3"),
                "updateFileURL": st.just("https://fw.example.com/bios-2.7.3.bin"),
                "updateFileChecksum": st.just(f"sha256:{BIOS_SHA}"),
            },
            optional={"postActions": st.sampled_from([[], ["resetHost"]])},
        ),
    },
).filter(bool)
requests = st.one_of(
    st.fixed_dictionaries(
        {"status": st.just(""), "Firmware": entries}, optional={"force": st.booleans(), "dryRun": st.booleans()}
    ),
    st.fixed_dictionaries(
        {"status": st.just(""), "firmwareSet": st.just("dell-r6515")}, optional={"force": st.booleans()}
    ),
    st.fixed_dictionaries({"status": st.just("requested")}, optional={"dryRun": st.booleans()}),
)
# The values a look-alike key carries: ones that would change the plan if they were read.
tempting = st.one_of(
    json_values,
    st.booleans(),
    st.just({}),
    st.just("other-set"),
    st.just({"bios": {"version": "9.9.9"}}),
    st.just("https://evil.example.com/x.bin"),
    st.just(["resetHost", "powerOffHost"]),
)


def _plan(task: InstallTask) -> InstallPlan | str:
    try:
        return build_plan(task, server(), COMPONENTS, CATALOG)
    except PlanError as exc:
        return f"PlanError: {exc}"


@SETTINGS
@given(requests, st.sampled_from(["top", "entry"]), st.data(), tempting)
def test_a_look_alike_key_changes_nothing_that_is_installed(
    base: dict[str, Any], where: str, draw: st.DataObject, value: Any
) -> None:
    key = draw.draw(lookalike(InstallTask if where == "top" else FirmwareSpec))
    injected = _inject(base, where, key, value)
    assume(injected is not None)
    assert injected is not None
    data, path = injected
    expected, got = parse_install_task(base), parse_install_task(data)
    assert (got.dry_run, got.force, got.method, got.firmware_set) == (
        expected.dry_run,
        expected.force,
        expected.method,
        expected.firmware_set,
    )
    plan, wanted = _plan(got), _plan(expected)
    assert plan == wanted
    if isinstance(plan, InstallPlan):
        assert isinstance(wanted, InstallPlan)
        written, kept = _without(plan.apply_to(got).to_attribute(), path, key)
        assert kept == value and written == wanted.apply_to(expected).to_attribute()


def test_the_issues_example_stays_a_dry_run_after_flasher_assigns_fields() -> None:
    data = {"status": "", "dryRun": True, "dry_run": False, "Firmware": {"bmc": {"version": "7.00.00.00"}}}
    task = parse_install_task(data)
    task.task_id = "t-1"  # before the fix this assignment re-validated "dry_run" into the field
    task.status = TaskStatus.QUEUED
    assert task.dry_run is True
    assert task.to_attribute()["dryRun"] is True and task.to_attribute()["dry_run"] is False
    lower = parse_install_task({"Firmware": {"bmc": {"version": "1"}}, "firmware": {"bios": {"version": "2"}}})
    lower.priority = 2
    assert lower.firmware is not None and list(lower.firmware) == ["bmc"]
    assert isinstance(lower.firmware["bmc"], FirmwareSpec)
    entry = parse_install_task(
        {"Firmware": {"bmc": {"version": "1", "update_file_url": "http://evil/x", "pre_actions": ["resetHost"]}}}
    )
    assert entry.firmware is not None
    spec = entry.firmware["bmc"]
    spec.status = ComponentStatus.PENDING
    assert spec.update_file_url is None and spec.pre_actions == []
    assert spec.unknown_keys == {"update_file_url": "http://evil/x", "pre_actions": ["resetHost"]}


@pytest.mark.parametrize("key", ["dry_run", "DryRun", "dryrun", "DRYRUN"])
def test_a_look_alike_key_cannot_turn_a_dry_run_off_whatever_its_value(key: str) -> None:
    task = parse_install_task({"dryRun": True, key: False, "firmwareSet": "s"})
    task.worker = "w"
    assert task.dry_run is True


def test_a_previous_runs_power_state_and_bmc_tasks_are_cleared_for_a_new_run() -> None:
    finished = {
        "status": "",
        "initialPowerState": "Off",
        "Firmware": {
            "bmc": {"version": "1", "bmcTask": "/redfish/v1/TaskService/Tasks/3", "status": "installed"},
            "drive": {"version": "2", "instances": [{"name": "d0", "bmcTask": "/t/4", "status": "installed"}]},
        },
    }
    task = parse_install_task(finished)
    task.clear_run_state()
    written = task.to_attribute()
    assert "initialPowerState" not in written
    assert "bmcTask" not in written["Firmware"]["bmc"]
    assert "bmcTask" not in written["Firmware"]["drive"]["instances"][0]


def test_unknown_keys_are_not_fields_of_any_kind() -> None:
    with pytest.raises(TaskValidationError):
        parse_install_task({"dryRun": "yes", "dry_run": True})  # the documented key is still validated
    task = parse_install_task({"x-ticket": {"id": 1}})
    assert task.unknown_keys == {"x-ticket": {"id": 1}}
    with pytest.raises(ValueError, match="x_ticket"):
        task.x_ticket = 1  # type: ignore[attr-defined]  # not a field: no silent new key
