"""Task events: what flasher tells listeners each time it writes a task attribute.

Every write of a task attribute that reaches the inventory (a worker's status and progress through the
:class:`~flasher.task.writer.StatusWriter`, admission's ``queued``/``failed``/``cancelled``, a pending final
status, a request written through ``flasher api``) is handed to an :class:`EventSink`. The service wires the sink
to a publisher (:mod:`flasher.events`: a capped Redis Stream that ``flasher api`` streams as Server-Sent Events);
tests may pass a list. The inventory stays the source of truth: an event only says "this attribute changed, this
is what it says now", and a listener that missed some re-reads the attribute.

:class:`TaskEvent` is what one write says, in a few keys (not the whole attribute, which may carry a plan of many
components): server, kind, ``taskID``, ``status``, the newest message line, ``updatedAt``, ``worker``, ``cancel``,
``rollout`` (when the attribute names one). :func:`task_event` builds it from the attribute's ``data``.

:class:`PublishingStore` wraps the inventory calls a writer makes (:class:`~flasher.task.writer.AttributeStore`)
and hands every successful ``replace_attribute`` to the sink, so the status writer and the pending writes publish
without a line of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Protocol

from loguru import logger

from flasher.inventory.models import Attributes
from flasher.task.model import TaskKind, is_new
from flasher.task.writer import AttributeStore

#: The attribute key that names the rollout a task belongs to (written by the rollout engine): the rollout's name,
#: or an object with its ``name`` (and ``wave``, ...).
ROLLOUT_KEY: Final = "rollout"


def rollout_of(data: Mapping[str, Any]) -> str | None:
    """The name of the rollout a task attribute's ``data`` belongs to, or ``None``."""
    rollout = data.get(ROLLOUT_KEY)
    if isinstance(rollout, Mapping):
        rollout = rollout.get("name", rollout.get("id"))
    return str(rollout) if isinstance(rollout, str | int) and not isinstance(rollout, bool) and rollout != "" else None


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One task attribute write, as listeners see it.

    ``server`` (uuid), ``kind`` (``install`` or ``server_control``), ``task_id`` (``None`` for a request not yet
    admitted), ``status`` (``requested`` for a new request, else the attribute's status; ``deleted`` when the
    attribute was removed), ``message`` (the newest message line, ``None`` without one), ``updated_at`` (RFC 3339
    as written, or ``None``), ``worker``, ``cancel`` (the operator asked to cancel), ``rollout`` (its id, or
    ``None``), ``source`` (who wrote: ``worker``, ``admission``, ``api``, ``pending``).
    """

    server: str
    kind: str
    task_id: str | None
    status: str
    message: str | None = None
    updated_at: str | None = None
    worker: str | None = None
    cancel: bool = False
    rollout: str | None = None
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object with the attribute's key names (``taskID``, ``updatedAt``)."""
        data = asdict(self)
        data["taskID"] = data.pop("task_id")
        data["updatedAt"] = data.pop("updated_at")
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskEvent:
        """The inverse of :meth:`to_json`; raises ``KeyError``/``TypeError`` for a record that is not one."""
        return cls(
            server=str(data["server"]),
            kind=str(data["kind"]),
            task_id=_text(data.get("taskID")),
            status=str(data["status"]),
            message=_text(data.get("message")),
            updated_at=_text(data.get("updatedAt")),
            worker=_text(data.get("worker")),
            cancel=data.get("cancel") is True,
            rollout=_text(data.get("rollout")),
            source=str(data.get("source") or ""),
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def task_event(server_id: str, kind: TaskKind, data: Mapping[str, Any] | None, *, source: str) -> TaskEvent:
    """The event of writing ``data`` (``None``: the attribute was deleted) into ``server_id``'s ``kind``
    attribute. Tolerates any content (an attribute that does not parse still makes an event)."""
    if data is None:
        return TaskEvent(server_id, kind.value, None, "deleted", source=source)
    status = data.get("status", "")
    status_text = ("requested" if is_new(status) else status) if isinstance(status, str) else "invalid"
    messages = data.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages and isinstance(messages[-1], str) else None
    return TaskEvent(
        server=server_id,
        kind=kind.value,
        task_id=_text(data.get("taskID")),
        status=status_text,
        message=last,
        updated_at=_text(data.get("updatedAt")),
        worker=_text(data.get("worker")),
        cancel=data.get("cancel") is True,
        rollout=rollout_of(data),
        source=source,
    )


def _lines(data: Mapping[str, Any] | None) -> list[str]:
    messages = data.get("messages") if data is not None else None
    return [m for m in messages if isinstance(m, str)] if isinstance(messages, list) else []


def new_lines(before: Sequence[str], after: Sequence[str]) -> list[str]:
    """The message lines of ``after`` that came after the newest line of ``before`` (all of them when ``before``
    is empty or its newest line is gone from ``after``)."""
    if before and before[-1] in after:
        last = len(after) - 1 - list(reversed(after)).index(before[-1])
        return list(after[last + 1 :])
    return list(after)


def task_events(
    server_id: str,
    kind: TaskKind,
    data: Mapping[str, Any] | None,
    *,
    source: str,
    before: Mapping[str, Any] | None = None,
) -> list[TaskEvent]:
    """The events of writing ``data`` over ``before`` (the attribute's data the writer last saw): one per message
    line added since (a writer may add several in one write: coalesced progress, a plan and ``queued``), in order.
    The last carries the write's state; the earlier ones the status ``before`` had (the task was in it when those
    lines were written), so a listener filtering on a status sees it change once. Just the write's event when no
    line was added, or when ``before`` is not known (``None``)."""
    last = task_event(server_id, kind, data, source=source)
    lines = new_lines(_lines(before), _lines(data))
    earlier = (
        task_event(server_id, kind, before, source=source).status if before and "status" in before else last.status
    )
    return [replace(last, message=line, status=earlier) for line in lines[:-1]] + [last]


class EventSink(Protocol):
    """Where task events go. :meth:`publish` must not raise and must return quickly (it runs in the writer's
    thread, after the inventory took the write): a sink that cannot deliver drops the event and counts it."""

    def publish(self, event: TaskEvent) -> None: ...


class NoEvents:
    """The sink of a replica without events: drops everything."""

    def publish(self, event: TaskEvent) -> None:
        """Drop ``event``."""


class PublishingStore:
    """An :class:`~flasher.task.writer.AttributeStore` that publishes each write of a task attribute.

    Writes that change nothing a listener sees (a heartbeat moves only ``updatedAt``) are not published: the
    last event published per server and kind is remembered (a bounded map) and an event equal to it but for
    ``updatedAt`` is skipped. ``source`` names the writer in the events. Thread-safe.
    """

    _MAX_REMEMBERED = 4096

    def __init__(self, inner: AttributeStore, sink: EventSink, *, source: str = "worker") -> None:
        self._inner = inner
        self._sink = sink
        self._source = source
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], TaskEvent] = {}
        self._lines: dict[tuple[str, str], list[str]] = {}

    def get_attribute(self, uuid: str, namespace: str) -> Attributes:
        """The inner store's ``get_attribute``."""
        return self._inner.get_attribute(uuid, namespace)

    def replace_attribute(self, uuid: str, namespace: str, data: dict[str, Any], *, once: bool = False) -> None:
        """Write through the inner store (``once`` as it takes it), then publish the write (unless it is only a
        heartbeat)."""
        self._inner.replace_attribute(uuid, namespace, data, once=once)
        kind = _kind_of(namespace)
        if kind is None:
            return
        key = (uuid, kind.value)
        with self._lock:
            seen = self._lines.get(key)
            previous = self._last.get(key)
            if len(self._lines) >= self._MAX_REMEMBERED and key not in self._lines:
                self._lines.pop(next(iter(self._lines)))
            self._lines[key] = _lines(data)
        before: dict[str, Any] | None = None
        if seen is not None:
            before = {"messages": seen}
            if previous is not None and previous.status not in ("requested", "invalid", "deleted"):
                before["status"] = previous.status
        for event in task_events(uuid, kind, data, source=self._source, before=before):
            if self.changed(event):
                publish_safely(self._sink, event)

    def changed(self, event: TaskEvent) -> bool:
        """Whether ``event`` differs, but for ``updatedAt``, from the last one published for its server and kind
        (and remember it)."""
        key = (event.server, event.kind)
        with self._lock:
            last = self._last.get(key)
            if last is not None and _same_but_time(last, event):
                return False
            if len(self._last) >= self._MAX_REMEMBERED and key not in self._last:
                self._last.pop(next(iter(self._last)))
            self._last[key] = event
        return True


def _same_but_time(a: TaskEvent, b: TaskEvent) -> bool:
    return (a.task_id, a.status, a.message, a.worker, a.cancel, a.rollout) == (
        b.task_id,
        b.status,
        b.message,
        b.worker,
        b.cancel,
        b.rollout,
    )


def _kind_of(namespace: str) -> TaskKind | None:
    return next((kind for kind in TaskKind if kind.namespace == namespace), None)


def publish_safely(sink: EventSink, event: TaskEvent) -> None:
    """``sink.publish(event)``, logging instead of raising (a sink must not break a status write)."""
    try:
        sink.publish(event)
    except Exception as exc:  # the write reached the inventory; the event is only a notification
        logger.warning("task event for server {} not published: {}: {}", event.server, type(exc).__name__, exc)
