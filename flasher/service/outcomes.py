"""What the worker pool does with a task's lease once its runner returned: a pure decision, tested on its own.

==========================================  ==============  =================================================
runner's outcome                            lease action    status written by the pool
==========================================  ==============  =================================================
success, failed, cancelled, replaced        ack             none (the runner wrote it, or must not write)
retry or released, cancel requested         cancel          ``cancelled``, then ack
released (shutdown at a safe point)         release         ``queued``, then release (no attempt counted)
retry, attempts left                        requeue         ``queued``, then fail with retry (attempt counted,
                                                            claimable again after the queue's backoff)
retry, last attempt                         give up         ``failed`` with the reason, then fail for good
lost                                        none            none: the lease is someone else's now
==========================================  ==============  =================================================
"""

from __future__ import annotations

from enum import StrEnum

from flasher.task.run import Outcome


class LeaseAction(StrEnum):
    """What the pool does with the lease (see the module's table)."""

    ACK = "ack"
    CANCEL = "cancel"
    RELEASE = "release"
    REQUEUE = "requeue"
    GIVE_UP = "give_up"
    NONE = "none"


_ACKED = frozenset({Outcome.SUCCESS, Outcome.FAILED, Outcome.CANCELLED, Outcome.REPLACED})


def lease_action(outcome: Outcome, *, attempt: int, max_attempts: int, cancel_requested: bool) -> LeaseAction:
    """The lease action for a run that ended with ``outcome`` on its ``attempt``-th attempt (counting from 1) of
    ``max_attempts``; ``cancel_requested``: the operator asked to cancel while it ran."""
    if outcome is Outcome.LOST:
        return LeaseAction.NONE
    if outcome in _ACKED:
        return LeaseAction.ACK
    if cancel_requested:
        return LeaseAction.CANCEL
    if outcome is Outcome.RELEASED:
        return LeaseAction.RELEASE
    return LeaseAction.GIVE_UP if attempt >= max_attempts else LeaseAction.REQUEUE
