"""``flasher-sandbox up``: the main job, end to end on the sandbox.

Starts Redis (or uses ``--redis-url``), the inventory seeded with a fleet, the simulated BMCs, a firmware image
server and ``--replicas`` flasher replicas; flags every server with a mix of install modes and priorities (and
a few tasks with a known different end); shows progress; prints a per-server summary; stops everything; exits
0 only when every task ended as expected, the BMCs report the versions they should, no BMC ever had two
installs at once, and every replica shut down cleanly.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from flasher_sandbox.up.scenario import FlaggedTask, Scenario, build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

_TERMINAL = ("success", "failed", "cancelled")


@dataclass
class Outcome:
    """How one flagged task ended, beside what was expected."""

    task: FlaggedTask
    status: str
    seconds: float | None
    detail: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _seconds(data: dict[str, Any]) -> float | None:
    try:
        start = datetime.fromisoformat(str(data["createdAt"]).replace("Z", "+00:00"))
        end = datetime.fromisoformat(str(data["completedAt"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return (end - start).total_seconds()


def _detail(data: dict[str, Any]) -> str:
    if data.get("error"):
        return str(data["error"])
    messages = data.get("messages") or []
    return str(messages[-1]).split(" ", 1)[-1] if messages else ""


def _progress(scenario: Scenario, attributes: dict[tuple[str, str], dict[str, Any]], started: float) -> Group:
    counts: Counter[str] = Counter()
    active: list[tuple[str, str, str]] = []
    for task in scenario.tasks:
        data = attributes.get((scenario.uuids[task.server], task.namespace), {})
        status = str(data.get("status") or "new")
        counts[status] += 1
        if status == "active":
            active.append((task.server, task.kind, _detail(data)))
    head = Text(
        f"{time.monotonic() - started:5.0f} s  "
        + "  ".join(f"{s}: {counts[s]}" for s in ("new", "queued", "active", *_TERMINAL))
    )
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("running on", "kind", "latest"):
        table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=90)
    for row in active[:12]:
        table.add_row(*(Text(cell) for cell in row))
    return Group(head, table)


def _wait(stack: Stack, scenario: Scenario, console: Console, timeout: float) -> dict[tuple[str, str], dict[str, Any]]:
    started = time.monotonic()
    attributes: dict[tuple[str, str], dict[str, Any]] = {}
    interactive = console.is_terminal
    last_line = 0.0

    def done() -> bool:
        return all(
            str(attributes.get((scenario.uuids[t.server], t.namespace), {}).get("status")) in _TERMINAL
            for t in scenario.tasks
        )

    with Live(console=console, refresh_per_second=2, transient=True) if interactive else _Null() as live:
        while time.monotonic() - started < timeout:
            attributes = stack.task_attributes()
            view = _progress(scenario, attributes, started)
            if interactive:
                live.update(view)
            elif time.monotonic() - last_line >= 5:
                console.print(view.renderables[0])
                last_line = time.monotonic()
            if done():
                break
            for name, process in stack.replicas.items():
                if not process.alive():
                    raise RuntimeError(f"replica {name} exited:\n{process.tail()}")
            time.sleep(1.0)
    return attributes


class _Null:
    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *args: object) -> None:
        return None

    def update(self, _view: object) -> None:
        return None


def check(stack: Stack, scenario: Scenario, attributes: dict[tuple[str, str], dict[str, Any]]) -> list[Outcome]:
    """Compare every task's end, and the versions its BMC reports, with what was expected."""
    states = {i: stack.bmc_state(i) for i in range(len(scenario.names))}
    index_of = {name: i for i, name in enumerate(scenario.names)}
    outcomes = []
    for task in scenario.tasks:
        data = attributes.get((scenario.uuids[task.server], task.namespace), {})
        status = str(data.get("status") or "new")
        problems = []
        if status != task.expect:
            problems.append(f"ended {status}, expected {task.expect}")
        reported: dict[str, str] = {}
        for component in states[index_of[task.server]]["components"]:
            reported.setdefault(component["slug"], component["version"])
        for slug, version in task.versions.items():
            if reported.get(slug) != version:
                problems.append(f"the BMC reports {slug} {reported.get(slug)}, expected {version}")
        outcomes.append(Outcome(task, status, _seconds(data), _detail(data), problems))
    return outcomes


