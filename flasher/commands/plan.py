"""``flasher plan``: what flasher would install on a server, and why, without changing anything.

Reads the server's task attribute (``sh.hollow.flasher.task``), its components (installed versions) and the
firmware it needs from the inventory, builds the plan (:mod:`flasher.install.plan`) and prints it: the install
mode, the firmware set, and per component the installed and target version and whether it will be installed,
skipped or refused, with the reason. ``--firmware-set``/``--firmware``/``--force`` replace the attribute's
choice for a what-if; a server without the attribute is shown as ResolveFirmware would plan it.

Errors (an invalid attribute, a task that cannot be planned, an inventory failure) print one line and exit 1;
malformed options exit 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from flasher.commands.common import console, fail, print_json, print_table, state
from flasher.constants import TASK_NAMESPACE
from flasher.install.modes import build_plan
from flasher.install.plan import InstallPlan, PlanError
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError
from flasher.task.model import InstallTask, TaskValidationError, normalise_slug, parse_install_task


def _overrides(firmware: list[str], firmware_set: str | None, force: bool) -> dict[str, Any]:
    """The attribute keys the what-if options replace (``{}`` when none is given)."""
    if firmware and firmware_set:
        raise typer.BadParameter("give --firmware-set or --firmware, not both")
    result: dict[str, Any] = {}
    if firmware:
        entries: dict[str, dict[str, str]] = {}
        for option in firmware:
            slug, _, version = option.partition("=")
            if not normalise_slug(slug) or not version.strip():
                raise typer.BadParameter(f"{option!r}: use TYPE=VERSION, e.g. bmc=2.80.80.80", param_hint="--firmware")
            entries[normalise_slug(slug)] = {"version": version.strip()}
        result["Firmware"] = entries
    elif firmware_set:
        result["firmwareSet"] = firmware_set
    if force:
        result["force"] = True
    return result


def _task(attribute: object, overrides: dict[str, Any]) -> InstallTask:
    """The task to plan: the attribute's ``data`` (``{}`` without one) with ``overrides`` over it; an attribute that
    is not a JSON object fails as admission would fail it (``field 'data': ... is not a JSON object``)."""
    if not isinstance(attribute, dict):
        try:
            parse_install_task(attribute)
        except TaskValidationError as exc:
            fail(f"task attribute {TASK_NAMESPACE}: {exc}")
    data = dict(attribute) if isinstance(attribute, dict) else {}
    if "Firmware" in overrides or "firmwareSet" in overrides:
        for key in ("mode", "Firmware", "firmwareSet"):
            data.pop(key, None)
    data.update(overrides)
    try:
        return parse_install_task(data)
    except TaskValidationError as exc:
        fail(f"task attribute {TASK_NAMESPACE}: {exc}")


def _show(plan: InstallPlan, server_name: str, source: str) -> None:
    title = f"server {plan.server_uuid}" + (f" ({server_name})" if server_name else "")
    title += f": {plan.mode.value}"
    if plan.firmware_set_name:
        title += f", firmware set {plan.firmware_set_name} ({plan.firmware_set_uuid})"
    console.print(f"[bold]{escape(title)}[/]", highlight=False)
    console.print(f"[dim]{escape(source)}[/]", highlight=False)
    rows = [
        [
            item.component,
            item.component_name,
            item.component_serial or None,
            item.installed_version or "unknown",
            item.version,
            item.decision.value,
            item.reason,
        ]
        for item in plan.items
    ]
    print_table(None, ["component", "name", "serial", "installed", "target", "decision", "reason"], rows)
    console.print(plan.summary(), highlight=False, markup=False)
    if plan.unmatched:
        console.print(
            f"firmware of the set that fits none of the components: {'; '.join(plan.unmatched)}",
            highlight=False,
            markup=False,
        )
    if refusal := plan.refusal():
        console.print(f"[bold yellow]the task would fail[/]: {escape(refusal)}", highlight=False)


def command(
    ctx: typer.Context,
    *,
    server: Annotated[str, typer.Option("--server", "-s", help="The server's uuid.")],
    firmware_set: Annotated[
        str | None,
        typer.Option(
            "--firmware-set", help="What-if: plan this firmware set (name or uuid) instead of the attribute's."
        ),
    ] = None,
    firmware: Annotated[
        list[str] | None,
        typer.Option(
            "--firmware",
            help="What-if: install TYPE=VERSION (e.g. bmc=2.80.80.80) instead of the attribute's choice. Repeatable.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="What-if: as if the task had force: true (downgrades, reinstalls).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show what flasher would install on a server, without changing anything.

    Prints the install mode, the firmware set, and per component the installed and target versions and the decision.

    Without force, equal or unknown installed versions are skipped, downgrades and incomparable versions refused.

    Reads the server's sh.hollow.flasher.task attribute; --firmware-set, --firmware and --force replace its choice.
    """
    overrides = _overrides(firmware or [], firmware_set, force)
    client = InventoryClient(state(ctx).settings().inventory)
    try:
        record = client.get_server(server)
        attribute = record.attribute(TASK_NAMESPACE)
        task = _task(attribute.data if attribute else {}, overrides)
        plan = build_plan(task, record, client.list_components(server), client)
    except (PlanError, InventoryError) as exc:
        fail(str(exc))
    except ValueError as exc:  # a malformed uuid, refused before any request
        fail(str(exc), code=2)
    if as_json:
        print_json(plan)
        return
    if overrides:
        source = "what-if: the options replace the attribute's choice"
    elif attribute is None:
        source = f"the server has no {TASK_NAMESPACE} attribute: shown as ResolveFirmware would plan it"
    else:
        source = f"from {TASK_NAMESPACE}"
    _show(plan, record.name, source)
