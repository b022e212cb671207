"""Server components (``/api/v1/servers/{uuid}/components``, ``/servers/components``) and component types.

Bodies are JSON arrays of components. ``GET /servers/{uuid}/components`` returns every component of the
server with the newest versioned attribute of each namespace and, like the reference server, does not count
them (no ``total_*`` fields, ``last`` link ``page=0``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from flasher_sandbox.inventory import records
from flasher_sandbox.inventory.api.common import (
    bad_body,
    body,
    db,
    pager,
    path_uuid,
    query_params,
    request_path,
    request_uri,
)
from flasher_sandbox.inventory.binding import BindError, bind, bind_slice
from flasher_sandbox.inventory.errors import ApiError
from flasher_sandbox.inventory.filters import parse_component_filters
from flasher_sandbox.inventory.gojson import GoJSONError
from flasher_sandbox.inventory.payloads import SERVER_COMPONENT, SERVER_COMPONENT_TYPE
from flasher_sandbox.inventory.responses import created_response, deleted_response, list_response, updated_response
from flasher_sandbox.inventory.store import components, servers

blueprint = Blueprint("components", __name__, url_prefix="/api/v1")

PAYLOAD_ERROR = "error in server component payload"


def _components_payload(prefix: str) -> list[dict[str, Any]]:
    """The bound component array; 400 ``<prefix><Go error>: error in server component payload`` otherwise."""
    try:
        payload = bind_slice(SERVER_COMPONENT, body(), "ServerComponentSlice")
    except (GoJSONError, BindError) as exc:
        raise ApiError(400, "", f"{prefix}{exc}: {PAYLOAD_ERROR}") from None
    if not payload:
        raise ApiError(400, "", f"ServerComponentSlice is empty: {PAYLOAD_ERROR}")
    return payload


@blueprint.get("/servers/components")
def list_all_components() -> Response:
    filters = parse_component_filters(query_params())
    paging = pager()
    with db().read() as conn:
        found, total = components.list_components(conn, filters, paging)
    return list_response(request_uri(), found, total, paging)


@blueprint.get("/servers/<server_id>/components")
def list_server_components(server_id: str) -> Response:
    server_id = path_uuid(server_id)
    with db().read() as conn:
        servers.find_server(conn, server_id)
        found = components.components_of_servers(conn, [server_id], with_attributes=True, with_versioned=True)
    return list_response(request_uri(), found.get(server_id, []), 0, pager())


@blueprint.post("/servers/<server_id>/components")
def create_components(server_id: str) -> Response:
    server_id = path_uuid(server_id)
    with db().write() as conn:
        servers.find_server(conn, server_id)
        payload = _components_payload("failed to unmarshal JSON as ServerComponentSlice: ")
        components.insert_components(conn, [(server_id, component) for component in payload])
    return created_response(request_path(), "")


@blueprint.put("/servers/<server_id>/components")
def update_components(server_id: str) -> Response:
    server_id = path_uuid(server_id)
    with db().write() as conn:
        servers.find_server(conn, server_id)
        components.update_components(conn, server_id, _components_payload(""))
    return updated_response(request_path(), "")


@blueprint.delete("/servers/<server_id>/components")
def delete_components(server_id: str) -> Response:
    server_id = path_uuid(server_id)
    with db().write() as conn:
        servers.find_server(conn, server_id)
        components.delete_components(conn, server_id)
    return deleted_response()


@blueprint.get("/server-component-types")
def list_component_types() -> Response:
    with db().read() as conn:
        rows = components.list_component_types(conn)
    return list_response(request_uri(), [records.component_type(row) for row in rows], len(rows), pager())


@blueprint.post("/server-component-types")
def create_component_type() -> Response:
    try:
        payload = bind(SERVER_COMPONENT_TYPE, body())
    except (GoJSONError, BindError) as exc:
        raise bad_body("invalid server component type", exc) from None
    with db().write() as conn:
        (slug,) = components.insert_component_types(conn, [payload])
    return created_response(request_path(), slug)
