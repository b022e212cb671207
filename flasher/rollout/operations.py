"""The rollout operations: plan, create, status, list, pause, resume, abort, retry-failed.

Plain functions over the inventory, called by ``flasher rollout`` (a thin CLI) and by the HTTP API alike; none
needs Redis or a replica. Each raises :class:`~flasher.rollout.store.RolloutError` (not found, exists,
changed meanwhile, nothing to do), :class:`~flasher.rollout.definition.RolloutSpecError` (a bad request, naming
the field and the value) or :class:`~flasher.rollout.selectors.SelectorError`; inventory errors propagate.

**create** plans the selected servers (:mod:`flasher.rollout.planning`), orders the members and splits them into
waves (:mod:`flasher.rollout.waves`), writes the record with phase ``creating``, then each member's task
attribute (``status: requested`` with ``rollout: {name, wave, generation, firmware}``, the baseline's
``firmwareSet`` or none, ``force``, ``priority``, ``requester``, ``requireHostPoweredOff``), re-reading each
first: a server that got an open task since it was planned is left out and recorded as refused. Then the
record becomes ``active`` and the controller starts moving it. A create that is interrupted leaves the rollout
``creating`` (nothing is admitted); ``abort`` it and create again.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import yaml

from flasher.config import RolloutSettings
from flasher.constants import TASK_NAMESPACE
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import NotFoundError
from flasher.inventory.filters import attr_filter
from flasher.inventory.models import Server
from flasher.rollout.definition import (
    Baseline,
    RolloutPhase,
    RolloutRecord,
    RolloutSpec,
    RolloutSpecError,
    RolloutState,
    ServerNote,
    check_name,
)
from flasher.rollout.members import Member, member_of, read_member
from flasher.rollout.planning import FleetPlan, ServerOutcome, open_task_of, plan_fleet, target_firmware
from flasher.rollout.policy import Evaluation, evaluate
from flasher.rollout.store import RolloutError, RolloutNotFoundError, RolloutStore, StoredRollout
from flasher.rollout.waves import assign_waves, rollout_order, wave_sizes
from flasher.task.model import (
    MAX_MESSAGES,
    InstallTask,
    TaskStatus,
    format_message,
    is_new,
    parse_install_task,
    utc_now,
)

#: Member attributes written at once by create, abort and retry-failed.
WRITE_THREADS: Final = 8


def members_filter(name: str) -> str:
    """The attribute filter listing rollout ``name``'s members: ``sh.hollow.flasher.task~rollout.name~eq~<name>``."""
    return attr_filter(TASK_NAMESPACE, "rollout.name", "eq", check_name(name))


def list_member_servers(inventory: InventoryClient, name: str, facility: str | None = None) -> list[Server]:
    """The servers whose install task is a member of ``name`` (one paged query)."""
    return inventory.list_servers(attr=[members_filter(name)], facility=facility)


def read_members(
    servers: Sequence[Server], record: RolloutRecord, settings: RolloutSettings
) -> list[tuple[Server, InstallTask, Member]]:
    """Every member among ``servers`` with its parsed task and :class:`Member` view."""
    groups = record.policy.compile().groups()
    found = []
    for server in servers:
        task = read_member(server, record.name)
        if task is not None:
            found.append((server, task, member_of(server, task, groups, settings)))
    return found


# --------------------------------------------------------------------------------------------------------------
# plan and create


def plan(inventory: InventoryClient, selectors: Sequence[str], baseline: Baseline) -> FleetPlan:
    """``rollout plan``: what a rollout of ``baseline`` over ``selectors`` would do, read-only."""
    return plan_fleet(inventory, selectors, baseline)


def plan_as_json(fleet: FleetPlan) -> dict[str, Any]:
    """A plan as ``rollout plan --json`` prints it and ``POST /api/v1/rollouts/plan`` answers it:
    ``{"selectors", "baseline", "counts", "servers": [{"server", "name", "facility", "vendor_model", "outcome",
    "busy", "reason", "install": [{"component", "installed", "target"}]}]}``."""
    return {
        "selectors": fleet.selectors,
        "baseline": fleet.baseline.model_dump(mode="json", by_alias=True),
        "counts": fleet.counts(),
        "servers": [
            {
                "server": str(e.server.uuid),
                "name": e.server.name,
                "facility": e.server.facility,
                "vendor_model": e.vendor_model,
                "outcome": e.outcome.value,
                "busy": e.busy,
                "reason": e.reason,
                "install": [
                    {"component": i.component, "installed": i.installed_version, "target": i.version}
                    for i in e.installs
                ],
            }
            for e in fleet.servers
        ],
    }


