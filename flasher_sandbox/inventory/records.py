"""Database rows as the reference server's JSON records, key for key and in its field order.

Relations the reference server loads but finds empty are ``null`` (sqlboiler leaves the slice nil), as are
relations it does not load for that endpoint; callers pass ``None`` or an empty list for both.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flasher_sandbox.inventory.gojson import load_stored
from flasher_sandbox.inventory.times import rfc3339

Record = dict[str, Any]


def or_null(items: Sequence[Record] | None) -> list[Record] | None:
    """``items`` as a list, or ``None`` (JSON ``null``) when there are none."""
    return list(items) if items else None


def attribute(row: Any) -> Record:
    """``{namespace, data, created_at, updated_at}``."""
    return {
        "namespace": row.namespace,
        "data": load_stored(row.data),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }


def versioned_attribute(row: Any) -> Record:
    """``{namespace, data, tally, last_reported_at, created_at}``; ``last_reported_at`` is the row's update time."""
    return {
        "namespace": row.namespace,
        "data": load_stored(row.data),
        "tally": row.tally,
        "last_reported_at": rfc3339(row.updated_at),
        "created_at": rfc3339(row.created_at),
    }


def component(row: Any, attrs: Sequence[Record] | None, versioned: Sequence[Record] | None) -> Record:
    """A server component; ``row`` carries the component type as ``type_id``, ``type_name``, ``type_slug``."""
    return {
        "uuid": row.id,
        "server_uuid": row.server_id,
        "name": row.name or "",
        "vendor": row.vendor or "",
        "model": row.model or "",
        "serial": row.serial or "",
        "attributes": or_null(attrs),
        "versioned_attributes": or_null(versioned),
        "component_type_id": row.type_id or "",
        "component_type_name": row.type_name or "",
        "component_type_slug": row.type_slug or "",
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }


def server(
    row: Any, attrs: Sequence[Record] | None, components: Sequence[Record] | None, versioned: Sequence[Record] | None
) -> Record:
    """A server; ``deleted_at`` only when it is soft-deleted."""
    record: Record = {
        "uuid": row.id,
        "name": row.name or "",
        "facility": row.facility_code or "",
        "attributes": or_null(attrs),
        "components": or_null(components),
        "versioned_attributes": or_null(versioned),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }
    if row.deleted_at is not None:
        record["deleted_at"] = rfc3339(row.deleted_at)
    return record


def component_type(row: Any) -> Record:
    """``{id, name, slug}``."""
    return {"id": row.id, "name": row.name, "slug": row.slug}


def credential(row: Any, slug: str) -> Record:
    """A server credential: ``uuid`` is the server's."""
    return {
        "uuid": row.server_id,
        "secret_type": slug,
        "password": row.password,
        "username": row.username,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }


def credential_type(row: Any) -> Record:
    """``{name, slug, builtin, created_at, updated_at}``."""
    return {
        "name": row.name,
        "slug": row.slug,
        "builtin": bool(row.builtin),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }


def firmware(row: Any) -> Record:
    """A component firmware version; ``model`` is a list of model names."""
    return {
        "uuid": row.id,
        "vendor": row.vendor,
        "model": json.loads(row.model),
        "filename": row.filename,
        "version": row.version,
        "component": row.component,
        "checksum": row.checksum,
        "upstream_url": row.upstream_url,
        "repository_url": row.repository_url,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }


def firmware_set(row: Any, attrs: Sequence[Record] | None, firmwares: Sequence[Record] | None) -> Record:
    """A firmware set, in the reference server's field order (timestamps first, ``uuid`` last)."""
    return {
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
        "name": row.name,
        "attributes": or_null(attrs),
        "component_firmware": or_null(firmwares),
        "uuid": row.id,
    }
