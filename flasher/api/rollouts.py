"""Fleet rollouts over HTTP: the operations ``flasher rollout`` has, with the same semantics and refusals.

* ``GET /api/v1/rollouts``: every rollout (``?active=true``: those that have not closed).
* ``GET /api/v1/rollouts/{name}``: its status: state, waves with their members, caps and how full they are, the
  breaker and what it halted, what waits for what, failures, members by state, an estimate of the end.
* ``POST /api/v1/rollouts/plan``: what a rollout would do (``rollout plan --json``); writes nothing.
* ``POST /api/v1/rollouts``: create one (the body is an ``apply`` file's keys as JSON: ``name``, ``select``,
  ``firmware-set`` or ``resolve``, ``waves``, ``max-active``, ...; 201).
* ``POST /api/v1/rollouts/{name}/pause``, ``/resume``, ``/abort``, ``/retry-failed``.

Every handler calls :mod:`flasher.rollout.operations`, the functions the CLI calls; nothing here decides
anything about a rollout. Errors as the CLI's exit statuses: a bad request (:class:`RolloutSpecError`,
:class:`SelectorError`) is 400 naming the field and the value, with nothing written; an unknown rollout 404; a
refusal (the name is taken, a state change the rollout refuses, nothing to retry, the record changed meanwhile)
409; inventory errors as elsewhere (502/503).

Scopes (:mod:`flasher.api.auth`): read for the GETs and the plan; write for pause and abort (they only stop
work); write and power for create, resume and retry-failed, since they start installs, and every install of a
rollout restarts a host or a BMC (members are never dry runs: :func:`flasher.api.auth.restarts_hosts`). The
record's ``requester`` and ``updatedBy`` are the token's subject, never a value the client sends.

Events: the member attributes create, abort and retry-failed write are published to the event stream (source
``api``), as the API's task writes are; pause and resume change only the record, which publishes nothing.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, cast

from fastapi import APIRouter, Body, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from flasher.api.auth import Principal, restarts_hosts
from flasher.api.context import APIContext, Context, Reader, Writer
from flasher.api.errors import APIError, bad_input
from flasher.inventory.client import InventoryClient
from flasher.rollout import operations
from flasher.rollout.definition import Baseline, RolloutSpec, RolloutSpecError, check_name
from flasher.rollout.selectors import SelectorError
from flasher.rollout.store import RolloutError, RolloutNotFoundError, StoredRollout
from flasher.task.model import TaskKind

router = APIRouter(prefix="/api/v1/rollouts", tags=["rollouts"])

RolloutName = Annotated[str, Path(description="The rollout's name (a-z, 0-9, '.', '_', '-').")]

_STATUSES = ("new", "queued", "active", "success", "failed", "cancelled")


# --------------------------------------------------------------------------------------------------------------
# request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PlanBody(_Body):
    """What to plan: the servers (``select``) and the baseline (``firmware-set`` or ``resolve``)."""

    select: list[StrictStr] = Field(
        description="Selectors: all, facility=F, vendor=V, model=M, attr=NS~KEY~OP~VALUE, "
        "component=TYPE[:VENDOR[:MODEL]], uuid=U[,U]. Different kinds AND, one kind ORs.",
        examples=[["model=r6515"]],
    )
    firmware_set: StrictStr | None = Field(None, alias="firmware-set", description="The baseline: this set.")
    resolve: StrictBool = Field(False, description="The baseline: each server's set by its vendor/model labels.")
    force: StrictBool = Field(False, description="Allow downgrades, reinstalls and unknown versions.")


class CreateBody(PlanBody):
    """A rollout: the keys of a ``flasher rollout apply`` file (create's option names), as JSON."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "name": "bios-q3",
                    "select": ["model=r6515"],
                    "firmware-set": "dell-r6515",
                    "waves": "2,10%,50%,100%",
                    "max-active": 50,
                    "max-active-per": ["rack=3"],
                    "group": ["rack=attr:sh.example.location~rack"],
                    "max-failures": 3,
                }
            ]
        },
    )

    name: StrictStr = Field(description="The rollout's name (1-63 of a-z, 0-9, '.', '_', '-').")
    waves: StrictStr | list[StrictStr | StrictInt] | None = Field(
        None, description="Cumulative wave targets: a canary count, then counts or percentages (2,10%,50%,100%)."
    )
    soak: StrictStr | StrictInt | StrictFloat | None = Field(
        None, description="Wait this long after a wave ended (30s, 10m, 2h, or seconds)."
    )
    max_active: StrictInt | None = Field(None, alias="max-active", description="At most this many queued or active.")
    max_active_per: list[StrictStr] | None = Field(
        None, alias="max-active-per", description="GROUP=N: at most N per value of a group (rack=2)."
    )
    max_reboots_per: list[StrictStr] | None = Field(
        None, alias="max-reboots-per", description="GROUP=N: at most N members restarting their host per group value."
    )
    group: list[StrictStr] | dict[str, StrictStr] | None = Field(
        None, description="NAME=SPEC: name a group (rack=attr:sh.example.location~rack)."
    )
    max_failures: StrictInt | None = Field(
        None, alias="max-failures", description="The breaker: a firmware halts after this many failures (3)."
    )
    max_failure_rate: StrictStr | StrictInt | StrictFloat | None = Field(
        None, alias="max-failure-rate", description="... or when more than P% of its ended members failed (5%)."
    )
    min_ended: StrictInt | None = Field(
        None, alias="min-ended", description="The failure rate counts once this many have ended (10)."
    )
    window: list[StrictStr] | None = Field(
        None, description="Maintenance windows: 'Sat 22:00-Sun 04:00 Europe/Amsterdam', '22:00-04:00 UTC'."
    )
    window_for: list[StrictStr] | dict[str, list[StrictStr]] | None = Field(
        None, alias="window-for", description="FACILITY=WINDOW: a facility's own window."
    )
    power_off_required: StrictBool | None = Field(
        None, alias="power-off-required", description="Power each host off before its installs (restored after)."
    )
    priority: StrictInt | None = Field(None, description="The members' task priority, 0..3 (1).")
    requester: StrictStr | None = Field(None, description="Ignored: the requester is the token's subject.")


