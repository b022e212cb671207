"""The task event stream in Redis: one capped Redis Stream, publish and read, aware of Redis losing its data.

Keys (same hash tag as the queue's, so they live in its Redis Cluster slot):

=========================  ======  ===================================================================
key                        type    meaning
=========================  ======  ===================================================================
``{p}:events``             stream  one entry per :class:`~flasher.task.events.TaskEvent`: fields ``e``
                                   (the epoch it was published in) and ``d`` (the event's JSON);
                                   capped at ``maxlen`` entries (``XADD MAXLEN ~``: trimmed a node at a
                                   time, so a little more may be kept)
``{p}:events:epoch``       string  random id of this data set, made by the first publish or read that
                                   finds none (after Redis was flushed or lost its data)
``{p}:events:seq``         string  how many events were published in this epoch; each entry carries its
                                   number in field ``n``
=========================  ======  ===================================================================

A listener's position is an :class:`EventCursor`, ``<epoch>:<stream id>:<n>`` (the SSE ``id`` of
``flasher api``). Resuming from a cursor (:meth:`EventReader.resume`) gives the entries after it, or a
:class:`Reset` when they cannot be given: the epoch changed (Redis lost everything), entries after the cursor
were trimmed (the oldest entry kept is numbered past the cursor's ``n + 1``: trimming removes the oldest entries
and leaves no other trace, ``max-deleted-entry-id`` counts only ``XDEL``), or the cursor is not one this stream
made. A listener told to reset re-reads the tasks from the inventory (the source of
truth) and goes on from the cursor the reset carries.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any, Final

import redis
import redis.asyncio as aioredis
from loguru import logger
from redis.cluster import RedisCluster

from flasher import metrics
from flasher.task.events import TaskEvent

#: Entries the stream keeps by default (about 300 bytes each).
DEFAULT_MAXLEN: Final = 100_000

_PUBLISH = """
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  redis.call('SET', KEYS[2], ARGV[1])
  epoch = ARGV[1]
end
local n = redis.call('INCR', KEYS[3])
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', epoch, 'n', n, 'd', ARGV[3])
return {epoch, id, n}
"""

_EPOCH = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1])
  epoch = ARGV[1]
end
return epoch
"""


class EventKeys:
    """The stream's key names for the Redis key prefix ``prefix`` (the queue's ``redis.key_prefix``)."""

    def __init__(self, prefix: str = "flasher") -> None:
        tag = "{" + prefix + "}:"
        self.stream = tag + "events"
        self.epoch = tag + "events:epoch"
        self.seq = tag + "events:seq"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def parse_stream_id(value: str) -> tuple[int, int]:
    """``"1700000000000-3"`` → ``(1700000000000, 3)``; raises ``ValueError`` for anything else."""
    ms, sep, seq = value.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit():
        raise ValueError(f"not a stream id: {value!r}")
    return int(ms), int(seq)


@dataclass(frozen=True, slots=True)
class EventCursor:
    """A position in the stream: the ``epoch`` of the data set, the ``stream_id`` of the last entry seen and its
    ``number`` in the epoch (0: before the first)."""

    epoch: str
    stream_id: str
    number: int = 0

    def __str__(self) -> str:
        return f"{self.epoch}:{self.stream_id}:{self.number}"

    @classmethod
    def parse(cls, text: str) -> EventCursor:
        """The cursor written by :meth:`__str__`; raises ``ValueError`` naming the text otherwise."""
        parts = text.strip().split(":")
        if len(parts) != 3 or not parts[0] or not parts[2].isdigit():
            raise ValueError(f"not an event id: {text!r} (form: <epoch>:<ms>-<seq>:<n>)")
        parse_stream_id(parts[1])
        return cls(parts[0], parts[1], int(parts[2]))

    @property
    def key(self) -> tuple[int, int]:
        """The stream id as a sortable pair."""
        return parse_stream_id(self.stream_id)


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry read: its ``cursor`` and the ``event`` it carries."""

    cursor: EventCursor
    event: TaskEvent


@dataclass(frozen=True, slots=True)
class Reset:
    """The entries after a listener's cursor are gone (``reason`` says why); go on from ``cursor``."""

    reason: str
    cursor: EventCursor


def _field(fields: dict[Any, Any], name: str) -> str:
    return _text(fields.get(name.encode()) or fields.get(name) or b"")


def _number(fields: dict[Any, Any]) -> int:
    text = _field(fields, "n")
    return int(text) if text.isdigit() else 0


def _entry(stream_id: bytes | str, fields: dict[Any, Any]) -> StreamEntry | None:
    try:
        event = TaskEvent.from_json(json.loads(_field(fields, "d")))
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("skipping a malformed event stream entry {}: {}", _text(stream_id), exc)
        return None
    return StreamEntry(EventCursor(_field(fields, "e"), _text(stream_id), _number(fields)), event)


