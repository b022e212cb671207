"""Fan-out of the event stream to the listeners of one ``flasher api`` process.

One :class:`EventHub` task reads the stream (``XREAD BLOCK``) and hands each entry to every subscriber's bounded
queue, so a process serves hundreds of listeners with one Redis connection. A listener resuming from a cursor
first catches up with ``XRANGE`` (:func:`follow`), then takes the live entries, skipping those it already had;
one too slow to keep up (its queue filled) catches up the same way from where it was. When the epoch changes
under the hub (Redis lost its data), every subscriber gets a :class:`~flasher.events.stream.Reset`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final

import redis
from loguru import logger

from flasher.events.stream import EventCursor, EventReader, Reset, StreamEntry

Item = StreamEntry | Reset

#: Entries a subscriber may have waiting before it is switched to catching up.
QUEUE_SIZE = 1000
#: Entries the hub keeps in memory for listeners that catch up (resuming, or fallen behind).
RECENT_SIZE = 20_000


class _Overflow:
    """Put in a subscription's queue once it is full: the listener catches up from Redis instead."""


OVERFLOW: Final = _Overflow()


@dataclass(eq=False)
class Subscription:
    """One listener's queue of live items. Past :data:`QUEUE_SIZE` waiting items the hub stops handing it items
    and puts :data:`OVERFLOW` (``overflowed`` is then true) so that it catches up from Redis."""

    queue: asyncio.Queue[Item | _Overflow] = field(default_factory=asyncio.Queue)
    overflowed: bool = False

    def offer(self, item: Item) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= QUEUE_SIZE:
            self.overflowed = True
            self.queue.put_nowait(OVERFLOW)
            return
        self.queue.put_nowait(item)

    def restart(self) -> None:
        """Empty the queue and take live items again (before catching up from Redis)."""
        self.queue = asyncio.Queue()
        self.overflowed = False


class EventHub:
    """Reads the stream once for every subscriber of this process. Run :meth:`run` as a task; cancel it to stop.

    ``block``: seconds each ``XREAD`` waits (also how often the epoch is checked while nothing happens).
    """

    def __init__(self, reader: EventReader, *, block: float = 1.0) -> None:
        self.reader = reader
        self.block = block
        self._subscribers: set[Subscription] = set()
        self._started = asyncio.Event()
        self._recent: deque[StreamEntry] = deque(maxlen=RECENT_SIZE)

    @property
    def subscribers(self) -> int:
        """How many listeners are subscribed."""
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """A new subscription, receiving every item from now on (until :meth:`unsubscribe`)."""
        subscription = Subscription()
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop handing items to ``subscription``."""
        self._subscribers.discard(subscription)

    async def started(self) -> None:
        """Wait until the hub has found the stream's head (subscribers from then on miss nothing)."""
        await self._started.wait()

    def _broadcast(self, item: Item) -> None:
        if isinstance(item, Reset):
            self._recent.clear()
        else:
            self._recent.append(item)
        for subscription in list(self._subscribers):
            subscription.offer(item)

    def since(self, cursor: EventCursor) -> list[StreamEntry] | None:
        """The entries after ``cursor`` from the hub's memory (entries are numbered without gaps in an epoch);
        ``None`` when the memory does not reach back that far (the caller reads Redis)."""
        recent = self._recent
        if not recent or recent[0].cursor.epoch != cursor.epoch:
            return None
        first = recent[0].cursor.number
        if cursor.number + 1 < first:
            return None
        start = cursor.number + 1 - first
        return list(itertools.islice(recent, start, None)) if start < len(recent) else []

    async def run(self) -> None:
        """Read and hand out entries until cancelled; Redis errors are logged and retried with backoff."""
        cursor: EventCursor | None = None
        delay = 0.1
        while True:
            try:
                if cursor is None:
                    cursor = await self.reader.head()
                    self._started.set()
                entries = await self.reader.wait(cursor, block=self.block)
                epoch = await self.reader.epoch() if not entries else entries[-1].cursor.epoch
                if epoch != cursor.epoch:
                    head = EventCursor(epoch, "0-0", 0)
                    logger.warning("event stream epoch changed ({} → {}): Redis lost its data", cursor.epoch, epoch)
                    self._broadcast(Reset("the event stream was reset (Redis lost its data): re-read the tasks", head))
                    cursor = head
                    continue
                for entry in entries:
                    self._broadcast(entry)
                    cursor = entry.cursor
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as exc:
                logger.warning(
                    "event hub: Redis unavailable ({}: {}); retrying in {:.1f} s", type(exc).__name__, exc, delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


Accept = Callable[[StreamEntry], Awaitable[bool]]


async def _after(hub: EventHub, cursor: EventCursor) -> list[StreamEntry]:
    remembered = hub.since(cursor)
    if remembered is not None:
        return remembered
    return await hub.reader.after(cursor)


async def follow(hub: EventHub, start: EventCursor | None, accept: Accept) -> AsyncIterator[Item]:
    """The items a listener that saw ``start`` (``None``: a new listener) gets, in stream order, until closed.

    First a :class:`Reset` when the entries after ``start`` are gone, else the catch-up from ``start``; then the
    live entries. ``accept(entry)`` filters entries (resets always pass). Each entry is given at most once.
    """
    await hub.started()
    subscription = hub.subscribe()
    try:
        position = await hub.reader.resume(start)
        while True:
            if isinstance(position, Reset):
                yield position
                position = position.cursor
            cursor = position
            while entries := await _after(hub, cursor):  # catch up: from the hub's memory, else from Redis
                for entry in entries:
                    if entry.cursor.epoch != cursor.epoch:
                        break  # published after a flush: the hub announces it with a reset
                    cursor = entry.cursor
                    if await accept(entry):
                        yield entry
                else:
                    continue
                break
            while True:  # then live
                item = await subscription.queue.get()
                if isinstance(item, _Overflow):
                    break
                if isinstance(item, Reset):
                    yield item
                    cursor = item.cursor
                    continue
                if item.cursor.epoch == cursor.epoch and item.cursor.key <= cursor.key:
                    continue  # already given during the catch-up
                cursor = item.cursor
                if await accept(item):
                    yield item
            logger.info("an event listener fell behind; catching up from {}", cursor)
            subscription.restart()
            position = await hub.reader.resume(cursor)
    finally:
        hub.unsubscribe(subscription)
