"""What one task leaves for the next on the same server and kind: the successor it was replaced by, and how it ended.

A new request written while a task runs replaces it (the task attribute holds one task). Two things must survive
that hand-over, and the attribute cannot carry them while both tasks are alive, so Redis does:

* **The successor.** Admission acknowledges a replacing request at once (``queued`` with its ``taskID``) while
  the task it replaces may still be writing its status: a status write that re-read the attribute just before
  the acknowledgement lands over it. :meth:`Handover.put_successor` keeps the acknowledgement, so the next poll
  can see that the attribute went back to the replaced task and write the acknowledgement again
  (:meth:`flasher.service.admission.Admission.keep_successors`).
* **The end of the replaced task.** Its worker stops at a safe point without writing (the attribute is the new
  request's); :meth:`Handover.leave_note` records how far it got, and the successor's worker writes that into
  the new request's messages when it claims it (:meth:`Handover.take_notes`), so the operator reads what the
  replaced task did to the server.

Successors live in the hash ``{p}:successors`` (field ``<server>|<kind>``), end notes in a list per server and
kind (``{p}:ended:<server>|<kind>``); each value is JSON with ``at`` (epoch seconds), and entries older than
:data:`KEEP_SECONDS` are ignored and removed. Losing Redis loses only these notes: the inventory still holds the
request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from flasher.queue import connection

#: Seconds a successor or an end note is kept at most (a day: far longer than a poll, shorter than forever).
KEEP_SECONDS = 86_400.0


@dataclass(frozen=True, slots=True)
class Successor:
    """The request ``task_id`` that replaced task ``replaces`` on ``server_id``'s ``kind`` attribute, with the
    attribute ``data`` admission wrote to acknowledge it, ``at`` epoch seconds."""

    server_id: str
    kind: str
    task_id: str
    replaces: str
    data: dict[str, Any]
    at: float


@dataclass(frozen=True, slots=True)
class EndNote:
    """How task ``task_id`` (replaced by another request) ended on ``server_id``'s ``kind`` attribute: ``text`` is
    one line for operators (``stopped at a safe point: 1 installed, 2 not installed``); ``at`` epoch seconds."""

    server_id: str
    kind: str
    task_id: str
    text: str
    at: float


@dataclass(frozen=True, slots=True)
class SuccessorPut:
    """What :meth:`Handover.put_successor` did on ``server_id``'s ``kind``: the ``value`` it put and the ``previous``
    value it replaced (``None``: there was none)."""

    server_id: str
    kind: str
    value: str
    previous: str | None


def _field(server_id: str, kind: str) -> str:
    return f"{server_id}|{kind}"


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class Handover(connection.RedisPart):
    """Successors and end notes in Redis (``client`` and ``keys`` of the queue; ``retry_deadline`` seconds of
    retries on connection problems, then :class:`~flasher.queue.errors.QueueUnavailableError`)."""

    # -- successors -----------------------------------------------------------------------------------------

    def put_successor(
        self, server_id: str, kind: str, *, task_id: str, replaces: str, data: dict[str, Any]
    ) -> SuccessorPut:
        """Keep ``data``, the acknowledgement of request ``task_id`` that replaces task ``replaces``; returns what was
        put and what it replaced, for :meth:`withdraw_successor` when the acknowledgement cannot be written."""
        value = json.dumps({"task_id": task_id, "replaces": replaces, "data": data, "at": self._clock()})
        field = _field(server_id, kind)

        def put() -> Any:
            pipe = self.client.pipeline(transaction=True)
            pipe.hget(self.keys.successors, field)
            pipe.hset(self.keys.successors, field, value)
            return pipe.execute()[0]

        previous = self._call("put_successor", put)
        return SuccessorPut(server_id, kind, value, _text(previous) if previous is not None else None)

    def withdraw_successor(self, put: SuccessorPut) -> None:
        """Undo :meth:`put_successor` whose acknowledgement was not written: the successor kept before it comes back
        (or none), unless another successor was put meanwhile. A replica admitting from a stale listing must never
        take away the successor another replica kept (issue 12: the acknowledgement a late status write of the
        replaced task then lands over would never be written back, and the request is lost without a word)."""
        field = _field(put.server_id, put.kind)

        def withdraw() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.keys.successors)
                    raw = pipe.hget(self.keys.successors, field)
                    if raw is None or _text(raw) != put.value:
                        return  # another successor was put since: it stands
                    pipe.multi()
                    if put.previous is None:
                        pipe.hdel(self.keys.successors, field)
                    else:
                        pipe.hset(self.keys.successors, field, put.previous)
                    pipe.execute()
                except redis.WatchError:  # changed meanwhile: what was put since stands
                    pass

        self._call("withdraw_successor", withdraw)

    def is_kept(self, successor: Successor) -> bool:
        """True while ``successor`` (as read from :meth:`successors`) is still the one kept for its server and kind:
        the same request, put at the same time (a later admission puts another)."""
        current = self.successor(successor.server_id, successor.kind)
        return current is not None and current.task_id == successor.task_id and current.at == successor.at

    def successor(self, server_id: str, kind: str) -> Successor | None:
        """The successor kept for ``server_id``'s ``kind`` attribute, or ``None``."""
        raw = self._call("successor", lambda: self.client.hget(self.keys.successors, _field(server_id, kind)))
        if raw is None:
            return None
        record = json.loads(raw)
        if self._clock() - float(record["at"]) > KEEP_SECONDS:
            return None
        return Successor(server_id, kind, record["task_id"], record["replaces"], record["data"], float(record["at"]))

    def successors(self) -> list[Successor]:
        """Every successor kept (removing those older than :data:`KEEP_SECONDS`)."""
        raw: dict[Any, Any] = self._call("successors", lambda: self.client.hgetall(self.keys.successors))
        found, stale = [], []
        for field, value in raw.items():
            name = field.decode() if isinstance(field, bytes) else str(field)
            server_id, _, kind = name.partition("|")
            record = json.loads(value)
            if self._clock() - float(record["at"]) > KEEP_SECONDS:
                stale.append(name)
                continue
            found.append(
                Successor(server_id, kind, record["task_id"], record["replaces"], record["data"], float(record["at"]))
            )
        if stale:
            self._call("successors", lambda: self.client.hdel(self.keys.successors, *stale))
        return found

    def forget_successor(self, successor: Successor) -> None:
        """Remove ``successor``, unless another successor of the same server and kind replaced it meanwhile."""
        field = _field(successor.server_id, successor.kind)

        def forget() -> None:
            with self.client.pipeline(transaction=True) as pipe:
                try:
                    pipe.watch(self.keys.successors)
                    raw = pipe.hget(self.keys.successors, field)
                    if raw is not None and json.loads(raw).get("task_id") == successor.task_id:
                        pipe.multi()
                        pipe.hdel(self.keys.successors, field)
                        pipe.execute()
                except redis.WatchError:  # changed meanwhile: the next sweep looks again
                    pass

        self._call("forget_successor", forget)

    # -- end notes ------------------------------------------------------------------------------------------

    def leave_note(self, server_id: str, kind: str, *, task_id: str, text: str) -> None:
        """Record how task ``task_id``, replaced by another request, ended (``text``: one line). Notes of the same
        server and kind add up until the next claim takes them (a request replaced before it started, then the
        one that replaced it, ...)."""
        value = json.dumps({"task_id": task_id, "text": text, "at": self._clock()})
        key = self.keys.ended_notes(server_id, kind)

        def leave() -> None:
            pipe = self.client.pipeline(transaction=True)
            pipe.rpush(key, value)
            pipe.expire(key, int(KEEP_SECONDS))
            pipe.execute()

        self._call("leave_note", leave)

    def take_notes(self, server_id: str, kind: str) -> list[EndNote]:
        """The end notes of the server's replaced ``kind`` tasks since the last claim, oldest first, removed from
        Redis (those older than :data:`KEEP_SECONDS` are dropped)."""
        key = self.keys.ended_notes(server_id, kind)

        def take() -> Any:
            pipe = self.client.pipeline(transaction=True)
            pipe.lrange(key, 0, -1)
            pipe.delete(key)
            return pipe.execute()[0]

        notes = []
        for raw in self._call("take_notes", take) or []:
            record = json.loads(raw)
            if self._clock() - float(record["at"]) <= KEEP_SECONDS:
                notes.append(EndNote(server_id, kind, record["task_id"], record["text"], float(record["at"])))
        return notes
