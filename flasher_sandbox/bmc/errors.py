"""Redfish error answers: ``{"error": {"code", "message", "@Message.ExtendedInfo": [...]}}`` (DSP0266 §9.7),
which sushy turns into ``HTTPError`` with ``code``, ``detail`` and ``extended_info``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

#: Prefix of the DMTF Base registry messages the simulator uses.
BASE: Final = "Base.1.16"


class RedfishError(Exception):
    """An error answer: HTTP ``status`` with one extended-info message ``message_id`` / ``message``."""

    def __init__(
        self,
        status: int,
        message_id: str,
        message: str,
        *,
        args: list[str] | None = None,
        severity: str = "Critical",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message_id = message_id
        self.message = message
        self.args_ = args or []
        self.severity = severity
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The JSON error body."""
        return {
            "error": {
                "code": self.message_id,
                "message": self.message,
                "@Message.ExtendedInfo": [
                    {
                        "@odata.type": "#Message.v1_1_1.Message",
                        "MessageId": self.message_id,
                        "Message": self.message,
                        "MessageArgs": self.args_,
                        "Severity": self.severity,
                        "Resolution": "Correct the request and resubmit it.",
                    }
                ],
            }
        }

    def response(self) -> web.Response:
        """The aiohttp answer."""
        return web.Response(
            status=self.status,
            text=json.dumps(self.body()),
            content_type="application/json",
            headers=self.headers,
        )


def bad_request(name: str, message: str, *args: str) -> RedfishError:
    """400 with Base message ``name``."""
    return RedfishError(400, f"{BASE}.{name}", message, args=list(args), severity="Warning")


def not_found(uri: str) -> RedfishError:
    """404 ``ResourceMissingAtURI``."""
    return RedfishError(
        404, f"{BASE}.ResourceMissingAtURI", f"The resource at the URI {uri} was not found.", args=[uri]
    )


def unauthorized() -> RedfishError:
    """401 ``NoValidSession`` with a Basic challenge."""
    return RedfishError(
        401,
        f"{BASE}.NoValidSession",
        "There is no valid session established with the implementation.",
        headers={"WWW-Authenticate": 'Basic realm="RedfishService"'},
    )


def conflict(message_id: str, message: str) -> RedfishError:
    """409 with ``message_id``."""
    return RedfishError(409, message_id, message)
