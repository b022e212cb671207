"""The Redis queue's semantics against a real redis-server: order, idempotent enqueue, leases and fencing,
retries, dead tasks, release, cancel, and what happens when Redis loses its data."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest
import redis

from flasher.queue import (
    CancelOutcome,
    EnqueueOutcome,
    EntryState,
    FailOutcome,
    Lease,
    LeaseFence,
    LeaseLostError,
    QueueError,
    QueueUnavailableError,
    TaskQueue,
)
from flasher.queue.pollshare import ADMITTED, FULL, TURNS
from flasher_sandbox.procs import free_port
from flasher_sandbox.servers import RedisServer
from tests.support.queue_helpers import SHORT_LEASE, make_queue, redis_time

pytestmark = pytest.mark.integration


@pytest.fixture
def queue(redis_url: str) -> TaskQueue:
    return make_queue(redis_url)


def expire(queue: TaskQueue, lease: Lease) -> None:
    """Wait until Redis' clock is past the lease's end."""
    while redis_time(queue) <= lease.expires_at + 0.01:
        time.sleep(0.05)


def claim(queue: TaskQueue, worker: str = "w1") -> Lease:
    lease = queue.claim(worker)
    assert lease is not None
    return lease


# -- order and enqueue --------------------------------------------------------------------------------------


def test_claims_highest_priority_first_then_oldest_across_kinds(queue: TaskQueue) -> None:
    plan = [("a", "install", 0), ("b", "server_control", 2), ("c", "install", 3), ("d", "install", 2)]
    plan += [("e", "server_control", 3), ("f", "install", 0), ("g", "server_control", 1)]
    for server, kind, priority in plan:
        assert (
            queue.enqueue(server, kind=kind, task_id=f"t-{server}", priority=priority).outcome is EnqueueOutcome.ADDED
        )

    assert [e.server_id for e in queue.snapshot().queued] == ["c", "e", "b", "d", "g", "a", "f"]
    claimed = []
    while (lease := queue.claim("w1")) is not None:
        claimed.append((lease.server_id, lease.kind, lease.task_id, lease.priority))
    assert claimed == [
        ("c", "install", "t-c", 3),
        ("e", "server_control", "t-e", 3),
        ("b", "server_control", "t-b", 2),
        ("d", "install", "t-d", 2),
        ("g", "server_control", "t-g", 1),
        ("a", "install", "t-a", 0),
        ("f", "install", "t-f", 0),
    ]


def test_claim_only_the_kinds_asked_for(queue: TaskQueue) -> None:
    queue.enqueue("a", kind="install", task_id="t1", priority=3)
    queue.enqueue("b", kind="server_control", task_id="t2", priority=0)
    lease = queue.claim("w1", kinds=["server_control"])
    assert lease is not None and lease.server_id == "b"
    assert queue.claim("w1", kinds=["server_control"]) is None
    with pytest.raises(ValueError, match="kinds"):
        queue.claim("w1", kinds=["firmware"])


def test_enqueue_is_idempotent_per_server(queue: TaskQueue) -> None:
    first = queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    again = queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    assert first.outcome is EnqueueOutcome.ADDED and first.holder is None
    assert again.outcome is EnqueueOutcome.UNCHANGED and again.holder is None
    assert again.entry == first.entry
    assert queue.depth() == {"queued": 1, "delayed": 0, "inflight": 0, "dead": 0}


def test_priority_is_raised_never_lowered(queue: TaskQueue) -> None:
    queue.enqueue("old", kind="install", task_id="t-old", priority=1)
    queue.enqueue("p2", kind="install", task_id="t-p2", priority=2)
    raised = queue.enqueue("old", kind="install", task_id="t-old", priority=2)
    assert raised.outcome is EnqueueOutcome.RAISED and raised.entry.priority == 2
    lowered = queue.enqueue("old", kind="install", task_id="t-old", priority=0)
    assert lowered.outcome is EnqueueOutcome.UNCHANGED and lowered.entry.priority == 2
    # The raised task keeps its age: it is older than p2, so it comes first in priority 2.
    assert [claim(queue).server_id, claim(queue).server_id] == ["old", "p2"]


def test_raising_an_inflight_task_keeps_its_lease(queue: TaskQueue) -> None:
    queue.enqueue("srv", kind="install", task_id="t1", priority=0)
    lease = claim(queue)
    result = queue.enqueue("srv", kind="install", task_id="t1", priority=3)
    assert result.outcome is EnqueueOutcome.RAISED and result.entry.state is EntryState.INFLIGHT
    assert queue.claim("w2") is None
    queue.release(lease)
    assert claim(queue).priority == 3


def test_another_task_of_any_kind_holds_the_server(queue: TaskQueue) -> None:
    queue.enqueue("srv", kind="install", task_id="install-1", priority=1)
    held = queue.enqueue("srv", kind="server_control", task_id="power-1", priority=3)
    assert held.outcome is EnqueueOutcome.HELD_BY_OTHER
    assert held.holder is not None
    assert (held.holder.kind, held.holder.task_id, held.holder.state) == ("install", "install-1", EntryState.QUEUED)

    lease = claim(queue, "replica-a")
    held = queue.enqueue("srv", kind="server_control", task_id="power-1", priority=3)
    assert held.holder is not None and held.holder.state is EntryState.INFLIGHT
    assert held.holder.owner == "replica-a" and held.holder.token == lease.token
    # Nothing changed: the install is still the only task, still held by replica-a.
    assert queue.depth() == {"queued": 0, "delayed": 0, "inflight": 1, "dead": 0}
    queue.ack(lease)
    assert queue.enqueue("srv", kind="server_control", task_id="power-1", priority=3).outcome is EnqueueOutcome.ADDED


# -- leases and fencing -------------------------------------------------------------------------------------


def test_lease_tokens_grow_and_extend_moves_the_lease_on(redis_url: str) -> None:
    queue = make_queue(redis_url, lease_seconds=2.0)
    for server in ("a", "b"):
        queue.enqueue(server, kind="install", task_id=f"t-{server}", priority=1)
    first, second = claim(queue), claim(queue)
    assert second.token > first.token and second.epoch == first.epoch
    assert first.expires_at - redis_time(queue) + 0.1 >= 1.9
    time.sleep(0.2)
    state = queue.extend(first)
    assert state.expires_at > first.expires_at and not state.cancel_requested
    assert 0 < state.remaining <= 2.0
    assert queue.check(first).expires_at == state.expires_at


def test_expired_lease_is_reclaimed_with_one_more_attempt(redis_url: str) -> None:
    queue = make_queue(redis_url, lease_seconds=SHORT_LEASE)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    stale = claim(queue, "crashed")
    assert stale.attempts == 0
    expire(queue, stale)
    fresh = claim(queue, "w2")
    assert (fresh.server_id, fresh.task_id, fresh.attempts) == ("srv", "t1", 1)
    assert fresh.token > stale.token
    assert "lease of crashed expired" in (queue.entry("srv") or pytest.fail()).reason


def test_an_expired_lease_is_refused_before_it_is_reaped(redis_url: str) -> None:
    queue = make_queue(redis_url, lease_seconds=SHORT_LEASE)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    lease = claim(queue)
    expire(queue, lease)
    with pytest.raises(LeaseLostError, match="expired"):
        queue.extend(lease)
    with pytest.raises(LeaseLostError, match="expired"):
        queue.ack(lease)
    assert queue.reap() == []
    assert (queue.entry("srv") or pytest.fail()).state is EntryState.QUEUED


@pytest.mark.parametrize("operation", ["ack", "fail", "extend", "release", "check"])
def test_stale_token_is_refused_and_the_new_holder_is_untouched(redis_url: str, operation: str) -> None:
    queue = make_queue(redis_url, lease_seconds=SHORT_LEASE)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    stale = claim(queue, "slow")
    expire(queue, stale)
    fresh = claim(queue, "w2")
    calls: dict[str, Callable[[], object]] = {
        "ack": lambda: queue.ack(stale),
        "fail": lambda: queue.fail(stale, retry=False),
        "extend": lambda: queue.extend(stale),
        "release": lambda: queue.release(stale),
        "check": lambda: queue.check(stale),
    }
    with pytest.raises(LeaseLostError) as caught:
        calls[operation]()
    assert caught.value.server_id == "srv" and caught.value.token == stale.token
    assert "newer claim" in caught.value.reason
    assert isinstance(caught.value, LeaseLostError)  # the fencing protocol's error
    entry = queue.entry("srv")
    assert entry is not None and entry.state is EntryState.INFLIGHT and entry.token == fresh.token
    queue.extend(fresh)
    queue.ack(fresh)
    assert queue.entry("srv") is None


def test_ack_and_claim_acks_then_claims_the_next_in_order(queue: TaskQueue) -> None:
    for server, priority in (("a", 1), ("b", 0), ("c", 3)):
        queue.enqueue(server, kind="install", task_id=f"t-{server}", priority=priority)
    first = claim(queue)
    assert first.server_id == "c"
    step = queue.ack_and_claim(first, "w1")
    assert step.lost is None and queue.entry("c") is None  # acked ...
    assert step.lease is not None and (step.lease.server_id, step.lease.token > first.token) == ("a", True)
    again = queue.ack_and_claim(first, "w1")  # ... and the same ack again (a lost reply) is recognised
    assert again.lost is None and again.lease is not None and again.lease.server_id == "b"
    last = queue.ack_and_claim(again.lease, "w1", kinds=["server_control"])  # none of that kind: nothing claimed
    assert last.lost is None and last.lease is None
    assert queue.depth() == {"queued": 0, "delayed": 0, "inflight": 1, "dead": 0}  # a's lease, still held
    with pytest.raises(ValueError, match="kinds"):
        queue.ack_and_claim(step.lease, "w1", kinds=[])


def test_ack_and_claim_of_an_expired_lease_reports_it_lost_and_still_claims(redis_url: str) -> None:
    """A worker whose lease ran out gets the lost ack back with its next task: here the same task again (the
    expired lease is reclaimed in the same step, with one more attempt, and it holds the highest priority)."""
    queue = make_queue(redis_url, lease_seconds=SHORT_LEASE)
    queue.enqueue("srv", kind="install", task_id="t1", priority=2)
    queue.enqueue("other", kind="install", task_id="t2", priority=1)
    stale = claim(queue, "slow")
    expire(queue, stale)
    step = queue.ack_and_claim(stale, "slow")
    assert isinstance(step.lost, LeaseLostError) and step.lost.token == stale.token
    assert step.lost.reason == "the lease expired"
    assert step.lease is not None and (step.lease.task_id, step.lease.attempts) == ("t1", 1)
    assert step.lease.token > stale.token
    queue.client.flushall()  # Redis lost its data: the ack is refused, and nothing is left to claim
    step = queue.ack_and_claim(step.lease, "slow")
    assert step.lost is not None and "epoch changed" in step.lost.reason and step.lease is None


def test_check_refuses_a_lease_with_too_little_time_left(redis_url: str) -> None:
    queue = make_queue(redis_url, lease_seconds=5.0)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    lease = claim(queue)
    assert queue.check(lease, min_remaining=1.0).remaining > 1.0
    with pytest.raises(LeaseLostError, match="ms of the lease left"):
        queue.check(lease, min_remaining=30.0)
    queue.ack(lease)  # still held: check only looked


def test_lease_fence_adapts_a_lease_to_the_fencing_protocol(queue: TaskQueue) -> None:
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    lease = claim(queue)
    fence = LeaseFence(queue, lease)
    assert fence.check().cancel_requested is False
    queue.cancel("srv")
    assert fence.check().cancel_requested is True
    queue.drop("srv")
    with pytest.raises(LeaseLostError, match="no longer in Redis"):
        fence.check()


def test_a_lease_nobody_can_confirm_counts_as_lost(fresh_redis: RedisServer) -> None:
    """Redis unreachable past the retry deadline: task code must stop as for a lost lease, not crash."""
    queue = make_queue(fresh_redis.url, retry_deadline=0.3)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    fence = LeaseFence(queue, claim(queue))
    fresh_redis.stop()
    with pytest.raises(LeaseLostError, match="cannot confirm the lease"):
        fence.check()


def test_ack_fail_and_release_repeated_after_a_lost_reply_report_the_first_outcome(queue: TaskQueue) -> None:
    for server in ("a", "b", "c"):
        queue.enqueue(server, kind="install", task_id=f"t-{server}", priority=1)
    acked, failed, released = claim(queue), claim(queue), claim(queue)
    queue.ack(acked)
    queue.ack(acked)  # the same call again, as after a lost reply: no error, nothing else changes
    assert queue.fail(failed, retry=True, delay=30) is FailOutcome.RETRY_SCHEDULED
    assert queue.fail(failed, retry=True, delay=30) is FailOutcome.RETRY_SCHEDULED
    assert (queue.entry("b") or pytest.fail()).attempts == 1
    queue.release(released)
    queue.release(released)
    assert (queue.entry("c") or pytest.fail()).attempts == 0
    # A different call with the old lease is not a repeat: it is refused.
    with pytest.raises(LeaseLostError):
        queue.fail(acked, retry=False)
    # Once the server is enqueued again, the old lease is simply stale.
    queue.enqueue("a", kind="install", task_id="t-a2", priority=1)
    with pytest.raises(LeaseLostError, match="task is now t-a2"):
        queue.ack(acked)


# -- failures, retries and dead tasks -----------------------------------------------------------------------


def test_fail_with_retry_waits_out_the_delay(queue: TaskQueue) -> None:
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    lease = claim(queue)
    before = redis_time(queue)
    assert queue.fail(lease, retry=True, delay=0.5, reason="BMC busy") is FailOutcome.RETRY_SCHEDULED
    after = redis_time(queue)
    entry = queue.entry("srv")
    assert entry is not None and entry.state is EntryState.DELAYED and entry.reason == "BMC busy"
    assert entry.ready_at is not None and before + 0.5 - 0.002 <= entry.ready_at <= after + 0.5 + 0.002
    assert queue.known("srv")
    while redis_time(queue) < entry.ready_at:
        assert queue.claim("w2") is None
        time.sleep(0.05)
    again = claim(queue, "w2")
    assert (again.task_id, again.attempts) == ("t1", 1)


def test_retry_delay_backs_off_exponentially_up_to_the_cap(redis_url: str) -> None:
    queue = make_queue(redis_url, max_attempts=5, retry_base_delay=10.0, retry_max_delay=25.0)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    delays = []
    for _ in range(3):
        lease = claim(queue)
        before = redis_time(queue)
        queue.fail(lease, retry=True)
        entry = queue.entry("srv")
        assert entry is not None and entry.ready_at is not None
        delays.append(entry.ready_at - before)
        queue.client.zadd(queue.keys.delayed, {"srv": 0})  # make it due now rather than wait
    assert [round(d) for d in delays] == [10, 20, 25]


def test_dead_after_max_attempts_then_reaped_and_forgotten(redis_url: str) -> None:
    queue = make_queue(redis_url, lease_seconds=SHORT_LEASE, max_attempts=2)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    queue.enqueue("other", kind="install", task_id="t2", priority=0)
    first = claim(queue, "w1")
    expire(queue, first)
    assert queue.reap() == []  # attempt 1 of 2: back in the queue
    second = claim(queue, "w2")
    assert second.server_id == "srv" and second.attempts == 1
    expire(queue, second)
    died = queue.reap()
    assert [(e.server_id, e.task_id, e.attempts, e.state) for e in died] == [("srv", "t1", 2, EntryState.DEAD)]
    assert "attempt 2 of 2" in died[0].reason
    assert queue.reap() == []  # reported once
    assert [e.server_id for e in queue.dead()] == ["srv"]
    assert not queue.known("srv")
    assert queue.depth() == {"queued": 1, "delayed": 0, "inflight": 0, "dead": 1}
    # The service re-enqueues what Redis does not know: the dead task is not revived.
    revived = queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    assert revived.outcome is EnqueueOutcome.DEAD and revived.holder is not None
    assert claim(queue).server_id == "other"
    assert queue.forget_dead("srv", "t-other") is False
    assert queue.forget_dead("srv", "t1") is True
    assert queue.dead() == [] and queue.entry("srv") is None
    assert queue.enqueue("srv", kind="install", task_id="t1", priority=1).entry.attempts == 0


def test_a_new_task_replaces_a_dead_one(redis_url: str) -> None:
    queue = make_queue(redis_url, max_attempts=1)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    assert queue.fail(claim(queue), retry=True, reason="image rejected") is FailOutcome.DEAD
    assert queue.enqueue("srv", kind="server_control", task_id="t2", priority=1).outcome is EnqueueOutcome.ADDED
    assert queue.dead() == [] and queue.reap() == []


def test_fail_without_retry_ends_the_task(queue: TaskQueue) -> None:
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    assert queue.fail(claim(queue), retry=False, reason="no such firmware") is FailOutcome.ENDED
    assert queue.entry("srv") is None and not queue.known("srv") and queue.dead() == []


def test_fail_with_retry_out_of_attempts_is_dead_and_reaped(redis_url: str) -> None:
    queue = make_queue(redis_url, max_attempts=2)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    assert queue.fail(claim(queue), retry=True, reason="timeout") is FailOutcome.RETRY_SCHEDULED
    assert queue.fail(claim(queue), retry=True, reason="timeout") is FailOutcome.DEAD
    died = queue.reap()
    assert [(e.server_id, e.reason) for e in died] == [("srv", "timeout (attempt 2 of 2)")]


# -- release and cancel -------------------------------------------------------------------------------------


def test_release_returns_the_task_to_the_front_of_its_priority_without_an_attempt(queue: TaskQueue) -> None:
    for server in ("a", "b", "c"):
        queue.enqueue(server, kind="install", task_id=f"t-{server}", priority=1)
    lease_a, lease_b = claim(queue), claim(queue)
    queue.release(lease_b)
    queue.release(lease_a)
    queue.enqueue("urgent", kind="install", task_id="t-u", priority=2)
    order = [claim(queue) for _ in range(4)]
    assert [lease.server_id for lease in order] == ["urgent", "a", "b", "c"]
    assert [lease.attempts for lease in order] == [0, 0, 0, 0]


def test_cancel_removes_queued_and_delayed_tasks(queue: TaskQueue) -> None:
    queue.enqueue("queued", kind="install", task_id="t1", priority=1)
    queue.enqueue("delayed", kind="server_control", task_id="t2", priority=1)
    queue.fail(claim(queue), retry=True, delay=60)
    assert queue.entry("delayed") is not None
    assert queue.cancel("queued", task_id="not-this-one") is CancelOutcome.NOT_FOUND
    assert queue.cancel("queued") is CancelOutcome.REMOVED
    assert queue.cancel("delayed", task_id="t2") is CancelOutcome.REMOVED
    assert queue.cancel("nobody") is CancelOutcome.NOT_FOUND
    assert queue.depth() == {"queued": 0, "delayed": 0, "inflight": 0, "dead": 0}
    assert queue.claim("w1") is None


def test_cancel_flags_an_inflight_task_for_its_worker(queue: TaskQueue) -> None:
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    lease = claim(queue)
    assert queue.cancel("srv") is CancelOutcome.FLAGGED
    assert queue.extend(lease).cancel_requested
    assert queue.check(lease).cancel_requested
    assert queue.fail(lease, retry=False, reason="cancelled") is FailOutcome.ENDED
    assert queue.entry("srv") is None


@pytest.mark.parametrize("ending", ["release", "fail", "expire"])
def test_a_cancelled_task_never_goes_back_to_the_queue(redis_url: str, ending: str) -> None:
    queue = make_queue(redis_url, lease_seconds=SHORT_LEASE, max_attempts=5)
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    lease = claim(queue)
    queue.cancel("srv", task_id="t1")
    if ending == "release":
        queue.release(lease)
    elif ending == "fail":
        assert queue.fail(lease, retry=True) is FailOutcome.DEAD
    else:
        expire(queue, lease)
    died = queue.reap()
    assert [(e.server_id, e.state) for e in died] == [("srv", EntryState.DEAD)]
    assert "cancel" in died[0].reason
    assert queue.claim("w2") is None


# -- operators --------------------------------------------------------------------------------------------


def test_drop_removes_whatever_redis_holds_and_the_holder_learns_it(queue: TaskQueue) -> None:
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    lease = claim(queue)
    dropped = queue.take("srv")
    assert dropped is not None and dropped.state is EntryState.INFLIGHT and dropped.owner == "w1"
    with pytest.raises(LeaseLostError, match="no longer in Redis"):
        queue.check(lease)
    assert queue.drop("srv") is False
    assert queue.depth() == {"queued": 0, "delayed": 0, "inflight": 0, "dead": 0}
    assert queue.enqueue("srv", kind="install", task_id="t2", priority=1).outcome is EnqueueOutcome.ADDED


def test_snapshot_lists_every_state_with_lease_left(redis_url: str) -> None:
    queue = make_queue(redis_url, lease_seconds=30.0, max_attempts=1)
    for server, priority in (("q1", 0), ("q2", 3), ("f", 2), ("d", 2), ("x", 1)):
        queue.enqueue(server, kind="install", task_id=f"t-{server}", priority=priority)
    queue.release(claim(queue))  # q2: back to the front
    held_q2 = claim(queue, "replica-a")
    queue.fail(claim(queue), retry=True, delay=60)  # f (older than d): attempts 1 = max -> dead
    queue.enqueue("f2", kind="server_control", task_id="t-f2", priority=2)
    snap = queue.snapshot()
    assert [e.server_id for e in snap.queued] == ["d", "f2", "x", "q1"]
    assert [e.server_id for e in snap.inflight] == ["q2"]
    assert snap.inflight[0].owner == "replica-a" and snap.inflight[0].token == held_q2.token
    assert 29 <= (snap.lease_left(snap.inflight[0]) or 0) <= 30
    assert [e.server_id for e in snap.dead] == ["f"] and snap.delayed == []
    as_json = snap.to_dict()
    assert as_json["inflight"][0]["state"] == "inflight" and "lease_left" in as_json["inflight"][0]


# -- when Redis loses its data or is not there --------------------------------------------------------------


def test_tokens_of_an_earlier_epoch_are_refused_after_redis_lost_its_data(queue: TaskQueue) -> None:
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    stale = claim(queue, "before")
    queue.client.flushall()
    assert not queue.known("srv")
    with pytest.raises(LeaseLostError, match="epoch changed"):
        queue.check(stale)
    # The service re-enqueues from the inventory; a new claim starts a new epoch.
    queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    fresh = claim(queue, "after")
    assert fresh.epoch != stale.epoch
    queue.client.hset(queue.keys.meta, "token", "0")  # even if the counter started over entirely ...
    forged = dataclasses.replace(fresh, epoch=stale.epoch)  # ... a token of the old epoch does not pass
    for call in (queue.check, queue.extend, queue.ack, queue.release):
        with pytest.raises(LeaseLostError, match="epoch changed"):
            call(forged)
    with pytest.raises(LeaseLostError):
        queue.check(dataclasses.replace(stale, token=fresh.token))
    queue.ack(fresh)


def test_connection_refused_past_the_deadline_is_queue_unavailable() -> None:
    queue = make_queue(f"redis://127.0.0.1:{free_port()}/0", retry_deadline=0.3)
    assert queue.ping() is False
    with pytest.raises(QueueUnavailableError, match="enqueue") as caught:
        queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    assert isinstance(caught.value.__cause__, redis.ConnectionError)
    with pytest.raises(QueueUnavailableError):
        queue.snapshot()


def test_a_stopping_replica_gives_its_turns_up_without_waiting_for_redis() -> None:
    queue = make_queue(f"redis://127.0.0.1:{free_port()}/0", retry_deadline=30)
    started = time.monotonic()
    with pytest.raises(QueueUnavailableError, match="give_full_turn"):
        queue.polls.give(FULL, "replica-1", retry_deadline=0)
    assert time.monotonic() - started < 5  # not the part's 30 s of retries


def test_a_refused_command_is_a_queue_error(redis_url: str) -> None:
    queue = make_queue(redis_url)
    queue.client.set(queue.keys.tasks, "not a hash")
    with pytest.raises(QueueError, match="WRONGTYPE") as caught:
        queue.enqueue("srv", kind="install", task_id="t1", priority=1)
    assert not isinstance(caught.value, QueueUnavailableError)


def test_runs_on_redis_cluster(redis_cluster_url: str) -> None:
    """Every script's keys hash to one slot: redis-py's cluster client and the server both refuse otherwise."""
    from redis.cluster import RedisCluster

    client = RedisCluster.from_url(redis_cluster_url)
    queue = TaskQueue(client, settings=make_queue(redis_cluster_url).settings, key_prefix="fleet-a")
    assert {client.keyslot(key) for key in queue.keys.all} == {client.keyslot("{fleet-a}")}  # type: ignore[no-untyped-call]
    queue.enqueue("srv", kind="install", task_id="t1", priority=2)
    lease = claim(queue)
    assert queue.check(lease).remaining > 0
    queue.enqueue("srv-2", kind="install", task_id="t2", priority=1)
    step = queue.ack_and_claim(lease, "w1")
    assert step.lost is None and step.lease is not None and step.lease.server_id == "srv-2"
    queue.enqueue("srv", kind="install", task_id="t3", priority=2)
    lease = step.lease
    assert queue.depth() == {"queued": 1, "delayed": 0, "inflight": 1, "dead": 0}
    assert queue.fail(lease, retry=False) is FailOutcome.ENDED
    lease = claim(queue)
    assert queue.depth() == {"queued": 0, "delayed": 0, "inflight": 1, "dead": 0}
    assert [e.server_id for e in queue.snapshot().inflight] == ["srv"]
    assert queue.fail(lease, retry=True, delay=60) is FailOutcome.RETRY_SCHEDULED
    assert queue.cancel("srv") is CancelOutcome.REMOVED
    assert queue.reap() == [] and queue.dead() == []


def test_one_replica_at_a_time_claims_the_admission_of_a_request(queue: TaskQueue) -> None:
    assert queue.claim_admission("t-abc", "replica-a", ttl=30)
    assert not queue.claim_admission("t-abc", "replica-b", ttl=30)
    assert queue.claim_admission("t-other", "replica-b", ttl=30)  # another request is free
    queue.release_admission("t-abc", "replica-b")  # not b's: nothing happens
    assert not queue.claim_admission("t-abc", "replica-b", ttl=30)
    queue.release_admission("t-abc", "replica-a")
    assert queue.claim_admission("t-abc", "replica-b", ttl=30)


def test_an_admission_claim_expires_by_itself(queue: TaskQueue) -> None:
    assert queue.claim_admission("t-abc", "replica-a", ttl=0.2)
    time.sleep(0.3)
    assert queue.claim_admission("t-abc", "replica-b", ttl=30)


@pytest.mark.parametrize("turn", TURNS)
def test_a_poll_turn_stays_with_its_holder_until_it_lapses(queue: TaskQueue, turn: str) -> None:
    polls = queue.polls
    assert polls.take(turn, "replica-1", period=0.2)  # free: taken
    assert polls.take(turn, "replica-1", period=0.2)  # its own: renewed
    assert not polls.take(turn, "replica-2", period=0.2)
    ttl = queue.client.pttl(queue.keys.poll_turn(turn))
    assert 0 < ttl <= 400  # TURN_PERIODS (2) periods
    time.sleep(0.45)
    assert polls.take(turn, "replica-2", period=0.2)  # the holder went quiet: the turn moves
    assert not polls.give(turn, "replica-1")  # not its turn any more: nothing given up
    assert polls.give(turn, "replica-2")  # a holder stopping gives it up
    assert polls.take(turn, "replica-1", period=10)
    other = ADMITTED if turn == FULL else FULL
    assert polls.take(other, "replica-2", period=10)  # the turns are apart


def test_the_counts_of_a_turn_are_shared_and_unreadable_ones_ignored(queue: TaskQueue) -> None:
    assert queue.polls.counts(FULL) is None
    queue.polls.put_counts(FULL, "replica-1", {("install", "success"): 7, ("install", ""): 2}, period=10)
    assert queue.polls.counts(FULL) == {("install", "success"): 7, ("install", ""): 2}
    assert queue.polls.counts(ADMITTED) is None
    queue.client.set(queue.keys.poll_counts(FULL), b"not json")
    assert queue.polls.counts(FULL) is None
    with pytest.raises(ValueError, match="turn: must be one of full, admitted"):
        queue.polls.take("everything", "replica-1", period=1)
