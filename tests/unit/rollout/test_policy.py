"""The rollout policy as a pure function: caps, waves, soak, the breaker, windows, pause and abort; and properties
that must hold for any members and any policy (caps never passed, nothing admitted from a closed wave or with
halted firmware, every waiting member either admitted or told why)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flasher.rollout.definition import CapSpec, Policy, RolloutRecord, RolloutState
from flasher.rollout.members import FirmwareKey, Member
from flasher.rollout.policy import WaitReason, evaluate
from flasher.task.model import TaskStatus

NOW = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)  # a Wednesday
RACK = "attr:sh.example.location~rack"
BIOS = FirmwareKey("bios", "2.0", "dell", "r6515")
BMC = FirmwareKey("bmc", "7.0", "dell", "r6515")
OTHER_BIOS = FirmwareKey("bios", "1.5a", "supermicro", "x12")


def member(
    index: int,
    *,
    wave: int = 1,
    status: TaskStatus = TaskStatus.REQUESTED,
    firmware: tuple[FirmwareKey, ...] = (BIOS,),
    failed: tuple[FirmwareKey, ...] = (),
    rack: str = "r1",
    reboots: bool = False,
    minutes: float = 10,
    generation: int = 1,
    completed: datetime | None = None,
    cancel: bool = False,
) -> Member:
    if failed:
        status = TaskStatus.FAILED
    if status in (TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED) and completed is None:
        completed = NOW - timedelta(minutes=5)
    return Member(
        server_id=f"s{index:03d}",
        name=f"server-{index:03d}",
        facility="ams1",
        status=status,
        wave=wave,
        generation=generation,
        task_id=f"t{index}",
        firmware=firmware,
        failed=failed,
        error="BMC task failed: Exception" if failed else "",
        groups={RACK: rack},
        reboots=reboots,
        minutes=minutes,
        cancel=cancel,
        completed_at=completed,
    )


def record(state: RolloutState = RolloutState.RUNNING, generation: int = 1, **policy: Any) -> RolloutRecord:
    """A record with ``policy``'s fields."""
    return RolloutRecord(name="r", state=state, generation=generation, updated_by="alice", policy=Policy(**policy))


def waiting(evaluation: Any, reason: WaitReason) -> list[str]:
    return sorted(s for s, w in evaluation.waits.items() if w.reason is reason)


def test_no_limits_admits_every_waiting_member_in_wave_then_name_order() -> None:
    members = [member(2), member(1), member(3, status=TaskStatus.ACTIVE), member(4, status=TaskStatus.SUCCESS)]
    result = evaluate(record(), members, NOW)
    assert result.admit == ("s001", "s002")
    assert result.waits == {} and result.holding == 1
    assert result.counts == Counter({"new": 2, "active": 1, "success": 1})


def test_max_active_counts_queued_and_active_members() -> None:
    members = [member(i) for i in range(5)] + [member(9, status=TaskStatus.QUEUED), member(8, status=TaskStatus.ACTIVE)]
    result = evaluate(record(max_active=4), members, NOW)
    assert result.admit == ("s000", "s001")
    assert result.waits["s004"].text == "cap max-active 4/4 active"


def test_per_rack_cap_and_reboot_cap() -> None:
    members = [
        member(0, rack="r1", status=TaskStatus.ACTIVE),
        member(1, rack="r1"),
        member(2, rack="r1"),
        member(3, rack="r2"),
        member(4, rack="r2", reboots=True),
        member(5, rack="r2", reboots=True),
        member(6, rack="r2", reboots=True),
    ]
    policy: dict[str, Any] = {
        "max_active_per": [CapSpec(group=RACK, max=2)],
        "max_reboots_per": [CapSpec(group=RACK, max=1)],
    }
    result = evaluate(record(**policy), members, NOW)
    assert result.admit == ("s001", "s003", "s004")
    assert result.waits["s002"].text == f"cap {RACK}=r1 2/2 active"
    assert result.waits["s005"].text == f"cap {RACK}=r2 2/2 active"
    named = record(groups={"rack": RACK}, max_reboots_per=[CapSpec(group="rack", max=1)])
    reboots = evaluate(named, [member(4, reboots=True), member(5, reboots=True), member(6)], NOW)
    assert reboots.admit == ("s004", "s006")
    assert reboots.waits["s005"].text == "cap rack=r1 1/1 host restarts"


def test_a_wave_opens_when_the_earlier_waves_have_settled() -> None:
    wave1 = [member(0, status=TaskStatus.SUCCESS), member(1, status=TaskStatus.ACTIVE)]
    wave2 = [member(2, wave=2), member(3, wave=2)]
    wave3 = [member(4, wave=3)]
    result = evaluate(record(), [*wave1, *wave2, *wave3], NOW)
    assert result.admit == ()
    assert result.waits["s002"].text == "wave 2 opens when wave 1 has ended"
    assert result.waits["s004"].text == "wave 3 opens when wave 2 has ended"
    assert [w.open for w in result.waves] == [True, False, False]
    done = [member(0, status=TaskStatus.SUCCESS), member(1, failed=(OTHER_BIOS,), firmware=(OTHER_BIOS,))]
    result = evaluate(record(), [*done, *wave2, *wave3], NOW)
    assert result.admit == ("s002", "s003")
    assert result.waits["s004"].reason is WaitReason.WAVE


