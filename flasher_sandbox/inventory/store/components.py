"""Server components and component types.

A component's installed firmware version is its versioned attribute ``sh.hollow.alloy.outofband.status``
(``data.firmware.installed``); PUT appends new versioned attributes, so readers take the newest per namespace.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError

from flasher_sandbox.inventory import records, schema
from flasher_sandbox.inventory.binding import MISSING
from flasher_sandbox.inventory.db import is_foreign_key_violation, is_unique_violation
from flasher_sandbox.inventory.errors import ApiError, bad_request, datastore_error, duplicate_key
from flasher_sandbox.inventory.filters import ComponentFilter, component_conditions
from flasher_sandbox.inventory.responses import Pager
from flasher_sandbox.inventory.store.attributes import (
    attributes_of,
    insert_attributes,
    insert_versioned,
    newest_versioned_of,
    upsert_component_attribute,
)
from flasher_sandbox.inventory.times import now_us

_COMPONENTS = schema.server_components
_TYPES = schema.server_component_types
_PAYLOAD_ERROR = "error in server component payload"
_FK_TEXT = (
    'models: unable to insert into server_components: pq: insert or update on table "server_components" violates '
    'foreign key constraint "fk_server_component_type_id_ref_server_component_types"'
)


def list_component_types(conn: Connection) -> list[Row[Any]]:
    """Every component type, in the order they were created."""
    return list(conn.execute(select(_TYPES).order_by(literal_column("server_component_types.rowid"))))


def insert_component_types(conn: Connection, types: Sequence[dict[str, Any]]) -> list[str]:
    """Insert component types (``id`` or ``None``, ``name``, ``slug``); returns their slugs.

    400 (duplicate key) when a slug exists already.
    """
    values = [{"id": item.get("id") or str(uuid.uuid4()), "name": item["name"], "slug": item["slug"]} for item in types]
    if values:
        try:
            conn.execute(insert(_TYPES), values)
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise duplicate_key(
                    "models: unable to insert into server_component_types", "server_component_types_slug_key"
                ) from None
            raise datastore_error(f"models: unable to insert into server_component_types: {exc.orig}") from None
    return [value["slug"] for value in values]


def _with_type() -> Select[Any]:
    return select(
        _COMPONENTS,
        _TYPES.c.id.label("type_id"),
        _TYPES.c.name.label("type_name"),
        _TYPES.c.slug.label("type_slug"),
    ).select_from(_COMPONENTS.outerjoin(_TYPES, _TYPES.c.id == _COMPONENTS.c.server_component_type_id))


def component_records(
    conn: Connection, rows: Sequence[Row[Any]], *, with_attributes: bool, with_versioned: bool
) -> list[records.Record]:
    """JSON records of component ``rows`` (from :func:`_with_type`) with the relations asked for."""
    ids = [row.id for row in rows]
    attrs = attributes_of(conn, "server_component_id", ids) if with_attributes else {}
    versions = newest_versioned_of(conn, "server_component_id", ids) if with_versioned else {}
    return [
        records.component(
            row,
            [records.attribute(a) for a in attrs.get(row.id, [])],
            [records.versioned_attribute(v) for v in versions.get(row.id, [])],
        )
        for row in rows
    ]


def components_of_servers(
    conn: Connection, server_ids: Sequence[str], *, with_attributes: bool, with_versioned: bool
) -> dict[str, list[records.Record]]:
    """The components of each server (in the order they were created) as JSON records, by server id."""
    if not server_ids:
        return {}
    rows = list(
        conn.execute(
            _with_type()
            .where(_COMPONENTS.c.server_id.in_(server_ids))
            .order_by(_COMPONENTS.c.created_at, literal_column("server_components.rowid"))
        )
    )
    found = component_records(conn, rows, with_attributes=with_attributes, with_versioned=with_versioned)
    grouped: dict[str, list[records.Record]] = {}
    for row, record in zip(rows, found, strict=True):
        grouped.setdefault(row.server_id, []).append(record)
    return grouped


def list_components(
    conn: Connection, filters: Sequence[ComponentFilter], pager: Pager
) -> tuple[list[records.Record], int]:
    """One page of the components matching every ``sc_N`` group, newest first, and the total count."""
    conditions = [condition for flt in filters for condition in component_conditions(_COMPONENTS, flt)]
    total = conn.execute(select(func.count()).select_from(_COMPONENTS).where(*conditions)).scalar_one()
    rows = list(
        conn.execute(
            _with_type()
            .where(*conditions)
            .order_by(_COMPONENTS.c.created_at.desc(), literal_column("server_components.rowid").desc())
            .limit(pager.limit_used)
            .offset(pager.offset)
        )
    )
    return component_records(conn, rows, with_attributes=True, with_versioned=True), total


def _relations(component_id: str, component: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    attrs, versions = [], []
    for attr in component.get("attributes") or []:
        attrs.append({"server_component_id": component_id, "namespace": attr["namespace"], "data": _data(attr)})
    for version in component.get("versioned_attributes") or []:
        versions.append(
            {"server_component_id": component_id, "namespace": version["namespace"], "data": _data(version)}
        )
    return attrs, versions


def _data(attr: dict[str, Any]) -> Any:
    if attr["data"] is MISSING:
        raise datastore_error('pq: null value in column "data" violates not-null constraint')
    return attr["data"]


def insert_components(conn: Connection, components: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Insert ``(server id, bound ServerComponent payload)`` pairs with the components' attributes and
    versioned attributes, in bulk; returns the component ids (the payload's ``uuid``, or a new one).

    500 when ``component_type_id`` names no component type (a foreign key, as on the reference server);
    400 (duplicate key) when a component ``uuid`` exists already.
    """
    now = now_us()
    values, attrs, versions = [], [], []
    for server_id, component in components:
        given = component.get("uuid")
        component_id = str(given) if given is not None and given.int else str(uuid.uuid4())
        values.append(
            {
                "id": component_id,
                "server_id": server_id,
                "server_component_type_id": component["component_type_id"],
                "name": component["name"],
                "vendor": component["vendor"],
                "model": component["model"],
                "serial": component["serial"],
                "created_at": now,
                "updated_at": now,
            }
        )
        component_attrs, component_versions = _relations(component_id, component)
        attrs += component_attrs
        versions += component_versions
    if not values:
        return []
    try:
        conn.execute(insert(_COMPONENTS), values)
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise duplicate_key("models: unable to insert into server_components", "server_components_pkey") from None
        if is_foreign_key_violation(exc):
            raise datastore_error(_FK_TEXT) from None
        raise datastore_error(f"models: unable to insert into server_components: {exc.orig}") from None
    insert_versioned(conn, "server_component_id", versions)
    insert_attributes(conn, "server_component_id", attrs)
    return [value["id"] for value in values]


