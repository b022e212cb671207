"""``flasher run``: the service (poller, workers, file server, /healthz /readyz /metrics) until SIGTERM."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flasher.commands.common import state


def command(
    ctx: typer.Context,
    worker_id: Annotated[
        str | None,
        typer.Option("--worker-id", help="This replica's name in the task attribute's worker (service.worker_id)."),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, max=256, help="Worker threads (service.concurrency).")
    ] = None,
    poll_interval: Annotated[
        float | None, typer.Option("--poll-interval", min=0.1, help="Seconds between polls (service.poll_interval).")
    ] = None,
) -> None:
    """Run flasher: poll the inventory for flagged servers, queue their tasks in Redis, and run them.

    Stops on SIGTERM or SIGINT: no new claims, running tasks stop at their next safe point within
    service.shutdown_grace seconds and go back to the queue for another replica; exit status 0.
    """
    from flasher.service.app import Service  # imported here: the other commands need none of it

    settings = state(ctx).settings()
    overrides: dict[str, Any] = {
        key: value
        for key, value in (("worker_id", worker_id), ("concurrency", concurrency), ("poll_interval", poll_interval))
        if value is not None
    }
    if overrides:
        settings = settings.model_copy(update={"service": settings.service.model_copy(update=overrides)})
    raise typer.Exit(Service(settings).run())