def test_soak_after_the_earlier_waves_ended() -> None:
    ended_at = NOW - timedelta(minutes=5)
    members = [member(0, status=TaskStatus.SUCCESS, completed=ended_at), member(1, wave=2)]
    result = evaluate(record(soak_seconds=600), members, NOW)
    assert result.waits["s001"].text == "wave 2 opens at 12:05:00 UTC, 10 min after the earlier waves ended"
    assert evaluate(record(soak_seconds=300), members, NOW).admit == ("s001",)


def test_the_breaker_halts_one_firmware_and_lets_the_others_go() -> None:
    members = [member(i, failed=(BIOS,)) for i in range(3)]
    members += [member(10), member(11, firmware=(BMC, BIOS)), member(12, firmware=(BMC,))]
    members += [member(13, wave=2, firmware=(OTHER_BIOS,))]
    result = evaluate(record(max_failures=3), members, NOW)
    assert result.admit == ("s012",)
    assert len(result.halts) == 1 and result.halts[0].firmware == BIOS
    text = "firmware bios 2.0 (dell r6515) halted after 3 failures (breaker: 3): server-000, server-001, server-002"
    assert result.waits["s010"] == result.waits["s011"]
    assert result.waits["s010"].text == text and result.waits["s010"].reason is WaitReason.BREAKER
    # Wave 1 has not settled: s012 is still to run (s010 and s011 wait on the halted BIOS, which counts as settled).
    assert result.waits["s013"].text == "wave 2 opens when wave 1 has ended"


def test_wave_two_opens_past_a_halt() -> None:
    members = [member(i, failed=(BIOS,)) for i in range(3)] + [member(3), member(4, wave=2, firmware=(OTHER_BIOS,))]
    result = evaluate(record(max_failures=3), members, NOW)
    assert result.admit == ("s004",)
    assert result.waits["s003"].reason is WaitReason.BREAKER


def test_failure_rate_over_at_least_min_ended() -> None:
    ok = [member(i, status=TaskStatus.SUCCESS) for i in range(7)]
    bad = [member(10 + i, failed=(BIOS,)) for i in range(2)]
    policy: dict[str, Any] = {"max_failures": 50, "max_failure_rate": 20.0, "min_ended": 10}
    assert evaluate(record(**policy), [*ok, *bad, member(20)], NOW).admit == ("s020",)  # 9 ended: too few to count
    more = [*ok, member(7, status=TaskStatus.SUCCESS), *bad, member(12, failed=(BIOS,)), member(20)]
    result = evaluate(record(**policy), more, NOW)  # 3 of 11 failed: 27% > 20%
    assert result.admit == ()
    assert "halted after 3 of 11 failed (27%, breaker: 20%)" in result.waits["s020"].text


def test_failures_of_an_earlier_generation_do_not_halt() -> None:
    members = [member(i, failed=(BIOS,), generation=1) for i in range(3)] + [member(5, generation=2)]
    assert evaluate(record(generation=2, max_failures=3), members, NOW).admit == ("s005",)
    assert evaluate(record(generation=1, max_failures=3), members, NOW).admit == ()


def test_paused_and_aborted() -> None:
    members = [member(0), member(1, status=TaskStatus.QUEUED)]
    paused = evaluate(record(RolloutState.PAUSED), members, NOW)
    assert paused.admit == () and paused.waits["s000"].text == "rollout paused by alice"
    aborted = evaluate(record(RolloutState.ABORTED), members, NOW)
    assert aborted.admit == () and aborted.cancel == ("s000",)
    assert aborted.waits["s000"].reason is WaitReason.ABORTED


def test_windows_per_facility_and_expected_duration() -> None:
    windows = ["Wed 11:00-Wed 12:30 UTC"]
    members = [member(0, minutes=20), member(1, minutes=40)]
    result = evaluate(record(windows=windows), members, NOW)
    assert result.admit == ("s000",)
    assert result.waits["s001"].text.startswith("30 min left in the maintenance window, the install needs 40 min")
    own = evaluate(record(windows=windows, windows_for={"ams1": ["Thu 00:00-Thu 06:00 UTC"]}), members, NOW)
    assert own.admit == () and own.waits["s000"].text == "maintenance window opens Thu 00:00 UTC"


def test_members_asked_to_cancel_are_left_to_the_poll() -> None:
    result = evaluate(record(), [member(0, cancel=True), member(1)], NOW)
    assert result.admit == ("s001",) and "s000" not in result.waits


# -- properties -------------------------------------------------------------------------------------------------

