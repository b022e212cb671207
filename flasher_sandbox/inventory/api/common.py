"""What the API handlers share: the app's inventory state, the raw request URI and query, bodies, path ids."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, request

from flasher_sandbox.inventory.binding import BindError, parse_uuid
from flasher_sandbox.inventory.db import Database
from flasher_sandbox.inventory.errors import ApiError, bad_request, invalid_uuid_syntax
from flasher_sandbox.inventory.faults import FaultInjector
from flasher_sandbox.inventory.gojson import loads_request
from flasher_sandbox.inventory.responses import Pager, parse_go_query

EXTENSION = "sandbox_inventory"


class RequestCounts:
    """The ``/api/v1`` requests answered so far, by ``"METHOD route"`` (the route's template, as
    ``/api/v1/servers/<server_id>``); thread-safe (waitress answers on several threads)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        """Count one request."""
        with self._lock:
            self._counts[key] += 1

    def snapshot(self) -> dict[str, int]:
        """The counts so far."""
        with self._lock:
            return dict(self._counts)


@dataclass
class InventoryState:
    """What a running inventory app holds: its database, fault rules, the bearer token (``None``: no auth) and
    the count of the API requests it answered."""

    db: Database
    token: str | None = None
    faults: FaultInjector = field(default_factory=FaultInjector)
    requests: RequestCounts = field(default_factory=RequestCounts)


def state() -> InventoryState:
    """The current app's :class:`InventoryState`."""
    value = current_app.extensions[EXTENSION]
    assert isinstance(value, InventoryState)
    return value


def db() -> Database:
    """The current app's database."""
    return state().db


def request_uri() -> str:
    """The request target as received (path and raw query), like Go's ``Request.URL.String()``."""
    raw = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI")
    if raw:
        return str(raw)
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def request_path() -> str:
    """The request path without its query."""
    return request_uri().partition("?")[0]


def query_params() -> list[tuple[str, str]]:
    """The query's (key, value) pairs, parsed like Go's ``url.ParseQuery``, in order."""
    return parse_go_query(request_uri().partition("?")[2])


def pager() -> Pager:
    """``page`` and ``limit`` of this request."""
    return Pager.from_query(query_params())


def body() -> Any:
    """The request's JSON body (first value); raises ``GoJSONError`` with Go's text."""
    return loads_request(request.get_data(cache=True))


def path_uuid(text: str) -> str:
    """A path id the reference server parses first: 400 ``failed to parse uuid`` when it is not a UUID."""
    try:
        return str(parse_uuid(text))
    except BindError as exc:
        raise bad_request("failed to parse uuid", str(exc)) from None


def db_uuid(text: str) -> str:
    """A path id the reference server hands to PostgreSQL as is: 500 (invalid input syntax) when not a UUID."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise invalid_uuid_syntax(text) from None


def bad_body(message: str, exc: Exception) -> ApiError:
    """400 with ``message`` and the decoder's or validator's text."""
    return bad_request(message, str(exc))