def load_spec(path: Path) -> RolloutSpec:
    """Read an ``apply`` file (YAML: create's options as keys); raises :class:`RolloutSpecError`."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RolloutSpecError([f"{path}: {exc}"]) from None
    return RolloutSpec.from_data(data, where=str(path))


def member_request(
    record: RolloutRecord,
    *,
    wave: int,
    generation: int,
    firmware: Sequence[str],
    message: str,
    now: datetime,
    keep_messages: Sequence[str] = (),
) -> dict[str, Any]:
    """A member's task attribute as create and retry-failed write it (module docstring)."""
    data: dict[str, Any] = {
        "status": TaskStatus.REQUESTED.value,
        "method": "out-of-band",
        "priority": record.priority,
        "requester": record.requester,
        "force": record.baseline.force,
        "rollout": {"name": record.name, "wave": wave, "generation": generation, "firmware": list(firmware)},
    }
    if record.baseline.firmware_set:
        data["firmwareSet"] = record.baseline.firmware_set
    if record.policy.power_off_required:
        data["requireHostPoweredOff"] = True
    data["messages"] = [*keep_messages, format_message(message, now=now)][-MAX_MESSAGES:]
    parse_install_task(data)  # what is written is what flasher will accept
    return data


def _first_reason(rollout: str, wave: int) -> str:
    """A new member's first message: what the controller's first tick would say of a member of a later wave (so it
    need not write it into every member), or that a member of the first wave is about to be admitted."""
    if wave > 1:
        return f"waiting: wave {wave} opens when wave {wave - 1} has ended"
    return f"member of rollout {rollout} (wave 1): waiting for the controller to admit it"


@dataclass
class CreateResult:
    """What create did: the ``rollout``, the ``members`` written (server id → wave), and ``plan``."""

    rollout: StoredRollout
    members: dict[str, int]
    plan: FleetPlan
    late_refusals: list[ServerNote] = field(default_factory=list)


def _note(entry: Any, reason: str | None = None) -> ServerNote:
    return ServerNote(server=str(entry.server.uuid), name=entry.server.name, reason=reason or entry.reason)


def create(
    inventory: InventoryClient,
    spec: RolloutSpec,
    *,
    requester: str,
    now: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> CreateResult:
    """``rollout create`` / ``apply`` (module docstring). ``on_progress(written, total)`` is called as members
    are written."""
    now = now or utc_now()
    policy = spec.policy()
    compiled = policy.compile()
    baseline = spec.baseline()
    store = RolloutStore(inventory)
    try:
        store.get(spec.name)
    except RolloutNotFoundError:
        pass
    else:
        raise RolloutError(f"a rollout named {spec.name!r} exists already (rollout status {spec.name})")
    fleet = plan_fleet(inventory, spec.select, baseline)
    candidates = fleet.members()
    if not candidates:
        counts = Counter(s.outcome.value for s in fleet.servers)
        in_use = sum(1 for s in fleet.servers if s.busy)
        raise RolloutError(
            f"no selected server would install anything: {len(fleet.servers)} selected, {counts['current']} at the"
            f" baseline, {counts['refused']} refused, {in_use} with an open task (rollout plan shows why)"
        )
    spread = {str(s.server.uuid): tuple(cap.group.value(s.server) for cap in compiled.caps) for s in candidates}
    order = rollout_order([(str(s.server.uuid), s.vendor_model, s.server.name) for s in candidates], spread)
    by_id = {str(s.server.uuid): s for s in candidates}
    waves = dict(zip(order, assign_waves(len(order), compiled.targets), strict=True))
    refused = [_note(s) for s in fleet.servers if s.outcome is ServerOutcome.REFUSED]
    refused += [_note(s, s.busy) for s in fleet.servers if s.outcome is ServerOutcome.INSTALL and s.busy]
    skipped = [_note(s) for s in fleet.servers if s.outcome is ServerOutcome.CURRENT]
    record = RolloutRecord(
        name=spec.name,
        phase=RolloutPhase.CREATING,
        selectors=fleet.selectors,
        baseline=baseline,
        policy=policy,
        priority=spec.priority,
        requester=requester,
        created_at=now,
        updated_at=now,
        updated_by=requester,
        members=len(order),
        wave_sizes=wave_sizes(compiled.targets, len(order)),
        skipped=skipped,
        refused=refused,
        history=[f"{now.isoformat().replace('+00:00', 'Z')} created by {requester}: {len(order)} members"],
    )
    firmware = target_firmware(candidates)
    stored = store.create(record, firmware)

    def write(server_id: str) -> tuple[str, str | None]:
        entry = by_id[server_id]
        wave = waves[server_id]
        try:
            current = inventory.get_attribute(server_id, TASK_NAMESPACE).data
        except NotFoundError:
            current = None
        busy = open_task_of(current) if current is not None else None
        if busy:
            return server_id, busy
        data = member_request(
            record,
            wave=wave,
            generation=1,
            firmware=entry.firmware,
            message=_first_reason(spec.name, wave),
            now=now,
        )
        inventory.upsert_attribute(server_id, TASK_NAMESPACE, data)
        return server_id, None

    written: dict[str, int] = {}
    late: list[ServerNote] = []
    with ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="rollout-create") as pool:
        for server_id, why in pool.map(write, order):
            if why:
                late.append(_note(by_id[server_id], why))
            else:
                written[server_id] = waves[server_id]
            if on_progress is not None:
                on_progress(len(written) + len(late), len(order))
    final = record.with_event(
        f"{len(written)} members written" + (f", {len(late)} left out (an open task)" if late else ""),
        by=requester,
        now=utc_now(),
        phase=RolloutPhase.ACTIVE,
        members=len(written),
        refused=[*refused, *late],
    )
    stored = store.save(stored, final)
    return CreateResult(stored, written, fleet, late)


