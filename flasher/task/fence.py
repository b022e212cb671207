"""Fencing: how task work proves, before each write, that it still owns its task.

A worker holds a lease on its task (the Redis queue's claim, with a fencing token). Before every step that
writes to a BMC and before every status write into the inventory, task code calls :meth:`Fence.check`; a
worker that lost its lease (it stalled past the lease, Redis lost its data, an operator dropped the task)
gets :class:`LeaseLostError` and must stop at once, writing nothing more.

The install steps and server-control actions depend only on this protocol, not on the queue: the service
adapts a queue lease to it. :class:`UnfencedTask` is the fence of one-shot operator commands
(``flasher install``) that run without a queue.

The lease lives in Redis, and Redis may lose its data (a restart without persistence, a ``FLUSHALL``, a fail-over):
a worker that was running a task then loses its lease at its next check, but a task enqueued again from the
inventory gets a *new* lease while that worker may still be in the middle of a BMC step. :func:`run_elsewhere` is
the inventory's side of the fence: what a new claim reads in the attribute before it touches the BMC, so that it
never starts a run beside one that is still alive (``docs/concurrency.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from flasher.task.model import TaskBase


class LeaseLostError(Exception):
    """This worker no longer holds the task's lease: stop now, write nothing more.

    One error for every way a lease is lost. The queue raises it through :meth:`of_lease`, with the lease's
    ``server_id``, ``task_id``, fencing ``token`` and the ``reason`` (a newer claim holds the task, the lease
    expired, the task is gone from Redis, Redis lost its data since the claim); a fence that cannot confirm its
    lease raises it with a message only (then ``reason`` is the message and the lease fields are empty).
    """

    def __init__(
        self, message: str, *, server_id: str = "", task_id: str = "", token: int = 0, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.server_id = server_id
        self.task_id = task_id
        self.token = token
        self.reason = reason or message

    @classmethod
    def of_lease(cls, server_id: str, task_id: str, token: int, reason: str) -> LeaseLostError:
        """The error for the lease on ``server_id``'s task ``task_id`` with fencing ``token``, lost for ``reason``."""
        return cls(
            f"lease on server {server_id} (task {task_id}, token {token}) lost: {reason}",
            server_id=server_id,
            task_id=task_id,
            token=token,
            reason=reason,
        )


@dataclass(frozen=True, slots=True)
class FenceState:
    """What a fence check learned: ``cancel_requested`` is true once an operator asked to cancel the task."""

    cancel_requested: bool = False


class Fence(Protocol):
    """The lease of one task, as task code sees it."""

    def check(self, *, min_remaining: float = 0.0) -> FenceState:
        """Confirm the lease is still held with at least ``min_remaining`` seconds left.

        Raises :class:`LeaseLostError` otherwise.
        """
        ...


class UnfencedTask:
    """A fence that always holds: for one-shot commands that own the BMC by the operator's word."""

    def __init__(self) -> None:
        self._cancel = False

    def request_cancel(self) -> None:
        """Make the next :meth:`check` report a cancel (Ctrl-C in a one-shot command)."""
        self._cancel = True

    def check(self, *, min_remaining: float = 0.0) -> FenceState:
        """Never raises; reports a cancel once :meth:`request_cancel` was called."""
        return FenceState(cancel_requested=self._cancel)


def run_elsewhere(task: TaskBase, *, attempt: int, now: datetime, stale_after: float) -> str | None:
    """Why a claim must not start ``task`` (its attribute as read right after the claim), or ``None`` to go on.

    ``attempt`` is the claim's attempt number (from 1: the queue's attempts plus one); ``now`` the current time
    (UTC) and ``stale_after`` the seconds after which a heartbeat counts as stopped (``service.stale_after``).

    The attribute shows a run that is still alive elsewhere when it is ``active``, its heartbeat (``updatedAt``,
    else ``createdAt``) is younger than ``stale_after``, and its ``attempts`` is at least ``attempt``: a claim that
    takes over from a worker whose lease expired in Redis always comes with a higher attempt number (the queue
    counts the expired one), so a claim that does not is one Redis gave out without knowing that run, after it lost
    its data. That run's worker stops at its next fence check, but what it had started on the BMC (an install that
    flashes, or waits for a host reset) goes on: the claim is dropped, and once the heartbeat is older than
    ``stale_after`` admission hands the task out again (``reclaimed``), with what the attribute says was started.
    """
    if task.status.value != "active" or task.attempts < attempt:
        return None
    beat = task.updated_at or task.created_at
    if beat is None:
        return None
    age = (now - beat).total_seconds()
    if age >= stale_after:
        return None
    worker = task.worker or "another worker"
    return (
        f"the attribute shows attempt {task.attempts} running on {worker} (heartbeat {age:.0f} s old, under"
        f" service.stale_after {stale_after:g} s), and this claim is attempt {attempt}: Redis gave it out without"
        " knowing that run (it lost its data)"
    )
