"""The queue's parts that need no Redis: argument checks, key names, record parsing, the retry policy."""

from __future__ import annotations

import json

import pytest
import redis

from flasher.config import QueueSettings
from flasher.queue import EntryState, QueueError, QueueUnavailableError, TaskQueue
from flasher.queue.connection import call
from flasher.queue.keys import QueueKeys
from flasher.queue.models import QueueEntry


def _offline_queue() -> TaskQueue:
    # register_script does not connect: argument checks run before any round trip.
    return TaskQueue(redis.Redis(host="127.0.0.1", port=1), settings=QueueSettings(), retry_deadline=0)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("priority", {"kind": "install", "task_id": "t", "priority": 4}),
        ("priority", {"kind": "install", "task_id": "t", "priority": "2"}),
        ("kind", {"kind": "bios", "task_id": "t", "priority": 1}),
        ("task_id", {"kind": "install", "task_id": " t", "priority": 1}),
    ],
)
def test_enqueue_refuses_bad_arguments_before_any_round_trip(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=field) as caught:
        _offline_queue().enqueue("srv", **kwargs)  # type: ignore[arg-type]
    assert repr(kwargs[field]) in str(caught.value)


def test_claim_and_check_refuse_bad_arguments() -> None:
    queue = _offline_queue()
    with pytest.raises(ValueError, match="kinds"):
        queue.claim("w", kinds=[])
    with pytest.raises(ValueError, match="worker"):
        queue.claim("")
    with pytest.raises(ValueError, match="retry_deadline"):
        TaskQueue(redis.Redis(port=1), settings=QueueSettings(), retry_deadline=-1)


def test_keys_share_one_hash_tag_and_the_prefix_is_checked() -> None:
    keys = QueueKeys("fleet-a")
    assert all(key.startswith("{fleet-a}:") for key in keys.all)
    assert keys.all[: len(keys.lease)] == keys.lease
    assert keys.ready("server_control") == "{fleet-a}:ready:server_control"
    with pytest.raises(ValueError, match="key_prefix"):
        QueueKeys("a}b")


def test_entry_from_a_record_and_its_holder() -> None:
    record = json.dumps(
        {
            "server_id": "srv",
            "kind": "install",
            "task_id": "t1",
            "priority": 2,
            "attempts": 1,
            "state": "queued",
            "order": -3,
            "enqueued_at": 1700000000123,
            "ready_at": 0,
            "died_at": 0,
            "reason": "lease of w0 expired",
        }
    )
    queued = QueueEntry.from_record(record)
    assert (queued.state, queued.owner, queued.token, queued.enqueued_at) == (
        EntryState.QUEUED,
        None,
        None,
        1700000000.123,
    )
    held = QueueEntry.from_record(record.encode(), b"1700000000456789 1 replica a-7", b"1700000120456")
    assert held.state is EntryState.INFLIGHT
    assert (held.token, held.cancel_requested, held.owner) == (1700000000456789, True, "replica a-7")
    assert held.lease_expires_at == 1700000120.456
    assert held.to_dict()["state"] == "inflight"


def test_connection_problems_are_retried_until_they_pass() -> None:
    failures = [redis.ConnectionError("refused"), redis.TimeoutError("slow")]

    def flaky() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    assert call("enqueue", flaky, deadline=5.0) == "ok"


def test_past_the_deadline_a_connection_problem_is_queue_unavailable() -> None:
    def down() -> None:
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with pytest.raises(QueueUnavailableError, match=r"claim after retrying for 0\.1 s") as caught:
        call("claim", down, deadline=0.1)
    assert isinstance(caught.value.__cause__, redis.ConnectionError)


def test_refused_credentials_and_commands_are_not_retried() -> None:
    calls = []

    def refused() -> None:
        calls.append(1)
        raise redis.AuthenticationError("invalid username-password pair")

    with pytest.raises(QueueError, match="AuthenticationError") as caught:
        call("ack", refused, deadline=5.0)
    assert not isinstance(caught.value, QueueUnavailableError) and calls == [1]

    def wrong_type() -> None:
        raise redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")

    with pytest.raises(QueueError, match="WRONGTYPE") as caught:
        call("ack", wrong_type, deadline=5.0)
    assert not isinstance(caught.value, QueueUnavailableError)