class EventPublisher:
    """Publishes task events with a synchronous redis-py ``client`` (the queue's); an :class:`EventSink`.

    One ``XADD`` (in a script that makes the epoch when there is none) per event, no retries: a Redis that does
    not answer drops the event (counted in ``flasher_events_dropped_total``, logged) rather than delay the status
    write that made it. Thread-safe.
    """

    def __init__(
        self, client: redis.Redis | RedisCluster, *, key_prefix: str = "flasher", maxlen: int = DEFAULT_MAXLEN
    ) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen: must be at least 1 (got {maxlen!r})")
        self.keys = EventKeys(key_prefix)
        self.maxlen = maxlen
        self._client = client
        self._script = client.register_script(_PUBLISH)
        self._epoch_script = client.register_script(_EPOCH)

    def publish(self, event: TaskEvent) -> None:
        """Append ``event`` to the stream (never raises)."""
        try:
            self.append(event)
        except redis.RedisError as exc:
            metrics.EVENTS_DROPPED.inc()
            logger.warning("task event for server {} dropped: {}: {}", event.server, type(exc).__name__, exc)

    def head(self) -> EventCursor:
        """The cursor of the newest entry (``<epoch>:0-0:0`` when the stream is empty). A page that reads the
        head before it reads the inventory and then follows the stream from it misses nothing. Raises redis-py's
        errors."""
        epoch = _text(self._epoch_script(keys=[self.keys.epoch], args=[secrets.token_hex(8)]))
        newest: Any = self._client.xrevrange(self.keys.stream, "+", "-", count=1)
        if not newest:
            return EventCursor(epoch, "0-0", 0)
        return EventCursor(epoch, _text(newest[0][0]), _number(newest[0][1]))

    def append(self, event: TaskEvent) -> EventCursor:
        """Append ``event``; returns its cursor. Raises redis-py's errors (for callers that want to know)."""
        body = json.dumps(event.to_json(), separators=(",", ":"))
        epoch, stream_id, number = self._script(
            keys=[self.keys.stream, self.keys.epoch, self.keys.seq], args=[secrets.token_hex(8), self.maxlen, body]
        )
        metrics.EVENTS_PUBLISHED.inc()
        return EventCursor(_text(epoch), _text(stream_id), int(number))


class EventReader:
    """Reads the stream with an asyncio redis-py ``client`` (for ``flasher api``'s event stream)."""

    def __init__(self, client: aioredis.Redis, *, key_prefix: str = "flasher") -> None:
        self.client = client
        self.keys = EventKeys(key_prefix)
        self._epoch_script = client.register_script(_EPOCH)

    async def epoch(self) -> str:
        """The current epoch (made now when Redis has none)."""
        return _text(await self._epoch_script(keys=[self.keys.epoch], args=[secrets.token_hex(8)]))

    async def head(self) -> EventCursor:
        """The cursor of the newest entry (``<epoch>:0-0`` when the stream is empty): where a new listener starts."""
        epoch = await self.epoch()
        newest: Any = await self.client.xrevrange(self.keys.stream, "+", "-", count=1)
        if not newest:
            return EventCursor(epoch, "0-0", 0)
        return EventCursor(epoch, _text(newest[0][0]), _number(newest[0][1]))

    async def resume(self, cursor: EventCursor | None) -> EventCursor | Reset:
        """Where a listener that saw ``cursor`` goes on: ``cursor`` itself when every entry after it is still
        there, else a :class:`Reset` (with the stream's head as its cursor). ``None``: a new listener, which starts
        at the head."""
        head = await self.head()
        if cursor is None:
            return head
        if cursor.epoch != head.epoch:
            return Reset("the event stream was reset (Redis lost its data): re-read the tasks", head)
        if cursor.key > head.key or cursor.number > head.number:
            return Reset("the event id is not one this stream gave: re-read the tasks", head)
        oldest: Any = await self.client.xrange(self.keys.stream, "-", "+", count=1)
        if oldest and _number(oldest[0][1]) > cursor.number + 1:
            return Reset("events after this id were trimmed from the stream: re-read the tasks", head)
        return cursor

    async def after(self, cursor: EventCursor, *, count: int = 500) -> list[StreamEntry]:
        """Up to ``count`` entries after ``cursor`` (of any epoch: the caller compares)."""
        rows: Any = await self.client.xrange(self.keys.stream, f"({cursor.stream_id}", "+", count=count)
        return [entry for stream_id, fields in rows if (entry := _entry(stream_id, fields)) is not None]

    async def wait(self, cursor: EventCursor, *, block: float, count: int = 500) -> list[StreamEntry]:
        """Entries after ``cursor``, waiting up to ``block`` seconds for the first (``XREAD BLOCK``)."""
        reply: Any = await self.client.xread({self.keys.stream: cursor.stream_id}, count=count, block=int(block * 1000))
        entries: list[StreamEntry] = []
        for _key, rows in reply or []:
            entries.extend(entry for stream_id, fields in rows if (entry := _entry(stream_id, fields)) is not None)
        return entries
