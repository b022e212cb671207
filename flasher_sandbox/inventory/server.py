"""Running the inventory: waitress (threaded) on a host and port, stopped cleanly by SIGTERM or SIGINT."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

from loguru import logger
from waitress.server import create_server

from flasher_sandbox.inventory.app import create_app
from flasher_sandbox.inventory.db import Database
from flasher_sandbox.inventory.seed import load_seed, read_seed_file


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def serve(
    db_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    token: str | None = None,
    seed_path: Path | None = None,
    threads: int = 8,
) -> None:
    """Serve the inventory in ``db_path`` until SIGTERM/SIGINT; returns after in-flight requests finish.

    With ``seed_path``, the seed is loaded first, but only into an empty database (a restart on a kept
    database does not load it twice). Raises ``SeedError`` for a bad seed and ``OSError`` when the port is
    taken.
    """
    database = Database(db_path, pool_size=threads + 2).create()
    try:
        if seed_path is not None:
            if database.is_empty():
                result = load_seed(database.url, read_seed_file(seed_path))
                logger.info(
                    "seeded from {}: {} servers, {} firmware versions, {} firmware sets",
                    seed_path,
                    len(result.server_ids),
                    len(result.firmware_ids),
                    len(result.firmware_sets),
                )
            else:
                logger.warning("database {} already holds an inventory: seed {} not loaded", db_path, seed_path)
        app = create_app(database, token=token)
        server = create_server(app, host=host, port=port, threads=threads, ident="flasher-sandbox-inventory")
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            logger.info(
                "inventory listening on http://{}:{} (database {}, {} threads, auth {})",
                host,
                getattr(server, "effective_port", port),
                db_path,
                threads,
                "on" if token else "off",
            )
            server.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            server.close()
        logger.info("inventory stopped")
    finally:
        database.close()
