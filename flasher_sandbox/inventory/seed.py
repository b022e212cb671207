"""Seeding the inventory from a YAML (or dict) description of a fleet; the format is in ``docs/sandbox.md``.

Seeding goes through the same validation and store functions as the HTTP API (firmware is bound to the
reference server's ``ComponentFirmwareVersion`` struct, components to ``ServerComponent``, firmware sets are
created by the same code as ``POST /server-component-firmware-sets``), with bulk inserts in one transaction,
so generated fleets of thousands of servers load in seconds (:func:`load_seed`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, select

from flasher.constants import (
    BMC_CREDENTIAL_SLUG,
    BMC_INFO_NAMESPACE,
    FIRMWARE_SET_LABELS_NAMESPACE,
    INSTALL_ORDER,
    MODEL_AGNOSTIC_COMPONENTS,
    OUTOFBAND_STATUS_NAMESPACE,
    SERVER_VENDOR_NAMESPACE,
)
from flasher_sandbox.inventory import schema
from flasher_sandbox.inventory.binding import BindError, bind, bind_slice
from flasher_sandbox.inventory.db import Database
from flasher_sandbox.inventory.errors import ApiError
from flasher_sandbox.inventory.payloads import FIRMWARE, FIRMWARE_SET_REQUEST, SERVER_COMPONENT
from flasher_sandbox.inventory.store import attributes, components, credentials, firmware, firmware_sets, servers

#: Names of the component types a seed may use without declaring them (slug -> name).
DEFAULT_COMPONENT_TYPES: dict[str, str] = {
    "bmc": "BMC",
    "bios": "BIOS",
    "cpld": "CPLD",
    "drive": "Drive",
    "backplane": "Backplane",
    "storage-controller": "StorageController",
    "nic": "NIC",
    "psu": "PSU",
    "tpm": "TPM",
    "gpu": "GPU",
    "cpu": "CPU",
    "chassis": "Chassis",
}
assert set(INSTALL_ORDER) | set(MODEL_AGNOSTIC_COMPONENTS) <= set(DEFAULT_COMPONENT_TYPES)

DEFAULT_FACILITY = "sandbox"
_TOP_LEVEL = {"component_types", "firmware", "firmware_sets", "servers"}


class SeedError(ValueError):
    """A seed that cannot be loaded; the message names the entry (``servers[3].bmc``) and the value."""


@dataclass
class SeedResult:
    """What a seed created: server ids in seed order and by name, firmware ids in order, set ids by name."""

    server_ids: list[str] = field(default_factory=list)
    servers: dict[str, str] = field(default_factory=dict)
    firmware_ids: list[str] = field(default_factory=list)
    firmware_sets: dict[str, str] = field(default_factory=dict)
    component_types: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON."""
        return {
            "server_ids": self.server_ids,
            "servers": self.servers,
            "firmware_ids": self.firmware_ids,
            "firmware_sets": self.firmware_sets,
            "component_types": self.component_types,
        }


def read_seed_file(path: str | Path) -> dict[str, Any]:
    """A seed YAML file (or, named ``*.json``, JSON: a seed of 20,000 servers is 58 MB, which YAML parsers take
    minutes to read) as a dict; raises :class:`SeedError` when it is not a mapping, or not YAML (JSON)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise SeedError(f"seed file {path}: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SeedError(f"seed file {path}: expected a mapping with servers/firmware/firmware_sets, got {data!r}")
    return data


def load_seed(db_url_or_path: str | Path, seed: Mapping[str, Any]) -> SeedResult:
    """Load ``seed`` into the inventory database at ``db_url_or_path`` (created if missing), in one transaction.

    Safe while an inventory server runs on the same file (SQLite WAL; this waits for its write lock).
    Raises :class:`SeedError` for a malformed seed and :class:`~flasher_sandbox.inventory.errors.ApiError` for what
    the API would refuse (e.g. a duplicate server uuid); nothing is written then.
    """
    database = Database(db_url_or_path, pool_size=1).create()
    try:
        with database.write() as conn:
            return apply_seed(conn, seed)
    finally:
        database.close()


def apply_seed(conn: Connection, seed: Mapping[str, Any]) -> SeedResult:
    """Load ``seed`` in the caller's write transaction; see :func:`load_seed`."""
    if not isinstance(seed, Mapping):
        raise SeedError(f"seed: expected a mapping, got {seed!r}")
    unknown = set(seed) - _TOP_LEVEL
    if unknown:
        raise SeedError(f"seed: unknown section(s) {sorted(unknown)}; use {sorted(_TOP_LEVEL)}")
    result = SeedResult()
    type_ids = _component_types(conn, seed, result)
    result.firmware_ids = _firmware(conn, _list(seed, "firmware"))
    for index, item in enumerate(_list(seed, "firmware_sets")):
        name, set_id = _firmware_set(conn, item, f"firmware_sets[{index}]")
        result.firmware_sets[name] = set_id
    _servers(conn, _list(seed, "servers"), type_ids, result)
    return result


