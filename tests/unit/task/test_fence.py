"""The inventory's side of the fence: a claim never starts a task the attribute shows alive elsewhere."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from flasher.task.fence import run_elsewhere
from flasher.task.model import InstallTask, TaskStatus, utc_now

NOW = utc_now()
STALE_AFTER = 60.0


def _task(status: str, *, attempts: int, age: float | None, worker: str | None = "flasher-0") -> InstallTask:
    data = {"status": status, "firmwareSet": "x", "taskID": "t-1", "attempts": attempts}
    if worker is not None:
        data["worker"] = worker
    task = InstallTask.model_validate(data)
    if age is not None:
        task.updated_at = NOW - timedelta(seconds=age)
    return task


def test_a_claim_redis_gave_out_beside_a_live_run_is_refused_saying_why() -> None:
    why = run_elsewhere(_task("active", attempts=1, age=3), attempt=1, now=NOW, stale_after=STALE_AFTER)
    assert why is not None
    assert "attempt 1 running on flasher-0 (heartbeat 3 s old" in why and "this claim is attempt 1" in why


def test_a_claim_after_an_expired_lease_takes_over_even_with_a_young_heartbeat() -> None:
    # The queue counted the expired attempt: the claim is attempt 2 over an attribute that says attempt 1.
    assert run_elsewhere(_task("active", attempts=1, age=3), attempt=2, now=NOW, stale_after=STALE_AFTER) is None


def test_a_queued_or_stale_task_is_started() -> None:
    assert run_elsewhere(_task("queued", attempts=3, age=1), attempt=1, now=NOW, stale_after=STALE_AFTER) is None
    assert run_elsewhere(_task("active", attempts=3, age=61), attempt=1, now=NOW, stale_after=STALE_AFTER) is None
    assert run_elsewhere(_task("active", attempts=3, age=None), attempt=1, now=NOW, stale_after=STALE_AFTER) is None


@given(
    status=st.sampled_from([s.value for s in TaskStatus if s.value not in ("", "requested")]),
    attempts=st.integers(0, 5),
    attempt=st.integers(1, 6),
    age=st.floats(0, 200),
)
def test_refused_exactly_when_active_alive_and_unfollowed(status: str, attempts: int, attempt: int, age: float) -> None:
    task = _task(status, attempts=attempts, age=age)
    refused = run_elsewhere(task, attempt=attempt, now=NOW, stale_after=STALE_AFTER) is not None
    assert refused == (status == "active" and attempts >= attempt and age < STALE_AFTER)
