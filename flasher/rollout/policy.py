"""The rollout policy as a pure function: which waiting members may be admitted now, and why the others wait.

:func:`evaluate` takes a rollout's record, its members (as the inventory lists them) and the time, and
returns an :class:`Evaluation`; it reads nothing else and changes nothing, so the controller's tick, the start
gate and ``rollout status`` all decide the same way, and tests can drive it through every case.

A waiting member is admitted when, in this order (the first that fails is the reason it waits):

1. **paused** — the rollout is running (paused: nothing is admitted; aborted: waiting members are cancelled);
2. **breaker** — none of the firmware it installs is halted. A firmware halts when the members of the current
   generation that failed it reach ``maxFailures``, or when at least ``minEnded`` of those installing it have
   ended and more than ``maxFailureRate`` percent of them failed;
3. **wave** — its wave is open: every member of the earlier waves has *settled* (ended, or waits on a halted
   firmware), and ``soak`` has passed since the last of them ended;
4. **window** — its expected duration fits in what is left of the maintenance window of its facility;
5. **cap** — admitting it keeps every cap: at most ``maxActive`` members queued or active in the rollout, at
   most ``max`` per value of each ``maxActivePer`` group and, for members whose installs restart the host, per
   value of each ``maxRebootsPer`` group.

Members are considered wave by wave, then by name; each admission counts against the caps of the ones after
it. The caps counted here are a plan: the controller reserves each admission's slots in Redis, atomically and
exactly, before it writes anything (:mod:`flasher.rollout.slots`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from flasher.rollout.definition import CompiledPolicy, RolloutRecord, RolloutState
from flasher.rollout.groups import Cap
from flasher.rollout.members import FirmwareKey, Member
from flasher.rollout.waves import wave_sizes
from flasher.rollout.windows import check as window_check
from flasher.task.model import TaskStatus

_FAR: Final = datetime.max.replace(tzinfo=UTC)
#: How many failing servers a halt names in a message (the rest are counted).
NAMED_FAILURES: Final = 3


class WaitReason(StrEnum):
    """Why a member waits (the ``reason`` label of ``flasher_rollout_waiting``)."""

    PAUSED = "paused"
    BREAKER = "breaker"
    WAVE = "wave"
    WINDOW = "window"
    CAP = "cap"
    ABORTED = "aborted"


@dataclass(frozen=True)
class Wait:
    """One member's reason to wait: ``reason`` and the words of its ``waiting:`` message."""

    reason: WaitReason
    text: str


@dataclass(frozen=True)
class Failure:
    """One failed member of a firmware: server id and name, and its error."""

    server_id: str
    name: str
    error: str


@dataclass(frozen=True)
class Halt:
    """A halted firmware: the failures of the current generation (oldest first), how many of its members ended,
    and ``why`` (the threshold it reached)."""

    firmware: FirmwareKey
    failures: tuple[Failure, ...]
    ended: int
    why: str

    @property
    def text(self) -> str:
        """``firmware bios 2.8.0 (dell r6515) halted after 3 failures: r6515-001, r6515-003, r6515-005``."""
        names = [f.name or f.server_id for f in self.failures[:NAMED_FAILURES]]
        more = len(self.failures) - len(names)
        listed = ", ".join(names) + (f" and {more} more" if more > 0 else "")
        return f"firmware {self.firmware.label} halted after {self.why}: {listed}"


