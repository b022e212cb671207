"""What the replicas' polls share: whose turn the two fleet-wide parts of a poll are, and the task counts they found.

Every replica polls (:mod:`flasher.service.poller`) to admit new requests. Two parts of a poll cost in proportion
to the fleet and give the same result whichever replica does them, so one replica at a time does each for all
(see the benchmarks page, "Scale": 4 replicas each doing both, 5,000 open tasks, cost 4 s of CPU a poll each):

* **The admitted tasks** (:data:`ADMITTED`): listing the ``queued`` and ``active`` tasks and reconciling each
  with the queue (re-enqueue what Redis lost, reclaim a stale ``active``, pass a cancel on), every poll.
* **The full poll** (:data:`FULL`): listing every flagged server, every ``service.full_poll_every``-th poll, to
  find attributes no status query can match and to count the ended tasks.

A turn is a string ``{p}:poll:<turn>`` holding the replica's id, with an expiry. A replica due for that part takes
the turn when it is free or already its own (renewing the expiry), and skips the part when another replica holds
it. The turn lapses :data:`TURN_PERIODS` periods after its holder's last renewal, so when the holder dies the next
replica due takes it over; a holder that stops gives it up at once.

The counts go in ``{p}:poll:counts:<turn>`` (JSON ``{"at": <epoch s>, "owner": <replica>, "counts":
{"<kind>|<status>": n}}``), so every replica's ``flasher_tasks`` gauge reports every status, not only the ones it
listed. They expire after :data:`COUNTS_KEEP_PERIODS` periods without a new count. Losing Redis loses only these:
the next poll of any replica takes the turns again, and without Redis every replica does both parts itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flasher.queue import connection

#: The turn of the full poll (every flagged server listed).
FULL = "full"
#: The turn of the admitted tasks (``queued`` and ``active`` listed and reconciled).
ADMITTED = "admitted"
TURNS = (FULL, ADMITTED)
#: Periods a turn stays with a replica after its last renewal (then any replica due may take it).
TURN_PERIODS = 2
#: Periods published counts stay readable without a new count.
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


def _check(turn: str) -> str:
    if turn not in TURNS:
        raise ValueError(f"turn: must be one of {', '.join(TURNS)} (got {turn!r})")
    return turn


class PollShare(connection.RedisPart):
    """The replicas' poll turns and counts in Redis (``client`` and ``keys`` of the queue; ``retry_deadline`` seconds
    of retries on connection problems, then :class:`~flasher.queue.errors.QueueUnavailableError`). ``turn`` is
    :data:`FULL` or :data:`ADMITTED` (else ``ValueError``)."""

    SCRIPTS = {"take_turn": _TAKE_TURN, "give_turn": _GIVE_TURN}

    def take(self, turn: str, owner: str, *, period: float) -> bool:
        """Whether replica ``owner``, due for ``turn``, does it: True when the turn was free or already its own (it
        now holds it for :data:`TURN_PERIODS` times ``period`` seconds), False when another replica holds it.
        ``period``: seconds between one replica's goes at that part of the poll."""
        keys, ttl = [self.keys.poll_turn(_check(turn))], str(max(1, int(period * TURN_PERIODS * 1000)))
        return bool(self._call(f"take_{turn}_turn", lambda: self.scripts["take_turn"](keys=keys, args=[owner, ttl])))

    def give(self, turn: str, owner: str, *, retry_deadline: float | None = None) -> bool:
        """Give ``turn`` up if replica ``owner`` holds it (a replica stopping: the next replica due takes it at once
        rather than after it lapses); True when it held it. ``retry_deadline``: seconds of retries on connection
        problems for this call (default the part's own; a stopping replica gives 0: the turn lapses by itself)."""
        keys = [self.keys.poll_turn(_check(turn))]
        return bool(
            self._call(
                f"give_{turn}_turn",
                lambda: self.scripts["give_turn"](keys=keys, args=[owner]),
                retry_deadline=retry_deadline,
            )
        )

    def put_counts(self, turn: str, owner: str, counts: Mapping[tuple[str, str], int], *, period: float) -> None:
        """Publish what ``turn``'s listing counted: ``counts`` maps ``(kind, status)`` to a number of task attributes
        (``status`` ``""`` for a new request, ``"invalid"`` for one that is not a string)."""
        by_key = {f"{kind}|{status}": n for (kind, status), n in counts.items()}
        value = json.dumps({"at": self._clock(), "owner": owner, "counts": by_key})
        ttl = max(1, int(period * COUNTS_KEEP_PERIODS * 1000))
        key = self.keys.poll_counts(_check(turn))
        self._call(f"put_{turn}_counts", lambda: self.client.set(key, value, px=ttl))

    def counts(self, turn: str) -> dict[tuple[str, str], int] | None:
        """The counts ``turn``'s last listing published (as :meth:`put_counts` took them), or ``None`` when there
        are none readable (none yet, expired, or not the JSON this module writes)."""
        key = self.keys.poll_counts(_check(turn))
        raw: Any = self._call(f"{turn}_counts", lambda: self.client.get(key))
        if raw is None:
            return None
        try:
            counts = json.loads(raw)["counts"]
            return {(key.partition("|")[0], key.partition("|")[2]): int(n) for key, n in counts.items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
