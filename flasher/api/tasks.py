"""flasher's own resources: the fleet's tasks, one server's task, and the queue.

* ``GET /api/v1/tasks``: tasks filtered by ``status``, ``kind``, ``facility``, ``rollout``, ``vendor``, ``model``
  (inventory attribute filters underneath, one query per kind and status), paged with ``page`` and ``per_page``.
* ``GET /api/v1/servers/{id}/tasks/{kind}``: the task with its attribute, components and messages.
* ``PUT /api/v1/servers/{id}/tasks/{kind}``: a new request, the attribute's keys as ``flasher task`` writes them
  (validated as admission would; 409 while the task is queued or active, unless ``replace=true``).
* ``DELETE /api/v1/servers/{id}/tasks/{kind}``: remove a task that is not queued or active (409 otherwise).
* ``POST /api/v1/servers/{id}/tasks/{kind}/cancel``: ``cancel: true`` (a new or queued task is cancelled by the
  next poll; an active one stops at its next safe point).
* ``GET /api/v1/queue``: what Redis holds (queued, delayed, in flight, dead).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Request, Response

from flasher.api.context import APIContext, Context, Reader, Writer, facts_of
from flasher.api.errors import APIError
from flasher.api.views import task_record
from flasher.api.writes import build_request, write_request
from flasher.constants import SERVER_VENDOR_NAMESPACE
from flasher.inventory.models import Server
from flasher.task.events import ROLLOUT_KEY
from flasher.task.model import TaskKind, is_terminal
from flasher.task.request import check_not_running, object_of, status_of

router = APIRouter(prefix="/api/v1", tags=["tasks"])


class StatusFilter(StrEnum):
    """``GET /api/v1/tasks?status=``; ``new`` is ``""`` or ``requested``."""

    NEW = "new"
    QUEUED = "queued"
    ACTIVE = "active"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


ServerID = Annotated[UUID, Path(description="The server's uuid in the inventory.")]
KindPath = Annotated[TaskKind, Path(description="install or server_control.")]


def _filter_value(field: str, value: str) -> str:
    if "~" in value or not value.strip():
        raise APIError(
            400,
            f"field {field!r}: value {value!r} is not usable in a filter (no '~', not empty)",
            [{"field": field, "value": value, "reason": "is not usable in a filter (no '~', not empty)"}],
        )
    return value


def iter_tasks(
    context: APIContext,
    *,
    status: StatusFilter | None = None,
    kind: TaskKind | None = None,
    facility: str | None = None,
    rollout: str | None = None,
    vendor: str | None = None,
    model: str | None = None,
) -> Iterator[tuple[Server, TaskKind, dict[str, Any]]]:
    """Every ``(server, kind, data)`` matching the filters, lazily, page by page from the inventory."""
    extra: list[str] = []
    if vendor:
        extra.append(f"{SERVER_VENDOR_NAMESPACE}~vendor~eq~{_filter_value('vendor', vendor)}")
    if model:
        extra.append(f"{SERVER_VENDOR_NAMESPACE}~model~eq~{_filter_value('model', model)}")
    for task_kind in [kind] if kind else list(TaskKind):
        namespace = task_kind.namespace
        base = [*extra]
        if rollout:
            base.append(f"{namespace}~{ROLLOUT_KEY}.name~eq~{_filter_value('rollout', rollout)}")
        if status is StatusFilter.NEW:
            queries = [[f"{namespace}~status~eq~", *base], [f"{namespace}~status~eq~requested", *base]]
        elif status is not None:
            queries = [[f"{namespace}~status~eq~{status.value}", *base]]
        else:
            queries = [[namespace, *base]]
        seen: set[str] = set()
        for attr in queries:
            for server in context.inventory.iter_servers(attr=attr, facility=facility):
                attribute = server.attribute(namespace)
                if attribute is None or str(server.uuid) in seen:
                    continue
                seen.add(str(server.uuid))
                yield server, task_kind, object_of(attribute.data)


def _listed(context: APIContext, server: Server, kind: TaskKind, data: dict[str, Any]) -> dict[str, Any]:
    facts = facts_of(server)
    context.facts.remember(str(server.uuid), facts)
    record = task_record(str(server.uuid), kind, data, facts)
    record.pop("attribute")
    record.pop("messages")
    return record


@router.get("/tasks")
def list_tasks(
    *,
    request: Request,
    context: Context,
    principal: Reader,
    status: StatusFilter | None = None,
    kind: TaskKind | None = None,
    facility: Annotated[str | None, Query(description="The servers' facility code.")] = None,
    rollout: Annotated[str | None, Query(description="Tasks of this rollout.")] = None,
    vendor: Annotated[str | None, Query(description="The servers' vendor (dell, supermicro, ...).")] = None,
    model: Annotated[str | None, Query(description="The servers' model.")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> dict[str, Any]:
    """The fleet's tasks, newest inventory order, one page: ``{"tasks", "page", "per_page", "next"}`` (``next`` is
    the URL of the next page, ``null`` on the last)."""
    size = min(per_page or context.settings.api.page_size, context.settings.api.page_size * 10)
    found = iter_tasks(
        context, status=status, kind=kind, facility=facility, rollout=rollout, vendor=vendor, model=model
    )
    window = list(itertools.islice(found, (page - 1) * size, page * size + 1))
    tasks = [_listed(context, server, task_kind, data) for server, task_kind, data in window[:size]]
    following = str(request.url.include_query_params(page=page + 1, per_page=size)) if len(window) > size else None
    return {"tasks": tasks, "page": page, "per_page": size, "next": following}


def _server_task(context: APIContext, server_id: UUID, kind: TaskKind) -> tuple[Server, dict[str, Any]]:
    server = context.inventory.get_server(str(server_id))
    attribute = server.attribute(kind.namespace)
    if attribute is None:
        raise APIError(404, f"server {server_id} has no {kind.value} task (no attribute {kind.namespace})")
    return server, object_of(attribute.data)


@router.get("/servers/{server_id}/tasks/{kind}")
def get_task(server_id: ServerID, kind: KindPath, context: Context, principal: Reader) -> dict[str, Any]:
    """One server's task of ``kind``: its record, components, messages and the attribute as it is."""
    server, data = _server_task(context, server_id, kind)
    facts = facts_of(server)
    context.facts.remember(str(server.uuid), facts)
    return task_record(str(server.uuid), kind, data, facts)