# --------------------------------------------------------------------------------------------------------------
# answers


class RolloutSummary(BaseModel):
    """One line of ``GET /api/v1/rollouts``."""

    name: str
    state: str
    phase: str
    generation: int
    members: int
    wave_sizes: list[int]
    baseline: str
    requester: str
    created_at: str | None
    updated_at: str | None
    updated_by: str


class RolloutList(BaseModel):
    """``GET /api/v1/rollouts``: the rollouts (oldest first) and records that could not be read."""

    rollouts: list[RolloutSummary]
    problems: list[str]


class MemberView(BaseModel):
    """A member: its server, wave, generation, status (``new`` while it waits), firmware and last message."""

    server: str
    name: str
    wave: int
    generation: int
    status: str
    firmware: list[str]
    last_message: str


class WaveView(BaseModel):
    """A wave: its size, counts per status, whether it is open (else why not), its members' server ids."""

    wave: int
    size: int
    counts: dict[str, int]
    open: bool
    why: str
    members: list[str]


class CapUse(BaseModel):
    """A per-group cap (``group``, ``max``) and how many members hold a slot per group value now."""

    group: str
    max: int
    holding: dict[str, int]


class CapsView(BaseModel):
    """The caps: ``max_active`` (``null``: none) and ``holding`` (members queued or active now), the per-group
    caps and the host-reboot caps."""

    max_active: int | None
    holding: int
    max_active_per: list[CapUse]
    max_reboots_per: list[CapUse]


class FailureView(BaseModel):
    """A failing server of a halt."""

    server: str
    name: str
    error: str


class HaltView(BaseModel):
    """A firmware the breaker halted, why, and the failing servers."""

    firmware: str
    why: str
    text: str
    failures: list[FailureView]


class BreakerView(BaseModel):
    """The failure budget (``budget`` in words), the generation it counts in, and the halts (``tripped`` when
    any)."""

    budget: str
    max_failures: int
    max_failure_rate: float | None
    min_ended: int
    generation: int
    tripped: bool
    halts: list[HaltView]


class RolloutStatusView(BaseModel):
    """``GET /api/v1/rollouts/{name}``: ``rollout status --json``'s keys, with the caps, the breaker and the
    members by state; ``record`` is the record as the inventory holds it."""

    name: str
    state: str
    record: dict[str, Any]
    counts: dict[str, int]
    waves: list[WaveView]
    caps: CapsView
    breaker: BreakerView
    halts: list[HaltView]
    waiting: dict[str, int]
    waits: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    members: list[MemberView]
    members_by_state: dict[str, list[str]]
    median_run_seconds: float | None
    eta: str | None
    eta_note: str


class CreatedView(BaseModel):
    """``POST /api/v1/rollouts``: the members written (server id → wave), and the servers left out."""

    name: str
    state: str
    members: dict[str, int]
    wave_sizes: list[int]
    skipped: list[dict[str, Any]]
    refused: list[dict[str, Any]]
    record: dict[str, Any]


