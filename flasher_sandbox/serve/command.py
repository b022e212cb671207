"""``flasher-sandbox serve``: the sandbox up until told to stop, for trying flasher's commands by hand.

Starts Redis, the inventory seeded with ``--servers`` servers (the demo's fleet: every BMC shape in turn, Dell-like
R6515, Supermicro-like X12, Lenovo XCC-like SR650 V3, Supermicro X13-like, HPE iLO-like, OpenBMC-like
(:data:`~flasher_sandbox.up.scenario.FLEET_MIX`), each with its BMC address and
credentials, its components and newer firmware in the inventory; with ``--onboard`` the inventory holds only the
firmware, and every server is put into it from its BMC by ``flasher onboard``), the simulated BMCs, the image
server, ``--replicas`` flasher replicas and ``flasher api`` (the dashboard)
(:class:`~flasher_sandbox.up.stack.Stack`); prints what runs where; writes the env file
(:mod:`flasher_sandbox.serve.session`); flags nothing. It runs until SIGINT, SIGTERM or SIGHUP, then stops every
process it started and exits 0. A replica that exits meanwhile (killed by hand, say, to watch another reclaim its
task) is reported and the sandbox goes on; when Redis, the inventory or the BMCs exit, it stops and exits 1, as it
does when something does not start.
"""

from __future__ import annotations

import shlex
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flasher_sandbox.serve.session import SessionFiles, publish_env_file, remove_env_file, write_session
from flasher_sandbox.up.scenario import FLEET_MIX, build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

#: The signals that stop the sandbox.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Servers listed on the console; the rest are in servers.json.
_LISTED = 8


