"""How ``flasher api`` answers errors: one JSON shape, a status code that says what happened, no secrets.

Every error body is ``{"message": "<one line>"}`` (conditionorc's shape), plus ``errors`` — a list of ``{"field",
"value", "reason"}`` — for bad input. Bad input is 400 (not FastAPI's default 422), naming the field and the value
with the same words as the attribute validation (:class:`flasher.task.model.TaskValidationError`); nothing is
written. A queued or active task in the way is 409; an unknown server or task 404; a task that the attribute no
longer holds 410; an inventory that failed 502 (it answered wrongly) or 503 (it could not be reached), as Redis
(503). Messages are scrubbed of registered secrets (:mod:`flasher.redact`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from starlette.exceptions import HTTPException as StarletteHTTPException

from flasher import redact
from flasher.api.auth import AuthError
from flasher.inventory.errors import InventoryError, NotFoundError, UnavailableError
from flasher.queue import QueueError
from flasher.task.model import TaskValidationError
from flasher.task.request import TaskRunningError


class APIError(Exception):
    """An error answered with ``status`` and ``message`` (and ``errors`` for bad input)."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors


def bad_input(problems: Iterable[tuple[str, Any, str]]) -> APIError:
    """A 400 naming every ``(field, value, reason)``; ``value`` ``None`` for a missing field."""
    listed = list(problems)
    return APIError(
        400,
        "; ".join(_describe(field, value, reason) for field, value, reason in listed),
        [{"field": field, "value": value, "reason": reason} for field, value, reason in listed],
    )


def from_validation(exc: TaskValidationError, rename: dict[str, str] | None = None) -> APIError:
    """A 400 for a task attribute's validation error; ``rename`` maps attribute field prefixes to the names the
    client used (``firmwareSet`` → ``parameters.firmware_set_id``)."""
    problems = []
    for field, value, reason in exc.problems:
        problems.append((_rename(field, rename or {}), value, reason))
    return bad_input(problems)


def _rename(field: str, rename: dict[str, str]) -> str:
    for prefix in sorted(rename, key=len, reverse=True):
        if field == prefix or field.startswith((prefix + ".", prefix + "[")):
            return rename[prefix] + field[len(prefix) :]
    return field


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, default=str, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(field: str, value: Any, reason: str) -> str:
    if value is None:
        return f"field {field!r}: {reason}"
    return f"field {field!r}: value {_show(value)} {reason}"


#: pydantic error types → the reasons attribute validation gives.
_REASONS: Final = {
    "missing": "is missing",
    "string_type": "is not a string",
    "bool_type": "is not a boolean (true or false)",
    "bool_parsing": "is not a boolean (true or false)",
    "int_type": "is not an integer",
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "list_type": "is not a list",
    "dict_type": "is not an object",
    "model_type": "is not an object",
    "model_attributes_type": "is not an object",
    "extra_forbidden": "is not a known field",
    "json_invalid": "is not valid JSON",
    "uuid_parsing": "is not a uuid",
    "uuid_type": "is not a uuid",
}


def _field(loc: tuple[Any, ...]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def request_problems(exc: RequestValidationError) -> list[tuple[str, Any, str]]:
    """FastAPI's validation errors as ``(field, value, reason)``."""
    problems: list[tuple[str, Any, str]] = []
    for error in exc.errors():
        kind = str(error.get("type", ""))
        reason = _REASONS.get(kind)
        if reason is None:
            message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
            reason = message if message.startswith("is ") else f"is not valid ({message})"
        value = None if kind in ("missing", "json_invalid") else error.get("input")
        if isinstance(value, bytes | bytearray):  # a body that is not JSON (another content type)
            value = bytes(value[:200]).decode("utf-8", "replace")
            reason = "is not a JSON body (send Content-Type: application/json)"
        problems.append((_field(tuple(error.get("loc", ()))), _jsonable(value), reason))
    return problems


def _jsonable(value: Any) -> Any:
    """``value`` as JSON can carry it (anything else as its text)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


def _answer(
    status: int,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"message": redact.scrub(message)}
    if errors is not None:
        body["errors"] = [
            {**e, "value": redact.scrub(e["value"]) if isinstance(e.get("value"), str) else e.get("value")}
            for e in errors
        ]
    return JSONResponse(body, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the error handlers on ``app``."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return _answer(exc.status, exc.message, exc.errors)

    @app.exception_handler(AuthError)
    async def _auth_error(_: Request, exc: AuthError) -> JSONResponse:
        return _answer(exc.status, exc.message, headers={"WWW-Authenticate": exc.challenge()})

    @app.exception_handler(TaskValidationError)
    async def _invalid(_: Request, exc: TaskValidationError) -> JSONResponse:
        error = from_validation(exc)
        return _answer(400, error.message, error.errors)

    @app.exception_handler(TaskRunningError)
    async def _running(_: Request, exc: TaskRunningError) -> JSONResponse:
        return _answer(409, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = bad_input(request_problems(exc))
        return _answer(400, error.message, error.errors)

    @app.exception_handler(InventoryError)
    async def _inventory(_: Request, exc: InventoryError) -> JSONResponse:
        if isinstance(exc, NotFoundError):
            return _answer(404, str(exc))
        logger.warning("inventory error answering a request: {}", exc)
        return _answer(503 if isinstance(exc, UnavailableError) else 502, f"the inventory failed: {exc}")

    @app.exception_handler(QueueError)
    async def _queue(_: Request, exc: QueueError) -> JSONResponse:
        logger.warning("Redis error answering a request: {}", exc)
        return _answer(503, f"Redis failed: {exc}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _answer(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
