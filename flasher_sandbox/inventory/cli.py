"""``flasher-sandbox inventory``: run the Serverservice-compatible inventory on SQLite."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from loguru import logger

from flasher_sandbox.inventory.seed import SeedError
from flasher_sandbox.inventory.server import serve


def command(  # noqa: PLR0917 (typer options)
    db: Annotated[Path, typer.Option("--db", help="SQLite database file (created when missing).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port to listen on (0: any free port, logged at start).")] = 8000,
    seed: Annotated[
        Path | None,
        typer.Option(help="Seed YAML loaded into an empty database (see docs/sandbox.md)."),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="FLASHER_SANDBOX_TOKEN",
            help="Require 'Authorization: Bearer <token>' on /api/v1 and /_sandbox (default: no auth).",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Request worker threads.")] = 8,
    log_level: Annotated[str, typer.Option(help="DEBUG logs one line per request.")] = "INFO",
) -> None:
    """Serve a Serverservice-compatible inventory (/api/v1) on SQLite until SIGTERM or Ctrl-C.

    Also /healthz, /healthz/readiness, and sandbox-only controls under /_sandbox: fault injection (PUT/DELETE
    /_sandbox/faults), seeding (POST /_sandbox/seed), reset (POST /_sandbox/reset) and the journal of attribute
    writes (GET /_sandbox/journal). See docs/sandbox.md.
    """
    logger.remove()
    try:
        logger.add(sys.stderr, level=log_level.upper(), format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {message}")
    except ValueError:
        raise typer.BadParameter(f"unknown level {log_level!r}", param_hint="--log-level") from None
    try:
        serve(db, host, port, token=token, seed_path=seed, threads=threads)
    except SeedError as exc:
        logger.error("{}", exc)
        raise typer.Exit(2) from None
    except OSError as exc:
        logger.error("cannot serve on {}:{}: {}", host, port, exc)
        raise typer.Exit(1) from None
