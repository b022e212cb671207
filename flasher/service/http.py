"""The service's HTTP endpoints: ``/healthz``, ``/readyz`` and ``/metrics`` (Prometheus text format).

* ``/healthz``: 200 while the process runs and its threads (poller, workers) are alive; 503 otherwise.
* ``/readyz``: 200 when Redis answers PING and the inventory answers its readiness probe; 503 naming what is
  not reachable. Checked on each request, with a short timeout (the clients' own).
* ``/metrics``: the default Prometheus registry (:mod:`flasher.metrics` and the process collector).

A Starlette app, served like ``flasher api`` and the file server (uvicorn in a thread,
:class:`flasher.asgiserver.BackgroundASGIServer`). The checks block (they call Redis and the inventory), so they
run in Starlette's thread pool, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: A named check: returns ``None`` when fine, else a one-line reason.
Check = Callable[[], str | None]


def _run(checks: dict[str, Check]) -> JSONResponse:
    failures: dict[str, str] = {}
    for name, check in checks.items():
        try:
            reason = check()
        except Exception as exc:  # a probe must answer, whatever the check does
            reason = f"{type(exc).__name__}: {exc}"
        if reason:
            failures[name] = reason
    body: dict[str, Any] = {"status": "ok" if not failures else "failing", "failing": failures}
    return JSONResponse(body, status_code=200 if not failures else 503)


def create_app(liveness: dict[str, Check], readiness: dict[str, Check]) -> Starlette:
    """The ASGI app. ``liveness`` and ``readiness`` map a check's name to the check; a check that raises counts
    as failed with the exception's text."""

    async def healthz(_: Request) -> Response:
        return await run_in_threadpool(_run, liveness)

    async def readyz(_: Request) -> Response:
        return await run_in_threadpool(_run, readiness)

    async def metrics(_: Request) -> Response:
        return Response(await run_in_threadpool(generate_latest), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)],
    )
