"""``flasher inventory``: read the inventory (Serverservice) as flasher sees it.

``servers`` lists servers (filtered like flasher's poller: ``--attr NS~key~op~value``), ``server UUID`` shows
one server with its attributes and components (installed firmware included), ``firmware-sets`` lists firmware
sets and their labels. Tables by default, JSON with ``--json``. An inventory error prints one line and exits 1;
a malformed argument exits 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from flasher.commands.common import fail, print_json, print_table, state
from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError
from flasher.inventory.models import FirmwareSet, Server

app = typer.Typer(
    name="inventory",
    help="Read the inventory (Serverservice): servers, their attributes and components, firmware sets.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
_DATA_WIDTH = 400


@contextmanager
def _inventory_errors() -> Iterator[None]:
    """Turn inventory errors into one line on stderr and exit 1; bad arguments exit 2."""
    try:
        yield
    except InventoryError as exc:
        fail(escape(str(exc)))  # fail() prints rich markup: "[/servers/...]" must stay text
    except ValueError as exc:  # a bad filter or uuid, refused before any request
        fail(escape(str(exc)), code=2)


def _client(ctx: typer.Context) -> InventoryClient:
    return InventoryClient(state(ctx).settings().inventory)


def _task_status(server: Server, namespace: str) -> str | None:
    """The task's status as operators read it (``requested`` for new), ``invalid`` when the attribute's data is
    not a JSON object, ``None`` without an attribute."""
    attr = server.attribute(namespace)
    if attr is None:
        return None
    if not isinstance(attr.data, dict):
        return "invalid"
    status = attr.data.get("status")
    return str(status) if status else "requested"


def _when(moment: datetime | None) -> str | None:
    """A timestamp to the second, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if moment is not None else None


def _compact(data: Any) -> str:
    text = json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)
    return text if len(text) <= _DATA_WIDTH else text[: _DATA_WIDTH - 3] + "..."


@app.command("servers")
def servers(
    ctx: typer.Context,
    attr: Annotated[
        list[str] | None,
        typer.Option(
            "--attr",
            help="Attribute filter NAMESPACE[~key.path[~op~value]], op: eq, like, gt, lt. Repeat to AND them, "
            "e.g. --attr 'sh.hollow.flasher.task~status~eq~queued'.",
        ),
    ] = None,
    facility: Annotated[
        str | None, typer.Option("--facility", help="Only this facility (default: inventory.facility).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List servers with vendor, model, BMC address and the status of their flasher tasks."""
    client = _client(ctx)
    with _inventory_errors():
        found = client.list_servers(attr=attr or [], facility=facility)
    if as_json:
        print_json(found)
        return
    rows = [
        [
            s.uuid,
            s.name or None,
            s.facility or None,
            s.vendor,
            s.model,
            s.bmc_address,
            _task_status(s, TASK_NAMESPACE),
            _task_status(s, SERVER_CONTROL_NAMESPACE),
        ]
        for s in found
    ]
    columns = ["uuid", "name", "facility", "vendor", "model", "BMC", "install task", "control task"]
    print_table(f"servers ({len(found)})", columns, rows)


@app.command("server")
def server(
    ctx: typer.Context,
    uuid: Annotated[str, typer.Argument(help="The server's uuid.")],
    as_json: JsonOption = False,
) -> None:
    """Show one server: its attributes, and its components with their installed firmware."""
    client = _client(ctx)
    with _inventory_errors():
        found = client.get_server(uuid)
        components = client.list_components(found.uuid)
    if as_json:
        document = found.model_dump(mode="json")
        document["components"] = [c.model_dump(mode="json") for c in components]
        print_json(document)
        return
    summary = [found.name, found.facility, found.vendor, found.model, found.serial, found.bmc_address]
    print_table(
        f"server {found.uuid}",
        ["name", "facility", "vendor", "model", "serial", "BMC", "updated"],
        [[value or None for value in summary] + [_when(found.updated_at)]],
    )
    print_table(
        "attributes",
        ["namespace", "created", "data"],
        [[a.namespace, _when(a.created_at), _compact(a.data)] for a in found.attributes],
    )
    rows = [
        [c.component_type_slug, c.name, c.vendor, c.model, c.serial, c.installed_firmware(), c.uuid] for c in components
    ]
    print_table(
        "components",
        ["type", "name", "vendor", "model", "serial", "installed firmware", "uuid"],
        [[cell or None for cell in row] for row in rows],
    )


def _firmware_summary(fw_set: FirmwareSet) -> str:
    return ", ".join(f"{fw.component} {fw.version}" for fw in fw_set.component_firmware) or "-"


@app.command("firmware-sets")
def firmware_sets(
    ctx: typer.Context,
    vendor: Annotated[str | None, typer.Option("--vendor", help="Only sets labelled with this vendor.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only sets labelled with this model.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Only the set with this name.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List firmware sets with their labels and firmware (component and version)."""
    labels = {key: value for key, value in (("vendor", vendor), ("model", model)) if value}
    client = _client(ctx)
    with _inventory_errors():
        found = client.list_firmware_sets(name=name, labels=labels)
    if as_json:
        print_json(found)
        return
    rows = [
        [
            s.name,
            s.uuid,
            " ".join(f"{k}={v}" for k, v in sorted(s.labels.items())) or None,
            _firmware_summary(s),
        ]
        for s in found
    ]
    print_table(f"firmware sets ({len(found)})", ["name", "uuid", "labels", "firmware"], rows)
