"""Component firmware versions: one image file per (vendor, component, version, filename).

Lists are ordered by vendor descending (the reference server's ``ORDER BY vendor DESC``), newest first
within a vendor. ``model`` is a list; the ``model`` filter (repeatable) keeps versions whose list contains
every given model (PostgreSQL's ``model @> ARRAY[...]``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from flasher_sandbox.inventory import schema
from flasher_sandbox.inventory.db import is_foreign_key_violation, is_unique_violation
from flasher_sandbox.inventory.errors import datastore_error, duplicate_key, not_found
from flasher_sandbox.inventory.responses import Pager
from flasher_sandbox.inventory.times import now_us

_FW = schema.component_firmware_version
_COLUMNS = ("vendor", "filename", "version", "component", "checksum", "upstream_url", "repository_url")
_UNIQUE = "vendor_component_version_filename_unique"


@dataclass(frozen=True)
class FirmwareFilters:
    """The filters of ``GET /server-component-firmwares`` (exact matches; ``model`` as list containment)."""

    exact: dict[str, str] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, params: list[tuple[str, str]]) -> FirmwareFilters:
        """Read ``vendor``, ``version``, ``filename``, ``checksum``, ``component`` (first value) and ``model``."""
        exact: dict[str, str] = {}
        for key, value in params:
            if key in ("vendor", "version", "filename", "checksum", "component") and key not in exact:
                exact[key] = value
        return cls({k: v for k, v in exact.items() if v}, [value for key, value in params if key == "model"])

    def conditions(self) -> list[ColumnElement[bool]]:
        """SQL conditions on the firmware table."""
        conditions = [_FW.c[key] == value for key, value in self.exact.items()]
        for model in self.models:
            each = func.json_each(_FW.c.model).table_valued("value")
            conditions.append(select(each.c.value).where(each.c.value == model).exists())
        return conditions


def _values(item: dict[str, Any]) -> dict[str, Any]:
    values = {column: item[column] for column in _COLUMNS}
    values["model"] = json.dumps(item["model"] or [], ensure_ascii=False)
    return values


def insert_firmware(conn: Connection, items: Sequence[dict[str, Any]]) -> list[str]:
    """Insert bound ``ComponentFirmwareVersion`` payloads; returns their ids (``uuid`` or new).

    400 (duplicate key ``vendor_component_version_filename_unique``) for a repeated version file.
    """
    now = now_us()
    rows = []
    for item in items:
        given = item.get("uuid")
        rows.append(
            {
                "id": str(given) if given is not None and given.int else str(uuid.uuid4()),
                **_values(item),
                "created_at": now,
                "updated_at": now,
            }
        )
    if rows:
        try:
            conn.execute(insert(_FW), rows)
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise duplicate_key("models: unable to insert into component_firmware_version", _UNIQUE) from None
            raise datastore_error(f"models: unable to insert into component_firmware_version: {exc.orig}") from None
    return [row["id"] for row in rows]


def find_firmware(conn: Connection, firmware_id: str) -> Row[Any]:
    """One firmware version; 404 when there is none."""
    row = conn.execute(select(_FW).where(_FW.c.id == firmware_id)).first()
    if row is None:
        raise not_found()
    return row


def list_firmware(conn: Connection, filters: FirmwareFilters, pager: Pager) -> tuple[list[Row[Any]], int]:
    """One page of the matching firmware versions and the total count."""
    conditions = filters.conditions()
    total = conn.execute(select(func.count()).select_from(_FW).where(*conditions)).scalar_one()
    rows = conn.execute(
        select(_FW)
        .where(*conditions)
        .order_by(_FW.c.vendor.desc(), _FW.c.created_at.desc())
        .limit(pager.limit_used)
        .offset(pager.offset)
    )
    return list(rows), total


def update_firmware(conn: Connection, firmware_id: str, item: dict[str, Any]) -> None:
    """Replace every field of a firmware version from a bound payload; 400 (duplicate key) on a clash."""
    try:
        conn.execute(update(_FW).where(_FW.c.id == firmware_id).values(**_values(item), updated_at=now_us()))
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise duplicate_key("models: unable to update component_firmware_version row", _UNIQUE) from None
        raise datastore_error(str(exc.orig)) from None


def delete_firmware(conn: Connection, firmware_id: str) -> None:
    """Delete a firmware version; 500 while a firmware set references it (``ON DELETE RESTRICT``)."""
    try:
        conn.execute(delete(_FW).where(_FW.c.id == firmware_id))
    except IntegrityError as exc:
        if is_foreign_key_violation(exc):
            raise datastore_error(
                "models: unable to delete from component_firmware_version: pq: update or delete on table "
                '"component_firmware_version" violates foreign key constraint '
                '"fk_firmware_id_ref_component_firmware_version" on table "component_firmware_set_map"'
            ) from None
        raise datastore_error(str(exc.orig)) from None
