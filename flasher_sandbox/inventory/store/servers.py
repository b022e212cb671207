"""Servers: create, find, filter and page, rename, soft-delete; and their JSON records with relations.

What a server record carries depends on the endpoint, as on the reference server: a list loads attributes,
the newest versioned attribute of each namespace and components with their attributes and type (component
``versioned_attributes`` stay ``null``); a single GET loads attributes, newest versioned attributes and
components with their type only (component ``attributes`` and ``versioned_attributes`` stay ``null``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, func, insert, intersect, literal_column, select, update
from sqlalchemy.exc import IntegrityError

from flasher_sandbox.inventory import records, schema
from flasher_sandbox.inventory.db import is_unique_violation
from flasher_sandbox.inventory.errors import bad_request, datastore_error, duplicate_key, not_found
from flasher_sandbox.inventory.filters import (
    AttributeFilter,
    ComponentFilter,
    owners_with_attribute,
    owners_with_versioned_attribute,
    parse_attribute_filters,
    parse_component_filters,
    servers_with_component,
)
from flasher_sandbox.inventory.responses import Pager
from flasher_sandbox.inventory.store.attributes import attributes_of, newest_versioned_of
from flasher_sandbox.inventory.store.components import components_of_servers
from flasher_sandbox.inventory.times import now_us

_SERVERS = schema.servers
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"", "0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True)
class ServerFilters:
    """The filters of ``GET /servers``."""

    facility: str = ""
    include_deleted: bool = False
    attributes: list[AttributeFilter] = field(default_factory=list)
    versioned_attributes: list[AttributeFilter] = field(default_factory=list)
    components: list[ComponentFilter] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: list[tuple[str, str]]) -> ServerFilters:
        """Read ``facility-code``, ``include-deleted``, ``attr``, ``ver_attr`` and ``sc_N...``.

        ``include-deleted`` is parsed like Go's ``strconv.ParseBool``; anything else is a 400 ``invalid filter``.
        """
        first = {key: value for key, value in reversed(params)}
        deleted_text = first.get("include-deleted", "")
        if deleted_text not in _TRUE | _FALSE:
            raise bad_request("invalid filter", f'strconv.ParseBool: parsing "{deleted_text}": invalid syntax')
        return cls(
            facility=first.get("facility-code", ""),
            include_deleted=deleted_text in _TRUE,
            attributes=parse_attribute_filters([value for key, value in params if key == "attr"]),
            versioned_attributes=parse_attribute_filters([value for key, value in params if key == "ver_attr"]),
            components=parse_component_filters(params),
        )


def insert_servers(conn: Connection, servers: Sequence[dict[str, Any]]) -> list[str]:
    """Insert servers (``id`` or ``None`` for a new UUID, ``name``, ``facility_code``); returns their ids.

    400 (duplicate key ``servers_pkey``) when an id exists already.
    """
    now = now_us()
    values = [
        {
            "id": server.get("id") or str(uuid.uuid4()),
            "name": server.get("name", ""),
            "facility_code": server.get("facility_code", ""),
            "created_at": now,
            "updated_at": now,
        }
        for server in servers
    ]
    if values:
        try:
            conn.execute(insert(_SERVERS), values)
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise duplicate_key("models: unable to insert into servers", "servers_pkey") from None
            raise datastore_error(f"models: unable to insert into servers: {exc.orig}") from None
    return [value["id"] for value in values]


def find_server(conn: Connection, server_id: str, *, include_deleted: bool = False) -> Row[Any]:
    """One server; 404 when it does not exist (or is soft-deleted, unless ``include_deleted``)."""
    query = select(_SERVERS).where(_SERVERS.c.id == server_id)
    if not include_deleted:
        query = query.where(_SERVERS.c.deleted_at.is_(None))
    row = conn.execute(query).first()
    if row is None:
        raise not_found()
    return row


def list_servers(conn: Connection, filters: ServerFilters, pager: Pager) -> tuple[list[Row[Any]], int]:
    """One page of the servers matching ``filters``, newest first, and how many match in all.

    Attribute and component filters become one ``INTERSECT`` of id lists, each read from an index by
    namespace (and status), so the cost follows the matching servers, not the fleet.
    """
    query = select(_SERVERS)
    if not filters.include_deleted:
        query = query.where(_SERVERS.c.deleted_at.is_(None))
    if filters.facility:
        query = query.where(_SERVERS.c.facility_code == filters.facility)
    id_sets = [owners_with_attribute("server_id", flt) for flt in filters.attributes]
    id_sets += [owners_with_versioned_attribute("server_id", flt) for flt in filters.versioned_attributes]
    id_sets += [servers_with_component(flt) for flt in filters.components]
    if id_sets:
        ids = id_sets[0] if len(id_sets) == 1 else intersect(*id_sets)
        query = query.where(_SERVERS.c.id.in_(ids))
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    page = query.order_by(_SERVERS.c.created_at.desc(), literal_column("servers.rowid").desc())
    rows = list(conn.execute(page.limit(pager.limit_used).offset(pager.offset)))
    return rows, total


def update_server(conn: Connection, server_id: str, name: str, facility: str) -> None:
    """Set a server's name and facility (the reference server's PUT sets both, empty or not)."""
    conn.execute(
        update(_SERVERS)
        .where(_SERVERS.c.id == server_id)
        .values(name=name, facility_code=facility, updated_at=now_us())
    )


def soft_delete_server(conn: Connection, server_id: str) -> None:
    """Mark a server deleted: lists leave it out unless ``include-deleted=true``; GET still finds it."""
    conn.execute(update(_SERVERS).where(_SERVERS.c.id == server_id).values(deleted_at=now_us()))


def server_records(conn: Connection, rows: Sequence[Row[Any]], *, listing: bool) -> list[records.Record]:
    """JSON records of ``rows`` with the relations a list (``listing``) or a single GET loads."""
    ids = [row.id for row in rows]
    attrs = attributes_of(conn, "server_id", ids)
    versions = newest_versioned_of(conn, "server_id", ids)
    components = components_of_servers(conn, ids, with_attributes=listing, with_versioned=False)
    return [
        records.server(
            row,
            [records.attribute(a) for a in attrs.get(row.id, [])],
            components.get(row.id, []),
            [records.versioned_attribute(v) for v in versions.get(row.id, [])],
        )
        for row in rows
    ]
