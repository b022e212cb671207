"""``flasher task``: write, read, follow and cancel task attributes in the inventory, as an operator's tools do.

The commands never talk to Redis or a BMC: they write the attribute (``sh.hollow.flasher.task`` for installs,
``sh.hollow.flasher.server_control`` for server control) and the flasher replicas do the rest. A new request is
validated locally with the same rules flasher applies (nothing is written when it is invalid), and a task that
is ``queued`` or ``active`` is not overwritten unless ``--replace`` is given (its worker then stops at its next
safe point without writing over the new request). A request is read back after it is written
(:func:`flasher.task.request.submit`, ``--confirm`` seconds): one that a status write of the task it replaced
landed over is written again, and one that another writer's request replaced is reported (exit 5).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any, Final, NoReturn

import typer
from rich.live import Live

from flasher.commands.common import console, fail, print_json, print_table, state
from flasher.commands.task_view import INVALID, TaskView, follow, render
from flasher.inventory.client import CREATE_ATTRIBUTE, GET_SERVER, InventoryClient
from flasher.inventory.errors import InventoryError, NotFoundError
from flasher.task.model import (
    BOOT_DEVICES,
    DEFAULT_PRIORITY,
    MAX_PRIORITY,
    MIN_PRIORITY,
    ControlAction,
    TaskKind,
    TaskStatus,
    TaskValidationError,
    normalise_slug,
)
from flasher.task.request import Submission, Verdict, keep_cancel, submit

EXIT_OK: Final = 0
EXIT_TASK_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3
EXIT_INVENTORY: Final = 4
EXIT_SUPERSEDED: Final = 5

EXIT_CODES_HELP: Final = (
    "Exit status: 0 done (with --wait/--watch: the task succeeded); 1 the task failed or was cancelled; "
    "2 bad arguments or an invalid task (nothing written); 3 a queued or active task is in the way (use --replace); "
    "4 the inventory failed, or the server or its task does not exist; 5 another writer's request replaced this one "
    "before flasher took it up."
)

app = typer.Typer(
    name="task",
    help="Write, follow, cancel and list install and server-control tasks in the inventory. " + EXIT_CODES_HELP,
    no_args_is_help=True,
)


class PowerChoice(StrEnum):
    """``flasher task power --action``."""

    ON = "on"
    OFF = "off"
    SOFT = "soft"
    CYCLE = "cycle"
    RESET = "reset"
    STATUS = "status"
    BMC_RESET = "bmc-reset"


#: ``flasher task power --action`` → (server-control action, action_parameter).
POWER_ACTIONS: Final[dict[PowerChoice, tuple[ControlAction, str | None]]] = {
    PowerChoice.ON: (ControlAction.SET_POWER_STATE, "on"),
    PowerChoice.OFF: (ControlAction.SET_POWER_STATE, "off"),
    PowerChoice.SOFT: (ControlAction.SET_POWER_STATE, "soft"),
    PowerChoice.CYCLE: (ControlAction.SET_POWER_STATE, "cycle"),
    PowerChoice.RESET: (ControlAction.SET_POWER_STATE, "reset"),
    PowerChoice.STATUS: (ControlAction.GET_POWER_STATE, None),
    PowerChoice.BMC_RESET: (ControlAction.POWER_CYCLE_BMC, None),
}


class BootDevice(StrEnum):
    """``flasher task boot --device``: :data:`flasher.task.model.BOOT_DEVICES`."""

    PXE = "pxe"
    DISK = "disk"
    CDROM = "cdrom"
    BIOS = "bios"
    USB = "usb"
    DIAG = "diag"
    FLOPPY = "floppy"
    NONE = "none"
    REMOTE_DRIVE = "remote_drive"
    SD_CARD = "sd_card"
    UTILITIES = "utilities"


class ListStatus(StrEnum):
    """``flasher task list --status``; ``new`` is ``""`` or ``requested``."""

    NEW = "new"
    QUEUED = "queued"
    ACTIVE = "active"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: Statuses a new request does not overwrite without ``--replace``.
_RUNNING: Final = frozenset({TaskStatus.QUEUED.value, TaskStatus.ACTIVE.value})

ServerOption = Annotated[str, typer.Option("--server", "-s", help="The server's uuid.", show_default=False)]
ControlOption = Annotated[
    bool, typer.Option("--control", help="The server-control task (sh.hollow.flasher.server_control).")
]
PriorityOption = Annotated[
    int,
    typer.Option(
        "--priority", "-p", min=MIN_PRIORITY, max=MAX_PRIORITY, help="0 (lowest) to 3 (highest); ties go to the oldest."
    ),
]
RequesterOption = Annotated[
    str | None, typer.Option("--requester", help="Who asks, written into the attribute (default: $USER).")
]
ReplaceOption = Annotated[
    bool, typer.Option("--replace", help="Overwrite a queued or active task (its worker stops at a safe point).")
]
WaitOption = Annotated[bool, typer.Option("--wait", "-w", help="Follow the task until it ends; exit 0 on success.")]
ConfirmOption = Annotated[
    float,
    typer.Option(
        "--confirm",
        min=0,
        help="Seconds to read the request back until flasher takes it up: written again if a status write of the "
        "task it replaced lands over it; exit 5 if another writer's request replaces it.",
    ),
]
IntervalOption = Annotated[
    float, typer.Option("--interval", min=0.1, help="Seconds between reads while following a task.")
]


@contextmanager
def _inventory_errors(server: str) -> Iterator[None]:
    """Inventory errors: one line and exit 4; a malformed uuid: exit 2."""
    try:
        yield
    except NotFoundError as exc:
        if exc.call in (GET_SERVER, CREATE_ATTRIBUTE):
            fail(f"server {server} not found in the inventory", EXIT_INVENTORY)
        fail(str(exc), EXIT_INVENTORY)
    except InventoryError as exc:
        fail(str(exc), EXIT_INVENTORY)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)


def _client(ctx: typer.Context) -> InventoryClient:
    return InventoryClient(state(ctx).settings().inventory)


def _kind(control: bool) -> TaskKind:
    return TaskKind.SERVER_CONTROL if control else TaskKind.INSTALL


def _read(client: InventoryClient, server: str, kind: TaskKind) -> TaskView:
    return TaskView.of(client.get_server(server), kind)


def _requester(given: str | None) -> str:
    if given:
        return given
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no user name in this environment
        return "unknown"


def _no_task(view: TaskView) -> NoReturn:
    fail(
        f"server {view.server_id} has no {view.kind.value.replace('_', '-')} task (no attribute {view.kind.namespace})",
        EXIT_INVENTORY,
    )


def _label(view: TaskView) -> str:
    """``install task of server <uuid> (<name>)``."""
    name = f" ({view.server_name})" if view.server_name else ""
    return f"{view.kind.value.replace('_', '-')} task of server {view.server_id}{name}"


# -- writing a request ------------------------------------------------------------------------------------------------


def _submit(
    ctx: typer.Context,
    server: str,
    kind: TaskKind,
    data: dict[str, Any],
    *,
    replace: bool,
    wait: bool,
    interval: float,
    confirm: float,
) -> None:
    """Validate ``data`` as a new ``kind`` request (:func:`flasher.task.model.parse_install_task` or
    :func:`~flasher.task.model.parse_server_control_task`), refuse to overwrite a running task unless ``replace``,
    write it and read it back for up to ``confirm`` seconds (:func:`flasher.task.request.submit`), and follow it
    when ``wait``."""
    try:
        kind.parse(data)
    except TaskValidationError as exc:
        fail(f"invalid {kind.value.replace('_', '-')} task, nothing written: {exc}", EXIT_USAGE)
    client = _client(ctx)
    with _inventory_errors(server):
        current = _read(client, server, kind)
        if current.status in _RUNNING and not replace:
            fail(
                f"the {_label(current)} is {current.status} (taskID {current.text('taskID') or '-'}, worker "
                f"{current.text('worker') or '-'}); wait for it, cancel it, or use --replace",
                EXIT_REFUSED,
            )
        submission = submit(client, server, kind, data, confirm_for=confirm)
    replaced = f", replacing a {current.status} task" if current.data is not None else ""
    what = TaskView(current.server_id, current.server_name, kind, data).what()
    console.print(
        f"{_label(current)}: requested {what} (priority {data['priority']}, requester {data['requester']}{replaced})",
        markup=False,
        highlight=False,
    )
    _report_submission(submission)
    if wait:
        _follow_to_end(client, server, kind, interval=interval, as_json=False)


def _report_submission(submission: Submission) -> None:
    """One line on what became of the request; exit 5 when another writer's request replaced it."""
    again = ""
    if submission.restored:
        again = (
            f" (written {submission.restored} more time(s): a status write of the task it replaced had landed over it)"
        )
    if submission.verdict is Verdict.SUPERSEDED:
        fail(f"the request (task {submission.task_id}) was not taken up: {submission.detail}{again}", EXIT_SUPERSEDED)
    console.print(f"{submission.detail}{again}", markup=False, highlight=False)


