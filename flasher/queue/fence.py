"""A queue lease as a :class:`flasher.fencing.Fence`: what install steps and server-control actions check."""

from __future__ import annotations

from flasher.fencing import FenceState
from flasher.queue.models import Lease
from flasher.queue.queue import TaskQueue


class LeaseFence:
    """The fence of a task claimed from the queue: :meth:`check` asks Redis whether ``lease`` is still held.

    Raises :class:`~flasher.queue.errors.LeaseLost` (a :class:`flasher.fencing.LeaseLostError`) when it is not.
    """

    def __init__(self, queue: TaskQueue, lease: Lease) -> None:
        self.queue = queue
        self.lease = lease

    def check(self, *, min_remaining: float = 0.0) -> FenceState:
        """One round trip to Redis (:meth:`TaskQueue.check`); reports a cancel request."""
        state = self.queue.check(self.lease, min_remaining=min_remaining)
        return FenceState(cancel_requested=state.cancel_requested)
