"""A queue lease as a :class:`flasher.task.fence.Fence`: what install steps and server-control actions check."""

from __future__ import annotations

from flasher.queue.errors import QueueUnavailableError
from flasher.queue.models import Lease
from flasher.queue.queue import TaskQueue
from flasher.task.fence import FenceState, LeaseLostError


class LeaseFence:
    """The fence of a task claimed from the queue: :meth:`check` asks Redis whether ``lease`` is still held.

    Raises :class:`~flasher.task.fence.LeaseLostError` when it is not (with the lease's details), and when Redis
    stays unreachable past its retry deadline (with a message only): a lease nobody can confirm must be treated as
    lost (it may expire meanwhile and go to another replica).
    """

    def __init__(self, queue: TaskQueue, lease: Lease) -> None:
        self.queue = queue
        self.lease = lease

    def check(self, *, min_remaining: float = 0.0) -> FenceState:
        """One round trip to Redis (:meth:`TaskQueue.check`); reports a cancel request."""
        try:
            state = self.queue.check(self.lease, min_remaining=min_remaining)
        except QueueUnavailableError as exc:
            raise LeaseLostError(f"cannot confirm the lease on task {self.lease.task_id}: {exc}") from exc
        return FenceState(cancel_requested=state.cancel_requested)
