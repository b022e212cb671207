"""The netboot endpoints as an ASGI router (FastAPI), for ``flasher netboot`` and for ``flasher api`` to mount.

==============================================  ==========================================================
``GET /v1/boot/{mac}``                          Pixiecore API mode: ``{"kernel", "initrd": [...], "cmdline"}``,
                                                404 for a MAC the inventory does not know or without a profile,
                                                400 for a malformed MAC
``GET /v1/ipxe?mac=${net0/mac}``                the same as an iPXE script (``text/plain``)
``GET|POST /v1/callback/{uuid}/{token}``        the booted machine's one-time callback: 200 accepted, 404 unknown,
                                                410 used or expired; the query string and a JSON or form body
                                                are recorded
``GET /assets/{path}``                          files under ``netboot.assets_dir`` (kernels, initrds), when set
``GET /healthz``                                ``{"status": "UP"}``
==============================================  ==========================================================

The inventory is called from FastAPI's thread pool (the handlers are plain functions): its client is blocking.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from flasher.inventory.errors import InventoryError
from flasher.netboot.lookup import AmbiguousMACError, MACError
from flasher.netboot.service import CallbackOutcome, NetbootService

_STATUS = {
    CallbackOutcome.ACCEPTED: 200,
    CallbackOutcome.UNKNOWN: 404,
    CallbackOutcome.USED: 410,
    CallbackOutcome.EXPIRED: 410,
}


def router(service: NetbootService) -> APIRouter:
    """The ``/v1`` routes answered by ``service``."""
    routes = APIRouter()

    def answer(mac: str) -> Any:
        try:
            return service.boot(mac)
        except MACError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        except AmbiguousMACError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        except InventoryError as exc:
            raise HTTPException(status_code=503, detail=f"the inventory is unavailable: {exc}") from None

    @routes.get("/v1/boot/{mac}")
    def boot(mac: str) -> JSONResponse:
        found = answer(mac)
        if found is None:
            return JSONResponse({"detail": "no boot for this MAC"}, status_code=404)
        return JSONResponse(found.pixiecore())

    @routes.get("/v1/ipxe")
    def ipxe(mac: str) -> PlainTextResponse:
        found = answer(mac)
        if found is None:
            return PlainTextResponse("#!ipxe\necho flasher: no boot for this MAC\nexit 1\n", status_code=404)
        return PlainTextResponse(found.ipxe())

    @routes.api_route("/v1/callback/{uuid}/{token}", methods=["GET", "POST"])
    async def callback(uuid: str, token: str, request: Request) -> JSONResponse:
        data: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            body = await request.body()
            if len(body) > 65536:
                return JSONResponse({"detail": "the callback body is larger than 64 KiB"}, status_code=413)
            kind = request.headers.get("content-type", "")
            if "json" in kind:
                try:
                    parsed = await request.json()
                except ValueError:
                    return JSONResponse({"detail": "the body is not JSON"}, status_code=400)
                if isinstance(parsed, dict):
                    data.update(parsed)
            elif body:  # a form (busybox wget --post-data) or plain key=value text
                data.update(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
        remote = request.client.host if request.client else None
        try:
            outcome = await run_in_threadpool(service.callback, uuid, token, data, remote=remote)
        except InventoryError as exc:
            return JSONResponse({"detail": f"the inventory is unavailable: {exc}"}, status_code=503)
        return JSONResponse({"status": outcome.value}, status_code=_STATUS[outcome])

    @routes.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "UP"}

    return routes


def create_app(service: NetbootService) -> FastAPI:
    """A FastAPI application with :func:`router` and, when ``netboot.assets_dir`` is set, ``/assets``."""
    app = FastAPI(title="flasher netboot", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router(service))
    assets = service.settings.netboot.assets_dir
    if assets is not None:
        app.mount("/assets", StaticFiles(directory=str(assets)), name="assets")
    return app
