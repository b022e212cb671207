"""The ``flasher api`` application: FastAPI with the seeds' shapes, flasher's resources, events and a dashboard.

:func:`create_app` builds the ASGI app from :class:`~flasher.config.Settings`. Routers, one per concern:
:mod:`~flasher.api.conditionorc` (metal-toolbox's condition API), :mod:`~flasher.api.roller` (Mozilla roller's
jobs), :mod:`~flasher.api.tasks` (flasher's tasks and queue), :mod:`~flasher.api.rollouts` (fleet rollouts),
:mod:`~flasher.api.events` (Server-Sent Events), :mod:`~flasher.api.ui` (the dashboard). The OpenAPI document is
at ``/openapi.json`` and Swagger UI at ``/docs``,
served from files flasher ships (no CDN). ``/healthz``, ``/readyz`` and ``/metrics`` answer as the replicas' do.

The app is stateless: several may run behind a load balancer. Its lifespan starts the event hub
(:class:`~flasher.events.hub.EventHub`) on the process's asyncio Redis connection and stops it on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from fastapi import FastAPI, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flasher import __version__, metrics, redact
from flasher.api import conditionorc, errors, events, roller, rollouts, tasks, ui
from flasher.api.auth import Authenticator
from flasher.api.context import APIContext, ServerFacts
from flasher.config import RedisSettings, Settings
from flasher.events import EventPublisher, EventReader
from flasher.events.hub import EventHub
from flasher.inventory.client import InventoryClient
from flasher.queue import TaskQueue
from flasher.task.events import NoEvents

STATIC = Path(__file__).parent / "static"

DESCRIPTION = """flasher's HTTP API. Every request becomes a task attribute in the inventory (the source of truth);
every status is read from it. Speaks metal-toolbox conditionorc's condition API, Mozilla roller's job API, and
flasher's own resources; task events stream as Server-Sent Events. See docs/api.md."""


#: Seconds an API request retries an inventory that does not answer before it answers 503.
API_INVENTORY_DEADLINE = 10.0
#: Redis connections the event stream's listeners share (they wait for one rather than fail).
REDIS_CONNECTIONS = 32


def async_redis(settings: RedisSettings) -> aioredis.Redis:
    """An asyncio redis-py client for ``settings`` (the same URL, password and timeouts as the queue's), on a
    blocking pool of :data:`REDIS_CONNECTIONS`: hundreds of listeners resuming at once wait for a connection."""
    redact.register(urlsplit(settings.url).password)
    password = settings.password.get_secret_value() if settings.password is not None else None
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url,
        password=password,
        max_connections=REDIS_CONNECTIONS,
        timeout=None,
        socket_timeout=None,  # XREAD BLOCK waits longer than any socket timeout
        socket_connect_timeout=settings.connect_timeout,
    )
    return aioredis.Redis(connection_pool=pool)


def build_context(settings: Settings) -> APIContext:
    """The process's clients and authenticator for ``settings`` (raises ``ValueError`` for an unusable tokens
    file)."""
    # A request waits at most API_INVENTORY_DEADLINE for an inventory that does not answer, then gets 503: an
    # HTTP client gives up long before a replica's 60 s retry deadline.
    inventory = InventoryClient(
        settings.inventory.model_copy(
            update={"retry_deadline": min(settings.inventory.retry_deadline, API_INVENTORY_DEADLINE)}
        )
    )
    queue = TaskQueue.from_settings(settings, retry_deadline=min(settings.redis.retry_deadline, 5.0))
    sink = (
        EventPublisher(queue.client, key_prefix=settings.redis.key_prefix, maxlen=settings.events.maxlen)
        if settings.events.enabled
        else NoEvents()
    )
    return APIContext(
        settings=settings,
        inventory=inventory,
        queue=queue,
        events=sink,
        auth=Authenticator(settings.api),
        # Facts are a nicety: a client of their own that gives up quickly when the inventory does not answer.
        facts=ServerFacts(
            InventoryClient(
                settings.inventory.model_copy(
                    update={"retry_deadline": min(settings.inventory.retry_deadline, 2.0), "read_timeout": 5.0}
                )
            )
        ),
    )


class _Counting:
    """Counts answers by route and status code (``flasher_api_requests_total``); a plain ASGI middleware, so
    event streams pass through untouched (Starlette's ``BaseHTTPMiddleware`` would buffer them through a task)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        code = 500

        async def sending(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            metrics.API_REQUESTS.labels(route=getattr(route, "path", "unmatched"), code=str(code)).inc()


def create_app(settings: Settings, *, context: APIContext | None = None) -> FastAPI:
    """The ASGI app. ``context`` defaults to :func:`build_context` of ``settings``."""
    ctx = context or build_context(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub_task: asyncio.Task[None] | None = None
        client: aioredis.Redis | None = None
        if settings.events.enabled:
            client = async_redis(settings.redis)
            ctx.hub = EventHub(EventReader(client, key_prefix=settings.redis.key_prefix))
            hub_task = asyncio.create_task(ctx.hub.run(), name="flasher-event-hub")
        try:
            yield
        finally:
            if hub_task is not None:
                hub_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await hub_task
            if client is not None:
                await client.aclose()
            ctx.hub = None

    app = FastAPI(
        title="flasher",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = ctx
    errors.install(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (conditionorc, roller, tasks, rollouts, events, ui):
        app.include_router(module.router)

    app.add_middleware(_Counting)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="flasher API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "failing": {}}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        failing: dict[str, str] = {}
        try:
            if not ctx.queue.ping():
                failing["redis"] = "Redis did not answer PING"
        except Exception as exc:  # a probe reports, never raises
            failing["redis"] = str(exc)
        if not ctx.inventory.ready():
            failing["inventory"] = "the inventory's readiness probe failed"
        body = {"status": "ok" if not failing else "failing", "failing": failing}
        return JSONResponse(body, status_code=200 if not failing else 503)

    @app.get("/metrics", include_in_schema=False)
    def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