# --------------------------------------------------------------------------------------------------------------
# status and list


@dataclass
class RolloutStatus:
    """``rollout status``: the record, every member, what :func:`~flasher.rollout.policy.evaluate` says about
    them now, and an estimate of the end (``eta``, UTC; ``None`` with ``eta_note`` saying why when there is
    none)."""

    rollout: StoredRollout
    members: list[Member]
    evaluation: Evaluation
    now: datetime
    eta: datetime | None = None
    eta_note: str = ""
    median_run: float | None = None

    @property
    def record(self) -> RolloutRecord:
        return self.rollout.record

    def state_text(self) -> str:
        """``running``, ``paused``, ``aborted``, ``completed`` (closed while running) or ``creating``."""
        record = self.record
        if record.phase is RolloutPhase.CREATING:
            return "creating"
        if record.phase is RolloutPhase.CLOSED and record.state is RolloutState.RUNNING:
            return "completed"
        return record.state.value

    def failures(self) -> list[Member]:
        """The failed members, newest first."""
        failed = [m for m in self.members if m.status is TaskStatus.FAILED]
        return sorted(failed, key=lambda m: m.completed_at or self.now, reverse=True)

    def as_json(self) -> dict[str, Any]:
        """Everything, as ``rollout status --json`` prints it."""
        evaluation = self.evaluation
        return {
            "name": self.record.name,
            "state": self.state_text(),
            "record": self.record.to_data(),
            "counts": dict(evaluation.counts),
            "waves": [
                {"wave": w.number, "size": w.size, "counts": dict(w.counts), "open": w.open, "why": w.why}
                for w in evaluation.waves
            ],
            "halts": [
                {
                    "firmware": h.firmware.label,
                    "why": h.why,
                    "text": h.text,
                    "failures": [{"server": f.server_id, "name": f.name, "error": f.error} for f in h.failures],
                }
                for h in evaluation.halts
            ],
            "waiting": dict(evaluation.waiting_by_reason()),
            "waits": [
                {"server": m.server_id, "name": m.name, "reason": w.reason.value, "text": w.text}
                for m in self.members
                if (w := evaluation.waits.get(m.server_id)) is not None
            ],
            "failures": [
                {
                    "server": m.server_id,
                    "name": m.name,
                    "wave": m.wave,
                    "firmware": [k.label for k in m.failed],
                    "error": m.error,
                }
                for m in self.failures()
            ],
            "members": [
                {
                    "server": m.server_id,
                    "name": m.name,
                    "wave": m.wave,
                    "generation": m.generation,
                    "status": m.status.value or "new",
                    "firmware": [k.label for k in m.firmware],
                    "last_message": m.last_message,
                }
                for m in self.members
            ],
            "median_run_seconds": self.median_run,
            "eta": self.eta.isoformat().replace("+00:00", "Z") if self.eta else None,
            "eta_note": self.eta_note,
        }


