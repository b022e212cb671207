"""Typed errors of the inventory client: every failure of a Serverservice call is an :class:`InventoryError`.

Each carries ``call`` (the endpoint's template, e.g. ``"GET /servers/{uuid}"``: a bounded value, used as a
metric label), ``target`` (the concrete path, e.g. ``/servers/3f0c...``), ``status`` (the HTTP status, or
``None`` when there was no answer), and the server's ``message`` and ``error`` texts. Messages never contain a
token or a password: the client builds them from these fields only and scrubs registered secrets.

==========================  ===============================================================================
class                       when
==========================  ===============================================================================
:class:`NotFoundError`      404 with the server's JSON error (``"resource not found"``)
:class:`ConflictError`      409, or 400 ``duplicate key value violates unique constraint``; also several
                            records where one was expected (:meth:`InventoryClient.get_firmware_set`)
:class:`BadRequestError`    any other 4xx the server rejected the request with (validation errors, ...)
:class:`UnauthorizedError`  401, 403, or a token the OAuth2 issuer would not grant
:class:`UnavailableError`   connection errors, timeouts, 429 and 5xx, once retries are used up
:class:`MalformedResponseError`  an answer that is not the JSON the API promises (invalid JSON, missing
                            fields, an HTML page where JSON belongs, a 404 without the server's JSON body)
==========================  ===============================================================================
"""

from __future__ import annotations

from flasher import redact


class InventoryError(Exception):
    """A Serverservice call failed. ``str()`` gives one line for operators: the call, the target and why."""

    def __init__(
        self,
        call: str,
        reason: str,
        *,
        target: str | None = None,
        status: int | None = None,
        message: str | None = None,
        error: str | None = None,
    ) -> None:
        self.call = call
        self.target = target
        self.status = status
        self.message = message
        self.error = error
        self.reason = reason
        where = call if not target or target == call.partition(" ")[2] else f"{call} [{target}]"
        detail = reason
        server_text = "; ".join(text for text in (message, error) if text)
        if status is not None:
            detail += f" (HTTP {status}{': ' + server_text if server_text else ''})"
        elif server_text:
            detail += f" ({server_text})"
        super().__init__(redact.scrub(f"inventory {where}: {detail}"))


class NotFoundError(InventoryError):
    """The server, attribute, firmware or set does not exist (404)."""


class ConflictError(InventoryError):
    """The record already exists (duplicate key), or a lookup matched several records where one was wanted."""


class BadRequestError(InventoryError):
    """The server refused the request as invalid (4xx other than 401/403/404/409/429); ``error`` says why."""


class UnauthorizedError(InventoryError):
    """The credentials were refused (401), lack a scope (403), or no token could be obtained."""


class UnavailableError(InventoryError):
    """The inventory could not be reached or kept failing (connection error, timeout, 429, 5xx) until the
    retry deadline passed."""


class MalformedResponseError(InventoryError):
    """The answer is not what the API promises: invalid JSON, an HTML page, or a record missing fields."""
