"""The Redis priority queue with leases and fencing tokens, shared by flasher replicas.

See :mod:`flasher.queue.queue` for the semantics and :mod:`flasher.queue.keys` for the data in Redis.
"""

from flasher.queue.errors import LeaseLostError, QueueError, QueueUnavailableError
from flasher.queue.fence import LeaseFence
from flasher.queue.models import (
    KINDS,
    AckAndClaim,
    CancelOutcome,
    EnqueueOutcome,
    EnqueueResult,
    EntryState,
    FailOutcome,
    Lease,
    LeaseState,
    QueueEntry,
    QueueSnapshot,
)
from flasher.queue.queue import TaskQueue

__all__ = [
    "KINDS",
    "AckAndClaim",
    "CancelOutcome",
    "EnqueueOutcome",
    "EnqueueResult",
    "EntryState",
    "FailOutcome",
    "Lease",
    "LeaseFence",
    "LeaseLostError",
    "LeaseState",
    "QueueEntry",
    "QueueError",
    "QueueSnapshot",
    "QueueUnavailableError",
    "TaskQueue",
]