class ChangedView(BaseModel):
    """A control operation's answer: the rollout's state now and the record; for abort and retry-failed the
    members written (``changed``) and those left as they were, with why (``skipped``)."""

    name: str
    state: str
    phase: str
    generation: int
    record: dict[str, Any]
    changed: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------
# errors


_FIELD_LINE = re.compile(r"^(?:[\w. ]+: )?field '([^']+)': (.*)$")
_VALUE_REASON = re.compile(r"^value (.+?) ((?:is|has|must|needs|give|the) .*)$")


def _line_problem(line: str, fallback: str) -> tuple[str, Any, str]:
    """``field 'max-active': value 0 is less than 1`` → ``("max-active", "0", "is less than 1")``; a line that
    names no field is reported against ``fallback``."""
    match = _FIELD_LINE.match(line)
    if match is None:
        return fallback, None, line
    value = _VALUE_REASON.match(match[2])
    if value is None:
        return match[1], None, match[2]
    return match[1], value[1], value[2]


def _spec_problems(exc: ValidationError) -> list[tuple[str, Any, str]]:
    problems = []
    for item in exc.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "firmware-set"
        kind = item["type"]
        if kind == "missing":
            problems.append((field, None, "is missing"))
        elif kind == "extra_forbidden":
            problems.append((field, None, "is not a known field"))
        else:
            value = item.get("input")
            if not isinstance(value, str | int | float | bool | list | dict | None):
                value = str(value)
            if not item["loc"]:
                value = None  # the whole request: the message says what is wrong
            problems.append((field, value, str(item["msg"]).removeprefix("Value error, ")))
    return problems


def _cap_field(spec: RolloutSpec, line: str) -> str:
    """Which of the spec's lists holds the cap a policy error names (``cap 'rack=x': ...``)."""
    match = re.match(r"^cap '([^']*)'", line)
    if match and match[1] in spec.max_reboots_per and match[1] not in spec.max_active_per:
        return "max-reboots-per"
    if match:
        return "max-active-per"
    return "group" if "group" in line else "max-active-per"


def spec_of(data: dict[str, Any]) -> RolloutSpec:
    """Validate a create body as ``rollout apply`` validates its file (:class:`RolloutSpec` and its policy);
    :class:`~flasher.api.errors.APIError` 400 naming each bad field and value."""
    try:
        spec = RolloutSpec.model_validate(data)
    except ValidationError as exc:
        raise bad_input(_spec_problems(exc)) from None
    try:
        spec.policy()
    except RolloutSpecError as exc:
        raise bad_input([_policy_problem(spec, line) for line in exc.lines]) from None
    return spec


def _policy_problem(spec: RolloutSpec, line: str) -> tuple[str, Any, str]:
    """A policy error (a cap or a group that does not parse) against the option that holds it."""
    at = line.find("cap '")
    if at >= 0:
        return _cap_field(spec, line[at:]), None, line[at:]
    at = line.find("group '")
    if at >= 0:
        return "group", None, line[at:]
    field, value, reason = _line_problem(line, "group")
    if field == "data" or field.startswith("policy"):
        return "group", None, reason
    return field, value, reason


@contextmanager
def rollout_errors() -> Iterator[None]:
    """The CLI's error kinds as answers: 400 (a bad selector), 404 (no such rollout), 409 (refused), 502 (a
    record in the inventory that is not valid: the request was checked before); inventory errors pass to the
    app's handlers."""
    try:
        yield
    except RolloutSpecError as exc:
        raise APIError(502, f"the rollout record in the inventory is not valid: {exc}") from None
    except SelectorError as exc:
        raise bad_input([("select", None, str(exc))]) from None
    except RolloutNotFoundError as exc:
        raise APIError(404, str(exc)) from None
    except RolloutError as exc:  # exists, changed meanwhile, a state change it refuses, nothing to do
        raise APIError(409, str(exc)) from None


class _Publishing:
    """The inventory as the rollout operations use it, publishing each install attribute they write (create's
    member requests, abort's cancellations, retry-failed's new requests) as the API's other writes are: a client
    following ``/api/v1/events?rollout=`` sees them. Everything else is the API's inventory client."""

    def __init__(self, context: APIContext) -> None:
        self._context = context
        self._inventory = context.inventory

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inventory, name)

    def upsert_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any]) -> None:
        self._inventory.upsert_attribute(uuid, namespace, data)
        self._published(uuid, namespace, data)

    def replace_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any], *, once: bool = False) -> None:
        self._inventory.replace_attribute(uuid, namespace, data, once=once)
        self._published(uuid, namespace, data)

    def _published(self, uuid: str, namespace: str, data: Mapping[str, Any]) -> None:
        if namespace == TaskKind.INSTALL.namespace:
            self._context.published(uuid, TaskKind.INSTALL, data)


