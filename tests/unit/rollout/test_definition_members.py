"""A rollout's request and record (validation naming field and value, the record's round trip) and members as the
policy sees them (firmware keys, failures, host restarts, expected minutes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from flasher.config import RolloutSettings
from flasher.constants import SERVER_VENDOR_NAMESPACE
from flasher.inventory.models import Attributes, Server
from flasher.rollout.definition import (
    RolloutPhase,
    RolloutRecord,
    RolloutSpec,
    RolloutSpecError,
    RolloutState,
    parse_duration,
)
from flasher.rollout.groups import GroupSpec
from flasher.rollout.members import FirmwareKey, member_of, planned_firmware
from flasher.task.model import TaskValidationError, parse_install_task

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
SERVER = Server(
    uuid="11111111-1111-1111-1111-111111111111",
    name="r6515-001",
    facility="ams1",
    attributes=[
        Attributes(namespace=SERVER_VENDOR_NAMESPACE, data={"vendor": "dell", "model": "r6515"}),
        Attributes(namespace="sh.example.location", data={"rack": "r3"}),
    ],
)


def spec(**changes: Any) -> dict[str, Any]:
    return {"name": "bios-q3", "select": ["model=r6515"], "firmware-set": "dell-r6515", **changes}


def test_a_request_as_create_takes_it() -> None:
    parsed = RolloutSpec.from_data(
        spec(
            waves="2,10%,50%,100%",
            soak="10m",
            **{
                "max-active": 12,
                "max-active-per": "rack=2",
                "group": ["rack=attr:sh.example.location~rack"],
                "max-failure-rate": "5%",
                "window": "Sat 22:00-Sun 04:00 Europe/Amsterdam",
                "window-for": ["ams1=22:00-04:00 UTC"],
            },
        )
    )
    policy = parsed.policy()
    assert policy.waves == ["2", "10%", "50%", "100%"] and policy.soak_seconds == 600
    assert policy.max_active_per[0].text() == "rack=2" and policy.groups == {"rack": "attr:sh.example.location~rack"}
    assert policy.max_failure_rate == 5.0 and policy.max_failures == 3
    assert policy.windows_for == {"ams1": ["22:00-04:00 UTC"]}
    compiled = policy.compile()
    assert (
        compiled.caps[0].label == "rack" and compiled.budget() == "3 failures per firmware or 5% of at least 10 ended"
    )
    assert parsed.baseline().firmware_set == "dell-r6515"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"name": "Bad Name"}, "field 'name': value 'Bad Name' is not a rollout name"),
        ({"select": []}, "field 'select'"),
        ({"select": ["rack=r1"]}, "not a selector"),
        ({"resolve": True}, "give firmware-set"),
        ({"waves": "2,150%"}, "not a percentage"),
        ({"soak": "soon"}, "field 'soak': value 'soon' is not a duration"),
        ({"max-active": 0}, "field 'max-active': value 0"),
        ({"max-active-per": ["pdu=2"]}, "'pdu' is not a group"),
        ({"window": ["Sat 22:00 UTC"]}, "window 'Sat 22:00 UTC'"),
        ({"max-failure-rate": "150%"}, "not a percentage in (0, 100]"),
        ({"surprise": 1}, "field 'surprise': is not a known field"),
    ],
)
def test_bad_requests_name_the_field_and_value(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(RolloutSpecError) as caught:
        RolloutSpec.from_data(spec(**changes), where="file.yaml")
    assert says in str(caught.value)
    assert all(line.startswith("file.yaml: ") for line in caught.value.lines)


def test_durations() -> None:
    assert [parse_duration(v) for v in ("30s", "10m", "2h", "1d", "90", 5)] == [30, 600, 7200, 86400, 90, 5]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("10 minutes")


def test_the_record_round_trips_and_reports_bad_fields() -> None:
    record = RolloutRecord(name="bios-q3", created_at=NOW, updated_at=NOW, updated_by="alice", members=3)
    data = record.to_data()
    assert data["state"] == "running" and data["phase"] == "active" and data["createdAt"] == "2026-06-03T12:00:00Z"
    assert RolloutRecord.from_data(data) == record
    changed = record.with_event("paused by bob", by="bob", now=NOW, state=RolloutState.PAUSED)
    assert changed.state is RolloutState.PAUSED and changed.updated_by == "bob"
    assert changed.history[-1] == "2026-06-03T12:00:00Z paused by bob"
    with pytest.raises(RolloutSpecError, match="field 'generation': value 0"):
        RolloutRecord.from_data({**data, "generation": 0})
    with pytest.raises(RolloutSpecError, match="field 'phase'"):
        RolloutRecord.from_data({**data, "phase": "sideways"})
    assert RolloutRecord.from_data({**data, "phase": "creating"}).phase is RolloutPhase.CREATING


def test_the_rollout_key_of_a_task_is_validated() -> None:
    task = parse_install_task({"rollout": {"name": "bios-q3", "wave": 2, "firmware": ["bios 2.12.2"]}})
    assert task.rollout is not None and task.rollout.generation == 1
    assert task.to_attribute()["rollout"] == {"name": "bios-q3", "wave": 2, "firmware": ["bios 2.12.2"]}
    with pytest.raises(TaskValidationError) as caught:
        parse_install_task({"rollout": {"name": "Bios Q3", "wave": 0}})
    message = str(caught.value)
    assert "field 'rollout.name': value \"Bios Q3\" is not a rollout name" in message
    assert "field 'rollout.wave': value 0 is less than 1" in message
    with pytest.raises(TaskValidationError, match="field 'requireHostPoweredOff'"):
        parse_install_task({"requireHostPoweredOff": "yes"})


def member_task(data: dict[str, Any]) -> Any:
    return parse_install_task({"rollout": {"name": "r", "wave": 1, "firmware": ["bmc 7.0", "bios 2.12.2"]}, **data})


def test_what_a_waiting_member_installs_comes_from_create_then_from_its_plan() -> None:
    settings = RolloutSettings()
    waiting = member_of(
        SERVER, member_task({"status": "requested"}), [GroupSpec.parse("attr:sh.example.location~rack")], settings
    )
    assert waiting.firmware == (
        FirmwareKey("bmc", "7.0", "dell", "r6515"),
        FirmwareKey("bios", "2.12.2", "dell", "r6515"),
    )
    assert waiting.reboots and waiting.minutes == 35 and waiting.groups == {"attr:sh.example.location~rack": "r3"}
    planned = member_task(
        {
            "status": "queued",
            "taskID": "t1",
            "Firmware": {
                "bmc": {"version": "7.0", "status": "skipped"},
                "nic": {
                    "version": "22.4",
                    "status": "pending",
                    "instances": [{"name": "a", "status": "pending"}, {"name": "b", "status": "installed"}],
                },
            },
        }
    )
    member = member_of(SERVER, planned, [], settings)
    assert member.firmware == (FirmwareKey("nic", "22.4", "dell", "r6515"),)
    assert not member.reboots and member.minutes == 10  # one NIC instance left


def test_a_failure_counts_against_the_failed_component_or_else_everything_planned() -> None:
    settings = RolloutSettings()
    failed = member_task(
        {
            "status": "failed",
            "Firmware": {
                "bmc": {"version": "7.0", "status": "installed"},
                "bios": {"version": "2.12.2", "status": "failed"},
            },
        }
    )
    assert member_of(SERVER, failed, [], settings).failed == (FirmwareKey("bios", "2.12.2", "dell", "r6515"),)
    unattributed = member_task(
        {
            "status": "failed",
            "Firmware": {
                "bmc": {"version": "7.0", "status": "pending"},
                "bios": {"version": "2.12.2", "status": "pending"},
            },
        }
    )
    assert len(member_of(SERVER, unattributed, [], settings).failed) == 2
    assert planned_firmware(parse_install_task({}), SERVER) == ()
