"""``/api/v1/servers/{uuid}/attributes`` and ``/versioned-attributes``.

Attributes: one per namespace; POST of a namespace the server has is a 400 (duplicate key); PUT replaces
``data`` and moves the server's ``updated_at``, not the attribute's. Every create, replace and delete of a
server's attribute is also appended to the sandbox's journal (:mod:`flasher_sandbox.inventory.store.journal`).
Versioned attributes: a history per namespace, newest first; POST of data equal to the newest bumps its ``tally``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

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
from flasher_sandbox.inventory.binding import MISSING, BindError, bind
from flasher_sandbox.inventory.errors import ApiError, datastore_error
from flasher_sandbox.inventory.gojson import GoJSONError
from flasher_sandbox.inventory.payloads import ATTRIBUTES, VERSIONED_ATTRIBUTES
from flasher_sandbox.inventory.responses import (
    created_response,
    deleted_response,
    item_response,
    list_response,
    updated_response,
)
from flasher_sandbox.inventory.store import attributes, journal, servers

blueprint = Blueprint("attributes", __name__, url_prefix="/api/v1/servers/<server_id>")

_NULL_DATA = 'pq: null value in column "data" violates not-null constraint'
_INSERT_NULL = f"failed to insert into foreign table: models: unable to insert into attributes: {_NULL_DATA}"


def _agent() -> str:
    return request.headers.get("User-Agent", "")


def _attributes_payload(message: str) -> dict[str, Any]:
    try:
        payload = bind(ATTRIBUTES, body())
    except (GoJSONError, BindError) as exc:
        raise bad_body(message, exc) from None
    return payload


@blueprint.get("/attributes")
def list_attributes(server_id: str) -> Response:
    server_id = path_uuid(server_id)
    with db().read() as conn:
        servers.find_server(conn, server_id)
        rows = attributes.attributes_of(conn, "server_id", [server_id]).get(server_id, [])
    return list_response(request_uri(), [records.attribute(row) for row in rows], len(rows), pager())


@blueprint.post("/attributes")
def create_attribute(server_id: str) -> Response:
    server_id = path_uuid(server_id)
    with db().write() as conn:
        servers.find_server(conn, server_id)
        payload = _attributes_payload("invalid attributes")
        if payload["data"] is MISSING:
            raise datastore_error(_INSERT_NULL)
        row = {"server_id": server_id, "namespace": payload["namespace"], "data": payload["data"]}
        attributes.insert_attributes(conn, "server_id", [row])
        journal.record(conn, server_id, payload["namespace"], op="create", data=payload["data"], agent=_agent())
    return created_response(request_path(), payload["namespace"])


@blueprint.get("/attributes/<namespace>")
def get_attribute(server_id: str, namespace: str) -> Response:
    server_id = path_uuid(server_id)
    with db().read() as conn:
        servers.find_server(conn, server_id)
        row = attributes.get_attribute(conn, "server_id", server_id, namespace)
    return item_response(request_uri(), records.attribute(row))


@blueprint.put("/attributes/<namespace>")
def replace_attribute(server_id: str, namespace: str) -> Response:
    server_id = path_uuid(server_id)
    payload = _attributes_payload("invalid attributes")
    if payload["data"] is MISSING:
        raise datastore_error(f"models: unable to update all for attributes: {_NULL_DATA}")
    with db().write() as conn:
        attributes.replace_server_attribute(conn, server_id, namespace, payload["data"])
        journal.record(conn, server_id, namespace, op="replace", data=payload["data"], agent=_agent())
    return updated_response(request_path(), namespace)


@blueprint.delete("/attributes/<namespace>")
def delete_attribute(server_id: str, namespace: str) -> Response:
    server_id = db_uuid(server_id)
    with db().write() as conn:
        attributes.delete_server_attribute(conn, server_id, namespace)
        journal.record(conn, server_id, namespace, op="delete", data=None, agent=_agent())
    return deleted_response()


@blueprint.get("/versioned-attributes")
def list_versioned(server_id: str) -> Response:
    server_id = path_uuid(server_id)
    with db().read() as conn:
        servers.find_server(conn, server_id)
        rows = attributes.versioned_history(conn, server_id)
    return list_response(request_uri(), [records.versioned_attribute(row) for row in rows], len(rows), pager())


@blueprint.get("/versioned-attributes/<namespace>")
def get_versioned(server_id: str, namespace: str) -> Response:
    server_id = path_uuid(server_id)
    with db().read() as conn:
        servers.find_server(conn, server_id)
        rows = attributes.versioned_history(conn, server_id, namespace)
    return list_response(request_uri(), [records.versioned_attribute(row) for row in rows], len(rows), pager())


@blueprint.post("/versioned-attributes")
def report_versioned(server_id: str) -> Response:
    try:
        payload = bind(VERSIONED_ATTRIBUTES, body())
    except (GoJSONError, BindError) as exc:
        raise bad_body("invalid versioned attributes", exc) from None
    server_id = path_uuid(server_id)
    with db().write() as conn:
        try:
            servers.find_server(conn, server_id, include_deleted=True)
        except ApiError:  # the reference server creates a server it does not know (loadOrCreateServer)
            servers.insert_servers(conn, [{"id": server_id, "name": "", "facility_code": ""}])
        attributes.report_versioned(conn, "server_id", server_id, payload["namespace"], payload["data"])
    return created_response(request_path(), payload["namespace"])
