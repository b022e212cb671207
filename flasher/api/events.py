"""``GET /api/v1/events``: task events as Server-Sent Events (the WHATWG HTML standard, "Server-sent events").

Each task attribute write flasher makes (status changes and progress messages, :mod:`flasher.task.events`) is one
``event: task`` with ``id: <epoch>:<stream id>`` and ``data:`` the event's JSON — ``server``, ``kind``,
``taskID``, ``status``, ``message``, ``updatedAt``, ``worker``, ``cancel``, ``rollout``, ``source`` and the
server's ``name``, ``facility``, ``vendor``, ``model`` when known. Filters as for ``GET /api/v1/tasks``
(``status``, ``kind``, ``facility``, ``rollout``, ``vendor``, ``model``) and ``server``; several values of one
filter are given comma-separated.

A client that reconnects sends ``Last-Event-ID`` (browsers' ``EventSource`` does it by itself; or
``?last_event_id=``) and gets every event after it, in order. When those are gone (Redis lost its data, or the
stream was trimmed past the id) it gets ``event: reset`` with ``data: {"reason"}`` instead and should re-read
the tasks (``GET /api/v1/tasks``); the stream goes on from there. A comment line is sent every 15 s so proxies
keep the connection open.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from flasher import metrics
from flasher.api.context import APIContext, Context, Reader
from flasher.api.errors import APIError, bad_input
from flasher.events.hub import follow
from flasher.events.stream import EventCursor, Reset, StreamEntry
from flasher.task.model import TaskKind

router = APIRouter(prefix="/api/v1", tags=["events"])

#: Milliseconds a browser waits before reconnecting (the ``retry:`` field).
RETRY_MS = 1000
#: Seconds between keep-alive comments.
PING_SECONDS = 15

_STATUSES = ("new", "requested", "queued", "active", "success", "failed", "cancelled", "deleted")


def _values(field: str, text: str | None, allowed: tuple[str, ...] | None = None) -> frozenset[str] | None:
    if text is None:
        return None
    values = frozenset(v.strip() for v in text.split(",") if v.strip())
    if not values:
        raise bad_input([(field, text, "is empty")])
    if allowed is not None and (unknown := sorted(values - set(allowed))):
        raise bad_input([(field, text, f"names {', '.join(unknown)}, not among {', '.join(allowed)}")])
    return values


class EventFilter:
    """Which events one listener wants; ``None`` for a filter means any value."""

    def __init__(self, context: APIContext, **filters: frozenset[str] | None) -> None:
        self.context = context
        statuses = filters.get("status")
        if statuses is not None and "new" in statuses:
            statuses = statuses | {"requested"}
        self.status = statuses
        self.kind = filters.get("kind")
        self.server = filters.get("server")
        self.rollout = filters.get("rollout")
        self.facility = filters.get("facility")
        self.vendor = filters.get("vendor")
        self.model = filters.get("model")

    async def facts(self, server: str) -> dict[str, str]:
        return await self.context.facts.aget(server)

    async def __call__(self, entry: StreamEntry) -> bool:
        event = entry.event
        if self.server is not None and event.server not in self.server:
            return False
        if self.kind is not None and event.kind not in self.kind:
            return False
        if self.status is not None and event.status not in self.status:
            return False
        if self.rollout is not None and event.rollout not in self.rollout:
            return False
        if self.facility is None and self.vendor is None and self.model is None:
            return True
        facts = await self.facts(event.server)
        return all(
            wanted is None or facts.get(key) in wanted
            for key, wanted in (("facility", self.facility), ("vendor", self.vendor), ("model", self.model))
        )


class _Encoded:
    """The newest entries as SSE bytes, encoded once for every listener of this process (a bounded map)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._data: OrderedDict[str, bytes] = OrderedDict()

    async def __call__(self, context: APIContext, entry: StreamEntry) -> bytes:
        key = str(entry.cursor)
        data = self._data.get(key)
        if data is None:
            body: dict[str, Any] = entry.event.to_json()
            body.update(await context.facts.aget(entry.event.server))
            text = json.dumps(body, separators=(",", ":"))
            data = ServerSentEvent(data=text, event="task", id=key).encode()
            self._data[key] = data
            if len(self._data) > self._size:
                self._data.popitem(last=False)
        return data


_encoded = _Encoded()


async def _sse(
    context: APIContext, start: EventCursor | None, accept: EventFilter
) -> AsyncIterator[ServerSentEvent | bytes]:
    assert context.hub is not None
    metrics.SSE_CLIENTS.inc()
    try:
        async for item in follow(context.hub, start, accept):
            if isinstance(item, Reset):
                yield ServerSentEvent(
                    data=json.dumps({"reason": item.reason}), event="reset", id=str(item.cursor), retry=RETRY_MS
                )
                continue
            yield await _encoded(context, item)
    finally:
        metrics.SSE_CLIENTS.dec()


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The event stream."}},
)
async def events(
    *,
    request: Request,
    context: Context,
    principal: Reader,
    status: Annotated[str | None, Query(description=f"Comma-separated: {', '.join(_STATUSES)}.")] = None,
    kind: Annotated[str | None, Query(description="install, server_control.")] = None,
    server: Annotated[str | None, Query(description="Server uuids, comma-separated.")] = None,
    facility: Annotated[str | None, Query()] = None,
    rollout: Annotated[str | None, Query()] = None,
    vendor: Annotated[str | None, Query()] = None,
    model: Annotated[str | None, Query()] = None,
    last_event_id: Annotated[str | None, Query(description="Resume after this event id (as Last-Event-ID).")] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID", include_in_schema=False)] = None,
) -> EventSourceResponse:
    """Task events as Server-Sent Events, resumable with ``Last-Event-ID`` (see the module docs)."""
    if context.hub is None:
        raise APIError(503, "task events are disabled (events.enabled is false)")
    accept = EventFilter(
        context,
        status=_values("status", status, _STATUSES),
        kind=_values("kind", kind, tuple(k.value for k in TaskKind)),
        server=_values("server", server),
        facility=_values("facility", facility),
        rollout=_values("rollout", rollout),
        vendor=_values("vendor", vendor),
        model=_values("model", model),
    )
    given = last_event_id_header or last_event_id
    start: EventCursor | None = None
    if given:
        try:
            start = EventCursor.parse(given)
        except ValueError:
            start = EventCursor("unknown", "0-0", 0)  # answered with a reset: the client re-reads
    return EventSourceResponse(_sse(context, start, accept), ping=PING_SECONDS, headers={"Cache-Control": "no-store"})
