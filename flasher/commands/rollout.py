"""``flasher rollout``: plan, create, follow and steer fleet rollouts (docs/rollouts.md).

A thin layer over :mod:`flasher.rollout.operations` (the HTTP API calls the same functions): it turns options
into a :class:`~flasher.rollout.definition.RolloutSpec`, calls the operation, and prints the result. Nothing here
talks to Redis or a BMC: the commands read and write the inventory, and the flasher replicas do the rest.
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from flasher.commands.common import console, fail, print_json, print_table, state
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError
from flasher.rollout import operations
from flasher.rollout.definition import Baseline, RolloutPhase, RolloutSpec, RolloutSpecError
from flasher.rollout.planning import FleetPlan
from flasher.rollout.selectors import SelectorError, read_uuids_file
from flasher.rollout.store import RolloutConflictError, RolloutError, RolloutNotFoundError, StoredRollout

EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3
EXIT_INVENTORY: Final = 4
EXIT_HELP: Final = (
    "Exit status: 0 done; 1 (status) the rollout has failed members or halted firmware; 2 bad options or an "
    "invalid request (nothing written); 3 refused (the name is taken, the rollout changed meanwhile, nothing to do); "
    "4 the inventory failed or the rollout does not exist."
)

app = typer.Typer(
    name="rollout",
    help="Fleet rollouts: one baseline across many servers, in waves, under caps, behind a breaker, inside "
    "maintenance windows. " + EXIT_HELP,
    no_args_is_help=True,
)

SelectOption = Annotated[
    list[str],
    typer.Option(
        "--select",
        help="Which servers: all, facility=F, vendor=V, model=M, attr=NS~KEY~OP~VALUE, component=TYPE[:VENDOR[:MODEL]],"
        " uuid=U[,U], uuids-file=PATH. Repeat to narrow (different kinds AND, one kind ORs).",
        show_default=False,
    ),
]
FirmwareSetOption = Annotated[
    str | None, typer.Option("--firmware-set", help="The baseline: this firmware set (name or uuid).")
]
ResolveOption = Annotated[
    bool, typer.Option("--resolve", help="The baseline: each server's set by its vendor/model labels.")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Allow downgrades, reinstalls and unknown versions.")]
ByOption = Annotated[str | None, typer.Option("--by", help="Who does it, for the record (default: $USER).")]
RequesterOption = Annotated[
    str | None, typer.Option("--requester", help="Who asks, written into the record and the members (default: $USER).")
]


def _who(given: str | None) -> str:
    if given:
        return given
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _client(ctx: typer.Context) -> InventoryClient:
    return InventoryClient(state(ctx).settings().inventory)


@contextmanager
def _errors() -> Iterator[None]:
    """One line and the exit status for each kind of error."""
    try:
        yield
    except RolloutSpecError as exc:
        fail("invalid rollout, nothing written: " + "; ".join(exc.lines), EXIT_USAGE)
    except SelectorError as exc:
        fail(str(exc), EXIT_USAGE)
    except RolloutNotFoundError as exc:
        fail(str(exc), EXIT_INVENTORY)
    except (RolloutConflictError, RolloutError) as exc:
        fail(str(exc), EXIT_REFUSED)
    except InventoryError as exc:
        fail(str(exc), EXIT_INVENTORY)


def _selectors(values: list[str]) -> list[str]:
    """``uuids-file=PATH`` read here (the record stores the uuids), others as given."""
    out = []
    for value in values:
        if value.strip().startswith("uuids-file="):
            with _errors():
                out.append("uuid=" + ",".join(read_uuids_file(value.split("=", 1)[1].strip())))
        else:
            out.append(value)
    return out


# -- plan -------------------------------------------------------------------------------------------------------


def _plan_rows(plan: FleetPlan) -> list[list[Any]]:
    rows = []
    for entry in plan.servers:
        installs = ", ".join(f"{i.component} {i.installed_version or '?'} → {i.version}" for i in entry.installs)
        rows.append(
            [
                entry.server.name,
                str(entry.server.uuid),
                entry.server.facility,
                entry.vendor_model,
                entry.outcome.value + (" (busy)" if entry.busy else ""),
                installs or None,
                entry.busy or entry.reason,
            ]
        )
    return rows


_PLAN_COLUMNS: Final = ["server", "uuid", "facility", "vendor/model", "outcome", "would install", "why"]


def _print_counts(counts: dict[str, Any]) -> None:
    outcomes = ("install", "current", "refused")
    for title in ("facility", "vendor/model"):
        rows = [[key, *(value.get(o, 0) for o in outcomes)] for key, value in counts[title].items()]
        print_table(f"per {title}", [title, *outcomes], rows)
    parts = ("install", "current", "unknown", "refused")
    rows = [[key, *(value.get(p, 0) for p in parts)] for key, value in counts["component"].items()]
    print_table("per component", ["component", *parts], rows)


@app.command("plan", epilog=EXIT_HELP)
def plan_command(  # noqa: PLR0917 (typer options)
    ctx: typer.Context,
    select: SelectOption,
    firmware_set: FirmwareSetOption = None,
    resolve: ResolveOption = False,
    force: ForceOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: every server and the counts.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print one CSV row per server.")] = False,
) -> None:
    """What a rollout would do, read-only: per server what is installed, skipped or refused, and why.

    With --select all this is the fleet's compliance report against the baseline.
    """
    if bool(firmware_set) == resolve:
        fail("give --firmware-set SET or --resolve", EXIT_USAGE)
    with _errors():
        fleet = operations.plan(_client(ctx), _selectors(select), Baseline(firmware_set=firmware_set, force=force))
    counts = fleet.counts()
    if as_json:
        print_json(operations.plan_as_json(fleet))
        return
    if as_csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(_PLAN_COLUMNS)
        for row in _plan_rows(fleet):
            writer.writerow(["" if cell is None else cell for cell in row])
        return
    print_table(f"{fleet.baseline.describe()} over {' and '.join(fleet.selectors)}", _PLAN_COLUMNS, _plan_rows(fleet))
    _print_counts(counts)
    outcome = counts["outcome"]
    console.print(
        f"{counts['servers']} servers: {outcome.get('install', 0)} would install, {outcome.get('current', 0)} at the"
        f" baseline, {outcome.get('refused', 0)} refused; {counts['busy']} with an open task",
        markup=False,
        highlight=False,
    )


# -- create and apply -------------------------------------------------------------------------------------------


def _create(ctx: typer.Context, spec: RolloutSpec, requester: str) -> None:
    client = _client(ctx)
    console.print(f"planning rollout {spec.name} ...", markup=False, highlight=False)
    with _errors():
        result = operations.create(client, spec, requester=requester)
    record = result.rollout.record
    sizes = ", ".join(f"{n}" for n in record.wave_sizes)
    console.print(
        f"rollout {record.name} created by {requester}: {len(result.members)} members in {len(record.wave_sizes)}"
        f" waves ({sizes}); {len(record.skipped)} skipped (at the baseline), {len(record.refused)} refused",
        markup=False,
        highlight=False,
    )
    for note in record.refused[:20]:
        console.print(f"  refused {note.name or note.server}: {note.reason}", markup=False, highlight=False)
    if len(record.refused) > 20:
        console.print(f"  ... and {len(record.refused) - 20} more (rollout status --json)", markup=False)
    console.print(f"follow it: flasher rollout status {record.name} --watch", markup=False, highlight=False)


@app.command("create", epilog=EXIT_HELP)
def create_command(  # noqa: PLR0917 (typer options)
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The rollout's name (a-z, 0-9, '.', '_', '-').", show_default=False)],
    select: SelectOption,
    firmware_set: FirmwareSetOption = None,
    resolve: ResolveOption = False,
    force: ForceOption = False,
    waves: Annotated[
        str, typer.Option("--waves", help="Cumulative wave targets: a canary count, then counts or percentages.")
    ] = "100%",
    soak: Annotated[str, typer.Option("--soak", help="Wait this long after a wave ended (30s, 10m, 2h).")] = "0",
    max_active: Annotated[
        int | None, typer.Option("--max-active", min=1, help="At most this many members queued or active at once.")
    ] = None,
    max_active_per: Annotated[
        list[str] | None, typer.Option("--max-active-per", help="GROUP=N: at most N per value of a group (rack=2).")
    ] = None,
    max_reboots_per: Annotated[
        list[str] | None,
        typer.Option("--max-reboots-per", help="GROUP=N: at most N members restarting their host per group value."),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option("--group", help="NAME=SPEC: name a group (rack=attr:sh.example.location~rack)."),
    ] = None,
    max_failures: Annotated[
        int, typer.Option("--max-failures", min=1, help="The breaker: a firmware halts after this many failures.")
    ] = 3,
    max_failure_rate: Annotated[
        str | None, typer.Option("--max-failure-rate", help="... or when more than P% of its ended members failed.")
    ] = None,
    min_ended: Annotated[
        int, typer.Option("--min-ended", min=1, help="The failure rate counts once this many have ended.")
    ] = 10,
    window: Annotated[
        list[str] | None,
        typer.Option("--window", help="Maintenance window: 'Sat 22:00-Sun 04:00 Europe/Amsterdam', '22:00-04:00 UTC'."),
    ] = None,
    window_for: Annotated[
        list[str] | None, typer.Option("--window-for", help="FACILITY=WINDOW: a facility's own window (repeatable).")
    ] = None,
    power_off_required: Annotated[
        bool, typer.Option("--power-off-required", help="Power each host off before its installs (restored after).")
    ] = False,
    priority: Annotated[int, typer.Option("--priority", "-p", min=0, max=3, help="The members' task priority.")] = 1,
    requester: RequesterOption = None,
) -> None:
    """Create a rollout: plan the selected servers, write the record, then each member's task attribute.

    A server with an open task is not made a member (it is listed as refused); one already at the baseline is
    recorded as skipped. The flasher replicas then move the rollout; follow it with rollout status --watch.
    """
    data: dict[str, Any] = {
        "name": name,
        "select": _selectors(select),
        "firmware-set": firmware_set,
        "resolve": resolve,
        "force": force,
        "waves": waves,
        "soak": soak,
        "max-active": max_active,
        "max-active-per": max_active_per or [],
        "max-reboots-per": max_reboots_per or [],
        "group": group or [],
        "max-failures": max_failures,
        "max-failure-rate": max_failure_rate,
        "min-ended": min_ended,
        "window": window or [],
        "window-for": window_for or [],
        "power-off-required": power_off_required,
        "priority": priority,
    }
    with _errors():
        spec = RolloutSpec.from_data(data, where="options")
    _create(ctx, spec, _who(requester))


@app.command("apply", epilog=EXIT_HELP)
def apply_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="YAML file whose keys are create's options (name, select, ...).")],
    requester: RequesterOption = None,
) -> None:
    """Create the rollout a YAML file describes (the same fields as rollout create's options)."""
    with _errors():
        spec = operations.load_spec(path)
    _create(ctx, spec, _who(spec.requester or requester))


# -- status and list --------------------------------------------------------------------------------------------


def render_status(view: operations.RolloutStatus) -> RenderableType:
    """The rich view of ``rollout status``."""
    record = view.record
    evaluation = view.evaluation
    parts: list[RenderableType] = []
    head = (
        f"rollout {record.name}: {view.state_text()}, generation {record.generation} - {record.baseline.describe()}"
        f" over {' and '.join(record.selectors)}"
    )
    parts.append(Text(head, style="bold"))
    policy = record.policy
    compiled = policy.compile()
    bits = [f"waves {','.join(policy.waves)}"]
    if policy.soak_seconds:
        bits.append(f"soak {policy.soak_seconds:g} s")
    if policy.max_active:
        bits.append(f"max-active {policy.max_active}")
    bits += [f"max-active-per {c.text()}" for c in policy.max_active_per]
    bits += [f"max-reboots-per {c.text()}" for c in policy.max_reboots_per]
    bits.append(f"breaker {compiled.budget()}")
    bits += [f"window {w}" for w in policy.windows]
    bits += [f"window {f}: {', '.join(ws)}" for f, ws in policy.windows_for.items()]
    if policy.power_off_required:
        bits.append("host powered off for installs")
    parts.append(Text("policy: " + "; ".join(bits)))
    counts = evaluation.counts
    order = ("new", "queued", "active", "success", "failed", "cancelled")
    parts.append(
        Text(
            f"members {len(view.members)}: "
            + ", ".join(f"{s} {counts[s]}" for s in order if counts.get(s))
            + (
                f"; skipped {len(record.skipped)}, refused {len(record.refused)} at create"
                if record.skipped or record.refused
                else ""
            )
        )
    )
    waves = Table(title="waves", header_style="bold")
    for column in ("wave", "size", *order, "opens"):
        waves.add_column(column)
    for wave in evaluation.waves:
        waves.add_row(
            str(wave.number),
            str(wave.size),
            *(str(wave.counts.get(s, 0)) for s in order),
            Text("open" if wave.open else wave.why),
        )
    parts.append(waves)
    for halt in evaluation.halts:
        parts.append(Text(f"HALTED: {halt.text}", style="bold red"))
        for failure in halt.failures:
            parts.append(Text(f"  {failure.name or failure.server_id}: {failure.error or '-'}"))
    reasons = Counter(w.text for w in evaluation.waits.values())
    if reasons:
        waiting = Table(title="waiting", header_style="bold")
        waiting.add_column("members")
        waiting.add_column("why")
        for text, count in reasons.most_common(12):
            waiting.add_row(str(count), Text(text))
        parts.append(waiting)
    failures = view.failures()
    if failures:
        table = Table(title=f"failures ({len(failures)})", header_style="bold")
        for column in ("server", "wave", "firmware", "error"):
            table.add_column(column, overflow="fold")
        for member in failures[:20]:
            table.add_row(
                Text(member.name or member.server_id),
                str(member.wave),
                Text(", ".join(k.label for k in member.failed)),
                Text(member.error[:160]),
            )
        parts.append(table)
    if view.eta is not None:
        parts.append(Text(f"estimated end: {view.eta.isoformat().replace('+00:00', 'Z')} ({view.eta_note})"))
    elif view.eta_note:
        parts.append(Text(f"estimated end: - ({view.eta_note})"))
    return Group(*parts)


def _status_exit(view: operations.RolloutStatus) -> int:
    return 1 if view.evaluation.halts or view.failures() else 0


@app.command("status", epilog=EXIT_HELP)
def status_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The rollout.", show_default=False)],
    watch: Annotated[bool, typer.Option("--watch", help="Follow it until it closes.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (with --watch: one line per change).")] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.5, help="Seconds between reads with --watch.")] = 5.0,
) -> None:
    """Waves, counts per status, what waits for what, halted firmware with the failing servers, failures with
    their errors, and an estimate of the end. Exits 1 when members failed or firmware is halted."""
    client = _client(ctx)
    settings = state(ctx).settings().rollout

    def read() -> operations.RolloutStatus:
        with _errors():
            return operations.status(client, name, settings)

    view = read()
    if not watch:
        if as_json:
            print_json(view.as_json())
        else:
            console.print(render_status(view))
        raise typer.Exit(_status_exit(view))
    _watch(read, view, as_json=as_json, interval=interval)


