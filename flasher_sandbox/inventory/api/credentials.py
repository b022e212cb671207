"""``/api/v1/servers/{uuid}/credentials/{slug}`` (e.g. ``bmc``) and ``/api/v1/server-credential-types``."""

from __future__ import annotations

from flask import Blueprint, Response

from flasher_sandbox.inventory import records
from flasher_sandbox.inventory.api.common import (
    bad_body,
    body,
    db,
    db_uuid,
    pager,
    path_uuid,
    request_path,
    request_uri,
)
from flasher_sandbox.inventory.binding import BindError, bind
from flasher_sandbox.inventory.errors import ApiError, not_found
from flasher_sandbox.inventory.gojson import GoJSONError
from flasher_sandbox.inventory.payloads import CREDENTIAL_TYPE, CREDENTIAL_VALUES
from flasher_sandbox.inventory.responses import (
    created_response,
    deleted_response,
    item_response,
    list_response,
    updated_response,
)
from flasher_sandbox.inventory.store import credentials, servers

blueprint = Blueprint("credentials", __name__, url_prefix="/api/v1")


@blueprint.get("/servers/<server_id>/credentials/<slug>")
def get_credential(server_id: str, slug: str) -> Response:
    server_id = db_uuid(server_id)
    with db().read() as conn:
        row = credentials.get_credential(conn, server_id, slug)
    return item_response(request_uri(), records.credential(row, slug))


@blueprint.put("/servers/<server_id>/credentials/<slug>")
def set_credential(server_id: str, slug: str) -> Response:
    server_id = path_uuid(server_id)
    with db().write() as conn:
        try:
            servers.find_server(conn, server_id)
        except ApiError:
            raise ApiError(404, "server not found") from None
        if slug not in credentials.credential_type_ids(conn):
            raise not_found()
        try:
            payload = bind(CREDENTIAL_VALUES, body())
        except (GoJSONError, BindError) as exc:
            raise bad_body("invalid server secret value", exc) from None
        credentials.upsert_credentials(
            conn,
            [{"server_id": server_id, "slug": slug, "username": payload["username"], "password": payload["password"]}],
        )
    return updated_response(request_path(), slug)


@blueprint.delete("/servers/<server_id>/credentials/<slug>")
def delete_credential(server_id: str, slug: str) -> Response:
    server_id = db_uuid(server_id)
    with db().write() as conn:
        credentials.delete_credential(conn, server_id, slug)
    return deleted_response()


@blueprint.get("/server-credential-types")
def list_credential_types() -> Response:
    with db().read() as conn:
        rows = credentials.list_credential_types(conn)
    return list_response(request_uri(), [records.credential_type(row) for row in rows], len(rows), pager())


@blueprint.post("/server-credential-types")
def create_credential_type() -> Response:
    try:
        payload = bind(CREDENTIAL_TYPE, body())
    except (GoJSONError, BindError) as exc:
        raise bad_body("invalid server credential type", exc) from None
    with db().write() as conn:
        credentials.insert_credential_type(conn, payload["name"], payload["slug"])
    return created_response(request_path(), payload["slug"])
