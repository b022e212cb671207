"""``/healthz``, ``/healthz/liveness`` (the process answers) and ``/healthz/readiness`` (the database answers)."""

from __future__ import annotations

from flask import Blueprint, Response

from flasher_sandbox.inventory.api.common import db
from flasher_sandbox.inventory.responses import json_response

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
@blueprint.get("/healthz/liveness")
def liveness() -> Response:
    return json_response(200, {"status": "UP"})


@blueprint.get("/healthz/readiness")
def readiness() -> Response:
    try:
        ready = db().ping()
    except Exception:
        ready = False
    return json_response(200 if ready else 503, {"status": "UP" if ready else "DOWN"})