@router.put("/servers/{server_id}/tasks/{kind}", status_code=201)
def put_task(
    *,
    server_id: ServerID,
    kind: KindPath,
    context: Context,
    principal: Writer,
    data: Annotated[dict[str, Any], Body(description="The task attribute's keys, as `flasher task` writes them.")],
    replace: Annotated[
        bool, Query(description="Overwrite a queued or active task (it stops at a safe point).")
    ] = False,
) -> dict[str, Any]:
    """Request a task: the attribute's keys (``requester`` is always the caller). 409 while the task is queued or
    active, unless ``replace``."""
    request = build_request(context, principal, kind, data, via="api")
    submitted = write_request(context, principal, str(server_id), kind, request, replace=replace)
    return task_record(str(server_id), kind, submitted.data, facts_of(submitted.server))


@router.delete("/servers/{server_id}/tasks/{kind}", status_code=204)
def delete_task(server_id: ServerID, kind: KindPath, context: Context, principal: Writer) -> Response:
    """Remove a task attribute that is not queued or active (409 otherwise: cancel it first)."""
    _, data = _server_task(context, server_id, kind)
    check_not_running(str(server_id), kind, data)
    context.inventory.delete_attribute(str(server_id), kind.namespace)
    context.published(str(server_id), kind, None)
    return Response(status_code=204)


@router.post("/servers/{server_id}/tasks/{kind}/cancel")
def cancel_task(server_id: ServerID, kind: KindPath, context: Context, principal: Writer) -> dict[str, Any]:
    """Ask flasher to cancel the task (``cancel: true``). 409 when it already ended; asking twice is harmless."""
    server, data = _server_task(context, server_id, kind)
    if is_terminal(status_of(data)):
        raise APIError(409, f"the {kind.value} task of server {server_id} already ended ({status_of(data)})")
    if data.get("cancel") is not True:
        data = {**data, "cancel": True}
        context.inventory.replace_attribute(str(server_id), kind.namespace, data)
        context.published(str(server_id), kind, data)
    return task_record(str(server_id), kind, data, facts_of(server))


@router.get("/queue")
def queue(context: Context, principal: Reader) -> dict[str, Any]:
    """What the Redis queue holds: ``queued`` (claim order), ``delayed``, ``inflight`` (with ``lease_left``),
    ``dead``; times are Redis' (seconds since the epoch)."""
    return context.queue.snapshot().to_dict()
