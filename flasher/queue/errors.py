"""Errors of the Redis queue: every failure a caller must handle has its own type.

- :class:`~flasher.task.fence.LeaseLostError` (re-exported here): the caller no longer holds the task (stale token,
  expired lease, Redis lost its data, an operator dropped the task). It is the fencing protocol's one error, so
  task code that checks a fence stops on it without knowing the queue. It is not a :class:`QueueError`.
- :class:`QueueUnavailableError`: Redis could not be reached within ``redis.retry_deadline``. Nothing was lost: the
  call either did not run or its effect is safe to find again (the inventory is the source of truth).
- :class:`QueueError`: the base, also raised when Redis refuses a command (a bug, a misconfigured server).
"""

from __future__ import annotations

from flasher.task.fence import LeaseLostError

__all__ = ["LeaseLostError", "QueueError", "QueueUnavailableError"]


class QueueError(Exception):
    """Base of the queue's errors; raised as such when Redis refuses a command (message names the operation)."""


class QueueUnavailableError(QueueError):
    """Redis stayed unreachable (connection refused, timeouts, loading, read-only) for ``deadline`` seconds."""

    def __init__(self, operation: str, deadline: float, cause: BaseException) -> None:
        self.operation = operation
        self.deadline = deadline
        super().__init__(
            f"Redis unavailable for {operation} after retrying for {deadline:g} s: {type(cause).__name__}: {cause}"
        )
