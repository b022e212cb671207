"""The rollout router's pure parts: a create body validated as an ``apply`` file, each problem named by the
body's key; and the status view's caps (slots held per group value), breaker and members by state, from
:func:`flasher.rollout.policy.evaluate` on members made here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flasher.api.errors import APIError
from flasher.api.rollouts import spec_of, status_view
from flasher.rollout.definition import CapSpec, Policy, RolloutRecord
from flasher.rollout.members import FirmwareKey, Member
from flasher.rollout.operations import RolloutStatus
from flasher.rollout.policy import evaluate
from flasher.rollout.store import StoredRollout
from flasher.task.model import TaskStatus

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
RACK = "attr:sh.example.location~rack"
BIOS = FirmwareKey("bios", "2.0", "dell", "r6515")


def body(**changes: Any) -> dict[str, Any]:
    return {"name": "fw", "select": ["all"], "firmware-set": "dell-r6515", **changes}


def test_a_good_body_is_the_spec_apply_would_make() -> None:
    spec = spec_of(body(waves="2,50%,100%", **{"max-active-per": ["rack=2"], "group": ["rack=attr:x.y~rack"]}))

    assert spec.name == "fw" and spec.waves == ["2", "50%", "100%"]
    assert spec.policy().max_active_per == [CapSpec(group="rack", max=2)]


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"max-reboots-per": ["pdu=1"]}, "max-reboots-per", None),
        ({"max-active-per": ["rack=none"]}, "max-active-per", None),
        ({"group": ["rack=attr:a.b~rack", "rack=attr:c.d~rack"]}, "group", None),
        ({"group": ["rack=bogus:thing"], "max-active-per": ["rack=1"]}, "group", None),
        ({"resolve": True}, "firmware-set", None),
        ({"min-ended": 0}, "min-ended", 0),
        ({"window-for": ["ams1=whenever"]}, "window-for", ["ams1=whenever"]),
        ({"select": ["colour=red"]}, "select", ["colour=red"]),
    ],
)
def test_bad_bodies_name_the_key(changes: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(APIError) as caught:
        spec_of(body(**changes))

    error = caught.value
    assert error.status == 400
    assert error.errors is not None and error.errors[0]["field"] == field, error.errors
    assert error.errors[0]["value"] == value
    assert error.errors[0]["reason"] and field in error.message
    assert "field 'data'" not in error.message  # the option, never the record's internals


def member(index: int, status: TaskStatus, *, rack: str, wave: int = 1, reboots: bool = False) -> Member:
    failed = (BIOS,) if status is TaskStatus.FAILED else ()
    return Member(
        server_id=f"s{index}",
        name=f"server-{index}",
        facility="ams1",
        status=status,
        wave=wave,
        generation=1,
        task_id=f"t{index}",
        firmware=(BIOS,),
        failed=failed,
        error="BMC task failed" if failed else "",
        groups={RACK: rack},
        reboots=reboots,
        minutes=10,
        completed_at=NOW - timedelta(minutes=1) if status in (TaskStatus.SUCCESS, TaskStatus.FAILED) else None,
    )


def test_the_status_view_counts_slots_per_group_and_shows_the_breaker() -> None:
    policy = Policy(
        waves=["4", "100%"],
        max_active=3,
        max_active_per=[CapSpec(group="rack", max=2)],
        max_reboots_per=[CapSpec(group="rack", max=1)],
        groups={"rack": RACK},
        max_failures=2,
    )
    record = RolloutRecord(name="fw", policy=policy, members=7, wave_sizes=[4, 3])
    members = [
        member(1, TaskStatus.ACTIVE, rack="r1", reboots=True),
        member(2, TaskStatus.QUEUED, rack="r1"),
        member(3, TaskStatus.FAILED, rack="r2"),
        member(4, TaskStatus.FAILED, rack="r2"),
        member(5, TaskStatus.REQUESTED, rack="r2", wave=2),
        member(6, TaskStatus.NEW, rack="r3", wave=2),
        member(7, TaskStatus.SUCCESS, rack="r3", wave=2),
    ]
    evaluation = evaluate(record, members, NOW)

    view = status_view(RolloutStatus(StoredRollout("u-1", record), members, evaluation, NOW))

    assert view["caps"] == {
        "max_active": 3,
        "holding": 2,
        "max_active_per": [{"group": "rack", "max": 2, "holding": {"r1": 2}}],
        "max_reboots_per": [{"group": "rack", "max": 1, "holding": {"r1": 1}}],  # only the member that reboots
    }
    breaker = view["breaker"]
    assert breaker["tripped"] is True and breaker["budget"] == "2 failures per firmware"
    assert [h["firmware"] for h in breaker["halts"]] == [BIOS.label]
    assert {f["server"] for f in breaker["halts"][0]["failures"]} == {"s3", "s4"}
    assert view["members_by_state"] == {
        "new": ["s5", "s6"],
        "queued": ["s2"],
        "active": ["s1"],
        "success": ["s7"],
        "failed": ["s3", "s4"],
        "cancelled": [],
    }
    assert [(w["wave"], w["members"]) for w in view["waves"]] == [
        (1, ["s1", "s2", "s3", "s4"]),
        (2, ["s5", "s6", "s7"]),
    ]
    assert {m["server"]: m["status"] for m in view["members"]}["s5"] == "new"  # requested reads as the counts do
