"""Errors of the Redis queue: every failure a caller must handle has its own type.

- :class:`LeaseLost`: the caller no longer holds the task (stale token, expired lease, Redis lost its data, an
  operator dropped the task). It is a :class:`flasher.fencing.LeaseLostError`, so task code that checks a fence
  stops on it without knowing the queue.
- :class:`QueueUnavailable`: Redis could not be reached within ``redis.retry_deadline``. Nothing was lost: the
  call either did not run or its effect is safe to find again (the inventory is the source of truth).
- :class:`QueueError`: the base, also raised when Redis refuses a command (a bug, a misconfigured server).
"""

from __future__ import annotations

from flasher.fencing import LeaseLostError


class QueueError(Exception):
    """Base of the queue's errors; raised as such when Redis refuses a command (message names the operation)."""


class LeaseLost(QueueError, LeaseLostError):  # noqa: N818 - the name the service and workers use
    """The lease on ``server_id``'s task ``task_id`` (fencing token ``token``) is no longer held.

    ``reason`` says why: a newer claim holds the task, the lease expired, the task is gone from Redis, or Redis
    lost its data since the claim (its epoch changed). The holder must stop at once and write nothing more.
    """

    def __init__(self, server_id: str, task_id: str, token: int, reason: str) -> None:
        self.server_id = server_id
        self.task_id = task_id
        self.token = token
        self.reason = reason
        super().__init__(f"lease on server {server_id} (task {task_id}, token {token}) lost: {reason}")


class QueueUnavailable(QueueError):  # noqa: N818 - the name the service and workers use
    """Redis stayed unreachable (connection refused, timeouts, loading, read-only) for ``deadline`` seconds."""

    def __init__(self, operation: str, deadline: float, cause: BaseException) -> None:
        self.operation = operation
        self.deadline = deadline
        super().__init__(
            f"Redis unavailable for {operation} after retrying for {deadline:g} s: {type(cause).__name__}: {cause}"
        )
