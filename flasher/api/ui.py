"""The dashboard at ``/ui``: server-rendered pages (Jinja2) kept live by a little plain JavaScript.

Views: the fleet's tasks (``/ui``, filters as ``GET /api/v1/tasks``), one server's task with its components'
progress and messages (``/ui/servers/{id}/{kind}``), the queue (``/ui/queue``), the rollouts (``/ui/rollouts``)
and one rollout (``/ui/rollouts/{name}``: waves with their members, caps, the breaker; pause, resume and abort
buttons for a session with the write scope, which call ``/api/v1/rollouts/{name}/...``). Each page subscribes to
``/api/v1/events`` with its filters (``EventSource``): the fleet view updates a row in place (or adds it), the
task and queue views re-fetch their HTML fragment (``.../fragment``) when an event concerns them; on ``reset``
every view re-reads its fragment. The rollout views also re-read theirs every few seconds: a pause, an abort
or the controller's record writes publish no task event. No build step and no CDN: the script and the
stylesheet are files under ``/static/ui`` that flasher serves itself, so the dashboard works offline.

With ``api.auth`` other than ``none`` the pages need the read scope like the API; ``/ui/login`` takes a token and
keeps it in an HttpOnly, SameSite=Strict cookie (so ``EventSource``, which cannot set headers, is authenticated
too); ``/ui/logout`` drops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode
from uuid import UUID

import redis
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from flasher.api.auth import TOKEN_COOKIE, AuthError
from flasher.api.context import APIContext, get_context, get_principal, require_read
from flasher.api.errors import APIError
from flasher.api.rollouts import status_view, summary
from flasher.api.tasks import StatusFilter, _listed, _server_task, iter_tasks
from flasher.api.views import task_record
from flasher.events import EventPublisher
from flasher.inventory.errors import NotFoundError
from flasher.rollout import operations
from flasher.rollout.definition import RolloutSpecError
from flasher.rollout.store import RolloutError
from flasher.task.model import TaskKind

router = APIRouter(prefix="/ui", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

#: Rows the fleet view shows at most.
FLEET_ROWS = 500
#: Statuses offered in the fleet view's filter.
STATUSES = [s.value for s in StatusFilter]
#: A rollout's member statuses, in the order the rollout view shows their counts.
ROLLOUT_STATUSES = ["new", "queued", "active", "success", "failed", "cancelled"]
#: Milliseconds between the rollout views' re-reads (a pause or the controller's record writes publish no event).
ROLLOUT_POLL_MS = 3000
#: Milliseconds at least between two re-reads of a rollout view (each lists every member in the inventory).
ROLLOUT_GAP_MS = 1000
#: Member rows a wave shows at most (the tasks view filtered by the rollout lists them all).
WAVE_ROWS = 200


def _allowed(request: Request) -> APIContext | Response:
    """The context when the caller may read; a redirect to the sign-in page otherwise."""
    try:
        require_read(request)
    except AuthError:
        return RedirectResponse("/ui/login", status_code=303)
    return get_context(request)


def _filters(request: Request) -> dict[str, str]:
    keys = ("status", "kind", "facility", "vendor", "model", "rollout")
    return {key: value for key in keys if (value := request.query_params.get(key, "").strip())}


def _fleet_rows(context: APIContext, filters: dict[str, str]) -> list[dict[str, Any]]:
    status = StatusFilter(filters["status"]) if filters.get("status") in STATUSES else None
    kind = TaskKind(filters["kind"]) if filters.get("kind") in {k.value for k in TaskKind} else None
    rows = []
    found = iter_tasks(
        context,
        status=status,
        kind=kind,
        facility=filters.get("facility"),
        rollout=filters.get("rollout"),
        vendor=filters.get("vendor"),
        model=filters.get("model"),
    )
    for server, task_kind, data in found:
        rows.append(_listed(context, server, task_kind, data))
        if len(rows) >= FLEET_ROWS:
            break
    return rows


def _head(context: APIContext) -> dict[str, str]:
    """``{"last_event_id": <the stream's head>}``, read before the page reads the inventory: the page's event
    stream starts there, so an event written between the render and the subscription is not missed."""
    if not isinstance(context.events, EventPublisher):
        return {}
    try:
        return {"last_event_id": str(context.events.head())}
    except redis.RedisError:
        return {}


def _events_query(filters: dict[str, str], head: dict[str, str]) -> str:
    wanted = {k: v for k, v in filters.items() if k != "status"}  # rows change status: follow them all
    return urlencode({**wanted, **head})


@router.get("", response_class=HTMLResponse)
def fleet(request: Request) -> Response:
    """The fleet's tasks, live."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    filters = _filters(request)
    head = _head(context)
    return templates.TemplateResponse(
        request,
        "fleet.html",
        {
            "rows": _fleet_rows(context, filters),
            "filters": filters,
            "statuses": STATUSES,
            "kinds": [k.value for k in TaskKind],
            "events_query": _events_query(filters, head),
            "rows_query": urlencode({k: v for k, v in filters.items()}),
            "auth": context.auth.enabled,
            "limit": FLEET_ROWS,
        },
    )


@router.get("/rows", response_class=HTMLResponse)
def fleet_rows(request: Request) -> Response:
    """The fleet view's table body (re-read after a reset)."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    return templates.TemplateResponse(request, "fleet_rows.html", {"rows": _fleet_rows(context, _filters(request))})


def _task(context: APIContext, server_id: UUID, kind: TaskKind) -> dict[str, Any] | None:
    try:
        server, data = _server_task(context, server_id, kind)
    except APIError:
        return None
    return task_record(str(server.uuid), kind, data, {"name": server.name, "facility": server.facility})


@router.get("/servers/{server_id}/{kind}", response_class=HTMLResponse)
def server_task(request: Request, server_id: UUID, kind: TaskKind) -> Response:
    """One server's task: components' progress and messages, live."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    head = _head(context)
    try:
        task = _task(context, server_id, kind)
    except NotFoundError:
        return HTMLResponse(f"server {server_id} not found", status_code=404)
    query = urlencode({"server": str(server_id), "kind": kind.value, **head})
    return templates.TemplateResponse(
        request,
        "task.html",
        {
            "task": task,
            "server_id": str(server_id),
            "kind": kind.value,
            "events_query": query,
            "auth": context.auth.enabled,
        },
    )


@router.get("/servers/{server_id}/{kind}/row", response_class=HTMLResponse)
def server_task_row(request: Request, server_id: UUID, kind: TaskKind) -> Response:
    """The task's row of the fleet view (fetched when an event brings a task the page did not show)."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    try:
        server, data = _server_task(context, server_id, kind)
    except (APIError, NotFoundError):
        return HTMLResponse("", status_code=404)
    rows = [_listed(context, server, kind, data)]
    return templates.TemplateResponse(request, "fleet_rows.html", {"rows": rows})


@router.get("/servers/{server_id}/{kind}/fragment", response_class=HTMLResponse)
def server_task_fragment(request: Request, server_id: UUID, kind: TaskKind) -> Response:
    """The task view's body (re-read on each event of the task)."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    try:
        task = _task(context, server_id, kind)
    except NotFoundError:
        return HTMLResponse(f"server {server_id} not found", status_code=404)
    return templates.TemplateResponse(
        request, "task_body.html", {"task": task, "server_id": str(server_id), "kind": kind.value}
    )


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request) -> Response:
    """What the Redis queue holds, live."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    head = _head(context)
    return templates.TemplateResponse(
        request,
        "queue.html",
        {"queue": context.queue.snapshot().to_dict(), "auth": context.auth.enabled, "events_query": urlencode(head)},
    )


@router.get("/queue/fragment", response_class=HTMLResponse)
def queue_fragment(request: Request) -> Response:
    """The queue view's body."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    return templates.TemplateResponse(request, "queue_body.html", {"queue": context.queue.snapshot().to_dict()})


