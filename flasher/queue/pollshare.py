"""What the replicas' polls share: whose turn the full poll is, and the task counts it found.

A poll lists only open tasks (:mod:`flasher.service.poller`); now and then one lists every flagged server, to find
attributes no status query can match and to count the ended tasks. That full listing costs in proportion to the
whole inventory (20,000 servers: 200 pages, seconds of CPU in the replica and in the inventory; see the benchmarks
page, "Scale"), the same whichever replica does it, so one replica a period does it for all:

* ``{p}:poll:full`` (string: the replica's id, with an expiry): the replica that holds it runs the full polls,
  every ``service.full_poll_every``-th of its polls, renewing it each time; the others skip theirs. It expires
  :data:`TURN_PERIODS` periods after the holder's last full poll, so when the holder dies the next replica due
  for a full poll takes it over; a holder that stops gives it up at once.
* ``{p}:poll:counts`` (string, JSON ``{"at": <epoch s>, "owner": <replica>, "counts": {"<kind>|<status>": n}}``):
  what that full poll counted, so every replica's ``flasher_tasks`` gauge reports the ended tasks, not only the
  one that listed them. It expires after :data:`COUNTS_KEEP_PERIODS` periods without a full poll.

Losing Redis loses only these: the next poll of any replica takes the turn again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import redis
from redis.cluster import RedisCluster

from flasher.queue import connection
from flasher.queue.keys import QueueKeys

T = TypeVar("T")

#: Full-poll periods the turn stays with a replica after its last full poll (then any replica may take it).
TURN_PERIODS = 2
#: Full-poll periods the published counts stay readable without a new full poll.
COUNTS_KEEP_PERIODS = 3

# Take the turn when it is free or already ours, and (re)set its expiry; 1 when this replica holds it now.
_TAKE_TURN = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# Give the turn up if it is ours; 1 when it was.
_GIVE_TURN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class PollShare:
    """The full-poll turn and its counts in Redis (``client`` and ``keys`` of the queue; ``retry_deadline`` seconds
    of retries on connection problems, then :class:`~flasher.queue.errors.QueueUnavailableError`)."""

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        keys: QueueKeys,
        *,
        retry_deadline: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.keys = keys
        self.retry_deadline = retry_deadline
        self._clock = clock
        self._take_turn = client.register_script(_TAKE_TURN)
        self._give_turn = client.register_script(_GIVE_TURN)

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        return connection.call(operation, fn, self.retry_deadline)

    def take_full_poll(self, owner: str, *, period: float) -> bool:
        """Whether replica ``owner``, due for a full poll, runs it: True when the turn was free or already its own
        (it now holds it for :data:`TURN_PERIODS` times ``period`` seconds), False when another replica holds it.
        ``period``: seconds between one replica's full polls (``full_poll_every`` times ``poll_interval``)."""
        ttl = str(max(1, int(period * TURN_PERIODS * 1000)))
        keys = [self.keys.poll_full]
        return bool(self._call("take_full_poll", lambda: self._take_turn(keys=keys, args=[owner, ttl])))

    def give_full_poll(self, owner: str) -> bool:
        """Give up the turn if replica ``owner`` holds it (a replica stopping: the next replica due for a full poll
        takes it at once rather than after it expires); True when it held it."""
        keys = [self.keys.poll_full]
        return bool(self._call("give_full_poll", lambda: self._give_turn(keys=keys, args=[owner])))

    def put_counts(self, owner: str, counts: Mapping[tuple[str, str], int], *, period: float) -> None:
        """Publish what a full poll counted: ``counts`` maps ``(kind, status)`` to a number of task attributes
        (``status`` ``""`` for a new request, ``"invalid"`` for one that is not a string)."""
        by_key = {f"{kind}|{status}": n for (kind, status), n in counts.items()}
        value = json.dumps({"at": self._clock(), "owner": owner, "counts": by_key})
        ttl = max(1, int(period * COUNTS_KEEP_PERIODS * 1000))
        self._call("put_task_counts", lambda: self.client.set(self.keys.poll_counts, value, px=ttl))

    def counts(self) -> dict[tuple[str, str], int] | None:
        """The counts of the last full poll of any replica (as :meth:`put_counts` took them), or ``None`` when there
        is none readable (none yet, expired, or not the JSON this module writes)."""
        raw: Any = self._call("task_counts", lambda: self.client.get(self.keys.poll_counts))
        if raw is None:
            return None
        try:
            counts = json.loads(raw)["counts"]
            return {(key.partition("|")[0], key.partition("|")[2]): int(n) for key, n in counts.items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
