"""Server credentials (e.g. the BMC's ``username``/``password``, slug ``bmc``) and credential types.

The reference server encrypts passwords at rest; the sandbox stores them as given (it holds test secrets only).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError

from flasher_sandbox.inventory import schema
from flasher_sandbox.inventory.db import is_unique_violation
from flasher_sandbox.inventory.errors import datastore_error, duplicate_key, not_found
from flasher_sandbox.inventory.times import now_us

_CREDS = schema.server_credentials
_TYPES = schema.server_credential_types


def credential_type_ids(conn: Connection) -> dict[str, str]:
    """Credential type id by slug."""
    return {row.slug: row.id for row in conn.execute(select(_TYPES.c.slug, _TYPES.c.id))}


def list_credential_types(conn: Connection) -> list[Row[Any]]:
    """Every credential type, in the order they were created."""
    return list(conn.execute(select(_TYPES).order_by(literal_column("server_credential_types.rowid"))))


def insert_credential_type(conn: Connection, name: str, slug: str) -> None:
    """Add a (non-built-in) credential type; 400 (duplicate key) when the slug exists."""
    now = now_us()
    try:
        conn.execute(
            insert(_TYPES).values(
                id=str(uuid.uuid4()), name=name, slug=slug, builtin=False, created_at=now, updated_at=now
            )
        )
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise duplicate_key(
                "models: unable to insert into server_credential_types", "server_credential_types_slug_key"
            ) from None
        raise datastore_error(str(exc.orig)) from None


def get_credential(conn: Connection, server_id: str, slug: str) -> Row[Any]:
    """A server's credential of type ``slug``; 404 when there is none."""
    row = conn.execute(
        select(_CREDS)
        .join(_TYPES, _TYPES.c.id == _CREDS.c.server_credential_type_id)
        .where(_CREDS.c.server_id == server_id, _TYPES.c.slug == slug)
    ).first()
    if row is None:
        raise not_found()
    return row


def upsert_credentials(conn: Connection, credentials: Sequence[dict[str, Any]]) -> None:
    """Set credentials (``server_id``, ``slug``, ``username``, ``password``): insert, or update username and
    password, in bulk. 404 when a slug names no credential type."""
    type_ids = credential_type_ids(conn)
    keyed: dict[tuple[str, str], dict[str, Any]] = {}
    for item in credentials:
        type_id = type_ids.get(item["slug"])
        if type_id is None:
            raise not_found()
        keyed[(item["server_id"], type_id)] = item
    if not keyed:
        return
    server_ids = sorted({server_id for server_id, _type in keyed})
    existing: set[tuple[str, str]] = set()
    for start in range(0, len(server_ids), 500):
        rows = conn.execute(
            select(_CREDS.c.server_id, _CREDS.c.server_credential_type_id).where(
                _CREDS.c.server_id.in_(server_ids[start : start + 500])
            )
        )
        existing.update((row.server_id, row.server_credential_type_id) for row in rows)
    now = now_us()
    updates = [
        {"b_server": server_id, "b_type": type_id, "username": item["username"], "password": item["password"]}
        for (server_id, type_id), item in keyed.items()
        if (server_id, type_id) in existing
    ]
    inserts = [
        {
            "server_id": server_id,
            "server_credential_type_id": type_id,
            "username": item["username"],
            "password": item["password"],
            "created_at": now,
            "updated_at": now,
        }
        for (server_id, type_id), item in keyed.items()
        if (server_id, type_id) not in existing
    ]
    if updates:
        conn.execute(
            update(_CREDS)
            .where(
                _CREDS.c.server_id == bindparam("b_server"), _CREDS.c.server_credential_type_id == bindparam("b_type")
            )
            .values(username=bindparam("username"), password=bindparam("password"), updated_at=now),
            updates,
        )
    if inserts:
        conn.execute(insert(_CREDS), inserts)


def delete_credential(conn: Connection, server_id: str, slug: str) -> None:
    """Delete a server's credential of type ``slug``; 404 when there is none."""
    row = get_credential(conn, server_id, slug)
    conn.execute(delete(_CREDS).where(_CREDS.c.id == row.id))
