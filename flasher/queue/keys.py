"""The Redis keys of the queue. Every key starts with ``{<key_prefix>}:`` (default ``{flasher}:``): the braces
make the prefix a hash tag, so all keys live in one Redis Cluster slot and every script can touch all of them.
Scripts receive every key they touch through ``KEYS``; none builds a key name.

======================  ======  ==========================================================================
key                     type    meaning
======================  ======  ==========================================================================
``{p}:meta``            hash    ``epoch``: random id of this data set, made by the first claim after Redis
                                lost its data; ``token``: last fencing token; ``seq``: last enqueue order;
                                ``front``: last (negative) order given to a task released to the front
``{p}:tasks``           hash    server id -> JSON record of its one task: ``server_id``, ``kind``,
                                ``task_id``, ``priority``, ``attempts``, ``state`` (``queued``, ``delayed``
                                or ``dead``; a task in ``holders`` is in flight whatever it says),
                                ``order``, ``enqueued_at``, ``ready_at``, ``died_at`` (Redis ms),
                                ``reason``
``{p}:holders``         hash    server id -> ``"<token> <cancel 0|1> <owner>"`` of an in-flight task
``{p}:leases``          zset    server id -> Redis ms at which its lease expires (in-flight tasks)
``{p}:done``            hash    server id -> ``"<epoch> <token> <op> <outcome>"`` of the lease that ended
                                last (ack, fail, release), so a call retried after a lost reply is
                                recognised; removed when the server is enqueued again
``{p}:delayed``         zset    server id -> Redis ms from which a retried task may be claimed again
``{p}:dead``            zset    server id -> Redis ms at which its task died (kept until forgotten)
``{p}:dead:fresh``      set     server ids that died since the last ``reap`` (which returns and empties it)
``{p}:ready:<kind>``    zset    server id -> claim score of a claimable task of that kind:
                                ``(3 - priority) * 2**50 + 2**49 + order`` (lowest claimed first)
``{p}:admitting:<id>``  string  the replica admitting the new request with task id ``<id>`` (SET NX PX):
                                shares admission work among replicas; expires by itself
``{p}:successors``      hash    ``<server>|<kind>`` -> JSON: a request that replaced a running task, with the
                                acknowledgement admission wrote (:mod:`flasher.queue.handover`)
``{p}:ended:<s>|<k>``   list    JSON lines: how the replaced tasks of server ``s`` and kind ``k`` ended, for
                                the next claim's messages (:mod:`flasher.queue.handover`); expires by itself
``{p}:poll:<turn>``     string  the replica whose turn that part of the poll is (``full``, ``admitted``: one
                                replica does it for all, :mod:`flasher.queue.pollshare`); expires by itself
``{p}:poll:counts:<t>`` string  JSON: the task counts turn ``t``'s last listing found; expires by itself
======================  ======  ==========================================================================

Lease scripts (check, extend, ack) receive only the first five keys (:attr:`QueueKeys.lease`); every other
script receives all of them (:attr:`QueueKeys.all`), in the order of this table.
"""

from __future__ import annotations

import re

from flasher.queue.models import KINDS

_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]+$")


class QueueKeys:
    """The key names for ``prefix``; raises ``ValueError`` naming the prefix when it could break the hash tag."""

    def __init__(self, prefix: str = "flasher") -> None:
        if not _PREFIX.match(prefix):
            raise ValueError(f"key_prefix: must match {_PREFIX.pattern} (got {prefix!r})")
        tag = "{" + prefix + "}:"
        self.prefix = prefix
        self.meta = tag + "meta"
        self.tasks = tag + "tasks"
        self.holders = tag + "holders"
        self.leases = tag + "leases"
        self.done = tag + "done"
        self.delayed = tag + "delayed"
        self.dead = tag + "dead"
        self.fresh_dead = tag + "dead:fresh"
        self.successors = tag + "successors"  # not in `all`: no script touches it
        self._ready = {kind: f"{tag}ready:{kind}" for kind in KINDS}
        #: The keys of the lease scripts, in their order in ``KEYS``.
        self.lease: tuple[str, ...] = (self.meta, self.tasks, self.holders, self.leases, self.done)
        #: Every key, in the order the other scripts expect them in ``KEYS``.
        self.all: tuple[str, ...] = (
            *self.lease,
            self.delayed,
            self.dead,
            self.fresh_dead,
            *self._ready.values(),
        )

    def admitting(self, task_id: str) -> str:
        """The admission claim of the new request ``task_id`` (not part of :attr:`all`: no script touches it)."""
        return f"{{{self.prefix}}}:admitting:{task_id}"

    def poll_turn(self, turn: str) -> str:
        """Whose turn part ``turn`` of the poll is (not part of :attr:`all`: no queue script touches it)."""
        return f"{{{self.prefix}}}:poll:{turn}"

    def poll_counts(self, turn: str) -> str:
        """The task counts part ``turn`` of the poll published (not part of :attr:`all`)."""
        return f"{{{self.prefix}}}:poll:counts:{turn}"

    def ended_notes(self, server_id: str, kind: str) -> str:
        """The end notes of server ``server_id``'s replaced ``kind`` tasks (not part of :attr:`all`)."""
        return f"{{{self.prefix}}}:ended:{server_id}|{kind}"

    def ready(self, kind: str) -> str:
        """The claimable-task zset of ``kind`` (one of :data:`~flasher.queue.models.KINDS`)."""
        return self._ready[kind]
