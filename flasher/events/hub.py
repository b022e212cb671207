"""Fan-out of the event stream to the listeners of one ``flasher api`` process.

One :class:`EventHub` task reads the stream (``XREAD BLOCK``) and hands each entry to every subscriber's bounded
queue, so a process serves hundreds of listeners with one Redis connection. A listener resuming from a cursor
first catches up with ``XRANGE`` (:func:`follow`), then takes the live entries, skipping those it already had;
one too slow to keep up (its queue filled) catches up the same way from where it was. When the epoch changes
under the hub (Redis lost its data), every subscriber gets a :class:`~flasher.events.stream.Reset`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import redis
from loguru import logger

from flasher.events.stream import EventCursor, EventReader, Reset, StreamEntry

Item = StreamEntry | Reset

#: Entries a subscriber may have waiting before it is switched to catching up from Redis.
QUEUE_SIZE = 1000


@dataclass(eq=False)
class Subscription:
    """One listener's queue of live items. ``overflowed`` is set when the hub could not hand it an item."""

    queue: asyncio.Queue[Item] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False

    def offer(self, item: Item) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True

    def restart(self) -> None:
        """Empty the queue and take live items again (before catching up from Redis)."""
        self.queue = asyncio.Queue(QUEUE_SIZE)
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
        for subscription in list(self._subscribers):
            subscription.offer(item)

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
            while entries := await hub.reader.after(cursor):  # catch up with what Redis holds now
                for entry in entries:
                    if entry.cursor.epoch != cursor.epoch:
                        break  # published after a flush: the hub announces it with a reset
                    cursor = entry.cursor
                    if await accept(entry):
                        yield entry
                else:
                    continue
                break
            while not subscription.overflowed:  # then live
                try:
                    item = await asyncio.wait_for(subscription.queue.get(), timeout=5.0)
                except TimeoutError:
                    continue
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
