"""A new request, as an operator's tool writes it: its digest, and the read-back that makes sure it is not lost.

Serverservice has no compare-and-swap on attributes, and flasher writes a running task's status into the very
attribute an operator writes a new request into (the task attribute's contract: ``/work/shared/DESIGN.md``).
Every flasher write re-reads the attribute first and writes only over its own task, but one round trip remains
between that read and the write: a request that lands in it is overwritten by a status write of the task it was
meant to replace, and nothing in the inventory is left to show it was ever there. Only the writer of the request
can see that, so the writer reads back (:func:`submit`):

* the attribute carries the request's digest as ``taskID`` (:func:`request_task_id`: flasher admitted it), or the
  request as written: **accepted** (or still waiting to be admitted);
* it holds a status write of the task the request replaced (the ``taskID`` the attribute had before the write,
  or the digest of the new request that was there): **flasher overwrote it**, and it is written again;
* it holds anything else (another new request, a task admitted from one, a deleted attribute, something that is
  not a task): **another writer superseded it**, which is that writer's business, and the caller is told.

The digest is the ``taskID`` flasher gives a request when it admits it, so the check needs nothing but the
attribute. A request that is byte for byte the request of the task the attribute already holds has that task's
digest; it counts as taken up only once flasher admitted it anew (a ``createdAt`` other than the old task's).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from flasher.inventory.errors import NotFoundError
from flasher.task.model import TaskKind, is_new, is_terminal


def request_task_id(server_id: str, kind: TaskKind, data: Any) -> str:
    """The ``taskID`` of a new request: ``t-`` and 24 hex digits of SHA-256 over server, namespace and content.

    Deterministic, so replicas admitting the same request at once agree on it, and the request's writer can tell
    from the attribute alone whether flasher took it up. ``data`` is the attribute's data as the operator wrote it
    (keys sorted, compact separators, non-ASCII escaped, as Python's ``json.dumps`` writes it).
    """
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(f"{server_id}|{kind.namespace}|{canonical}".encode()).hexdigest()
    return f"t-{digest[:24]}"


class AttributeReader(Protocol):
    """Reads one attribute (:meth:`flasher.inventory.client.InventoryClient.get_attribute`)."""

    def get_attribute(self, uuid: str, namespace: str) -> Any: ...


class RequestStore(AttributeReader, Protocol):
    """The inventory calls :func:`submit` makes (a subset of :class:`~flasher.inventory.client.InventoryClient`)."""

    def upsert_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any]) -> None: ...


class Verdict(StrEnum):
    """What became of a submitted request when :func:`submit` returned."""

    ACCEPTED = "accepted"  # flasher admitted it: the attribute carries its taskID
    WAITING = "waiting"  # still there as written, not admitted yet when the read-back ended
    SUPERSEDED = "superseded"  # another writer's request (or a deletion) replaced it before flasher took it up


@dataclass(frozen=True, slots=True)
class Submission:
    """The end of :func:`submit`: the ``verdict``, the request's ``task_id`` (its digest), how many times it was
    ``restored`` after a flasher status write overwrote it, the attribute as last read (``current``; ``None`` when
    deleted) and one line for people (``detail``)."""

    verdict: Verdict
    task_id: str
    restored: int
    current: dict[str, Any] | None
    detail: str


class _Seen(StrEnum):
    TAKEN = "taken"
    UNTOUCHED = "untouched"
    OVERWRITTEN = "overwritten"
    SUPERSEDED = "superseded"


#: How many times :func:`submit` writes a request again before it gives up (something keeps writing over it).
MAX_RESTORES = 10


def submit(
    store: RequestStore,
    server_id: str,
    kind: TaskKind,
    data: Mapping[str, Any],
    *,
    confirm_for: float = 10.0,
    quiet_for: float = 1.0,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Submission:
    """Write the new request ``data`` into server ``server_id``'s ``kind`` attribute and read it back until flasher
    took it up, another writer superseded it, or ``confirm_for`` seconds passed; write it again whenever a status
    write of the task it replaced landed over it (the module docstring says how that is told apart).

    A request that replaced no open task (the attribute was absent or its task had ended: no status write of it can
    be on its way but a last beat) is read back only until it was found untouched for ``quiet_for`` seconds.
    ``interval``: seconds between reads (at least one read is made). The caller validates ``data`` first (nothing
    here does). Raises the inventory's errors (the server does not exist: ``NotFoundError``; the inventory is down:
    ``UnavailableError``); an attribute deleted while reading back is a supersession.
    """
    request = dict(data)
    mine = request_task_id(server_id, kind, request)
    before = _read(store, server_id, kind)
    replaced = _task_ids(server_id, kind, before)
    open_before = before is not None and not is_terminal(str(before.get("status") or ""))
    store.upsert_attribute(server_id, kind.namespace, request)
    written = clock()
    deadline = written + confirm_for
    restored = 0
    while True:
        sleep(interval)
        current = _read(store, server_id, kind)
        seen = _judge(current, request, mine, replaced, before)
        if seen is _Seen.TAKEN:
            assert current is not None
            status = str(current.get("status") or "new")
            detail = f"flasher took it up as task {mine} ({status})"
            return Submission(Verdict.ACCEPTED, mine, restored, current, detail)
        if seen is _Seen.SUPERSEDED:
            return Submission(Verdict.SUPERSEDED, mine, restored, current, _superseded(current))
        if seen is _Seen.OVERWRITTEN:
            if restored >= MAX_RESTORES:
                by = current.get("taskID") if current else None
                detail = f"written {restored + 1} times, overwritten each time by a status write of task {by}"
                return Submission(Verdict.WAITING, mine, restored, current, detail)
            store.upsert_attribute(server_id, kind.namespace, request)
            restored += 1
            written = clock()
            continue
        now = clock()
        if now >= deadline or (not open_before and now - written >= quiet_for):
            return Submission(Verdict.WAITING, mine, restored, current, "written; flasher has not admitted it yet")


def _read(store: AttributeReader, server_id: str, kind: TaskKind) -> dict[str, Any] | None:
    try:
        data = store.get_attribute(server_id, kind.namespace).data
    except NotFoundError:
        return None
    return data if isinstance(data, dict) else {"data": data}


def _task_ids(server_id: str, kind: TaskKind, data: dict[str, Any] | None) -> frozenset[str]:
    """The ids a status write of what ``data`` holds would carry: its ``taskID``, or a new request's digest."""
    if data is None:
        return frozenset()
    ids = set()
    if isinstance(data.get("taskID"), str):
        ids.add(data["taskID"])
    status = data.get("status")
    if isinstance(status, str) and is_new(status):
        ids.add(request_task_id(server_id, kind, data))
    return frozenset(ids)


