"""The service's HTTP endpoints: ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus text format).

* ``/healthz``: 200 while the process runs and its threads (poller, workers) are alive; 503 otherwise.
* ``/readyz``: 200 when Redis answers PING and the inventory answers its readiness probe; 503 naming what is
  not reachable. Checked on each request, with a short timeout (the clients' own).
* ``/metrics``: the default Prometheus registry (:mod:`flasher.metrics` and the process collector).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

#: A named check: returns ``None`` when fine, else a one-line reason.
Check = Callable[[], str | None]


def create_app(liveness: dict[str, Check], readiness: dict[str, Check]) -> Flask:
    """The Flask app. ``liveness`` and ``readiness`` map a check's name to the check; a check that raises
    counts as failed with the exception's text."""
    app = Flask("flasher.service")

    def run(checks: dict[str, Check]) -> tuple[Response, int]:
        failures: dict[str, str] = {}
        for name, check in checks.items():
            try:
                reason = check()
            except Exception as exc:  # a probe must answer, whatever the check does
                reason = f"{type(exc).__name__}: {exc}"
            if reason:
                failures[name] = reason
        body: dict[str, Any] = {"status": "ok" if not failures else "failing", "failing": failures}
        return jsonify(body), 200 if not failures else 503

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return run(liveness)

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        return run(readiness)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)

    return app