def _firmware_map(values: list[str]) -> dict[str, dict[str, str]]:
    """``["bmc=2.80.80.80", ...]`` → ``{"bmc": {"version": "2.80.80.80"}}``; bad entries exit 2."""
    firmware: dict[str, dict[str, str]] = {}
    for value in values:
        component, sep, version = value.partition("=")
        slug = normalise_slug(component.strip())
        if not sep or not slug or not version.strip():
            fail(f"--firmware {value!r}: use COMPONENT=VERSION, e.g. bmc=2.80.80.80", EXIT_USAGE)
        if slug in firmware:
            fail(f"--firmware names component {slug!r} twice", EXIT_USAGE)
        firmware[slug] = {"version": version.strip()}
    return firmware


@app.command("install", epilog=EXIT_CODES_HELP)
def install(
    ctx: typer.Context,
    *,
    server: ServerOption,
    firmware_set: Annotated[
        str | None, typer.Option("--firmware-set", help="Install this firmware set (name or uuid).")
    ] = None,
    firmware: Annotated[
        list[str] | None,
        typer.Option("--firmware", "-f", help="COMPONENT=VERSION to install, e.g. bmc=2.80.80.80; repeat it."),
    ] = None,
    priority: PriorityOption = DEFAULT_PRIORITY,
    force: Annotated[
        bool, typer.Option("--force", help="Allow downgrades and reinstalls of the installed version.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan and report only; install nothing.")] = False,
    requester: RequesterOption = None,
    replace: ReplaceOption = False,
    wait: WaitOption = False,
    interval: IntervalOption = 2.0,
    confirm: ConfirmOption = 10.0,
) -> None:
    """Request a firmware install on a server (attribute sh.hollow.flasher.task).

    With neither --firmware-set nor --firmware, flasher picks the firmware set matching the server's vendor and model.
    """
    if firmware_set and firmware:
        fail("give --firmware-set or --firmware, not both", EXIT_USAGE)
    data: dict[str, Any] = {
        "method": "out-of-band",
        "status": "",
        "priority": priority,
        "requester": _requester(requester),
        "force": force,
        "dryRun": dry_run,
    }
    if firmware_set:
        data["firmwareSet"] = firmware_set
    if firmware:
        data["Firmware"] = _firmware_map(firmware)
    _submit(ctx, server, TaskKind.INSTALL, data, replace=replace, wait=wait, interval=interval, confirm=confirm)