KEYS = [BIOS, BMC, OTHER_BIOS]
statuses = st.sampled_from(
    [TaskStatus.REQUESTED, TaskStatus.NEW, TaskStatus.QUEUED, TaskStatus.ACTIVE, TaskStatus.SUCCESS, TaskStatus.FAILED]
)


@st.composite
def members(draw: st.DrawFn) -> list[Member]:
    count = draw(st.integers(0, 40))
    found = []
    for index in range(count):
        status = draw(statuses)
        firmware = tuple(draw(st.sets(st.sampled_from(KEYS), min_size=1, max_size=2)))
        failed = tuple(draw(st.sets(st.sampled_from(firmware)))) if status is TaskStatus.FAILED else ()
        found.append(
            member(
                index,
                wave=draw(st.integers(1, 4)),
                status=TaskStatus.FAILED
                if failed
                else (status if status is not TaskStatus.FAILED else TaskStatus.SUCCESS),
                firmware=firmware,
                failed=failed,
                rack=draw(st.sampled_from(["r1", "r2", "r3"])),
                reboots=draw(st.booleans()),
                generation=draw(st.sampled_from([1, 1, 1, 2])),
                cancel=draw(st.booleans()) and draw(st.booleans()),
            )
        )
    return found


policies = st.fixed_dictionaries(
    {},
    optional={
        "max_active": st.integers(1, 10),
        "max_active_per": st.lists(st.builds(CapSpec, group=st.just(RACK), max=st.integers(1, 4)), max_size=1),
        "max_reboots_per": st.lists(st.builds(CapSpec, group=st.just(RACK), max=st.integers(1, 3)), max_size=1),
        "max_failures": st.integers(1, 4),
        "soak_seconds": st.sampled_from([0.0, 60.0, 3600.0]),
    },
)


@settings(max_examples=250, deadline=None)
@given(members(), policies, st.sampled_from(list(RolloutState)), st.sampled_from([1, 2]))
def test_invariants(found: list[Member], policy: dict[str, Any], state: RolloutState, generation: int) -> None:
    rec = record(state, generation, **policy)
    result = evaluate(rec, found, NOW)
    by_id = {m.server_id: m for m in found}
    candidates = {m.server_id for m in found if m.waiting and not m.cancel}
    admitted = set(result.admit)
    # Every waiting member is admitted or told why, never both; nothing else is decided on.
    assert admitted <= candidates and not admitted & set(result.waits)
    assert admitted | set(result.waits) == candidates
    assert len(result.admit) == len(admitted)
    if state is not RolloutState.RUNNING:
        assert not admitted
    halted = result.halted()
    open_waves = {w.number for w in result.waves if w.open}
    compiled = rec.policy.compile()
    for server_id in admitted:
        chosen = by_id[server_id]
        assert not set(chosen.firmware) & halted
        assert chosen.wave in open_waves
    # Caps: what holds slots plus what is admitted stays within every cap (or admits nothing more where the
    # members holding slots were over it already).
    holding = [m for m in found if m.holding]
    after = holding + [by_id[s] for s in result.admit]
    if compiled.max_active is not None:
        assert len(after) <= max(compiled.max_active, len(holding))
        if len(holding) >= compiled.max_active:
            assert not admitted
    for cap in compiled.caps:
        before = Counter(m.groups[RACK] for m in holding)
        total = Counter(m.groups[RACK] for m in after)
        for value, count in total.items():
            assert count <= max(cap.limit, before[value])
    for cap in compiled.reboot_caps:
        before = Counter(m.groups[RACK] for m in holding if m.reboots)
        total = Counter(m.groups[RACK] for m in after if m.reboots)
        for value, count in total.items():
            assert count <= max(cap.limit, before[value])
    # A member told to wait for a cap waits for one that is full once the others are admitted.
    for server_id, wait in result.waits.items():
        if wait.reason is not WaitReason.CAP:
            continue
        waiting_member = by_id[server_id]
        full = compiled.max_active is not None and len(after) >= compiled.max_active
        for cap in compiled.caps:
            value = waiting_member.groups[RACK]
            full |= sum(1 for m in after if m.groups[RACK] == value) >= cap.limit
        if waiting_member.reboots:
            for cap in compiled.reboot_caps:
                value = waiting_member.groups[RACK]
                full |= sum(1 for m in after if m.reboots and m.groups[RACK] == value) >= cap.limit
        assert full
    # Halts count only the current generation, and reach the threshold.
    for halt in result.halts:
        assert all(by_id[f.server_id].generation == generation for f in halt.failures)
        assert len(halt.failures) >= compiled.max_failures


@settings(max_examples=200, deadline=None)
@given(members())
def test_without_limits_a_running_rollout_admits_every_member_of_the_open_waves(found: list[Member]) -> None:
    result = evaluate(record(max_failures=1000), found, NOW)
    open_waves = {w.number for w in result.waves if w.open}
    expected = {m.server_id for m in found if m.waiting and not m.cancel and m.wave in open_waves}
    assert set(result.admit) == expected