def writing(context: APIContext) -> InventoryClient:
    """The inventory client for an operation that writes members (:class:`_Publishing`)."""
    return cast(InventoryClient, _Publishing(context))


def check_select(select: list[str]) -> None:
    """Refuse ``uuids-file=`` (400): over HTTP it would read a file on the API's host (and its errors would
    show the file's lines); the client sends ``uuid=U,U`` instead, as the CLI turns a file into."""
    for text in select:
        if text.strip().startswith("uuids-file"):
            reason = "reads a file on the API's host: send uuid=U[,U] with the uuids instead"
            raise bad_input([("select", text.split("=", 1)[0], reason)])


def _name(name: str) -> str:
    """``name`` when it is a rollout name; 400 naming the field otherwise."""
    try:
        return check_name(name)
    except RolloutSpecError as exc:
        raise bad_input(
            [("name", name, "is not a rollout name: " + line.split(" is not valid: ")[-1]) for line in exc.lines]
        ) from None


def _starts_installs(context: APIContext, principal: Principal) -> None:
    """Create, resume and retry-failed start members' installs, which are never dry runs: they need the power
    scope as an install request does."""
    if restarts_hosts(TaskKind.INSTALL, {"dryRun": False}):
        context.auth.require(principal, "power")


# --------------------------------------------------------------------------------------------------------------
# views


