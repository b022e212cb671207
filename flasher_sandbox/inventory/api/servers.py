"""``/api/v1/servers``: list (filters, paging), create, get, update, soft-delete."""

from __future__ import annotations

from flask import Blueprint, Response

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
from flasher_sandbox.inventory.binding import BindError, bind
from flasher_sandbox.inventory.gojson import GoJSONError
from flasher_sandbox.inventory.payloads import SERVER
from flasher_sandbox.inventory.responses import (
    created_response,
    deleted_response,
    item_response,
    list_response,
    updated_response,
)
from flasher_sandbox.inventory.store import servers

blueprint = Blueprint("servers", __name__, url_prefix="/api/v1")


@blueprint.get("/servers")
def list_servers() -> Response:
    filters = servers.ServerFilters.from_query(query_params())
    paging = pager()
    with db().read() as conn:
        rows, total = servers.list_servers(conn, filters, paging)
        found = servers.server_records(conn, rows, listing=True)
    return list_response(request_uri(), found, total, paging)


@blueprint.post("/servers")
def create_server() -> Response:
    try:
        payload = bind(SERVER, body())
    except (GoJSONError, BindError) as exc:
        raise bad_body("invalid server", exc) from None
    given = payload["uuid"]
    with db().write() as conn:
        (server_id,) = servers.insert_servers(
            conn,
            [
                {
                    "id": str(given) if given is not None and given.int else None,
                    "name": payload["name"],
                    "facility_code": payload["facility"],
                }
            ],
        )
    return created_response(request_path(), server_id)


@blueprint.get("/servers/<server_id>")
def get_server(server_id: str) -> Response:
    server_id = db_uuid(server_id)
    with db().read() as conn:
        row = servers.find_server(conn, server_id, include_deleted=True)
        (record,) = servers.server_records(conn, [row], listing=False)
    return item_response(request_uri(), record)


@blueprint.put("/servers/<server_id>")
def update_server(server_id: str) -> Response:
    server_id = path_uuid(server_id)
    with db().write() as conn:
        servers.find_server(conn, server_id)
        try:
            payload = bind(SERVER, body())
        except (GoJSONError, BindError) as exc:
            raise bad_body("invalid server", exc) from None
        servers.update_server(conn, server_id, payload["name"], payload["facility"])
    return updated_response(request_path(), server_id)


@blueprint.delete("/servers/<server_id>")
def delete_server(server_id: str) -> Response:
    server_id = path_uuid(server_id)
    with db().write() as conn:
        servers.find_server(conn, server_id)
        servers.soft_delete_server(conn, server_id)
    return deleted_response()
