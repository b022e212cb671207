"""Sandbox-only controls outside ``/api/v1`` (no reference server has them), for tests and demos.

- ``PUT /_sandbox/faults`` (a rule, see :mod:`flasher_sandbox.inventory.faults`), ``GET`` (rule and counters),
  ``DELETE`` (clear).
- ``POST /_sandbox/seed``: load a seed (JSON of the YAML seed format); answers what was created.
- ``POST /_sandbox/reset``: delete every server, component, firmware version and set (types and credential
  types stay), and the journal.
- ``GET /_sandbox/journal``: every write of a server's attribute, oldest first (``server``, ``namespace``,
  ``after`` = the last ``seq`` read, ``limit``): ``{"entries": [{"seq", "server", "namespace", "op", "data",
  "agent", "at"}]}`` (:mod:`flasher_sandbox.inventory.store.journal`).
- ``GET /_sandbox/requests``: the ``/api/v1`` requests answered since start, by method and route template
  (``{"requests": {"GET /api/v1/servers": 12, ...}, "total": 12}``), for benchmarks counting a client's requests
  from the server's side.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from sqlalchemy import delete

from flasher_sandbox.inventory import schema
from flasher_sandbox.inventory.api.common import body, db, state
from flasher_sandbox.inventory.errors import ApiError, bad_request
from flasher_sandbox.inventory.faults import FaultRule, FaultSpecError
from flasher_sandbox.inventory.gojson import GoJSONError
from flasher_sandbox.inventory.responses import json_response
from flasher_sandbox.inventory.seed import SeedError, apply_seed
from flasher_sandbox.inventory.store import journal

blueprint = Blueprint("controls", __name__, url_prefix="/_sandbox")


@blueprint.get("/faults")
def get_faults() -> Response:
    return json_response(200, state().faults.snapshot())


@blueprint.put("/faults")
def set_faults() -> Response:
    try:
        rule = FaultRule.from_spec(body())
    except (GoJSONError, FaultSpecError) as exc:
        raise bad_request("invalid fault rule", str(exc)) from None
    state().faults.configure(rule)
    return json_response(200, state().faults.snapshot())


@blueprint.delete("/faults")
def clear_faults() -> Response:
    state().faults.clear()
    return json_response(200, state().faults.snapshot())


@blueprint.post("/seed")
def seed() -> Response:
    try:
        spec = body()
    except GoJSONError as exc:
        raise bad_request("invalid seed", str(exc)) from None
    try:
        with db().write() as conn:
            result = apply_seed(conn, spec)
    except SeedError as exc:
        raise bad_request("invalid seed", str(exc)) from None
    except ApiError as exc:
        raise ApiError(exc.status, f"seed refused: {exc.message}".rstrip(": "), exc.error) from None
    return json_response(201, result.as_dict())


@blueprint.post("/reset")
def reset() -> Response:
    with db().write() as conn:
        for table in (
            schema.attribute_journal,
            schema.component_firmware_set,
            schema.component_firmware_version,
            schema.versioned_attributes,
            schema.attributes,
            schema.server_credentials,
            schema.server_components,
            schema.servers,
        ):
            conn.execute(delete(table))
    return json_response(200, {"message": "inventory emptied"})


@blueprint.get("/journal")
def get_journal() -> Response:
    try:
        after = int(request.args.get("after", "0"))
        limit = int(request.args.get("limit", str(journal.MAX_ENTRIES)))
    except ValueError:
        raise bad_request("invalid journal query", "after and limit must be integers") from None
    with db().read() as conn:
        found = journal.entries(
            conn,
            server_id=request.args.get("server"),
            namespace=request.args.get("namespace"),
            after=after,
            limit=limit,
        )
    return json_response(200, {"entries": found})


@blueprint.get("/requests")
def get_requests() -> Response:
    counts = state().requests.snapshot()
    return json_response(200, {"requests": counts, "total": sum(counts.values())})
