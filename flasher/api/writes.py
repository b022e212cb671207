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
from flasher.api.errors import APIError
from flasher.api.views import REQUEST_KEY, now_text
from flasher.inventory.models import Attributes, Server
from flasher.task.model import DEFAULT_PRIORITY, TaskKind
from flasher.task.request import Submitted, Verdict, submit_request, validate


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


class _Announcing:
    """The inventory as :func:`~flasher.task.request.submit_request` uses it, publishing each request it writes
    as soon as the inventory took it (before the read-back, so listeners see ``requested`` before ``queued``)."""

    def __init__(self, context: APIContext) -> None:
        self._context = context
        self._inventory = context.inventory

    def get_server(self, uuid: str) -> Server:
        return self._inventory.get_server(uuid)

    def get_attribute(self, uuid: str, namespace: str) -> Attributes:
        return self._inventory.get_attribute(uuid, namespace)

    def upsert_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any]) -> None:
        self._inventory.upsert_attribute(uuid, namespace, data)
        kind = next(k for k in TaskKind if k.namespace == namespace)
        self._context.published(uuid, kind, data)


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
    :class:`~flasher.task.request.TaskRunningError` (409) and the inventory's errors, with nothing written; 409 too when
    another writer's request replaced this one before flasher took it up (the read-back of
    :func:`flasher.task.request.submit`).
    """
    validate(kind, request)
    if restarts_hosts(kind, request):
        context.auth.require(principal, "power")
    store = _Announcing(context)
    submitted = submit_request(store, server_id, kind, request, replace=replace, exclusive=exclusive)
    if submitted.submission.verdict is Verdict.SUPERSEDED:
        raise APIError(409, f"the request (task {submitted.task_id}) was not taken up: {submitted.submission.detail}")
    return submitted
