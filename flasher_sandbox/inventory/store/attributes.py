"""Attributes (one per owner and namespace, replaced by PUT) and versioned attributes (a history per namespace).

An owner is a server (``server_id``) or a server component (``server_component_id``). Reading an owner's
versioned attributes as the reference server does keeps only the newest row of each namespace.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flasher_sandbox.inventory import schema
from flasher_sandbox.inventory.db import is_unique_violation
from flasher_sandbox.inventory.errors import datastore_error, duplicate_key, not_found
from flasher_sandbox.inventory.filters import newest_version
from flasher_sandbox.inventory.gojson import json_equal, load_stored, store_text
from flasher_sandbox.inventory.times import now_us

Owner = Literal["server_id", "server_component_id"]

_ATTRS = schema.attributes
_VERSIONS = schema.versioned_attributes
_INSERT_OP = "failed to insert into foreign table: models: unable to insert into attributes"
_CONSTRAINT = {"server_id": "idx_attr_server_ns", "server_component_id": "idx_attr_component_ns"}


def group_by(rows: Iterable[Row[Any]], key: str) -> dict[str, list[Row[Any]]]:
    """``rows`` grouped by the value of column ``key``, each group in the rows' order."""
    groups: dict[str, list[Row[Any]]] = defaultdict(list)
    for row in rows:
        groups[row._mapping[key]].append(row)
    return groups


def attributes_of(conn: Connection, owner: Owner, ids: Sequence[str]) -> dict[str, list[Row[Any]]]:
    """Every attribute of the owners ``ids``, by owner id, in the order they were created."""
    if not ids:
        return {}
    rows = conn.execute(select(_ATTRS).where(_ATTRS.c[owner].in_(ids)).order_by(_ATTRS.c.id))
    return group_by(rows, owner)


def newest_versioned_of(conn: Connection, owner: Owner, ids: Sequence[str]) -> dict[str, list[Row[Any]]]:
    """The newest versioned attribute of each namespace of the owners ``ids``, by owner id."""
    if not ids:
        return {}
    rows = conn.execute(
        select(_VERSIONS).where(_VERSIONS.c[owner].in_(ids), newest_version(_VERSIONS, owner)).order_by(_VERSIONS.c.id)
    )
    return group_by(rows, owner)


def insert_attributes(conn: Connection, owner: Owner, rows: Sequence[dict[str, Any]]) -> None:
    """Insert attributes: each row has the owner column, ``namespace`` and ``data`` (a decoded JSON value).

    Raises 400 (duplicate key ``idx_attr_server_ns``) when an owner already has the namespace, as the
    reference server does for POST.
    """
    if not rows:
        return
    now = now_us()
    values = [
        {
            owner: row[owner],
            "namespace": row["namespace"],
            "data": store_text(row["data"]),
            "created_at": now,
            "updated_at": now,
        }
        for row in rows
    ]
    try:
        conn.execute(insert(_ATTRS), values)
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise duplicate_key(_INSERT_OP, _CONSTRAINT[owner]) from None
        raise datastore_error(f"{_INSERT_OP}: {exc.orig}") from None


def get_attribute(conn: Connection, owner: Owner, owner_id: str, namespace: str) -> Row[Any]:
    """One attribute; 404 when the owner does not have the namespace."""
    row = conn.execute(select(_ATTRS).where(_ATTRS.c[owner] == owner_id, _ATTRS.c.namespace == namespace)).first()
    if row is None:
        raise not_found()
    return row


def replace_server_attribute(conn: Connection, server_id: str, namespace: str, data: Any) -> None:
    """Replace an attribute's ``data`` and move the server's ``updated_at`` (not the attribute's).

    That is the reference server's PUT: the attribute's own ``updated_at`` stays as it was. 404 (nothing
    changed) when the server has no such attribute or is soft-deleted.
    """
    result = conn.execute(
        update(_ATTRS)
        .where(_ATTRS.c.server_id == server_id, _ATTRS.c.namespace == namespace)
        .values(data=store_text(data))
    )
    if result.rowcount == 0:
        raise not_found()
    servers = schema.servers
    moved = conn.execute(
        update(servers).where(servers.c.id == server_id, servers.c.deleted_at.is_(None)).values(updated_at=now_us())
    )
    if moved.rowcount == 0:
        raise not_found()


def upsert_component_attribute(conn: Connection, component_id: str, namespace: str, data: Any) -> None:
    """Set a component attribute: replace ``data`` (moving ``updated_at``) or insert it."""
    result = conn.execute(
        update(_ATTRS)
        .where(_ATTRS.c.server_component_id == component_id, _ATTRS.c.namespace == namespace)
        .values(data=store_text(data), updated_at=now_us())
    )
    if result.rowcount == 0:
        insert_attributes(
            conn, "server_component_id", [{"server_component_id": component_id, "namespace": namespace, "data": data}]
        )


def delete_server_attribute(conn: Connection, server_id: str, namespace: str) -> None:
    """Delete one attribute; 404 when there is none."""
    result = conn.execute(delete(_ATTRS).where(_ATTRS.c.server_id == server_id, _ATTRS.c.namespace == namespace))
    if result.rowcount == 0:
        raise not_found()


def versioned_history(conn: Connection, server_id: str, namespace: str | None = None) -> list[Row[Any]]:
    """A server's versioned attributes (of one namespace, or all), newest first."""
    query = select(_VERSIONS).where(_VERSIONS.c.server_id == server_id)
    if namespace is not None:
        query = query.where(_VERSIONS.c.namespace == namespace)
    return list(conn.execute(query.order_by(_VERSIONS.c.created_at.desc(), _VERSIONS.c.id.desc())))


def insert_versioned(conn: Connection, owner: Owner, rows: Sequence[dict[str, Any]]) -> None:
    """Append versioned attributes (``owner`` column, ``namespace``, ``data``) with tally 0."""
    if not rows:
        return
    values = []
    for row in rows:
        now = now_us()
        values.append(
            {
                owner: row[owner],
                "namespace": row["namespace"],
                "data": store_text(row["data"]),
                "tally": 0,
                "created_at": now,
                "updated_at": now,
            }
        )
    conn.execute(insert(_VERSIONS), values)


def report_versioned(conn: Connection, owner: Owner, owner_id: str, namespace: str, data: Any) -> None:
    """Record a versioned attribute as the reference server's POST does.

    When the newest row of the namespace holds equal data, its ``tally`` goes up by one and its
    ``updated_at`` (``last_reported_at``) moves; otherwise a new row is appended.
    """
    current = conn.execute(
        select(_VERSIONS)
        .where(_VERSIONS.c[owner] == owner_id, _VERSIONS.c.namespace == namespace)
        .order_by(_VERSIONS.c.created_at.desc(), _VERSIONS.c.id.desc())
        .limit(1)
    ).first()
    if current is not None and json_equal(load_stored(current.data), data):
        conn.execute(
            update(_VERSIONS).where(_VERSIONS.c.id == current.id).values(tally=current.tally + 1, updated_at=now_us())
        )
        return
    insert_versioned(conn, owner, [{owner: owner_id, "namespace": namespace, "data": data}])