def _time(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def summary(stored: StoredRollout) -> dict[str, Any]:
    """A record's line in the list (the columns of ``rollout list``)."""
    record = stored.record
    return {
        "name": record.name,
        "state": record.state.value,
        "phase": record.phase.value,
        "generation": record.generation,
        "members": record.members,
        "wave_sizes": list(record.wave_sizes),
        "baseline": record.baseline.firmware_set or "resolve",
        "requester": record.requester,
        "created_at": _time(record.created_at),
        "updated_at": _time(record.updated_at),
        "updated_by": record.updated_by,
    }


def status_view(view: operations.RolloutStatus) -> dict[str, Any]:
    """``rollout status --json`` (:meth:`~flasher.rollout.operations.RolloutStatus.as_json`) with each wave's
    members, the caps with the slots members hold now, the breaker, and the members by state."""
    body = view.as_json()
    policy = view.record.policy
    compiled = policy.compile()
    members = view.members
    holding = [m for m in members if m.holding]
    by_wave: dict[int, list[str]] = defaultdict(list)
    by_state: dict[str, list[str]] = {status: [] for status in _STATUSES}
    for member in members:
        by_wave[member.wave].append(member.server_id)
        by_state.setdefault("new" if member.waiting else member.status.value, []).append(member.server_id)
    for entry in body["members"]:
        if entry["status"] in ("", "requested"):
            entry["status"] = "new"  # as the counts say it
    for wave in body["waves"]:
        wave["members"] = by_wave.get(wave["wave"], [])

    def use(caps: Any, reboots: bool) -> list[dict[str, Any]]:
        out = []
        for cap in caps:
            counted = Counter(
                m.groups.get(cap.group.text, "") for m in holding if m.reboots or not reboots
            )  # a reboot cap counts the members that restart their host
            out.append({"group": cap.label, "max": cap.limit, "holding": dict(sorted(counted.items()))})
        return out

    body["caps"] = {
        "max_active": policy.max_active,
        "holding": len(holding),
        "max_active_per": use(compiled.caps, reboots=False),
        "max_reboots_per": use(compiled.reboot_caps, reboots=True),
    }
    body["breaker"] = {
        "budget": compiled.budget(),
        "max_failures": policy.max_failures,
        "max_failure_rate": policy.max_failure_rate,
        "min_ended": policy.min_ended,
        "generation": view.record.generation,
        "tripped": bool(body["halts"]),
        "halts": body["halts"],
    }
    body["members_by_state"] = by_state
    return body


def _changed(stored: StoredRollout, writes: operations.MemberWrites | None = None) -> dict[str, Any]:
    record = stored.record
    return {
        "name": record.name,
        "state": record.state.value,
        "phase": record.phase.value,
        "generation": record.generation,
        "record": record.to_data(),
        "changed": list(writes.changed) if writes else [],
        "skipped": dict(writes.skipped) if writes else {},
    }


# --------------------------------------------------------------------------------------------------------------
# routes


@router.get("", response_model=RolloutList)
def list_rollouts(
    context: Context,
    principal: Reader,
    active: Annotated[bool, Query(description="Only rollouts that have not closed.")] = False,
) -> Any:
    """Every rollout, oldest first, as ``flasher rollout list``: state, phase, generation, members, waves."""
    with rollout_errors():
        rollouts, problems = operations.list_rollouts(context.inventory, include_closed=not active)
    return {"rollouts": [summary(r) for r in rollouts], "problems": problems}


@router.post("/plan")
def plan(body: PlanBody, context: Context, principal: Reader) -> dict[str, Any]:
    """What a rollout would do, read-only (``flasher rollout plan --json``): per selected server what would be
    installed, skipped or refused and why, with counts per facility, vendor/model and component."""
    if bool(body.firmware_set) == body.resolve:
        raise bad_input(
            [("firmware-set", body.firmware_set, "give firmware-set (a set's name or uuid) or resolve, not both")]
            if body.firmware_set
            else [("firmware-set", None, "is missing: give firmware-set (a set's name or uuid) or resolve: true")]
        )
    check_select(body.select)
    with rollout_errors():
        fleet = operations.plan(
            context.inventory, body.select, Baseline(firmware_set=body.firmware_set, force=body.force)
        )
    return operations.plan_as_json(fleet)


@router.post("", status_code=201, response_model=CreatedView)
def create(
    body: Annotated[CreateBody, Body(description="An apply file's keys.")], context: Context, principal: Writer
) -> Any:
    """Create a rollout as ``flasher rollout create``/``apply``: plan the selected servers, write the record, then
    each member's task attribute. The requester is the caller. 409 when the name is taken or no selected server
    would install anything."""
    data = body.model_dump(by_alias=True, exclude_none=True)
    data.pop("requester", None)
    check_select(body.select)
    spec = spec_of(data)
    _starts_installs(context, principal)
    with rollout_errors():
        result = operations.create(writing(context), spec, requester=principal.subject)
    record = result.rollout.record
    return {
        "name": record.name,
        "state": record.state.value,
        "members": result.members,
        "wave_sizes": list(record.wave_sizes),
        "skipped": [n.model_dump() for n in record.skipped],
        "refused": [n.model_dump() for n in record.refused],
        "record": record.to_data(),
    }


@router.get("/{name}", response_model=RolloutStatusView)
def status(name: RolloutName, context: Context, principal: Reader) -> Any:
    """The rollout's status (``flasher rollout status --json`` and more): waves with their members, caps and the
    slots held, the breaker and its halts, what waits for what, failures, members by state, an estimate of the
    end."""
    checked = _name(name)
    with rollout_errors():
        view = operations.status(context.inventory, checked, context.settings.rollout)
    return status_view(view)


@router.post("/{name}/pause", response_model=ChangedView)
def pause(name: RolloutName, context: Context, principal: Writer) -> Any:
    """Stop admitting members (409 when aborted or paused already)."""
    checked = _name(name)
    with rollout_errors():
        return _changed(operations.pause(context.inventory, checked, by=principal.subject))


@router.post("/{name}/resume", response_model=ChangedView)
def resume(name: RolloutName, context: Context, principal: Writer) -> Any:
    """Admit members again after a pause (409 when aborted or running). Needs the power scope too."""
    checked = _name(name)
    _starts_installs(context, principal)
    with rollout_errors():
        return _changed(operations.resume(context.inventory, checked, by=principal.subject))


@router.post("/{name}/abort", response_model=ChangedView)
def abort(name: RolloutName, context: Context, principal: Writer) -> Any:
    """Abort for good: members that have not started are cancelled, active installs finish (409 when aborted
    already)."""
    checked = _name(name)
    with rollout_errors():
        result = operations.abort(writing(context), checked, by=principal.subject)
    return _changed(result.rollout, result)


@router.post("/{name}/retry-failed", response_model=ChangedView)
def retry_failed(name: RolloutName, context: Context, principal: Writer) -> Any:
    """Request the failed members again in a new generation (409 when there is none, or when aborted). Needs
    the power scope too."""
    checked = _name(name)
    _starts_installs(context, principal)
    with rollout_errors():
        result = operations.retry_failed(writing(context), checked, by=principal.subject)
    return _changed(result.rollout, result)
