"""The SQLite database behind the sandbox inventory: connections, transactions and the built-in rows.

SQLite runs in WAL mode, so readers never wait for the writer. Writes take ``BEGIN IMMEDIATE`` (the write
lock up front, so a transaction never fails half-way with "database is locked" when it tries to upgrade a
read lock) and, within one process, an in-process lock, so that threads queue instead of spinning in
SQLite's busy handler. Another process writing the same file (:func:`flasher_sandbox.inventory.seed.load_seed`)
waits up to ``busy_timeout``.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import QueuePool

from flasher_sandbox.inventory import schema
from flasher_sandbox.inventory.times import now_us

#: How long a connection waits for another process's write lock, in milliseconds.
BUSY_TIMEOUT_MS = 30_000

#: Credential types every reference server has (migration-seeded); ``bmc`` is flasher's.
BUILTIN_CREDENTIAL_TYPES: tuple[tuple[str, str], ...] = (("bmc", "BMC"),)


def sqlite_url(db: str | Path) -> str:
    """``db`` as an SQLAlchemy URL: ``sqlite:///...`` URLs pass through, anything else is a file path."""
    text = str(db)
    if text.startswith("sqlite:"):
        return text
    if text in ("", ":memory:"):
        raise ValueError("the sandbox inventory needs a database file (--db), not an in-memory database")
    return f"sqlite:///{Path(text).expanduser().resolve()}"


class Database:
    """An SQLite file with the inventory schema; use :meth:`read` and :meth:`write` for transactions."""

    def __init__(self, db: str | Path, *, pool_size: int = 8) -> None:
        self.url = sqlite_url(db)
        self.engine: Engine = create_engine(
            self.url,
            poolclass=QueuePool,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(self.engine, "connect", _on_connect)
        event.listen(self.engine, "begin", _on_begin)
        self._write_lock = threading.Lock()

    def create(self) -> Database:
        """Create the tables (if missing) and the built-in credential types; returns ``self``."""
        with self.write() as conn:
            schema.metadata.create_all(conn)
            known = set(conn.scalars(select(schema.server_credential_types.c.slug)))
            now = now_us()
            rows = [
                {
                    "id": str(uuid.uuid4()),
                    "slug": slug,
                    "name": name,
                    "builtin": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for slug, name in BUILTIN_CREDENTIAL_TYPES
                if slug not in known
            ]
            if rows:
                conn.execute(insert(schema.server_credential_types), rows)
        return self

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (one consistent snapshot for all its statements)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), committed on success, rolled back on an exception."""
        with self._write_lock, self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def is_empty(self) -> bool:
        """True when the database holds no server, firmware version or firmware set."""
        with self.read() as conn:
            for table in (schema.servers, schema.component_firmware_version, schema.component_firmware_set):
                if conn.execute(select(table.c.id).limit(1)).first() is not None:
                    return False
        return True

    def ping(self) -> bool:
        """True when a query succeeds (readiness)."""
        with self.read() as conn:
            return conn.exec_driver_sql("SELECT 1").scalar() == 1

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see _on_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def is_unique_violation(exc: IntegrityError) -> bool:
    """True when SQLite rejected a write for a UNIQUE or PRIMARY KEY constraint."""
    return "UNIQUE constraint failed" in str(exc.orig)


def is_foreign_key_violation(exc: IntegrityError) -> bool:
    """True when SQLite rejected a write for a FOREIGN KEY constraint."""
    return "FOREIGN KEY constraint failed" in str(exc.orig)