def _summary(console: Console, outcomes: list[Outcome]) -> None:
    table = Table(title="flasher on the sandbox: every task", header_style="bold")
    for column in ("server", "kind", "what", "prio", "expected", "ended", "seconds", "detail"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        task = outcome.task
        ended = Text(outcome.status, style="green" if outcome.ok else "bold red")
        detail = "; ".join(outcome.problems) if outcome.problems else outcome.detail
        table.add_row(
            Text(task.server),
            Text(task.kind),
            Text(task.why),
            Text(str(task.data.get("priority", 1))),
            Text(task.expect),
            ended,
            Text("-" if outcome.seconds is None else f"{outcome.seconds:.1f}"),
            Text(detail[:120]),
        )
    console.print(table)


def command(  # noqa: PLR0917 (typer options)
    servers: Annotated[int, typer.Option("--servers", min=2, help="Servers in the fleet (two vendors).")] = 20,
    replicas: Annotated[int, typer.Option("--replicas", min=1, max=8, help="flasher replicas to run.")] = 2,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Worker threads per replica.")] = 4,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", help="Use this Redis instead of starting redis-server.")
    ] = None,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Where logs, the database and images go (default: a temp dir).")
    ] = None,
    install_seconds: Annotated[float, typer.Option(min=0.05, help="How long a simulated install takes.")] = 1.5,
    offline_seconds: Annotated[float, typer.Option(min=0, help="How long a BMC is away while it flashes itself.")] = 3,
    power_seconds: Annotated[float, typer.Option(min=0, help="How long a simulated power change takes.")] = 0.5,
    timeout: Annotated[
        float, typer.Option(min=10, help="Give up waiting for the tasks after this many seconds.")
    ] = 600,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the work directory even when everything passed.")] = False,
    onboard: Annotated[
        bool,
        typer.Option(
            "--onboard", help="Start with an empty inventory: put every server into it from its BMC (flasher onboard)."
        ),
    ] = False,
) -> None:
    """Run the main job on the sandbox and check that every task ended as expected (exit 0), else exit 1."""
    console = Console()
    if not console.is_terminal:  # logs and CI: wide enough for the summary table
        console = Console(width=160)
    scenario = build(
        servers, install_seconds=install_seconds, offline_seconds=offline_seconds, power_seconds=power_seconds
    )
    own_workdir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="flasher-sandbox-")) if workdir is None else workdir
    stack = Stack(root, scenario, redis_url=redis_url, onboard=onboard)
    ok = False
    outcomes: list[Outcome] = []
    exits: dict[str, int | None] = {}
    overlaps = -1
    try:
        console.print(
            f"[bold]flasher sandbox[/] in {root}: {servers} servers, {replicas} replicas x {concurrency} workers"
        )
        stack.start()
        if onboard:
            console.print(f"  onboarded   {servers} servers from their BMCs (flasher onboard)")
        console.print(f"  inventory   {stack.inventory_url}/api/v1")
        last = stack.bmc_base_port + servers - 1
        ca = f" (HTTPS, CA {stack.bmcs.ca_bundle})" if stack.bmcs.ca_bundle is not None else " (plain HTTP)"
        console.print(f"  BMCs        127.0.0.1:{stack.bmc_base_port}..{last}{ca}")
        console.print(f"  Redis       {stack.redis_url}")
        options = ReplicaOptions(concurrency=concurrency)
        for index in range(replicas):
            stack.start_replica(f"flasher-{index}", options)
        console.print(f"  replicas    {', '.join(stack.replicas)} (logs in {stack.logs})")
        stack.flag_all()
        console.print(f"flagged {len(scenario.tasks)} tasks on {servers} servers")
        attributes = _wait(stack, scenario, console, timeout)
        outcomes = check(stack, scenario, attributes)
        overlaps = int(stack.fleet_audit()["overlapping_installs"])
    finally:
        exits = stack.stop()
    _summary(console, outcomes)
    failures = [o for o in outcomes if not o.ok]
    bad_exits = {name: code for name, code in exits.items() if code != 0}
    verdict = []
    if failures:
        verdict.append(f"{len(failures)} of {len(outcomes)} tasks did not end as expected")
    if overlaps != 0:
        verdict.append(f"overlapping installs on a BMC: {overlaps}")
    if bad_exits:
        verdict.append(f"replicas that did not shut down cleanly: {bad_exits}")
    ok = bool(outcomes) and not verdict
    if ok:
        console.print(
            f"[bold green]all {len(outcomes)} tasks ended as expected[/]; no BMC had two installs at once; "
            f"every replica shut down cleanly"
        )
        if own_workdir and not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            console.print(f"work directory kept: {root}")
        return
    console.print(f"[bold red]FAILED[/]: {'; '.join(verdict) or 'no task ended'}; logs in {root / 'logs'}")
    sys.stdout.flush()
    raise typer.Exit(1)