def _list(parent: Mapping[str, Any], key: str, where: str = "seed") -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise SeedError(f"{where}.{key}: expected a list, got {value!r}")
    return value


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SeedError(f"{where}: expected a mapping, got {value!r}")
    return value


def _text(item: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if value is None:
        raise SeedError(f"{where}.{key}: required")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SeedError(f"{where}.{key}: expected a string, got {value!r}")
    return str(value)


def _component_types(conn: Connection, seed: Mapping[str, Any], result: SeedResult) -> dict[str, str]:
    """Component type id by slug, creating declared types and those the servers' components use."""
    table = schema.server_component_types
    known = {row.slug: row.id for row in conn.execute(select(table.c.slug, table.c.id))}
    wanted: dict[str, str] = {}
    for index, raw in enumerate(_list(seed, "component_types")):
        where = f"component_types[{index}]"
        item = _mapping(raw, where)
        slug = _text(item, "slug", where)
        wanted[slug] = _text(item, "name", where, DEFAULT_COMPONENT_TYPES.get(slug, slug.upper()))
    for s_index, server in enumerate(_list(seed, "servers")):
        for c_index, component in enumerate(_list(_mapping(server, f"servers[{s_index}]"), "components")):
            where = f"servers[{s_index}].components[{c_index}]"
            slug = _text(_mapping(component, where), "type", where)
            wanted.setdefault(slug, DEFAULT_COMPONENT_TYPES.get(slug, slug.upper()))
    missing = [{"name": name, "slug": slug} for slug, name in wanted.items() if slug not in known]
    result.component_types = components.insert_component_types(conn, missing)
    return {row.slug: row.id for row in conn.execute(select(table.c.slug, table.c.id))}


def _firmware(conn: Connection, items: Sequence[Any]) -> list[str]:
    payloads = []
    for index, raw in enumerate(items):
        item = {  # YAML reads 1.5 or 0123 as numbers: take scalars as the text the user wrote
            key: str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
            for key, value in _mapping(raw, f"firmware[{index}]").items()
        }
        if isinstance(item.get("model"), str):
            item["model"] = [item["model"]]
        try:
            payloads.append(bind(FIRMWARE, item))
        except BindError as exc:
            raise SeedError(f"firmware[{index}]: {exc}") from None
    return firmware.insert_firmware(conn, payloads)


def _firmware_ref(conn: Connection, ref: Any, vendor: str | None, where: str) -> str:
    """A firmware id from a uuid string or ``{component, version[, vendor, filename]}``."""
    table = schema.component_firmware_version
    if isinstance(ref, str):
        return ref
    ref = _mapping(ref, where)
    query = select(table.c.id).where(
        table.c.component == _text(ref, "component", where), table.c.version == _text(ref, "version", where)
    )
    ref_vendor = ref.get("vendor", vendor)
    if ref_vendor:
        query = query.where(table.c.vendor == str(ref_vendor))
    if ref.get("filename"):
        query = query.where(table.c.filename == str(ref["filename"]))
    found = list(conn.scalars(query))
    if len(found) != 1:
        what = "no firmware version" if not found else f"{len(found)} firmware versions (add vendor or filename)"
        raise SeedError(f"{where}: {what} match {dict(ref)!r}")
    return str(found[0])


def _firmware_set(conn: Connection, item: Any, where: str) -> tuple[str, str]:
    item = _mapping(item, where)
    name = _text(item, "name", where)
    labels = item.get("labels") or {}
    attrs = [{"namespace": FIRMWARE_SET_LABELS_NAMESPACE, "data": dict(_mapping(labels, f"{where}.labels"))}]
    for namespace, data in _mapping(item.get("attributes") or {}, f"{where}.attributes").items():
        attrs.append({"namespace": namespace, "data": data})
    vendor = labels.get("vendor") if isinstance(labels, Mapping) else None
    refs = [
        _firmware_ref(conn, ref, vendor, f"{where}.firmware[{index}]")
        for index, ref in enumerate(_list(item, "firmware", where))
    ]
    payload = bind(
        FIRMWARE_SET_REQUEST,
        {"name": name, "attributes": attrs, "component_firmware_uuids": refs, "uuid": item.get("uuid")},
    )
    try:
        return name, firmware_sets.create_set(conn, payload)
    except ApiError as exc:
        raise SeedError(f"{where} ({name}): {exc.message} {exc.error}".strip()) from None


def _servers(conn: Connection, items: Sequence[Any], type_ids: Mapping[str, str], result: SeedResult) -> None:
    entries: list[dict[str, Any]] = []
    for index, raw in enumerate(items):
        where = f"servers[{index}]"
        item = _mapping(raw, where)
        entries.append(
            {
                "id": str(item["uuid"]) if item.get("uuid") else None,
                "name": _text(item, "name", where, ""),
                "facility_code": _text(item, "facility", where, DEFAULT_FACILITY),
            }
        )
    ids = servers.insert_servers(conn, entries)
    attrs, creds, comps = [], [], []
    for index, (item, server_id) in enumerate(zip(items, ids, strict=True)):
        where = f"servers[{index}]"
        attrs += _server_attributes(item, server_id, where)
        bmc = _mapping(item.get("bmc") or {}, f"{where}.bmc")
        if "username" in bmc or "password" in bmc:
            creds.append(
                {
                    "server_id": server_id,
                    "slug": BMC_CREDENTIAL_SLUG,
                    "username": _text(bmc, "username", f"{where}.bmc", ""),
                    "password": _text(bmc, "password", f"{where}.bmc", ""),
                }
            )
        comps += [(server_id, c) for c in _server_components(item, server_id, type_ids, where)]
        result.servers[entries[index]["name"]] = server_id
    result.server_ids = ids
    attributes.insert_attributes(conn, "server_id", attrs)
    credentials.upsert_credentials(conn, creds)
    components.insert_components(conn, comps)


def _server_attributes(item: Mapping[str, Any], server_id: str, where: str) -> list[dict[str, Any]]:
    found: dict[str, Any] = {}
    vendor_data = {key: _text(item, key, where) for key in ("vendor", "model", "serial") if item.get(key) is not None}
    if vendor_data:
        found[SERVER_VENDOR_NAMESPACE] = vendor_data
    bmc = _mapping(item.get("bmc") or {}, f"{where}.bmc")
    if bmc.get("address") is not None:
        found[BMC_INFO_NAMESPACE] = {"address": _text(bmc, "address", f"{where}.bmc")}
    for namespace, data in _mapping(item.get("attributes") or {}, f"{where}.attributes").items():
        found[namespace] = data
    return [{"server_id": server_id, "namespace": ns, "data": data} for ns, data in found.items()]


def _server_components(
    item: Mapping[str, Any], server_id: str, type_ids: Mapping[str, str], where: str
) -> list[dict[str, Any]]:
    payloads = []
    for index, raw in enumerate(_list(item, "components", where)):
        c_where = f"{where}.components[{index}]"
        component = _mapping(raw, c_where)
        slug = _text(component, "type", c_where)
        versioned = [
            {"namespace": ns, "data": data}
            for ns, data in _mapping(component.get("versioned_attributes") or {}, c_where).items()
        ]
        if component.get("installed") is not None:
            installed = _text(component, "installed", c_where)
            versioned.append({"namespace": OUTOFBAND_STATUS_NAMESPACE, "data": {"firmware": {"installed": installed}}})
        payloads.append(
            {
                "uuid": component.get("uuid"),
                "server_uuid": server_id,
                "name": _text(component, "name", c_where, DEFAULT_COMPONENT_TYPES.get(slug, slug.upper())),
                "vendor": _text(component, "vendor", c_where, str(item.get("vendor", ""))),
                "model": _text(component, "model", c_where, str(item.get("model", ""))),
                "serial": _text(component, "serial", c_where, "0"),
                "attributes": [
                    {"namespace": ns, "data": data}
                    for ns, data in _mapping(component.get("attributes") or {}, c_where).items()
                ],
                "versioned_attributes": versioned,
                "component_type_id": type_ids[slug],
                "component_type_name": DEFAULT_COMPONENT_TYPES.get(slug, slug.upper()),
                "component_type_slug": slug,
            }
        )
    try:
        return bind_slice(SERVER_COMPONENT, payloads, "ServerComponentSlice")
    except BindError as exc:
        raise SeedError(f"{where}.components: {exc}") from None