def _control_request(
    action: ControlAction, parameter: str | None, priority: int, requester: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "action": action.value,
        "status": "",
        "priority": priority,
        "requester": _requester(requester),
    }
    if parameter is not None:
        data["action_parameter"] = parameter
    return data


@app.command("power", epilog=EXIT_CODES_HELP)
def power(
    ctx: typer.Context,
    *,
    server: ServerOption,
    action: Annotated[
        PowerChoice,
        typer.Option(
            "--action",
            "-a",
            help="on, off, soft (graceful shutdown), cycle (powers on a host that is off), reset, status (read "
            "the power state), bmc-reset (restart the BMC).",
            show_default=False,
        ),
    ],
    priority: PriorityOption = DEFAULT_PRIORITY,
    requester: RequesterOption = None,
    replace: ReplaceOption = False,
    wait: WaitOption = False,
    interval: IntervalOption = 2.0,
    confirm: ConfirmOption = 10.0,
) -> None:
    """Request a power action on a server or its BMC (attribute sh.hollow.flasher.server_control).

    status writes get_power_state, bmc-reset power_cycle_bmc, the others set_power_state with that parameter.

    flasher waits until the BMC reports the requested state (settings control.power_timeout, bmc_reset_timeout).
    """
    control_action, parameter = POWER_ACTIONS[action]
    data = _control_request(control_action, parameter, priority, requester)
    _submit(ctx, server, TaskKind.SERVER_CONTROL, data, replace=replace, wait=wait, interval=interval, confirm=confirm)


