"""Firmware sets: named groups of firmware versions, labelled by attributes (``sh.hollow.firmware_set.labels``).

Rules and error texts follow the reference server's ``router_firmware_set.go``: a set needs a name and at
least one firmware version on create; it may hold one version per (vendor, version, component); PUT adds
firmware (it never removes) and, when attributes are given, replaces them; ``remove-firmware`` removes.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flasher_sandbox.inventory import records, schema
from flasher_sandbox.inventory.binding import MISSING, BindError, parse_uuid
from flasher_sandbox.inventory.db import is_unique_violation
from flasher_sandbox.inventory.errors import ApiError, bad_request, datastore_error, duplicate_key, not_found
from flasher_sandbox.inventory.filters import AttributeFilter, attribute_condition
from flasher_sandbox.inventory.gojson import load_stored, store_text
from flasher_sandbox.inventory.store.attributes import group_by
from flasher_sandbox.inventory.times import now_us

_SETS = schema.component_firmware_set
_MAP = schema.component_firmware_set_map
_ATTRS = schema.attributes_firmware_set
_FW = schema.component_firmware_version
REQUEST_ERROR = "error in component firmware set request"
_UNIQUE_ERROR = (
    "A firmware set can only reference unique firmware versions based on the vendor, version, component "
    "attributes: error mapping firmware in set"
)


def set_records(conn: Connection, rows: Sequence[Row[Any]]) -> list[records.Record]:
    """JSON records of firmware set ``rows`` with their attributes and firmware versions."""
    ids = [row.id for row in rows]
    attrs = group_by(
        conn.execute(select(_ATTRS).where(_ATTRS.c.firmware_set_id.in_(ids)).order_by(_ATTRS.c.id)), "firmware_set_id"
    )
    firmware: dict[str, list[records.Record]] = defaultdict(list)
    mapped = conn.execute(
        select(_FW, _MAP.c.firmware_set_id)
        .join(_MAP, _MAP.c.firmware_id == _FW.c.id)
        .where(_MAP.c.firmware_set_id.in_(ids))
        .order_by(_MAP.c.id)
    )
    for row in mapped:
        firmware[row.firmware_set_id].append(records.firmware(row))
    return [
        records.firmware_set(row, [records.attribute(a) for a in attrs.get(row.id, [])], firmware.get(row.id))
        for row in rows
    ]


def list_firmware_sets(conn: Connection, name: str, filters: Sequence[AttributeFilter]) -> tuple[list[Row[Any]], int]:
    """Every firmware set with ``name`` (when given) whose attributes match every filter, newest first.

    The reference server does not page this list (it reports ``page_size`` but returns every match).
    """
    query = select(_SETS)
    if name:
        query = query.where(_SETS.c.name == name)
    for flt in filters:
        query = query.where(_SETS.c.id.in_(select(_ATTRS.c.firmware_set_id).where(attribute_condition(_ATTRS, flt))))
    rows = list(conn.execute(query.order_by(_SETS.c.created_at.desc())))
    return rows, len(rows)


def find_set(conn: Connection, set_id: str) -> Row[Any]:
    """One firmware set; 404 when there is none."""
    row = conn.execute(select(_SETS).where(_SETS.c.id == set_id)).first()
    if row is None:
        raise not_found()
    return row


def _uniqueness_key(row: Row[Any]) -> str:
    return str(row.vendor).lower() + str(row.version).lower() + str(row.component).lower()


def _vet_firmware(conn: Connection, firmware_uuids: Sequence[str], set_row: Row[Any] | None = None) -> list[str]:
    """Parse and check the firmware UUIDs of a create (``set_row`` ``None``) or of an update of ``set_row``.

    The texts differ between the two as on the reference server (its create and update vetting are two
    functions, and an update also refuses firmware the set holds already).
    """
    seen: set[str] = set()
    vetted = []
    for text in firmware_uuids:
        try:
            parsed = str(parse_uuid(text))
        except BindError as exc:
            glue = " " if set_row is None else ""
            raise ApiError(400, "", f"{exc}{glue}invalid firmware UUID: {text}: {REQUEST_ERROR}") from None
        if set_row is not None:
            held = conn.execute(
                select(_MAP.c.id).where(_MAP.c.firmware_set_id == set_row.id, _MAP.c.firmware_id == parsed)
            ).first()
            if held is not None:
                raise ApiError(400, "", f"firmware '{text}' exists in firmware set '{set_row.name}' : {REQUEST_ERROR}")
        row = conn.execute(select(_FW).where(_FW.c.id == parsed)).first()
        if row is None:
            cause = "sql: no rows in result set" if set_row is None else REQUEST_ERROR
            raise ApiError(400, "", f"firmware object with given UUID does not exist: {text}: {cause}")
        if _uniqueness_key(row) in seen:
            raise ApiError(400, "", _UNIQUE_ERROR)
        seen.add(_uniqueness_key(row))
        vetted.append(parsed)
    return vetted


def _insert_attributes(conn: Connection, set_id: str, attributes: Sequence[dict[str, Any]]) -> None:
    now = now_us()
    rows = []
    for attr in attributes:
        if attr["data"] is MISSING:
            raise datastore_error('pq: null value in column "data" violates not-null constraint')
        rows.append(
            {
                "firmware_set_id": set_id,
                "namespace": attr["namespace"],
                "data": store_text(attr["data"]),
                "created_at": now,
                "updated_at": now,
            }
        )
    if rows:
        conn.execute(insert(_ATTRS), rows)


def _add_firmware(conn: Connection, set_id: str, firmware_ids: Sequence[str]) -> None:
    if firmware_ids:
        conn.execute(insert(_MAP), [{"firmware_set_id": set_id, "firmware_id": fid} for fid in firmware_ids])


def create_set(conn: Connection, payload: dict[str, Any]) -> str:
    """Create a set from a bound ``ComponentFirmwareSetRequest``; returns its id. 400 as the reference server:
    no name, no firmware, a bad or unknown firmware UUID, two versions of one (vendor, version, component),
    or a name in use."""
    if not payload["name"]:
        raise bad_request(
            "invalid payload: ComponentFirmwareSetCreate{}",
            "required attribute not set: Name: error in server component payload",
        )
    if not payload["component_firmware_uuids"]:
        raise ApiError(400, "", f"expected one or more firmware UUIDs, got none: {REQUEST_ERROR}")
    firmware_ids = _vet_firmware(conn, payload["component_firmware_uuids"])
    given = payload.get("uuid")
    set_id = str(given) if given is not None and given.int else str(uuid.uuid4())
    now = now_us()
    try:
        conn.execute(insert(_SETS).values(id=set_id, name=payload["name"], created_at=now, updated_at=now))
    except IntegrityError as exc:
        if is_unique_violation(exc):
            constraint = "idx_name" if "name" in str(exc.orig) else "component_firmware_set_pkey"
            raise duplicate_key("models: unable to insert into component_firmware_set", constraint) from None
        raise datastore_error(str(exc.orig)) from None
    _insert_attributes(conn, set_id, payload["attributes"] or [])
    _add_firmware(conn, set_id, firmware_ids)
    return set_id


def update_set(conn: Connection, payload: dict[str, Any]) -> None:
    """Apply a bound ``ComponentFirmwareSetRequest`` to the set its ``uuid`` names.

    A non-empty ``name`` renames; given ``attributes`` replace the set's (a single attribute with ``null``
    data keeps the single current one's data, as the reference server does); ``component_firmware_uuids``
    are added.
    """
    if payload["uuid"] is None or payload["uuid"].int == 0:
        raise ApiError(400, "", f"expected a valid firmware set ID, got none: {REQUEST_ERROR}")
    set_row = find_set(conn, str(payload["uuid"]))
    firmware_ids = _vet_firmware(conn, payload["component_firmware_uuids"] or [], set_row)
    name = payload["name"] or set_row.name
    try:
        conn.execute(update(_SETS).where(_SETS.c.id == set_row.id).values(name=name, updated_at=now_us()))
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise duplicate_key("models: unable to update component_firmware_set row", "idx_name") from None
        raise datastore_error(str(exc.orig)) from None
    attributes = list(payload["attributes"] or [])
    if attributes:
        current = list(conn.execute(select(_ATTRS).where(_ATTRS.c.firmware_set_id == set_row.id)))
        if len(current) == 1 and len(attributes) == 1 and attributes[0]["data"] in (None, MISSING):
            attributes = [{**attributes[0], "data": load_stored(current[0].data)}]
        conn.execute(delete(_ATTRS).where(_ATTRS.c.firmware_set_id == set_row.id))
        _insert_attributes(conn, set_row.id, attributes)
    _add_firmware(conn, set_row.id, firmware_ids)


def remove_firmware(conn: Connection, set_row: Row[Any], payload: dict[str, Any]) -> None:
    """Remove firmware versions from a set; the payload's ``uuid`` must name the set. 400 for a version the set
    does not hold."""
    if payload["uuid"] is None or payload["uuid"].int == 0:
        raise ApiError(400, "", f"expected a valid firmware set ID in payload, got none: {REQUEST_ERROR}")
    if str(payload["uuid"]) != set_row.id:
        raise ApiError(400, "", f"firmware set ID does not match payload ID attribute: {REQUEST_ERROR}")
    remove = []
    for text in payload["component_firmware_uuids"] or []:
        try:
            parsed = str(parse_uuid(text))
        except BindError as exc:
            raise bad_request(f"invalid firmware UUID: {text}", f"{exc}: {REQUEST_ERROR}") from None
        mapping = conn.execute(
            select(_MAP.c.id).where(_MAP.c.firmware_set_id == set_row.id, _MAP.c.firmware_id == parsed)
        ).first()
        if mapping is None:
            raise bad_request(
                f"invalid firmware UUID: {text}",
                f"firmware set '{set_row.name}' does not contain firmware '{text}': {REQUEST_ERROR}",
            )
        remove.append(mapping.id)
    if remove:
        conn.execute(delete(_MAP).where(_MAP.c.id.in_(remove)))


def delete_set(conn: Connection, set_id: str) -> None:
    """Delete a set with its attributes and firmware mappings (the firmware versions stay)."""
    conn.execute(delete(_SETS).where(_SETS.c.id == set_id))