def _judge(
    current: dict[str, Any] | None,
    request: dict[str, Any],
    mine: str,
    replaced: frozenset[str],
    before: dict[str, Any] | None,
) -> _Seen:
    if current is None:
        return _Seen.SUPERSEDED
    if current == request:
        return _Seen.UNTOUCHED
    task_id = current.get("taskID")
    status = current.get("status")
    if task_id == mine and not (
        before is not None and before.get("taskID") == mine and current.get("createdAt") == before.get("createdAt")
    ):
        return _Seen.TAKEN
    if isinstance(status, str) and is_new(status):
        return _Seen.SUPERSEDED  # another writer's new request (flasher never writes a new status)
    if isinstance(task_id, str) and task_id in replaced:
        return _Seen.OVERWRITTEN  # a status write of the task this request replaced landed after it
    return _Seen.SUPERSEDED


def _superseded(current: dict[str, Any] | None) -> str:
    if current is None:
        return "the attribute was deleted after the request was written"
    task_id, status, requester = current.get("taskID"), current.get("status"), current.get("requester")
    who = f" by {requester}" if isinstance(requester, str) and requester else ""
    if isinstance(status, str) and is_new(status):
        return f"another request{who} replaced it before flasher took it up"
    return f"the attribute now holds task {task_id} ({status or 'new'}){who}, not this request"


class CancelStore(AttributeReader, Protocol):
    """The inventory calls :func:`keep_cancel` makes."""

    def replace_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any]) -> None: ...


def keep_cancel(
    store: CancelStore,
    server_id: str,
    kind: TaskKind,
    before: Mapping[str, Any],
    *,
    confirm_for: float = 3.0,
    interval: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """After ``"cancel": true`` was written over ``before`` (the attribute as read just before): read the attribute
    back for ``confirm_for`` seconds and write the cancel again whenever a status write of that task (its
    ``taskID``, or the digest of the new request it was) landed over it without the cancel: a writer that re-read
    the attribute just before the cancel landed. Returns how many times it was written again.

    Ends early once the task ended, or when the attribute holds another task or request, or was deleted: the cancel
    was for a task that is no longer there. Raises the inventory's errors but ``NotFoundError``.
    """
    ids = _task_ids(server_id, kind, dict(before))
    deadline = clock() + confirm_for
    again = 0
    while True:
        sleep(interval)
        current = _read(store, server_id, kind)
        if current is None:
            return again
        status = current.get("status")
        if isinstance(status, str) and (is_terminal(status) or is_new(status)):
            return again  # ended, or a new request (the cancel is still there, or another writer's request)
        if current.get("taskID") not in ids:
            return again
        if current.get("cancel") is not True:
            store.replace_attribute(server_id, kind.namespace, {**current, "cancel": True})
            again += 1
        if clock() >= deadline:
            return again
