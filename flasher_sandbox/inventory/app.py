"""The Flask application: API blueprints, optional bearer-token auth, fault injection, request logging.

Unknown routes answer ``404 page not found`` as plain text, like the reference server's router (gin).
"""

from __future__ import annotations

import hmac
import time

from flask import Flask, Response, g, request
from loguru import logger
from werkzeug.exceptions import HTTPException

from flasher_sandbox.inventory.api import (
    attributes,
    common,
    components,
    controls,
    credentials,
    firmware,
    health,
    servers,
)
from flasher_sandbox.inventory.db import Database
from flasher_sandbox.inventory.errors import ApiError
from flasher_sandbox.inventory.responses import envelope, error_response, json_response

_PROTECTED = ("/api/", "/_sandbox/")


def create_app(database: Database, *, token: str | None = None) -> Flask:
    """A WSGI app serving ``database``; with ``token``, ``/api/v1`` and ``/_sandbox`` need ``Bearer <token>``."""
    app = Flask("flasher_sandbox.inventory")
    app.extensions[common.EXTENSION] = common.InventoryState(db=database, token=token or None)
    app.url_map.strict_slashes = False
    for module in (servers, attributes, components, credentials, firmware, health, controls):
        app.register_blueprint(module.blueprint)
    app.before_request(_before)
    app.after_request(_after)
    app.register_error_handler(ApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
    return app


def _authorized(expected: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected.encode())


def _before() -> Response | None:
    g.started = time.monotonic()
    inventory = common.state()
    path = request.path
    if inventory.token and path.startswith(_PROTECTED) and not _authorized(inventory.token):
        return json_response(
            401, envelope(message="invalid auth token", error="expected Authorization: Bearer <token>")
        )
    fault = inventory.faults.decide(request.method, path)
    if fault is None:
        return None
    if fault.delay:
        time.sleep(fault.delay)
    if fault.status is not None and fault.phase == "before":
        return _fault_response(fault.status, fault.ordinal)
    g.fault = fault
    return None


def _fault_response(status: int, ordinal: int) -> Response:
    response = json_response(
        status,
        envelope(message="sandbox fault injection", error=f"injected HTTP {status} for matching request #{ordinal}"),
    )
    response.headers["X-Sandbox-Fault"] = str(ordinal)
    return response


def _after(response: Response) -> Response:
    fault = g.pop("fault", None)
    if fault is not None and fault.status is not None:
        response = _fault_response(fault.status, fault.ordinal)
    started = g.get("started")
    elapsed = (time.monotonic() - started) * 1000 if started is not None else 0.0
    if request.path.startswith("/api/"):
        route = request.url_rule.rule if request.url_rule is not None else "(no route)"
        common.state().requests.add(f"{request.method} {route}")
    logger.debug("{} {} {} {:.1f} ms", request.method, common.request_uri(), response.status_code, elapsed)
    return response


def _api_error(exc: ApiError) -> Response:
    return error_response(exc.status, exc.message, exc.error)


def _http_error(exc: HTTPException) -> Response:
    if exc.code in (404, 405):
        return Response("404 page not found", status=404, content_type="text/plain")
    return error_response(exc.code or 500, exc.name.lower(), exc.description or "")


def _unexpected(exc: Exception) -> Response:
    logger.opt(exception=exc).error("{} {} failed", request.method, request.path)
    return error_response(500, "internal server error", f"{type(exc).__name__}: {exc}")