@dataclass(frozen=True)
class WaveState:
    """One wave: its ``number``, how many members it has, ``counts`` per status, whether it is ``open`` and, when
    it is not, ``why``."""

    number: int
    size: int
    counts: Counter[str]
    open: bool
    why: str = ""


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` decided: ``admit`` (server ids, in the order to admit them), ``waits`` (server id
    → :class:`Wait` for every other waiting member), ``cancel`` (waiting members of an aborted rollout),
    ``halts``, ``waves``, ``counts`` (members per status, ``new`` for waiting), ``holding`` (queued or active)."""

    admit: tuple[str, ...]
    waits: dict[str, Wait]
    cancel: tuple[str, ...]
    halts: tuple[Halt, ...]
    waves: tuple[WaveState, ...]
    counts: Counter[str] = field(default_factory=Counter)
    holding: int = 0

    def waiting_by_reason(self) -> Counter[str]:
        """How many members wait for each reason."""
        return Counter(wait.reason.value for wait in self.waits.values())

    def halted(self) -> frozenset[FirmwareKey]:
        """The halted firmware."""
        return frozenset(h.firmware for h in self.halts)


def _status_key(status: TaskStatus) -> str:
    return "new" if status in (TaskStatus.NEW, TaskStatus.REQUESTED) else status.value


def halts(record: RolloutRecord, policy: CompiledPolicy, members: Iterable[Member]) -> tuple[Halt, ...]:
    """The firmware the breaker halts (module docstring), counting members of ``record.generation`` only."""
    failures: dict[FirmwareKey, list[Member]] = defaultdict(list)
    ended: Counter[FirmwareKey] = Counter()
    for member in members:
        if member.generation != record.generation:
            continue
        if member.status in (TaskStatus.SUCCESS, TaskStatus.FAILED):
            for key in set(member.firmware) | set(member.failed):
                ended[key] += 1
        for key in member.failed:
            failures[key].append(member)
    found = []
    for key, failed in sorted(failures.items()):
        failed.sort(key=lambda m: (m.completed_at or _FAR, m.name))
        listed = tuple(Failure(m.server_id, m.name, m.error) for m in failed)
        total = max(ended[key], len(failed))
        why = halt_reason(policy, len(failed), total)
        if why is not None:
            found.append(Halt(key, listed, total, why))
    return tuple(found)


def halt_reason(policy: CompiledPolicy, failures: int, ended: int) -> str | None:
    """Why a firmware with ``failures`` failed members out of ``ended`` ended ones is halted, or ``None`` when it
    is not: ``3 failures (breaker: 3)``, ``4 of 20 failed (20%, breaker: 10%)``."""
    ended = max(ended, failures)
    if failures >= policy.max_failures:
        return f"{failures} failure{'s' if failures != 1 else ''} (breaker: {policy.max_failures})"
    rate = policy.max_failure_rate
    if rate is not None and ended >= policy.min_ended and 100 * failures / ended > rate:
        return f"{failures} of {ended} failed ({100 * failures / ended:.0f}%, breaker: {rate:g}%)"
    return None


def _settled(member: Member, halted: frozenset[FirmwareKey]) -> bool:
    return member.ended or (member.waiting and any(k in halted for k in member.firmware))


def _caps_text(cap: Cap, value: str, count: int, reboots: bool) -> str:
    what = "host restarts" if reboots else "active"
    return f"cap {cap.label}={value} {count}/{cap.limit} {what}"


def _wave_states(
    record: RolloutRecord,
    policy: CompiledPolicy,
    members: Sequence[Member],
    halted: frozenset[FirmwareKey],
    now: datetime,
) -> tuple[WaveState, ...]:
    by_wave: dict[int, list[Member]] = defaultdict(list)
    for member in members:
        by_wave[member.wave].append(member)
    numbers = sorted(set(by_wave) | set(range(1, len(record.wave_sizes) + 1)))
    states = []
    unsettled: int | None = None  # the last earlier wave that has not settled
    last_end: datetime | None = None
    for number in numbers:
        group = by_wave.get(number, [])
        counts = Counter(_status_key(m.status) for m in group)
        size = record.wave_sizes[number - 1] if number <= len(record.wave_sizes) else len(group)
        if unsettled is not None:
            why = f"wave {number} opens when wave {unsettled} has ended"
            states.append(WaveState(number, size, counts, False, why))
        elif last_end is not None and policy.soak and now < last_end + policy.soak:
            opens = last_end + policy.soak
            why = (
                f"wave {number} opens at {opens.strftime('%H:%M:%S')} UTC, {_duration(policy.soak)} after the"
                f" earlier waves ended"
            )
            states.append(WaveState(number, size, counts, False, why))
        else:
            states.append(WaveState(number, size, counts, True))
        if not all(_settled(m, halted) for m in group):
            unsettled = number
        ends = [m.completed_at for m in group if m.ended and m.completed_at is not None]
        if ends:
            last_end = max([*ends, *([last_end] if last_end else [])])
    return tuple(states)


def _duration(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:.0f} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def evaluate(
    record: RolloutRecord, members: Sequence[Member], now: datetime, *, policy: CompiledPolicy | None = None
) -> Evaluation:
    """Decide for every waiting member of ``record`` (module docstring). ``members`` are every member the
    inventory lists (any status, any generation); ``now`` is UTC; ``policy`` is ``record.policy.compile()``
    (give it to avoid parsing again)."""
    policy = policy or record.policy.compile()
    halt_list = halts(record, policy, members)
    halted = frozenset(h.firmware for h in halt_list)
    halt_of = {h.firmware: h for h in halt_list}
    waves = _wave_states(record, policy, members, halted, now)
    wave_of = {w.number: w for w in waves}
    counts = Counter(_status_key(m.status) for m in members)

    holding = [m for m in members if m.holding]
    active = len(holding)
    per_cap: list[Counter[str]] = [Counter(m.groups.get(c.group.text, "") for m in holding) for c in policy.caps]
    per_reboot: list[Counter[str]] = [
        Counter(m.groups.get(c.group.text, "") for m in holding if m.reboots) for c in policy.reboot_caps
    ]

    admit: list[str] = []
    waits: dict[str, Wait] = {}
    cancel: list[str] = []
    waiting = sorted((m for m in members if m.waiting and not m.cancel), key=lambda m: (m.wave, m.name, m.server_id))
    for member in waiting:
        if record.state is RolloutState.ABORTED:
            cancel.append(member.server_id)
            waits[member.server_id] = Wait(WaitReason.ABORTED, f"rollout aborted by {record.updated_by or '?'}")
            continue
        if record.state is RolloutState.PAUSED:
            waits[member.server_id] = Wait(WaitReason.PAUSED, f"rollout paused by {record.updated_by or '?'}")
            continue
        blocked = next((halt_of[k] for k in member.firmware if k in halted), None)
        if blocked is not None:
            waits[member.server_id] = Wait(WaitReason.BREAKER, blocked.text)
            continue
        wave = wave_of.get(member.wave)
        if wave is not None and not wave.open:
            waits[member.server_id] = Wait(WaitReason.WAVE, wave.why)
            continue
        fit = window_check(policy.windows_of(member.facility), now, member.expected)
        if not fit.fits:
            waits[member.server_id] = Wait(WaitReason.WINDOW, fit.reason)
            continue
        wait = _cap_wait(policy, member, active, per_cap, per_reboot)
        if wait is not None:
            waits[member.server_id] = wait
            continue
        admit.append(member.server_id)
        active += 1
        for cap, counter in zip(policy.caps, per_cap, strict=True):
            counter[member.groups.get(cap.group.text, "")] += 1
        if member.reboots:
            for cap, counter in zip(policy.reboot_caps, per_reboot, strict=True):
                counter[member.groups.get(cap.group.text, "")] += 1
    return Evaluation(
        admit=tuple(admit),
        waits=waits,
        cancel=tuple(cancel),
        halts=halt_list,
        waves=waves,
        counts=counts,
        holding=len(holding),
    )


def _cap_wait(
    policy: CompiledPolicy,
    member: Member,
    active: int,
    per_cap: Sequence[Counter[str]],
    per_reboot: Sequence[Counter[str]],
) -> Wait | None:
    if policy.max_active is not None and active >= policy.max_active:
        return Wait(WaitReason.CAP, f"cap max-active {active}/{policy.max_active} active")
    for cap, counter in zip(policy.caps, per_cap, strict=True):
        value = member.groups.get(cap.group.text, "")
        if counter[value] >= cap.limit:
            return Wait(WaitReason.CAP, _caps_text(cap, value, counter[value], False))
    if member.reboots:
        for cap, counter in zip(policy.reboot_caps, per_reboot, strict=True):
            value = member.groups.get(cap.group.text, "")
            if counter[value] >= cap.limit:
                return Wait(WaitReason.CAP, _caps_text(cap, value, counter[value], True))
    return None


def planned_wave_sizes(policy: CompiledPolicy, total: int) -> list[int]:
    """The sizes of the waves ``policy`` makes of ``total`` members."""
    return wave_sizes(policy.targets, total)
