"""A rollout's Redis state on a real Redis: caps reserved all or nothing and exactly under concurrency, releases,
the rebuild marker (nothing is reserved after Redis lost its data until the state is rebuilt), failures, the lock."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import redis

from flasher.queue.models import as_text
from flasher.rollout.members import FirmwareKey
from flasher.rollout.slots import Reservation, RolloutSlots, Slot, slot_label

pytestmark = pytest.mark.integration

BIOS = FirmwareKey("bios", "2.0", "dell", "r6515")


@pytest.fixture
def slots(redis_url: str) -> RolloutSlots:
    state = RolloutSlots(redis.Redis.from_url(redis_url), key_prefix="flasher", retry_deadline=1)
    state.rebuild("r", [])
    return state


def member_slots(state: RolloutSlots, rack: str, max_active: int | None = 4, per_rack: int = 2) -> list[Slot]:
    return [
        Slot(state.key("r", "slots"), max_active, "max-active"),
        Slot(state.key("r", "cap", f"rack={rack}"), per_rack, f"rack={rack}"),
    ]


def test_reserve_is_all_or_nothing_and_names_the_full_cap(slots: RolloutSlots) -> None:
    assert slots.reserve("r", "s1", member_slots(slots, "r1")).outcome is Reservation.OK
    assert slots.reserve("r", "s1", member_slots(slots, "r1")).outcome is Reservation.HELD
    assert slots.reserve("r", "s2", member_slots(slots, "r1")).outcome is Reservation.OK
    third = member_slots(slots, "r1")
    full = slots.reserve("r", "s3", third)
    assert (full.outcome, full.slot, full.count) == (Reservation.FULL, 1, 2)
    assert slot_label(third, full) == "cap rack=r1 2/2 active"
    assert slots.holders("r") == ["s1", "s2"]
    client = slots.client
    assert client.scard(slots.key("r", "slots")) == 2  # s3 took nothing, not even the rollout-wide place
    assert slots.release("r", "s1") and not slots.release("r", "s1")
    assert slots.reserve("r", "s3", third).outcome is Reservation.OK
    assert sorted(as_text(m) for m in client.smembers(slots.key("r", "cap", "rack=r1"))) == ["s2", "s3"]


def test_replicas_racing_never_pass_a_cap(slots: RolloutSlots, redis_url: str) -> None:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(8)

    def race(worker: int) -> None:
        mine = RolloutSlots(redis.Redis.from_url(redis_url), key_prefix="flasher")
        start.wait()
        for index in range(25):
            rack = f"r{index % 3}"
            result = mine.reserve("r", f"w{worker}-s{index}", member_slots(mine, rack, max_active=5, per_rack=2))
            with lock:
                outcomes[result.outcome.value] += 1

    threads = [threading.Thread(target=race, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes["ok"] == 5
    client = slots.client
    assert client.scard(slots.key("r", "slots")) == 5 == len(slots.holders("r"))
    for rack in ("r0", "r1", "r2"):
        assert client.scard(slots.key("r", "cap", f"rack={rack}")) <= 2


def test_nothing_is_reserved_after_redis_lost_its_data_until_rebuilt(slots: RolloutSlots) -> None:
    assert slots.reserve("r", "s1", member_slots(slots, "r1")).outcome is Reservation.OK
    slots.client.flushall()
    assert not slots.is_built("r")
    assert slots.reserve("r", "s9", member_slots(slots, "r1")).outcome is Reservation.UNBUILT
    added = slots.rebuild(
        "r",
        [("s1", member_slots(slots, "r1")), ("s2", member_slots(slots, "r1"))],
        [("s7", [slots.failed_key("r", 1, BIOS), slots.ended_key("r", 1, BIOS)])],
    )
    assert added == 2 and slots.is_built("r")
    assert slots.reserve("r", "s9", member_slots(slots, "r1")).outcome is Reservation.FULL  # r1 holds 2 again
    assert slots.counts("r", 1, [BIOS]) == {BIOS: (1, 1)}
    assert slots.rebuild("r", [("s1", member_slots(slots, "r1"))]) == 0  # held already: only adds


def test_ends_failures_halts_and_the_lock(slots: RolloutSlots) -> None:
    slots.record_end("r", 1, "s1", [BIOS], [BIOS])
    slots.record_end("r", 1, "s2", [BIOS], [])
    slots.record_end("r", 2, "s3", [BIOS], [BIOS])
    assert slots.counts("r", 1, [BIOS]) == {BIOS: (1, 2)}
    assert slots.failed_servers("r", 1, BIOS) == ["s1"]
    assert slots.first_halt("r", 1, BIOS) and not slots.first_halt("r", 1, BIOS)
    assert slots.first_halt("r", 2, BIOS)  # a new generation's halt counts again
    assert slots.lock("r", "a", 5) and not slots.lock("r", "b", 5)
    slots.unlock("r", "b")  # not b's: stays
    assert not slots.lock("r", "b", 5)
    slots.unlock("r", "a")
    assert slots.lock("r", "b", 5)
