"""The queue against a model: hypothesis drives random sequences of every operation (enqueue, claim, ack,
ack_and_claim, fail, release, extend/check, cancel, drop, forget_dead, reap) on a real Redis and compares each
answer, and the whole queue after each step, with a plain-Python model of the semantics. Leases are long: expiry
has its own tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule, run_state_machine_as_test

from flasher.queue import CancelOutcome, EnqueueOutcome, EntryState, FailOutcome, Lease, LeaseLostError, TaskQueue
from tests.support.queue_helpers import make_queue

pytestmark = pytest.mark.integration

SERVERS = st.sampled_from(["s1", "s2", "s3", "s4"])
KINDS = st.sampled_from(["install", "server_control"])
TASKS = st.sampled_from(["t1", "t2", "t3"])
MAX_ATTEMPTS = 3


@dataclass
class Model:
    kind: str
    task_id: str
    priority: int
    order: int
    attempts: int = 0
    state: str = "queued"
    token: int | None = None
    cancel: bool = False


class QueueMachine(RuleBasedStateMachine):
    url = ""  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.queue: TaskQueue = make_queue(self.url, max_attempts=MAX_ATTEMPTS, retry_base_delay=0.0)
        self.queue.client.flushall()
        self.model: dict[str, Model] = {}
        self.seq = 0
        self.front = 0
        self.done: dict[str, tuple[int, str, str]] = {}  # server -> (token, operation, outcome) of the last lease end
        self.fresh_dead: set[str] = set()

    leases = Bundle("leases")

    def _current(self, lease: Lease) -> Model | None:
        m = self.model.get(lease.server_id)
        return m if m is not None and m.state == "inflight" and m.token == lease.token else None

    def _repeat(self, lease: Lease, operation: str) -> str | None:
        mark = self.done.get(lease.server_id)
        return mark[2] if mark is not None and mark[:2] == (lease.token, operation) else None

    def _die(self, server: str, m: Model) -> None:
        m.state, m.token = "dead", None
        self.fresh_dead.add(server)

    @rule(server=SERVERS, kind=KINDS, task=TASKS, priority=st.integers(0, 3))
    def enqueue(self, server: str, kind: str, task: str, priority: int) -> None:
        result = self.queue.enqueue(server, kind=kind, task_id=task, priority=priority)
        m = self.model.get(server)
        if m is not None and m.state == "dead" and (m.kind, m.task_id) != (kind, task):
            del self.model[server]
            self.fresh_dead.discard(server)
            m = None
        if m is None:
            assert result.outcome is EnqueueOutcome.ADDED
            self.seq += 1
            self.model[server] = Model(kind, task, priority, self.seq)
            self.done.pop(server, None)
        elif m.state == "dead":
            assert result.outcome is EnqueueOutcome.DEAD
        elif (m.kind, m.task_id) != (kind, task):
            assert result.outcome is EnqueueOutcome.HELD_BY_OTHER
            assert result.holder is not None and (result.holder.kind, result.holder.task_id) == (m.kind, m.task_id)
        elif priority > m.priority:
            assert result.outcome is EnqueueOutcome.RAISED
            m.priority = priority
        else:
            assert result.outcome is EnqueueOutcome.UNCHANGED
        assert result.entry.server_id == server

    @rule(target=leases, kinds=st.sampled_from([None, ("install",), ("server_control",)]))
    def claim(self, kinds: tuple[str, ...] | None) -> object:
        return self._claimed(self.queue.claim("w", kinds=kinds), kinds)

    @rule(target=leases, lease=leases, kinds=st.sampled_from([None, ("install",), ("server_control",)]))
    def ack_and_claim(self, lease: Lease, kinds: tuple[str, ...] | None) -> object:
        """One step: the ack answered as :meth:`ack` would be, then the claim as :meth:`claim`, on the queue the
        ack left (whatever the ack found)."""
        current = self._current(lease) is not None
        repeat = self._repeat(lease, "ack") is not None
        result = self.queue.ack_and_claim(lease, "w", kinds=kinds)
        if current:
            del self.model[lease.server_id]
            self.done[lease.server_id] = (lease.token, "ack", "acked")
        if current or repeat:
            assert result.lost is None
        else:
            assert isinstance(result.lost, LeaseLostError) and result.lost.token == lease.token
        return self._claimed(result.lease, kinds)

    def _claimed(self, lease: Lease | None, kinds: tuple[str, ...] | None) -> object:
        """Check a claim's ``lease`` against the model and take it there."""
        ready = [
            (server, m)
            for server, m in self.model.items()
            if m.state == "queued" and (kinds is None or m.kind in kinds)
        ]
        if not ready:
            assert lease is None
            return multiple()
        server, m = min(ready, key=lambda item: (-item[1].priority, item[1].order))
        assert lease is not None
        assert (lease.server_id, lease.kind, lease.task_id) == (server, m.kind, m.task_id)
        assert (lease.priority, lease.attempts) == (m.priority, m.attempts)
        m.state, m.token, m.cancel = "inflight", lease.token, False
        return lease

    @rule(
        kinds=st.sampled_from([None, ("install",)]),
        ending=st.sampled_from(["ack", "ack_and_claim", "fail", "retry", "retry_later", "release", "keep"]),
        cancel_first=st.booleans(),
    )
    def claim_and_end(self, kinds: tuple[str, ...] | None, ending: str, cancel_first: bool) -> None:
        """A worker's whole turn, so that live leases meet every ending (the bundle mostly holds stale ones)."""
        lease = self.claim(kinds)
        if not isinstance(lease, Lease):
            return
        if cancel_first:
            self.cancel(lease.server_id, lease.task_id)
        self.heartbeat(lease)
        if ending == "ack":
            self.ack(lease)
        elif ending == "ack_and_claim":
            self.ack_and_claim(lease, kinds)
        elif ending == "release":
            self.release(lease)
        elif ending != "keep":
            self.fail(lease, retry=ending != "fail", delayed=ending == "retry_later")

    @rule(lease=leases)
    def ack(self, lease: Lease) -> None:
        if self._current(lease) is not None:
            self.queue.ack(lease)
            del self.model[lease.server_id]
            self.done[lease.server_id] = (lease.token, "ack", "acked")
        elif self._repeat(lease, "ack") is not None:
            self.queue.ack(lease)
        else:
            with pytest.raises(LeaseLostError):
                self.queue.ack(lease)

    @rule(lease=leases, retry=st.booleans(), delayed=st.booleans())
    def fail(self, lease: Lease, retry: bool, delayed: bool) -> None:
        delay = 60.0 if delayed else None  # None: backoff from a base of 0, so claimable at once
        m = self._current(lease)
        if m is None:
            repeat = self._repeat(lease, "fail")
            if repeat is not None:
                assert self.queue.fail(lease, retry=retry, delay=delay) == FailOutcome(repeat)
            else:
                with pytest.raises(LeaseLostError):
                    self.queue.fail(lease, retry=retry, delay=delay)
            return
        outcome = self.queue.fail(lease, retry=retry, delay=delay, reason="boom")
        if not retry:
            assert outcome is FailOutcome.ENDED
            del self.model[lease.server_id]
        else:
            m.attempts += 1
            if m.cancel or m.attempts >= MAX_ATTEMPTS:
                assert outcome is FailOutcome.DEAD
                self._die(lease.server_id, m)
            else:
                assert outcome is FailOutcome.RETRY_SCHEDULED
                m.state, m.token = ("delayed" if delayed else "queued"), None
        self.done[lease.server_id] = (lease.token, "fail", outcome.value)

    @rule(lease=leases)
    def release(self, lease: Lease) -> None:
        m = self._current(lease)
        if m is None:
            if self._repeat(lease, "release") is not None:
                self.queue.release(lease)
            else:
                with pytest.raises(LeaseLostError):
                    self.queue.release(lease)
            return
        self.queue.release(lease)
        if m.cancel:
            self._die(lease.server_id, m)
        else:
            self.front -= 1
            m.state, m.token, m.order = "queued", None, self.front
        self.done[lease.server_id] = (lease.token, "release", "released")

    @rule(lease=leases)
    def heartbeat(self, lease: Lease) -> None:
        m = self._current(lease)
        if m is None:
            for call in (self.queue.extend, self.queue.check):
                with pytest.raises(LeaseLostError):
                    call(lease)
        else:
            assert self.queue.extend(lease).cancel_requested == m.cancel
            assert self.queue.check(lease).cancel_requested == m.cancel

    @rule(server=SERVERS, task=st.none() | TASKS)
    def cancel(self, server: str, task: str | None) -> None:
        outcome = self.queue.cancel(server, task_id=task)
        m = self.model.get(server)
        if m is None or m.state == "dead" or (task is not None and m.task_id != task):
            assert outcome is CancelOutcome.NOT_FOUND
        elif m.state == "inflight":
            assert outcome is CancelOutcome.FLAGGED
            m.cancel = True
        else:
            assert outcome is CancelOutcome.REMOVED
            del self.model[server]

    @rule(server=SERVERS)
    def drop(self, server: str) -> None:
        assert self.queue.drop(server) == (server in self.model)
        self.model.pop(server, None)
        self.fresh_dead.discard(server)
        self.done.pop(server, None)

    @rule(server=SERVERS, task=TASKS)
    def forget_dead(self, server: str, task: str) -> None:
        m = self.model.get(server)
        expected = m is not None and m.state == "dead" and m.task_id == task
        assert self.queue.forget_dead(server, task) == expected
        if expected:
            del self.model[server]
            self.fresh_dead.discard(server)

    @rule()
    def reap(self) -> None:
        assert {entry.server_id for entry in self.queue.reap()} == self.fresh_dead
        self.fresh_dead.clear()

    @invariant()
    def queue_matches_model(self) -> None:
        snap = self.queue.snapshot()
        queued = sorted(
            ((m.priority, m.order, s) for s, m in self.model.items() if m.state == "queued"),
            key=lambda item: (-item[0], item[1]),
        )
        assert [e.server_id for e in snap.queued] == [s for _, _, s in queued]
        for name, entries in (("delayed", snap.delayed), ("inflight", snap.inflight), ("dead", snap.dead)):
            assert {e.server_id for e in entries} == {s for s, m in self.model.items() if m.state == name}
        for entry in snap.queued + snap.delayed + snap.inflight + snap.dead:
            m = self.model[entry.server_id]
            assert (entry.kind, entry.task_id, entry.priority, entry.attempts) == (
                m.kind,
                m.task_id,
                m.priority,
                m.attempts,
            )
            if entry.state is EntryState.INFLIGHT:
                assert (entry.token, entry.cancel_requested) == (m.token, m.cancel)
        counts = {state: sum(1 for m in self.model.values() if m.state == state) for state in ("queued", "delayed")}
        counts |= {state: sum(1 for m in self.model.values() if m.state == state) for state in ("inflight", "dead")}
        assert self.queue.depth() == counts


def test_queue_behaves_like_its_model(redis_url: str) -> None:
    QueueMachine.url = redis_url
    run_state_machine_as_test(
        QueueMachine,
        settings=settings(
            max_examples=100,
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
