"""The aiohttp runner of a simulated BMC: aiohttp's, except that a request with an HTTP method aiohttp's parser
does not know gets a Redfish answer.

aiohttp's C parser (llhttp) knows a fixed list of methods and answers anything else (``FAKEMETHODFORTEST``) with a
plain-text 400 before any handler runs. DSP0266 ("HTTP methods") asks for 405 Method Not Allowed or 501 Not
Implemented for unsupported and undocumented methods; a Redfish service answers 501 with a Redfish error body.
The hook is aiohttp's ``RequestHandler.handle_error``, reached through the server the runner makes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod
from aiohttp.web_protocol import RequestHandler

from flasher_sandbox.bmc.errors import BASE, RedfishError


class _RequestHandler(RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if isinstance(exc, BadHttpMethod) and request.writer.output_size == 0:
            response = RedfishError(
                501,
                f"{BASE}.OperationNotAllowed",
                "The HTTP method is not implemented by this service.",
            ).response()
            response.force_close()
            return response
        return super().handle_error(request, status, exc, message)


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _RequestHandler(self, loop=self._loop, **self._kwargs)


class RedfishAppRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer an unknown HTTP method with 501 and a Redfish error body."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        kwargs: dict[str, Any] = dict(made._kwargs)
        return _Server(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=made._loop,
            **kwargs,
        )