def _watch(
    read: Callable[[], operations.RolloutStatus], view: operations.RolloutStatus, *, as_json: bool, interval: float
) -> None:
    def closed(v: operations.RolloutStatus) -> bool:
        return v.record.phase is RolloutPhase.CLOSED

    last = ""
    if console.is_terminal and not as_json:
        with Live(render_status(view), console=console, auto_refresh=False) as live:
            while not closed(view):
                time.sleep(interval)
                view = read()
                live.update(render_status(view), refresh=True)
    else:
        while True:
            line = json.dumps(view.as_json(), sort_keys=True) if as_json else _line(view)
            if line != last:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
                last = line
            if closed(view):
                break
            time.sleep(interval)
            view = read()
        if not as_json:
            console.print(render_status(view))
    raise typer.Exit(_status_exit(view))


def _line(view: operations.RolloutStatus) -> str:
    counts = view.evaluation.counts
    order = ("new", "queued", "active", "success", "failed", "cancelled")
    halted = f"; halted: {', '.join(h.firmware.label for h in view.evaluation.halts)}" if view.evaluation.halts else ""
    return f"{view.record.name} {view.state_text()}: " + ", ".join(f"{s} {counts.get(s, 0)}" for s in order) + halted


@app.command("list", epilog=EXIT_HELP)
def list_command(
    ctx: typer.Context,
    active: Annotated[bool, typer.Option("--active", help="Only rollouts that have not closed.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON.")] = False,
) -> None:
    """Every rollout: state, phase, generation, members, who created it and when."""
    with _errors():
        rollouts, problems = operations.list_rollouts(_client(ctx), include_closed=not active)
    if as_json:
        print_json([r.record.to_data() for r in rollouts])
        return
    rows = [_list_row(r) for r in rollouts]
    print_table(
        f"rollouts ({len(rows)})",
        ["name", "state", "phase", "generation", "members", "waves", "baseline", "requester", "created", "updated by"],
        rows,
    )
    for problem in problems:
        console.print(problem, markup=False, highlight=False)