def _can_write(request: Request, context: APIContext) -> bool:
    """Whether the session may steer rollouts (the write scope): the rollout view shows its buttons then."""
    try:
        principal = get_principal(request)
    except AuthError:
        return False
    return context.auth.scope("write") in principal.scopes


def _rollout_list(context: APIContext) -> dict[str, Any]:
    rollouts, problems = operations.list_rollouts(context.inventory)
    return {"rollouts": [summary(r) for r in reversed(rollouts)], "problems": problems}


@router.get("/rollouts", response_class=HTMLResponse)
def rollouts(request: Request) -> Response:
    """Every rollout, newest first; re-read every few seconds (a record's changes publish no task event)."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    page = {**_rollout_list(context), "auth": context.auth.enabled, "poll_ms": ROLLOUT_POLL_MS}
    return templates.TemplateResponse(request, "rollouts.html", page)


@router.get("/rollouts/_body", response_class=HTMLResponse)
def rollouts_body(request: Request) -> Response:
    """The rollout list's body."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    return templates.TemplateResponse(request, "rollouts_body.html", _rollout_list(context))


def _rollout_page(context: APIContext, name: str) -> dict[str, Any]:
    """What the rollout view shows: :func:`~flasher.api.rollouts.status_view` with members by id and waiting
    reasons, or ``missing`` saying why there is nothing to show."""
    try:
        view = status_view(operations.status(context.inventory, name, context.settings.rollout))
    except (RolloutError, RolloutSpecError) as exc:
        return {"view": None, "name": name, "missing": str(exc)}
    return {
        "view": view,
        "name": name,
        "members": {m["server"]: m for m in view["members"]},
        "waits": {w["server"]: w["text"] for w in view["waits"]},
        "statuses": ROLLOUT_STATUSES,
        "wave_rows": WAVE_ROWS,
    }


