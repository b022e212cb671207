"""Writing a request through ``flasher api``: the caller's subject as ``requester``, the scopes, the event.

Every endpoint that creates a task goes through :func:`write_request`, which builds on
:func:`flasher.task.request.submit` (the same validation and "no overwrite of a running task" rule as
``flasher task``) and adds what the API owes: ``requester`` is the token's subject whatever the client sent, the
``request`` key records how the task was asked for (:mod:`flasher.api.views`), a task that restarts hosts needs
the power scope, and the write is published as an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flasher.api.auth import Principal, restarts_hosts
from flasher.api.context import APIContext
from flasher.api.views import REQUEST_KEY, now_text
from flasher.task.model import DEFAULT_PRIORITY, TaskKind
from flasher.task.request import Submitted, submit, validate


def build_request(
    context: APIContext, principal: Principal, kind: TaskKind, data: Mapping[str, Any], *, via: str, **given: Any
) -> dict[str, Any]:
    """``data`` as the attribute to write: new status, default priority, ``requester`` the caller's subject, and
    ``request`` with ``via``, the time and what the client gave (``given``)."""
    request = dict(data)
    request["status"] = request.get("status", "")
    request.setdefault("priority", DEFAULT_PRIORITY)
    request["requester"] = principal.subject
    request[REQUEST_KEY] = {
        "via": via,
        "at": now_text(),
        "client": principal.subject if principal.authenticated else "",
        **{key: value for key, value in given.items() if value is not None},
    }
    return request


def write_request(
    context: APIContext,
    principal: Principal,
    server_id: str,
    kind: TaskKind,
    request: dict[str, Any],
    *,
    replace: bool = False,
    exclusive: bool = False,
) -> Submitted:
    """Validate ``request`` (built by :func:`build_request`), check the power scope, write it, publish the event.

    Raises :class:`~flasher.task.model.TaskValidationError` (400), :class:`~flasher.api.auth.AuthError` (403),
    :class:`~flasher.task.request.TaskRunningError` (409) and the inventory's errors, with nothing written.
    """
    validate(kind, request)
    if restarts_hosts(kind, request):
        context.auth.require(principal, "power")
    submitted = submit(context.inventory, server_id, kind, request, replace=replace, exclusive=exclusive)
    context.published(server_id, kind, request)
    return submitted
