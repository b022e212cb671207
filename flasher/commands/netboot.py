"""``flasher netboot [--listen HOST:PORT]``: serve the Pixiecore API, iPXE and callback endpoints on their own.

Until ``flasher api`` mounts :func:`flasher.netboot.api.router`, this is how the endpoints are served: uvicorn,
one process, the inventory from the settings. ``--listen`` overrides ``netboot.host``/``netboot.port``. Runs
until SIGINT or SIGTERM.
"""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from flasher.commands.common import fail, state
from flasher.inventory.client import InventoryClient
from flasher.netboot.api import create_app
from flasher.netboot.service import NetbootService


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        fail(f"--listen {value!r}: give HOST:PORT (e.g. 127.0.0.1:8891)", code=2)
    return host.strip("[]"), int(port)


def command(
    ctx: typer.Context,
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT to listen on (default: netboot.host:netboot.port).")
    ] = None,
) -> None:
    """Serve the netboot endpoints: Pixiecore API (/v1/boot/MAC), iPXE (/v1/ipxe?mac=), callbacks."""
    settings = state(ctx).settings()
    host, port = _listen(listen) if listen else (settings.netboot.host, settings.netboot.port)
    if listen:
        netboot = settings.netboot.model_copy(update={"host": host, "port": port})
        settings = settings.model_copy(update={"netboot": netboot})
    service = NetbootService(InventoryClient(settings.inventory), settings)
    uvicorn.run(create_app(service), host=host, port=port, log_level="warning", access_log=False)