def _list_row(stored: StoredRollout) -> list[Any]:
    record = stored.record
    return [
        record.name,
        record.state.value,
        record.phase.value,
        record.generation,
        record.members,
        ",".join(str(n) for n in record.wave_sizes),
        record.baseline.firmware_set or "resolve",
        record.requester,
        record.created_at.isoformat().replace("+00:00", "Z") if record.created_at else None,
        record.updated_by,
    ]


# -- control ----------------------------------------------------------------------------------------------------


def _say(text: str) -> None:
    console.print(text, markup=False, highlight=False)


@app.command("pause", epilog=EXIT_HELP)
def pause_command(ctx: typer.Context, name: Annotated[str, typer.Argument()], by: ByOption = None) -> None:
    """Stop admitting members; those queued go back to waiting at their start gate; active ones finish."""
    with _errors():
        operations.pause(_client(ctx), name, by=_who(by))
    _say(f"rollout {name} paused")


@app.command("resume", epilog=EXIT_HELP)
def resume_command(ctx: typer.Context, name: Annotated[str, typer.Argument()], by: ByOption = None) -> None:
    """Admit members again after a pause."""
    with _errors():
        operations.resume(_client(ctx), name, by=_who(by))
    _say(f"rollout {name} resumed")


@app.command("abort", epilog=EXIT_HELP)
def abort_command(ctx: typer.Context, name: Annotated[str, typer.Argument()], by: ByOption = None) -> None:
    """Abort for good: members that have not started are cancelled; active installs finish."""
    with _errors():
        result = operations.abort(_client(ctx), name, by=_who(by))
    _say(f"rollout {name} aborted: {len(result.changed)} members cancelled or asked to cancel")
    for server, why in result.skipped.items():
        _say(f"  {server}: {why}")


@app.command("retry-failed", epilog=EXIT_HELP)
def retry_failed_command(ctx: typer.Context, name: Annotated[str, typer.Argument()], by: ByOption = None) -> None:
    """Request the failed members again in a new generation (the breaker's count starts again)."""
    with _errors():
        result = operations.retry_failed(_client(ctx), name, by=_who(by))
    record = result.rollout.record
    _say(f"rollout {name}: generation {record.generation}, {len(result.changed)} failed members requested again")
    for server, why in result.skipped.items():
        _say(f"  {server}: {why}")
