"""Writing a new request into a task attribute, as ``flasher task`` and ``flasher api`` both do.

A request is the attribute's ``data`` an operator (or a tool acting for one) writes: validated with the rules
admission applies (:meth:`flasher.task.model.TaskKind.parse`, so nothing is written that flasher would fail at
once), and never written over a task that is ``queued`` or ``active`` unless the caller says ``replace`` (its
worker then stops at its next safe point without writing over the new request). The window between reading the
attribute and writing it is one inventory round trip: Serverservice offers no compare-and-swap on attributes.

:func:`request_task_id` is the ``taskID`` admission gives a request: a digest of the server, the namespace and the
request's content, so a caller that wrote a request knows the id its task will carry before it is admitted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from flasher.inventory.models import Server
from flasher.task.model import TaskBase, TaskKind, TaskStatus, TaskValidationError, is_new

#: Statuses a new request does not overwrite without ``replace``.
RUNNING_STATUSES: Final = frozenset({TaskStatus.QUEUED.value, TaskStatus.ACTIVE.value})


def request_task_id(server_id: str, kind: TaskKind, data: Any) -> str:
    """The ``taskID`` of a new request: ``t-`` and 24 hex digits of SHA-256 over server, namespace and content.

    Deterministic, so replicas admitting the same request at once agree on it (and the writer of a request knows
    it in advance: admission gives exactly this id to the request it finds in the attribute).
    """
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(f"{server_id}|{kind.namespace}|{canonical}".encode()).hexdigest()
    return f"t-{digest[:24]}"


class TaskRunningError(Exception):
    """The server's ``kind`` task is ``queued`` or ``active``: a new request would overwrite it.

    ``status``, ``task_id`` and ``worker`` describe the running task (``task_id``/``worker`` may be ``None``).
    """

    def __init__(self, server_id: str, kind: TaskKind, status: str, task_id: str | None, worker: str | None) -> None:
        self.server_id, self.kind, self.status, self.task_id, self.worker = server_id, kind, status, task_id, worker
        super().__init__(
            f"the {kind.value.replace('_', '-')} task of server {server_id} is {status} (taskID {task_id or '-'}, "
            f"worker {worker or '-'}); wait for it or cancel it"
        )


class RequestStore(Protocol):
    """The inventory calls a request makes (a subset of :class:`flasher.inventory.client.InventoryClient`)."""

    def get_server(self, uuid: str) -> Server: ...

    def upsert_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any]) -> None: ...


def status_of(data: Mapping[str, Any] | None) -> str:
    """The status of an attribute's ``data`` as operators read it: ``requested`` for a new request (``""``),
    ``-`` without an attribute, the raw value (as text) when it is not a string."""
    if data is None:
        return "-"
    status = data.get("status", "")
    if not isinstance(status, str):
        return str(status)
    return TaskStatus.REQUESTED.value if is_new(status) else status


def check_not_running(server_id: str, kind: TaskKind, data: Mapping[str, Any] | None) -> None:
    """Raise :class:`TaskRunningError` when ``data`` (the ``kind`` attribute, or ``None``) is queued or active."""
    status = status_of(data)
    if data is not None and status in RUNNING_STATUSES:
        task_id, worker = data.get("taskID"), data.get("worker")
        raise TaskRunningError(
            server_id,
            kind,
            status,
            task_id if isinstance(task_id, str) else None,
            worker if isinstance(worker, str) else None,
        )


def validate(kind: TaskKind, data: Mapping[str, Any]) -> TaskBase:
    """``data`` parsed as a new ``kind`` request; raises :class:`~flasher.task.model.TaskValidationError` naming
    every bad field and value, or ``status`` when it is not that of a new request (``""`` or ``requested``)."""
    parsed = kind.parse(dict(data))
    if not is_new(parsed.status):
        raise TaskValidationError([("status", parsed.status.value, 'is not a new request (use "" or "requested")')])
    return parsed


@dataclass(frozen=True)
class Submitted:
    """A request written: the ``server`` as read before the write, the ``previous`` data of the attribute
    (``None`` when there was none), the ``task_id`` the request's task will carry once admitted."""

    server: Server
    kind: TaskKind
    data: dict[str, Any]
    previous: dict[str, Any] | None
    task_id: str


def submit(
    store: RequestStore,
    server_id: str,
    kind: TaskKind,
    data: Mapping[str, Any],
    *,
    replace: bool = False,
    exclusive: bool = False,
) -> Submitted:
    """Validate ``data`` as a new ``kind`` request and write it into the server's attribute.

    Raises, with nothing written: :class:`~flasher.task.model.TaskValidationError` (bad content: names the field
    and value), :class:`TaskRunningError` (the ``kind`` task is queued or active and ``replace`` is false; with
    ``exclusive``, a running task of the other kind refuses it too), the inventory's
    :class:`~flasher.inventory.errors.NotFoundError` when the server does not exist, and its other typed errors.
    """
    request = dict(data)
    validate(kind, request)
    server = store.get_server(server_id)
    previous = _data_of(server, kind)
    if not replace:
        check_not_running(server_id, kind, previous)
    if exclusive:
        for other in TaskKind:
            if other is not kind:
                check_not_running(server_id, other, _data_of(server, other))
    store.upsert_attribute(server_id, kind.namespace, request)
    return Submitted(server, kind, request, previous, request_task_id(server_id, kind, request))


def _data_of(server: Server, kind: TaskKind) -> dict[str, Any] | None:
    attribute = server.attribute(kind.namespace)
    return object_of(attribute.data) if attribute is not None else None


def object_of(data: Any) -> dict[str, Any]:
    """An attribute's ``data`` as an object to read keys from: itself when it is a JSON object, else
    ``{"status": "invalid"}`` (a record that holds no task: admission fails it; a new request may replace it)."""
    return dict(data) if isinstance(data, Mapping) else {"status": "invalid"}