@app.command("boot", epilog=EXIT_CODES_HELP)
def boot(
    ctx: typer.Context,
    *,
    server: ServerOption,
    device: Annotated[BootDevice | None, typer.Option("--device", "-d", help="The next boot device.")] = None,
    persistent: Annotated[
        bool, typer.Option("--persistent", help="Boot from it every time, not only the next boot.")
    ] = False,
    efi: Annotated[bool, typer.Option("--efi", help="Boot in UEFI mode (default: legacy BIOS).")] = False,
    pxe_persistent: Annotated[
        bool,
        typer.Option("--pxe-persistent", help="Action pxe_boot_persistent: PXE, persistent, EFI, then power on."),
    ] = False,
    priority: PriorityOption = DEFAULT_PRIORITY,
    requester: RequesterOption = None,
    replace: ReplaceOption = False,
    wait: WaitOption = False,
    interval: IntervalOption = 2.0,
    confirm: ConfirmOption = 10.0,
) -> None:
    """Request the next boot device of a server (action set_next_boot_device, or pxe_boot_persistent)."""
    if pxe_persistent:
        if (device not in (None, BootDevice.PXE)) or persistent or efi:
            fail(
                "--pxe-persistent sets PXE, persistent and EFI itself: give no --device, --persistent or --efi",
                EXIT_USAGE,
            )
        data = _control_request(ControlAction.PXE_BOOT_PERSISTENT, None, priority, requester)
    elif device is None:
        fail(f"give --device ({', '.join(BOOT_DEVICES)}) or --pxe-persistent", EXIT_USAGE)
    else:
        data = _control_request(ControlAction.SET_NEXT_BOOT_DEVICE, device.value, priority, requester)
        data["set_next_boot_device_persistent"] = persistent
        data["set_next_boot_device_efi"] = efi
    _submit(ctx, server, TaskKind.SERVER_CONTROL, data, replace=replace, wait=wait, interval=interval, confirm=confirm)


@app.command("collect", epilog=EXIT_CODES_HELP)
def collect(
    ctx: typer.Context,
    *,
    server: ServerOption,
    priority: PriorityOption = DEFAULT_PRIORITY,
    requester: RequesterOption = None,
    replace: ReplaceOption = False,
    wait: WaitOption = False,
    interval: IntervalOption = 2.0,
    confirm: ConfirmOption = 10.0,
) -> None:
    """Request a collection of the server's hardware from its BMC into the inventory (attribute
    sh.hollow.flasher.inventory; see docs/onboarding-netboot.md)."""
    data: dict[str, Any] = {"status": "", "priority": priority, "requester": _requester(requester)}
    _submit(ctx, server, TaskKind.INVENTORY, data, replace=replace, wait=wait, interval=interval, confirm=confirm)


@app.command("provision", epilog=EXIT_CODES_HELP)
def provision(
    ctx: typer.Context,
    *,
    server: ServerOption,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", help="A boot profile of netboot.profiles (default: the server's own boot attribute)."
        ),
    ] = None,
    efi: Annotated[bool, typer.Option("--efi", help="PXE in UEFI mode (default: legacy BIOS).")] = False,
    priority: PriorityOption = DEFAULT_PRIORITY,
    requester: RequesterOption = None,
    replace: ReplaceOption = False,
    wait: WaitOption = False,
    interval: IntervalOption = 2.0,
    confirm: ConfirmOption = 10.0,
) -> None:
    """Request a network boot into a boot profile, waiting for the booted machine to call back (action provision)."""
    data = _control_request(ControlAction.PROVISION, profile, priority, requester)
    data["set_next_boot_device_efi"] = efi
    _submit(ctx, server, TaskKind.SERVER_CONTROL, data, replace=replace, wait=wait, interval=interval, confirm=confirm)


# -- reading ----------------------------------------------------------------------------------------------------------


def _exit_for(view: TaskView) -> None:
    if view.data is None:
        _no_task(view)
    if view.status in (TaskStatus.FAILED.value, TaskStatus.CANCELLED.value, INVALID):
        raise typer.Exit(EXIT_TASK_FAILED)
    raise typer.Exit(EXIT_OK)


def _follow_to_end(client: InventoryClient, server: str, kind: TaskKind, *, interval: float, as_json: bool) -> None:
    """Follow the task until it ends, then exit with its code: a live view on a terminal, else one line per
    change (JSON lines with ``as_json``)."""

    def read() -> TaskView:
        return _read(client, server, kind)

    with _inventory_errors(server):
        if as_json:
            last = follow(read, lambda v: _print_line(json.dumps(v.stored, sort_keys=True)), interval=interval)
        elif console.is_terminal:
            with Live(console=console, auto_refresh=False, transient=False) as live:
                last = follow(read, lambda v: live.update(render(v), refresh=True), interval=interval)
        else:
            last = follow(read, _progress_line, interval=interval)
            console.print(render(last))
    _exit_for(last)


