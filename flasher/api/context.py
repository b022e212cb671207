"""What every request handler of ``flasher api`` shares: the clients, the authenticator, the event hub.

:class:`APIContext` is built once per process by :func:`flasher.api.app.create_app` and kept in
``app.state.context``; handlers get it, and the caller's :class:`~flasher.api.auth.Principal`, through the
dependencies here. The API holds no state of its own: requests become task attributes in the inventory, and the
only Redis data it writes is the event stream (through the same publisher the replicas use) and a short-lived
index of roller job ids (:mod:`flasher.api.roller`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from flasher.api.auth import TOKEN_COOKIE, Authenticator, Principal
from flasher.config import Settings
from flasher.events.hub import EventHub
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError
from flasher.queue import TaskQueue
from flasher.task.events import EventSink, TaskEvent, publish_safely, task_event
from flasher.task.model import TaskKind

#: Seconds a server's facts (name, facility, vendor, model) are kept; failures are kept for a few seconds.
FACTS_TTL = 300.0
_FACTS_FAILURE_TTL = 5.0
#: Seconds an event waits for its server's facts when they are not cached.
FACTS_WAIT = 1.0


class ServerFacts:
    """A cache of the servers' name, facility, vendor and model (for event filters and the dashboard)."""

    def __init__(
        self, inventory: InventoryClient, *, ttl: float = FACTS_TTL, clock: Callable[[], float] = time.monotonic
    ):
        self._inventory = inventory
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._facts: dict[str, tuple[float, dict[str, str]]] = {}

    def remember(self, server_id: str, facts: Mapping[str, str]) -> None:
        """Keep ``facts`` for ``server_id`` (from a listing that had the server at hand)."""
        with self._lock:
            self._facts[server_id] = (self._clock() + self._ttl, dict(facts))

    def get(self, server_id: str) -> dict[str, str]:
        """The facts of ``server_id`` (read from the inventory when not cached; ``{}`` when it cannot be read)."""
        with self._lock:
            cached = self._facts.get(server_id)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        try:
            server = self._inventory.get_server(server_id)
        except (InventoryError, ValueError):
            with self._lock:
                self._facts[server_id] = (self._clock() + _FACTS_FAILURE_TTL, {})
            return {}
        facts = facts_of(server)
        self.remember(server_id, facts)
        return facts

    async def aget(self, server_id: str, *, wait: float = FACTS_WAIT) -> dict[str, str]:
        """:meth:`get` from the event loop: the inventory call runs in a thread when not cached, and is waited for
        at most ``wait`` seconds (an event is not held up by a slow inventory; the facts arrive for the next)."""
        with self._lock:
            cached = self._facts.get(server_id)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        lookup = asyncio.ensure_future(asyncio.to_thread(self.get, server_id))
        try:
            return await asyncio.wait_for(asyncio.shield(lookup), wait)
        except TimeoutError:
            return {}


def facts_of(server: Any) -> dict[str, str]:
    """``{"name", "facility", "vendor", "model"}`` of an inventory server (empty strings left out)."""
    facts = {
        "name": server.name,
        "facility": server.facility,
        "vendor": server.vendor or "",
        "model": server.model or "",
    }
    return {key: value for key, value in facts.items() if value}


@dataclass
class APIContext:
    """The process-wide parts of ``flasher api``."""

    settings: Settings
    inventory: InventoryClient
    queue: TaskQueue
    events: EventSink
    auth: Authenticator
    facts: ServerFacts
    hub: EventHub | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def published(self, server_id: str, kind: TaskKind, data: Mapping[str, Any] | None) -> TaskEvent:
        """Publish the event of an attribute write the API made; returns it."""
        event = task_event(server_id, kind, data, source="api")
        publish_safely(self.events, event)
        return event


def get_context(request: Request) -> APIContext:
    """The :class:`APIContext` of the app serving ``request``."""
    context: APIContext = request.app.state.context
    return context


def bearer_token(request: Request) -> str | None:
    """The request's bearer token: ``Authorization: Bearer <token>``, else the dashboard's cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


def get_principal(request: Request) -> Principal:
    """The caller (401 when auth is on and the token is missing or bad)."""
    principal = get_context(request).auth.authenticate(bearer_token(request))
    request.state.principal = principal
    return principal


def require_read(request: Request) -> Principal:
    """The caller, who must hold the read scope (403 otherwise)."""
    principal = get_principal(request)
    get_context(request).auth.require(principal, "read")
    return principal


def require_write(request: Request) -> Principal:
    """The caller, who must hold the write scope (403 otherwise)."""
    principal = get_principal(request)
    get_context(request).auth.require(principal, "write")
    return principal


Context = Annotated[APIContext, Depends(get_context)]
Reader = Annotated[Principal, Depends(require_read)]
Writer = Annotated[Principal, Depends(require_write)]