def _run_seconds(member: Member) -> float | None:
    start = member.claimed_at or member.created_at
    if member.status is not TaskStatus.SUCCESS or start is None or member.completed_at is None:
        return None
    return max(0.0, (member.completed_at - start).total_seconds())


def _eta(
    record: RolloutRecord, members: list[Member], evaluation: Evaluation, now: datetime
) -> tuple[datetime | None, str, float | None]:
    runs = [r for r in (_run_seconds(m) for m in members) if r is not None]
    median = statistics.median(runs) if runs else None
    left = [m for m in members if not m.ended and m.server_id not in evaluation.cancel]
    if not left:
        return None, "every member has ended", median
    if record.state is not RolloutState.RUNNING or record.phase is not RolloutPhase.ACTIVE:
        return None, f"the rollout is {record.state.value}", median
    if median is None:
        return None, "no member has finished yet", median
    halted = evaluation.halted()
    blocked = [m for m in left if m.waiting and any(k in halted for k in m.firmware)]
    moving = len(left) - len(blocked)
    if moving == 0:
        return None, "every remaining member waits on a halted firmware", median
    parallel = max(1, min(record.policy.max_active or moving, moving))
    eta = now + timedelta(seconds=median * -(-moving // parallel))
    note = f"{moving} members left at {parallel} at once, {median:.0f} s each (median so far)"
    if blocked:
        note += f"; {len(blocked)} more wait on halted firmware"
    if record.policy.windows or record.policy.windows_for:
        note += "; maintenance windows not counted"
    return eta, note, median


def status(
    inventory: InventoryClient, name: str, settings: RolloutSettings, *, now: datetime | None = None
) -> RolloutStatus:
    """``rollout status NAME``: one record read and one paged member listing."""
    now = now or utc_now()
    stored = RolloutStore(inventory).get(name)
    members = [m for _, _, m in read_members(list_member_servers(inventory, name), stored.record, settings)]
    members.sort(key=lambda m: (m.wave, m.name, m.server_id))
    evaluation = evaluate(stored.record, members, now)
    eta, note, median = _eta(stored.record, members, evaluation, now)
    return RolloutStatus(stored, members, evaluation, now, eta, note, median)


def list_rollouts(inventory: InventoryClient, *, include_closed: bool = True) -> tuple[list[StoredRollout], list[str]]:
    """Every rollout record (oldest first) and one line per record that could not be read."""
    return RolloutStore(inventory).list(active_only=not include_closed)


# --------------------------------------------------------------------------------------------------------------
# control


def _change(
    inventory: InventoryClient,
    name: str,
    by: str,
    text: str,
    check: Callable[[RolloutRecord], str | None],
    **changes: Any,
) -> StoredRollout:
    store = RolloutStore(inventory)
    stored = store.get(name)
    refusal = check(stored.record)
    if refusal:
        raise RolloutError(refusal)
    return store.save(stored, stored.record.with_event(text, by=by, now=utc_now(), **changes))


def pause(inventory: InventoryClient, name: str, *, by: str) -> StoredRollout:
    """Stop admitting members (one record write); members that have not started go back to wait at their start
    gate; active ones finish."""

    def check(record: RolloutRecord) -> str | None:
        if record.state is RolloutState.ABORTED:
            return f"rollout {name} was aborted; it cannot be paused"
        if record.state is RolloutState.PAUSED:
            return f"rollout {name} is paused already (by {record.updated_by or '?'})"
        return None

    return _change(inventory, name, by, f"paused by {by}", check, state=RolloutState.PAUSED)


def resume(inventory: InventoryClient, name: str, *, by: str) -> StoredRollout:
    """Admit members again after a pause."""

    def check(record: RolloutRecord) -> str | None:
        if record.state is RolloutState.ABORTED:
            return f"rollout {name} was aborted; create a new rollout instead"
        if record.state is RolloutState.RUNNING:
            return f"rollout {name} is running (not paused)"
        return None

    return _change(inventory, name, by, f"resumed by {by}", check, state=RolloutState.RUNNING)


@dataclass
class MemberWrites:
    """What abort or retry-failed did to the members: ``changed`` (server ids), ``skipped`` (server id → why)."""

    rollout: StoredRollout
    changed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _rewrite(
    inventory: InventoryClient,
    servers: Sequence[Server],
    rollout: str,
    change: Callable[[InstallTask, dict[str, Any]], dict[str, Any] | str | None],
    result: MemberWrites,
) -> None:
    """For each member among ``servers``: ``change(task, data)`` gives the new data (written if the attribute is
    still what was listed), a reason to leave it (``str``), or ``None`` (nothing to do)."""

    def one(server: Server) -> tuple[str, str | None, bool]:
        task = read_member(server, rollout)
        attribute = server.attribute(TASK_NAMESPACE)
        if task is None or attribute is None:
            return str(server.uuid), None, False
        new = change(task, attribute.as_object())
        if new is None:
            return str(server.uuid), None, False
        if isinstance(new, str):
            return str(server.uuid), new, False
        current = inventory.get_attribute(str(server.uuid), TASK_NAMESPACE).data
        if current != attribute.data:
            return str(server.uuid), "its attribute changed meanwhile; run the command again", False
        inventory.replace_attribute(str(server.uuid), TASK_NAMESPACE, new)
        return str(server.uuid), None, True

    with ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="rollout-write") as pool:
        for server_id, reason, changed in pool.map(one, servers):
            if changed:
                result.changed.append(server_id)
            elif reason:
                result.skipped[server_id] = reason


def abort(inventory: InventoryClient, name: str, *, by: str) -> MemberWrites:
    """Abort for good: the record says ``aborted`` (one write, which every start gate reads), then the members
    that have not been admitted are written ``cancelled``, and queued ones get ``cancel: true`` (the poll cancels
    them; a worker that claimed one cancels it at its start gate). Active members finish."""

    def check(record: RolloutRecord) -> str | None:
        return f"rollout {name} was aborted already" if record.state is RolloutState.ABORTED else None

    stored = _change(
        inventory, name, by, f"aborted by {by}", check, state=RolloutState.ABORTED, phase=RolloutPhase.ACTIVE
    )
    result = MemberWrites(stored)
    now = utc_now()

    def change(task: InstallTask, data: dict[str, Any]) -> dict[str, Any] | str | None:
        if is_new(task.status) and not task.cancel:
            cancelled = task.model_copy(deep=True)
            cancelled.transition(TaskStatus.CANCELLED, now=now)
            cancelled.add_message(f"cancelled: rollout {name} aborted by {by} before it was admitted", now=now)
            return cancelled.to_attribute()
        if task.status is TaskStatus.QUEUED and not task.cancel:
            return {**data, "cancel": True}
        return None

    _rewrite(inventory, list_member_servers(inventory, name), name, change, result)
    return result


def retry_failed(inventory: InventoryClient, name: str, *, by: str) -> MemberWrites:
    """Bump the generation (the breaker starts counting again: the old failures no longer halt anything) and make
    every failed member of the old generation a new request of the new one, in its wave."""
    store = RolloutStore(inventory)
    stored = store.get(name)
    record = stored.record
    if record.state is RolloutState.ABORTED:
        raise RolloutError(f"rollout {name} was aborted; create a new rollout instead")
    servers = list_member_servers(inventory, name)
    old = record.generation
    failed = [
        server
        for server in servers
        if (task := read_member(server, name)) is not None
        and task.status is TaskStatus.FAILED
        and task.rollout is not None
        and task.rollout.generation == old
    ]
    if not failed:
        raise RolloutError(f"rollout {name} has no failed member of generation {old}: nothing to retry")
    new_record = record.with_event(
        f"retry-failed by {by}: generation {old + 1}, {len(failed)} failed members requested again",
        by=by,
        now=utc_now(),
        generation=old + 1,
        phase=RolloutPhase.ACTIVE,
    )
    stored = store.save(stored, new_record)
    result = MemberWrites(stored)
    now = utc_now()

    def change(task: InstallTask, data: dict[str, Any]) -> dict[str, Any] | str | None:
        if task.status is not TaskStatus.FAILED or task.rollout is None or task.rollout.generation != old:
            return None
        return member_request(
            new_record,
            wave=task.rollout.wave,
            generation=old + 1,
            firmware=task.rollout.firmware,
            message=f"requested again by {by} (retry-failed, generation {old + 1}); it failed: {task.error or '-'}",
            now=now,
            keep_messages=task.messages[-4:],
        )

    _rewrite(inventory, failed, name, change, result)
    return result
