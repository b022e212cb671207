"""A queue lease as a :class:`flasher.fencing.Fence`: what install steps and server-control actions check."""

from __future__ import annotations

from flasher.fencing import FenceState, LeaseLostError
from flasher.queue.errors import QueueUnavailable
from flasher.queue.models import Lease
from flasher.queue.queue import TaskQueue


class LeaseFence:
    """The fence of a task claimed from the queue: :meth:`check` asks Redis whether ``lease`` is still held.

    Raises :class:`~flasher.queue.errors.LeaseLost` (a :class:`flasher.fencing.LeaseLostError`) when it is not,
    and a plain :class:`~flasher.fencing.LeaseLostError` when Redis stays unreachable past its retry deadline:
    a lease nobody can confirm must be treated as lost (it may expire meanwhile and go to another replica).
    """

    def __init__(self, queue: TaskQueue, lease: Lease) -> None:
        self.queue = queue
        self.lease = lease

    def check(self, *, min_remaining: float = 0.0) -> FenceState:
        """One round trip to Redis (:meth:`TaskQueue.check`); reports a cancel request."""
        try:
            state = self.queue.check(self.lease, min_remaining=min_remaining)
        except QueueUnavailable as exc:
            raise LeaseLostError(f"cannot confirm the lease on task {self.lease.task_id}: {exc}") from exc
        return FenceState(cancel_requested=state.cancel_requested)
