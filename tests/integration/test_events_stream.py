"""The task event stream in a real Redis: publish, resume, trimming, flushes, and the hub's fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
import redis.asyncio as aioredis

from flasher.events import EventCursor, EventPublisher, EventReader, Reset, StreamEntry
from flasher.events.hub import EventHub, follow
from flasher.task.events import TaskEvent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def event(n: int, server: str = "s1") -> TaskEvent:
    return TaskEvent(server=server, kind="install", task_id="t-1", status="active", message=f"step {n}")


async def take(
    items: AsyncIterator[StreamEntry | Reset], count: int, timeout: float = 10.0
) -> list[StreamEntry | Reset]:
    got: list[StreamEntry | Reset] = []

    async def run() -> None:
        async for item in items:
            got.append(item)
            if len(got) >= count:
                return

    await asyncio.wait_for(run(), timeout)
    return got


async def accept_all(_: StreamEntry) -> bool:
    return True


def test_publish_then_resume_from_a_cursor(redis_url: str) -> None:
    publisher = EventPublisher(redis.Redis.from_url(redis_url), maxlen=1000)
    cursors = [publisher.append(event(n)) for n in range(5)]

    async def check() -> None:
        reader = EventReader(aioredis.Redis.from_url(redis_url))
        assert await reader.resume(cursors[1]) == cursors[1]
        after = await reader.after(cursors[1])
        assert [e.event.message for e in after] == ["step 2", "step 3", "step 4"]
        assert (await reader.head()) == cursors[-1]
        assert len({c.epoch for c in cursors}) == 1
        await reader.client.aclose()

    asyncio.run(check())


def test_a_cursor_older_than_the_stream_keeps_gets_a_reset(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    publisher = EventPublisher(client, maxlen=100)
    first = publisher.append(event(0))
    for n in range(1, 1000):
        publisher.append(event(n))
    assert client.xlen(publisher.keys.stream) < 400  # MAXLEN ~ trims whole nodes: about 100 kept

    async def check() -> None:
        reader = EventReader(aioredis.Redis.from_url(redis_url))
        outcome = await reader.resume(first)
        assert isinstance(outcome, Reset) and "trimmed" in outcome.reason
        assert outcome.cursor == await reader.head()
        await reader.client.aclose()

    asyncio.run(check())


def test_a_flushed_redis_is_a_new_epoch_and_old_cursors_get_a_reset(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    publisher = EventPublisher(client)
    old = publisher.append(event(0))
    client.flushall()
    new = publisher.append(event(1))

    async def check() -> None:
        reader = EventReader(aioredis.Redis.from_url(redis_url))
        outcome = await reader.resume(old)
        assert new.epoch != old.epoch
        assert isinstance(outcome, Reset) and "Redis lost its data" in outcome.reason
        future = await reader.resume(EventCursor(new.epoch, "99999999999999-0"))
        assert isinstance(future, Reset)
        await reader.client.aclose()

    asyncio.run(check())


def test_the_hub_fans_out_live_entries_and_catches_a_resuming_listener_up(redis_url: str) -> None:
    publisher = EventPublisher(redis.Redis.from_url(redis_url))
    early = [publisher.append(event(n)) for n in range(3)]

    async def check() -> None:
        client = aioredis.Redis.from_url(redis_url)
        hub = EventHub(EventReader(client), block=0.2)
        task = asyncio.create_task(hub.run())
        await hub.started()
        live = follow(hub, None, accept_all)
        resumed = follow(hub, early[0], accept_all)
        first_live = asyncio.create_task(take(live, 2))
        first_resumed = asyncio.create_task(take(resumed, 4))
        await asyncio.sleep(0.3)
        for n in range(3, 5):
            await asyncio.to_thread(publisher.append, event(n))
        got_live, got_resumed = await first_live, await first_resumed
        assert [e.event.message for e in got_live if isinstance(e, StreamEntry)] == ["step 3", "step 4"]
        assert [e.event.message for e in got_resumed if isinstance(e, StreamEntry)] == [
            "step 1",
            "step 2",
            "step 3",
            "step 4",
        ]
        task.cancel()
        await client.aclose()

    asyncio.run(check())


def test_the_hub_tells_listeners_when_redis_is_flushed_under_them(redis_url: str) -> None:
    sync = redis.Redis.from_url(redis_url)
    publisher = EventPublisher(sync)
    publisher.append(event(0))

    async def check() -> None:
        client = aioredis.Redis.from_url(redis_url)
        hub = EventHub(EventReader(client), block=0.2)
        task = asyncio.create_task(hub.run())
        await hub.started()
        listener = asyncio.create_task(take(follow(hub, None, accept_all), 2))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(sync.flushall)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(publisher.append, event(1))
        got = await listener
        assert isinstance(got[0], Reset)
        assert isinstance(got[1], StreamEntry) and got[1].event.message == "step 1"
        task.cancel()
        await client.aclose()

    asyncio.run(check())
