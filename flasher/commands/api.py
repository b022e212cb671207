"""``flasher api``: the HTTP API, its event stream and the dashboard (:mod:`flasher.api`), until SIGTERM."""

from __future__ import annotations

from typing import Annotated

import typer

from flasher.commands.common import fail, state


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise typer.BadParameter(f"{value!r}: use HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
    return host, int(port)


def command(
    ctx: typer.Context,
    listen: Annotated[
        str | None,
        typer.Option("--listen", "-l", help="HOST:PORT to listen on (api.host and api.port; default 127.0.0.1:8080)."),
    ] = None,
) -> None:
    """Serve flasher's HTTP API: conditionorc's and roller's shapes, flasher's tasks and queue, task events as
    Server-Sent Events (/api/v1/events), OpenAPI at /openapi.json, docs at /docs and the dashboard at /ui.

    Stateless: requests become task attributes in the inventory; run several behind a load balancer. Stops on
    SIGTERM or SIGINT.
    """
    import uvicorn  # imported here: the other commands need none of it

    from flasher.api.app import create_app

    settings = state(ctx).settings()
    if listen is not None:
        host, port = _listen(listen)
        settings = settings.model_copy(update={"api": settings.api.model_copy(update={"host": host, "port": port})})
    try:
        app = create_app(settings)
    except ValueError as exc:  # a tokens file that cannot be used
        fail(str(exc), 2)
    config = uvicorn.Config(
        app, host=settings.api.host, port=settings.api.port, log_config=None, access_log=False, ws="none"
    )
    typer.echo(f"flasher api listening on http://{settings.api.host}:{settings.api.port} (docs /docs, dashboard /ui)")
    uvicorn.Server(config).run()
