"""``flasher-sandbox up``: the main job, end to end on the sandbox.

Starts Redis (or uses ``--redis-url``), the inventory seeded with a fleet, the simulated BMCs, a firmware image
server and ``--replicas`` flasher replicas; flags every server with a mix of install modes and priorities (and
a few tasks with a known different end); beside them, rolls the BIOS out to ``--rollout-servers`` more servers
with ``flasher rollout create`` (a canary, then two waves, at most 3 at once and per rack); shows progress;
prints a per-server summary and the rollout's; stops everything; exits 0 only when every task ended as
expected, the rollout completed, the BMCs report the versions they should, no BMC ever had two installs at
once, and every replica shut down cleanly.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from flasher.constants import TASK_NAMESPACE
from flasher_sandbox.up.scenario import FLEET_BIOS_SET, FLEET_MIX, LOCATION_NAMESPACE, FlaggedTask, Scenario, build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

_TERMINAL = ("success", "failed", "cancelled")
#: The demo's rollout.
ROLLOUT = "demo-bios"


def create_rollout(stack: Stack) -> str:
    """Roll the BIOS out to the scenario's rollout servers with ``flasher rollout create``; returns its output.
    Raises ``RuntimeError`` with the command's output when it fails."""
    uuids = ",".join(stack.scenario.uuids[name] for name in stack.scenario.rollout_names)
    done = stack.flasher(
        "rollout", "create", ROLLOUT, "--select", f"uuid={uuids}", "--firmware-set", FLEET_BIOS_SET,
        "--waves", "1,50%,100%", "--max-active", "3", "--max-active-per", f"attr:{LOCATION_NAMESPACE}~rack=3",
        "--requester", "sandbox-demo",
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"flasher rollout create failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return " ".join(done.stdout.split())


def rollout_status(stack: Stack) -> dict[str, Any]:
    """``flasher rollout status demo-bios --json``; ``{}`` when it cannot be read."""
    done = stack.flasher("rollout", "status", ROLLOUT, "--json")
    try:
        view: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {}
    return view


class RolloutRun:
    """The demo's rollout: created, and read once its members have ended, by ``flasher rollout`` commands in
    background threads (a command takes seconds to start; the other tasks go on meanwhile)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.created = ""
        self.error = ""
        self.view: dict[str, Any] = {}
        self._threads: list[threading.Thread] = []

    def _run(self, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, daemon=True)
        self._threads.append(thread)
        thread.start()

    def start(self) -> None:
        """Create the rollout in the background."""

        def create() -> None:
            try:
                self.created = create_rollout(self.stack)
            except (RuntimeError, OSError) as exc:
                self.error = str(exc)

        self._run(create)

    def seen(self, attributes: dict[tuple[str, str], dict[str, Any]]) -> None:
        """Read the rollout's status in the background once every member has ended (called at each poll)."""
        scenario = self.stack.scenario
        if self.error:
            raise RuntimeError(self.error)
        if len(self._threads) != 1 or not self.created:
            return
        keys = [(scenario.uuids[name], TASK_NAMESPACE) for name in scenario.rollout_names]
        if all(attributes.get(key, {}).get("status") in _TERMINAL for key in keys):
            self._run(self._read)

    def _read(self) -> None:
        for _ in range(10):  # the controller closes the rollout at its next tick after the last member ended
            self.view = rollout_status(self.stack)
            if self.view.get("state") == "completed":
                return
            time.sleep(1.0)

    def finish(self) -> dict[str, Any]:
        """Wait for the background commands; the rollout's status (read now if it was not yet)."""
        for thread in self._threads:
            thread.join(60)
        if not self.error and self.view.get("state") != "completed":
            self._read()
        return self.view


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
            kind = "install (rollout)" if not task.flagged else task.kind
            active.append((task.server, kind, _detail(data)))
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


def _wait(
    stack: Stack,
    scenario: Scenario,
    console: Console,
    timeout: float,
    on_poll: Callable[[dict[tuple[str, str], dict[str, Any]]], None] = lambda _: None,
) -> dict[tuple[str, str], dict[str, Any]]:
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
            on_poll(attributes)
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


def _rollout_summary(console: Console, view: dict[str, Any]) -> None:
    if not view:
        console.print(f"[bold red]rollout {ROLLOUT}: status unreadable[/]")
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(view["counts"].items()))
    table = Table(title=f"rollout {ROLLOUT}: {view['state']} ({counts})", header_style="bold")
    for column in ("wave", "size", "success", "failed", "opened"):
        table.add_column(column)
    for wave in view["waves"]:
        counts = wave["counts"]
        table.add_row(
            str(wave["wave"]),
            str(wave["size"]),
            str(counts.get("success", 0)),
            str(counts.get("failed", 0)),
            "yes" if wave["open"] else Text(wave["why"]),
        )
    console.print(table)
    record = view["record"]
    for line in record.get("history", [])[-3:]:
        console.print(f"  {line}", markup=False, highlight=False)


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
    servers: Annotated[
        int, typer.Option("--servers", min=2, help="Servers in the fleet (every BMC shape in turn).")
    ] = 20,
    rollout_servers: Annotated[
        int, typer.Option("--rollout-servers", min=0, help="More servers, whose BIOS a rollout updates (0: none).")
    ] = 6,
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
        servers,
        install_seconds=install_seconds,
        offline_seconds=offline_seconds,
        power_seconds=power_seconds,
        rollout_servers=rollout_servers,
        shapes=FLEET_MIX,
    )
    own_workdir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="flasher-sandbox-")) if workdir is None else workdir
    stack = Stack(root, scenario, redis_url=redis_url, onboard=onboard)
    ok = False
    outcomes: list[Outcome] = []
    exits: dict[str, int | None] = {}
    overlaps = -1
    rollout: dict[str, Any] = {}
    run = RolloutRun(stack)
    try:
        console.print(
            f"[bold]flasher sandbox[/] in {root}: {servers} servers, {replicas} replicas x {concurrency} workers"
        )
        stack.start()
        if onboard:
            console.print(f"  onboarded   {servers} servers from their BMCs (flasher onboard)")
        console.print(f"  inventory   {stack.inventory_url}/api/v1")
        last_port = stack.bmc_base_port + len(scenario.names) - 1
        ca = f" (HTTPS, CA {stack.bmcs.ca_bundle})" if stack.bmcs.ca_bundle is not None else " (plain HTTP)"
        console.print(f"  BMCs        127.0.0.1:{stack.bmc_base_port}..{last_port}{ca}")
        console.print(f"  Redis       {stack.redis_url}")
        options = ReplicaOptions(concurrency=concurrency, extra={"rollout": {"tick_interval": 1.0}})
        for index in range(replicas):
            stack.start_replica(f"flasher-{index}", options)
        console.print(f"  replicas    {', '.join(stack.replicas)} (logs in {stack.logs})")
        stack.flag_all()
        flagged = sum(1 for t in scenario.tasks if t.flagged)
        console.print(f"flagged {flagged} tasks on {servers} servers")
        if scenario.rollout_names:
            run.start()
        attributes = _wait(stack, scenario, console, timeout, run.seen)
        outcomes = check(stack, scenario, attributes)
        overlaps = int(stack.fleet_audit()["overlapping_installs"])
        if scenario.rollout_names:
            rollout = run.finish()
            console.print(f"  {run.created or run.error}", markup=False, highlight=False)
    finally:
        exits = stack.stop()
    _summary(console, outcomes)
    if scenario.rollout_names:
        _rollout_summary(console, rollout)
    failures = [o for o in outcomes if not o.ok]
    bad_exits = {name: code for name, code in exits.items() if code != 0}
    verdict = []
    if failures:
        verdict.append(f"{len(failures)} of {len(outcomes)} tasks did not end as expected")
    if overlaps != 0:
        verdict.append(f"overlapping installs on a BMC: {overlaps}")
    if bad_exits:
        verdict.append(f"replicas that did not shut down cleanly: {bad_exits}")
    if scenario.rollout_names and rollout.get("state") != "completed":
        verdict.append(f"rollout {ROLLOUT} is {rollout.get('state', 'unreadable')}, not completed")
    ok = bool(outcomes) and not verdict
    if ok:
        completed = f"; rollout {ROLLOUT} completed" if scenario.rollout_names else ""
        console.print(
            f"[bold green]all {len(outcomes)} tasks ended as expected[/]{completed}; no BMC had two installs at once;"
            f" every replica shut down cleanly"
        )
        if own_workdir and not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            console.print(f"work directory kept: {root}")
        return
    console.print(f"[bold red]FAILED[/]: {'; '.join(verdict) or 'no task ended'}; logs in {root / 'logs'}")
    sys.stdout.flush()
    raise typer.Exit(1)