def update_components(conn: Connection, server_id: str, components: Sequence[dict[str, Any]]) -> None:
    """Update components by ``uuid`` as the reference server's PUT does.

    Each component's name, vendor, model, serial and type are set from the payload (and it is attached to
    ``server_id``); its versioned attributes are appended (the newest per namespace is what readers see,
    e.g. a newly installed firmware version); its attributes are replaced by namespace or added.
    400 when a ``uuid`` is missing or names no component.
    """
    for component in components:
        component_uuid = component.get("uuid")
        if component_uuid is None or component_uuid.int == 0:
            raise bad_request("component update requires a non-nil UUID", _PAYLOAD_ERROR)
        component_id = str(component_uuid)
        try:
            result = conn.execute(
                update(_COMPONENTS)
                .where(_COMPONENTS.c.id == component_id)
                .values(
                    server_id=server_id,
                    server_component_type_id=component["component_type_id"],
                    name=component["name"],
                    vendor=component["vendor"],
                    model=component["model"],
                    serial=component["serial"],
                    updated_at=now_us(),
                )
            )
        except IntegrityError:
            raise datastore_error(_FK_TEXT.replace("insert into", "update")) from None
        if result.rowcount == 0:
            raise ApiError(
                400, "", f"component resource referenced by UUID does not exist: {component_id}: {_PAYLOAD_ERROR}"
            )
        attrs, versions = _relations(component_id, component)
        insert_versioned(conn, "server_component_id", versions)
        for attr in attrs:
            upsert_component_attribute(conn, component_id, attr["namespace"], attr["data"])


def delete_components(conn: Connection, server_id: str) -> None:
    """Delete every component of a server (their attributes and versioned attributes go with them)."""
    conn.execute(delete(_COMPONENTS).where(_COMPONENTS.c.server_id == server_id))