@router.get("/rollouts/{name}", response_class=HTMLResponse)
def rollout(request: Request, name: str) -> Response:
    """One rollout: waves with their members and states, caps, the breaker; live from the task events of its
    members (``rollout=`` filter), and re-read every few seconds for what publishes none (pause, the record)."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    head = _head(context)
    page = _rollout_page(context, name)
    code = 404 if page["view"] is None else 200
    page.update(
        {
            "auth": context.auth.enabled,
            "can_write": page["view"] is not None and _can_write(request, context),
            "events_query": urlencode({"rollout": name, **head}),
            "poll_ms": ROLLOUT_POLL_MS,
            "gap_ms": ROLLOUT_GAP_MS,
        }
    )
    return templates.TemplateResponse(request, "rollout.html", page, status_code=code)


@router.get("/rollouts/{name}/fragment", response_class=HTMLResponse)
def rollout_fragment(request: Request, name: str) -> Response:
    """The rollout view's body (re-read on each event of a member and every few seconds)."""
    context = _allowed(request)
    if isinstance(context, Response):
        return context
    page = _rollout_page(context, name)
    return templates.TemplateResponse(
        request, "rollout_body.html", page, status_code=404 if page["view"] is None else 200
    )


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: Annotated[str | None, Query()] = None) -> Response:
    """The sign-in form (a bearer token)."""
    return templates.TemplateResponse(
        request, "login.html", {"error": error, "auth": get_context(request).auth.enabled}
    )


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the token given and keep it in an HttpOnly cookie; back to the form when it is refused."""
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    context = get_context(request)
    try:
        principal = context.auth.authenticate(token)
        context.auth.require(principal, "read")
    except AuthError as exc:
        return RedirectResponse("/ui/login?" + urlencode({"error": exc.message}), status_code=303)
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        TOKEN_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
    )
    return response


@router.get("/logout")
def logout() -> Response:
    """Drop the token cookie."""
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE, path="/")
    return response