class _Signals:
    """Records the stop signals. The handler only sets ``stop``: a signal during the start takes effect once the
    server being started answers (each start is bounded), so that no process is ever left half-started."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.received: str | None = None

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        self.stop.set()


@contextmanager
def _handling(signals: _Signals) -> Iterator[None]:
    previous = {sig: signal.signal(sig, signals.handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _where(stack: Stack, files: SessionFiles, concurrency: int) -> Table:
    table = Table(title="flasher sandbox", header_style="bold", title_justify="left")
    table.add_column("service")
    table.add_column("where", overflow="fold")
    assert stack.images is not None
    count = len(stack.scenario.names)
    last = stack.bmc_base_port + count - 1
    rows = [
        ("inventory", f"{stack.inventory_url}/api/v1"),
        ("redis", str(stack.redis_url)),
        ("BMCs", f"https://127.0.0.1:{stack.bmc_base_port} .. :{last} ({count}, Redfish over HTTPS)"),
        ("BMC CA", str(stack.bmcs.ca_bundle)),
        ("BMC control", f"{stack.control_url}/fleet"),
        (
            "PDU",
            f"{stack.bmcs.pdu_url}/redfish/v1/PowerEquipment/RackPDUs/1 (outlets: sh.hollow.flasher.pdu_outlet)",
        ),
        ("images", stack.images.base_url),
    ]
    rows += [
        (name, f"http://127.0.0.1:{stack.replica_ports[name]}/healthz ({concurrency} workers)")
        for name in stack.replicas
    ]
    if stack.api_url is not None:
        rows.append(("flasher api", f"{stack.api_url} (dashboard {stack.api_url}/ui, docs {stack.api_url}/docs)"))
    rows += [
        ("work dir", str(stack.workdir.resolve())),
        ("logs", str(stack.logs.resolve())),
        ("servers", str(files.servers_file)),
        ("env file", str(files.env_file)),
    ]
    for service, where in rows:
        table.add_row(service, escape(where))
    return table


def _servers(stack: Stack) -> Table:
    table = Table(header_style="bold", title_justify="left")
    for column in ("server", "uuid", "vendor", "model", "BMC"):
        table.add_column(column, no_wrap=True)
    servers = stack.server_entries()
    for server in servers[:_LISTED]:
        table.add_row(server["name"], server["uuid"], server["vendor"], server["model"], server["bmc"]["address"])
    if len(servers) > _LISTED:
        table.caption = f"and {len(servers) - _LISTED} more in servers.json"
    return table


def _watch(stack: Stack, signals: _Signals, say: Callable[[str], None]) -> int:
    """Wait for a stop signal: 0 then; 1 as soon as Redis, the inventory or the BMCs exit. A replica that exits
    is reported once."""
    infrastructure = {name: p for name, p in stack.processes().items() if name in ("redis", "inventory", "bmcs")}
    reported: set[str] = set()
    while not signals.stop.wait(0.5):
        for name, process in infrastructure.items():
            if not process.alive():
                status = _status(process.returncode())
                say(f"[bold red]{name} exited[/] ({status}); its log:\n{escape(process.tail())}")
                return 1
        for name, process in stack.replicas.items():
            if name not in reported and not process.alive():
                reported.add(name)
                say(
                    f"[yellow]replica {name} exited[/] ({_status(process.returncode())}, log "
                    f"{escape(str(process.log_path))}); the sandbox keeps running"
                )
    return 0


def _status(code: int | None) -> str:
    """``exit status 3``, ``killed by SIGKILL``, or ``not started``."""
    if code is None:
        return "not started"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _check_env_file(env_file: Path) -> Path:
    path = env_file.expanduser().absolute()
    if path.is_dir():
        raise typer.BadParameter(f"{str(env_file)!r} is a directory", param_hint="--env-file")
    if not path.parent.is_dir():
        raise typer.BadParameter(f"the directory of {str(env_file)!r} does not exist", param_hint="--env-file")
    return path


def command(  # noqa: PLR0917 (typer options)
    servers: Annotated[
        int, typer.Option("--servers", min=2, help="Servers in the fleet (every BMC shape in turn).")
    ] = 6,
    replicas: Annotated[
        int, typer.Option("--replicas", min=0, max=8, help="flasher replicas to run (0: run your own `flasher run`).")
    ] = 1,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Worker threads per replica.")] = 4,
    env_file: Annotated[
        Path,
        typer.Option("--env-file", help="Write the shell exports here (removed at the stop).", dir_okay=False),
    ] = Path("flasher-sandbox.env"),
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Where logs, the database and settings go (default: a temp dir, removed)."),
    ] = None,
    install_seconds: Annotated[float, typer.Option(min=0.05, help="How long a simulated install takes.")] = 1.5,
    offline_seconds: Annotated[float, typer.Option(min=0, help="How long a BMC is away while it flashes itself.")] = 3,
    power_seconds: Annotated[float, typer.Option(min=0, help="How long a simulated power change takes.")] = 0.5,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the work directory when the sandbox stops.")] = False,
    onboard: Annotated[
        bool,
        typer.Option(
            "--onboard", help="Start with an empty inventory: put every server into it from its BMC (flasher onboard)."
        ),
    ] = False,
) -> None:
    """Run the sandbox until Ctrl-C or SIGTERM: Redis, the inventory with a fleet, simulated BMCs, images and
    flasher replicas. Nothing is flagged: source the env file in another shell and use flasher's commands."""
    console = Console() if sys.stdout.isatty() else Console(width=160)
    env_path = _check_env_file(env_file)

    def say(text: str) -> None:
        console.print(text, highlight=False)
        sys.stdout.flush()

    scenario = build(
        servers,
        install_seconds=install_seconds,
        offline_seconds=offline_seconds,
        power_seconds=power_seconds,
        special=False,
        shapes=FLEET_MIX,
    )
    own_workdir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="flasher-sandbox-serve-")) if workdir is None else workdir
    stack = Stack(root, scenario, onboard=onboard)
    signals = _Signals()
    written: list[SessionFiles] = []
    code = 0
    exits: dict[str, int | None] = {}
    with _handling(signals):
        try:
            plural = "replica" if replicas == 1 else "replicas"
            say(f"[bold]flasher sandbox[/] starting in {escape(str(root))}: {servers} servers, {replicas} {plural}")
            options = ReplicaOptions(concurrency=concurrency)
            code = _serve(
                stack, replicas, options=options, env_path=env_path, signals=signals, console=console, written=written
            )
        except RuntimeError as exc:  # a server did not start
            say(f"[bold red]the sandbox did not start[/]: {escape(str(exc))}")
            code = 1
        finally:
            if signals.received:
                say(f"{signals.received}: stopping the sandbox")
            for files in written:
                remove_env_file(files)
            exits = stack.stop()
    unclean = {name: _status(status) for name, status in exits.items() if status != 0}
    if unclean:
        say("replicas that did not exit 0: " + ", ".join(f"{name} ({text})" for name, text in unclean.items()))
    if code == 0 and own_workdir and not keep:
        shutil.rmtree(root, ignore_errors=True)
        say("stopped; every process it started has exited")
    else:
        say(f"stopped; work directory kept: {escape(str(root))}")
    raise typer.Exit(code)


def _serve(
    stack: Stack,
    replicas: int,
    *,
    options: ReplicaOptions,
    env_path: Path,
    signals: _Signals,
    console: Console,
    written: list[SessionFiles],
) -> int:
    """Start the stack and the replicas, write the session's files (appended to ``written``), print what runs
    where, and wait (:func:`_watch`). A stop signal during the start ends it after the current step."""

    def say(text: str) -> None:
        console.print(text, highlight=False)
        sys.stdout.flush()

    stack.start()
    if stack.onboard:
        say(f"onboarded {len(stack.onboarded)} servers from their BMCs (flasher onboard)")
    for index in range(replicas):
        if signals.stop.is_set():
            return 0
        stack.start_replica(f"flasher-{index}", options)
    if signals.stop.is_set():
        return 0
    stack.start_api(options)
    files = write_session(stack, options, env_path)
    written.append(files)
    console.print(_where(stack, files, options.concurrency))
    console.print(_servers(stack))
    first = stack.scenario.uuids[stack.scenario.names[0]]
    say(
        "In another shell:\n"
        f"  source {escape(shlex.quote(str(files.env_file)))}\n"
        f"  flasher task install --server {first}\n"
        f"  flasher task status --server {first} --watch\n"
        f"The dashboard: {escape(str(stack.api_url))}/ui\n"
        "Ctrl-C (or SIGTERM) stops the sandbox."
    )
    publish_env_file(files)  # last: once it exists, everything above is printed and everything it names runs
    return _watch(stack, signals, say)
