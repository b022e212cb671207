"""``/api/v1/server-component-firmwares`` (firmware versions) and ``/server-component-firmware-sets``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from flasher_sandbox.inventory import records
from flasher_sandbox.inventory.api.common import (
    bad_body,
    body,
    db,
    db_uuid,
    pager,
    path_uuid,
    query_params,
    request_path,
    request_uri,
)
from flasher_sandbox.inventory.binding import BindError, Struct, bind, parse_uuid
from flasher_sandbox.inventory.errors import ApiError, bad_request
from flasher_sandbox.inventory.filters import parse_attribute_filters
from flasher_sandbox.inventory.gojson import GoJSONError
from flasher_sandbox.inventory.payloads import FIRMWARE, FIRMWARE_SET_REQUEST
from flasher_sandbox.inventory.responses import (
    created_response,
    deleted_response,
    item_response,
    list_response,
    updated_response,
)
from flasher_sandbox.inventory.store import firmware, firmware_sets

blueprint = Blueprint("firmware", __name__, url_prefix="/api/v1")

_FIRMWARE_PAYLOAD = "invalid payload: ComponentFirmwareVersion{}"
_SET_PAYLOAD = "invalid payload: ComponentFirmwareSet{}"


def _bound(struct: Struct, message: str) -> dict[str, Any]:
    try:
        return bind(struct, body())
    except (GoJSONError, BindError) as exc:
        raise bad_body(message, exc) from None


@blueprint.get("/server-component-firmwares")
def list_firmware() -> Response:
    filters = firmware.FirmwareFilters.from_query(query_params())
    paging = pager()
    with db().read() as conn:
        rows, total = firmware.list_firmware(conn, filters, paging)
    return list_response(request_uri(), [records.firmware(row) for row in rows], total, paging)


@blueprint.post("/server-component-firmwares")
def create_firmware() -> Response:
    payload = _bound(FIRMWARE, _FIRMWARE_PAYLOAD)
    with db().write() as conn:
        (firmware_id,) = firmware.insert_firmware(conn, [payload])
    return created_response(request_path(), firmware_id)


@blueprint.get("/server-component-firmwares/<firmware_id>")
def get_firmware(firmware_id: str) -> Response:
    firmware_id = db_uuid(firmware_id)
    with db().read() as conn:
        row = firmware.find_firmware(conn, firmware_id)
    return item_response(request_uri(), records.firmware(row))


@blueprint.put("/server-component-firmwares/<firmware_id>")
def update_firmware(firmware_id: str) -> Response:
    firmware_id = path_uuid(firmware_id)
    with db().write() as conn:
        firmware.find_firmware(conn, firmware_id)
        payload = _bound(FIRMWARE, _FIRMWARE_PAYLOAD)
        firmware.update_firmware(conn, firmware_id, payload)
    return updated_response(request_path(), firmware_id)


@blueprint.delete("/server-component-firmwares/<firmware_id>")
def delete_firmware(firmware_id: str) -> Response:
    firmware_id = path_uuid(firmware_id)
    with db().write() as conn:
        firmware.find_firmware(conn, firmware_id)
        firmware.delete_firmware(conn, firmware_id)
    return deleted_response()


@blueprint.get("/server-component-firmware-sets")
def list_firmware_sets() -> Response:
    params = query_params()
    name = next((value for key, value in params if key == "name"), "")
    filters = parse_attribute_filters([value for key, value in params if key == "attr"])
    with db().read() as conn:
        rows, total = firmware_sets.list_firmware_sets(conn, name, filters)
        found = firmware_sets.set_records(conn, rows)
    return list_response(request_uri(), found, total, pager())


@blueprint.post("/server-component-firmware-sets")
def create_firmware_set() -> Response:
    payload = _bound(FIRMWARE_SET_REQUEST, "invalid payload: ComponentFirmwareSetCreate{}")
    with db().write() as conn:
        set_id = firmware_sets.create_set(conn, payload)
    return created_response(request_path(), set_id)


@blueprint.get("/server-component-firmware-sets/<set_id>")
def get_firmware_set(set_id: str) -> Response:
    if set_id == "00000000-0000-0000-0000-000000000000":
        raise bad_request("expected a firmware set UUID, got none", firmware_sets.REQUEST_ERROR)
    try:
        set_id = str(parse_uuid(set_id))
    except BindError as exc:
        raise bad_request(f"invalid firmware set UUID: {set_id}", str(exc)) from None
    with db().read() as conn:
        (record,) = firmware_sets.set_records(conn, [firmware_sets.find_set(conn, set_id)])
    return item_response(request_uri(), record)


def _set_from_path(conn: Any, set_id: str) -> Any:
    """The set a path names; 400 ``invalid payload: ComponentFirmwareSet{}`` for a bad, nil or unknown id."""
    try:
        parsed = parse_uuid(set_id)
    except BindError as exc:
        raise bad_request(_SET_PAYLOAD, str(exc)) from None
    if parsed.int == 0:
        raise bad_request(_SET_PAYLOAD, f"expected a valid firmware set UUID: {firmware_sets.REQUEST_ERROR}")
    try:
        return firmware_sets.find_set(conn, str(parsed))
    except ApiError as exc:
        raise bad_request(_SET_PAYLOAD, exc.error) from None


@blueprint.put("/server-component-firmware-sets/<set_id>")
def update_firmware_set(set_id: str) -> Response:
    with db().write() as conn:
        row = _set_from_path(conn, set_id)
        firmware_sets.update_set(conn, _bound(FIRMWARE_SET_REQUEST, _SET_PAYLOAD))
    return updated_response(request_path(), row.id)


@blueprint.post("/server-component-firmware-sets/<set_id>/remove-firmware")
def remove_firmware(set_id: str) -> Response:
    with db().write() as conn:
        row = _set_from_path(conn, set_id)
        firmware_sets.remove_firmware(conn, row, _bound(FIRMWARE_SET_REQUEST, _SET_PAYLOAD))
    return deleted_response()


@blueprint.delete("/server-component-firmware-sets/<set_id>")
def delete_firmware_set(set_id: str) -> Response:
    set_id = path_uuid(set_id)
    with db().write() as conn:
        firmware_sets.find_set(conn, set_id)
        firmware_sets.delete_set(conn, set_id)
    return deleted_response()