def _print_line(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _progress_line(view: TaskView) -> None:
    worker = f" on {view.text('worker')}" if view.text("worker") else ""
    console.print(
        f"{view.status}{worker}: {view.last_message() or view.what()}",
        markup=False,
        highlight=False,
    )


@app.command("status", epilog=EXIT_CODES_HELP)
def status(
    ctx: typer.Context,
    *,
    server: ServerOption,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the task live until it ends.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the attribute as JSON (with --watch: one line per change).")
    ] = False,
    control: ControlOption = False,
    interval: IntervalOption = 2.0,
) -> None:
    """Show a server's task: status, worker, per-component status and versions, the last messages.

    Exits 1 when the task failed or was cancelled, or its data is not a JSON object; with --watch, follows it until
    it ends (0 on success).
    """
    kind = _kind(control)
    client = _client(ctx)
    if watch:
        _follow_to_end(client, server, kind, interval=interval, as_json=as_json)
        return
    with _inventory_errors(server):
        view = _read(client, server, kind)
    if view.data is None:
        _no_task(view)
    if as_json:
        print_json(view.stored if view.invalid is not None else view.data)
    else:
        console.print(render(view))
    if view.status in (TaskStatus.FAILED.value, TaskStatus.CANCELLED.value, INVALID):
        raise typer.Exit(EXIT_TASK_FAILED)


@app.command("cancel", epilog=EXIT_CODES_HELP)
def cancel(
    ctx: typer.Context,
    server: ServerOption,
    control: ControlOption = False,
    confirm: Annotated[
        float,
        typer.Option(
            "--confirm",
            min=0,
            help="Seconds to read the attribute back, writing the cancel again if a status write lands over it.",
        ),
    ] = 3.0,
) -> None:
    """Ask flasher to cancel a server's task (writes "cancel": true).

    A new or queued task is cancelled by the next poll; an active one stops at its next safe point.

    A server-control action that already reached the BMC runs to its end; a task that ended is left alone.
    """
    kind = _kind(control)
    client = _client(ctx)
    with _inventory_errors(server):
        view = _read(client, server, kind)
        if view.data is None:
            _no_task(view)
        label = _label(view)
        if view.invalid is not None:  # writing {"cancel": true} would replace what is there with a new request
            console.print(f"the {label} is not a task ({view.invalid}); nothing to cancel", markup=False)
            raise typer.Exit(EXIT_TASK_FAILED)
        if view.ended:
            console.print(f"the {label} already ended ({view.status}); nothing to cancel", markup=False)
            return
        if view.data.get("cancel") is True:
            console.print(f"cancel of the {label} was already requested (it is {view.status})", markup=False)
            return
        client.replace_attribute(server, kind.namespace, {**view.data, "cancel": True})
        again = keep_cancel(client, server, kind, view.data, confirm_for=confirm)
    note = f" (written {again} more time(s): a status write of the task had landed over it)" if again else ""
    console.print(f"cancel requested for the {label} (it was {view.status}){note}", markup=False, highlight=False)


@app.command("list", epilog=EXIT_CODES_HELP)
def list_tasks(
    ctx: typer.Context,
    status_filter: Annotated[
        ListStatus | None, typer.Option("--status", help="Only tasks in this status ('new': not yet queued).")
    ] = None,
    kind: Annotated[TaskKind | None, typer.Option("--kind", help="Only this kind of task.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the servers' tasks: one filtered inventory query per task namespace."""
    kinds = [kind] if kind else list(TaskKind)
    client = _client(ctx)
    views: list[TaskView] = []
    with _inventory_errors("-"):
        for task_kind in kinds:
            query = task_kind.namespace
            if status_filter and status_filter is not ListStatus.NEW:
                query += f"~status~eq~{status_filter.value}"
            for found in client.iter_servers(attr=[query]):
                view = TaskView.of(found, task_kind)
                if status_filter is ListStatus.NEW and view.status != "requested":
                    continue
                views.append(view)
    if as_json:
        print_json([v.summary() for v in views])
        return
    rows = [
        [
            v.server_id,
            v.server_name or None,
            v.kind.value,
            v.status,
            v.what(detail=False),
            v.text("priority"),
            v.text("requester"),
            v.text("worker"),
            v.text("updatedAt"),
            v.last_message(),
        ]
        for v in views
    ]
    columns = ["server", "name", "kind", "status", "task", "priority", "requester", "worker", "updated", "last message"]
    print_table(f"tasks ({len(views)})", columns, rows)
