"""A rollout's derived state in Redis: cap slots, failures per firmware, the tick lock.

Everything here can be rebuilt from the inventory (the members' task attributes), and is: a rollout's state
counts only once its ``built`` marker exists, which :meth:`RolloutSlots.rebuild` sets in the same atomic step
that adds every slot and failure the inventory shows. After Redis loses its data the marker is gone with the
rest, so no slot is reserved (and no member starts) until the state is rebuilt.

=====================================  ======  =========================================================
key (after ``{<key_prefix>}:rollout:<name>:``)  type    meaning
=====================================  ======  =========================================================
``built``                              string  the state was rebuilt from the inventory since Redis lost it
``held``                               hash    server id -> JSON list of the slot sets the member is in
``slots``                              set     server ids of members holding a slot (queued or active)
``cap:<group>=<value>``                set     ... in one value of a ``maxActivePer`` group
``reboot:<group>=<value>``             set     ... whose installs restart the host, per ``maxRebootsPer``
``g<generation>:failed:<firmware>``    set     server ids whose member of that generation failed it
``g<generation>:ended:<firmware>``     set     server ids whose member of that generation ended with it
``g<generation>:halted``               set     firmware seen halted in that generation (counted once)
``lock``                               string  the replica ticking the rollout (``SET NX PX``)
=====================================  ======  =========================================================

Every key shares the queue's hash tag (``{<key_prefix>}``), so the scripts are Redis Cluster-safe: each gets
the keys it touches in ``KEYS``. :meth:`RolloutSlots.reserve` checks every cap of a member and adds it to
every set in one script: all or nothing, so two replicas never pass a cap together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

import redis
from redis.cluster import RedisCluster

from flasher.queue import connection
from flasher.queue.keys import QueueKeys
from flasher.queue.models import as_text
from flasher.rollout.definition import CompiledPolicy
from flasher.rollout.members import FirmwareKey, Member

T = TypeVar("T")

# KEYS: built, held, set...; ARGV: server, held value, limit per set (-1: none)  ->  {'ok'|'held'|'unbuilt'} or
# {'full', index of the set, its count}
RESERVE: Final = r"""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'unbuilt'} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {'held'} end
for i = 3, #KEYS do
  local limit = tonumber(ARGV[i])
  if limit >= 0 then
    local n = redis.call('SCARD', KEYS[i])
    if n >= limit then return {'full', i - 3, n} end
  end
end
for i = 3, #KEYS do redis.call('SADD', KEYS[i], ARGV[1]) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {'ok'}
"""

# KEYS: held, the sets of the held value; ARGV: server, the held value read  ->  1 released, 0 none, -1 changed
RELEASE: Final = r"""
local value = redis.call('HGET', KEYS[1], ARGV[1])
if not value then return 0 end
if value ~= ARGV[2] then return -1 end
for i = 2, #KEYS do redis.call('SREM', KEYS[i], ARGV[1]) end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""

# KEYS: built, held, set...; ARGV[1]: JSON {"hold": [[server, [set index...], held value]...],
# "add": [[set index, server]...]}  ->  members added to held
REBUILD: Final = r"""
local plan = cjson.decode(ARGV[1])
local added = 0
for _, hold in ipairs(plan.hold) do
  local server = hold[1]
  if redis.call('HEXISTS', KEYS[2], server) == 0 then
    for _, index in ipairs(hold[2]) do redis.call('SADD', KEYS[index], server) end
    redis.call('HSET', KEYS[2], server, hold[3])
    added = added + 1
  end
end
for _, item in ipairs(plan.add) do redis.call('SADD', KEYS[item[1]], item[2]) end
redis.call('SET', KEYS[1], '1')
return added
"""

# KEYS: lock; ARGV: owner  ->  1 when the owner's lock was removed
UNLOCK: Final = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Reservation(StrEnum):
    """What :meth:`RolloutSlots.reserve` did."""

    OK = "ok"  # the member now holds its slots
    HELD = "held"  # it held them already
    FULL = "full"  # a cap is reached: nothing changed
    UNBUILT = "unbuilt"  # the state must be rebuilt from the inventory first: nothing changed


@dataclass(frozen=True)
class ReserveResult:
    """:class:`Reservation`, and for ``full`` the cap reached (``slot`` index into the member's slots, its
    ``count``)."""

    outcome: Reservation
    slot: int = -1
    count: int = 0


@dataclass(frozen=True)
class Slot:
    """One set a member holds a place in, with its limit (``None``: counted, not capped) and a label for messages
    (``max-active``, ``rack=r3``)."""

    key: str
    limit: int | None
    label: str


class RolloutSlots:
    """The Redis state of every rollout (module docstring), on the queue's Redis and key prefix.

    ``client`` is a redis-py client (a ``RedisCluster`` works too); calls hitting a connection problem are
    retried for ``retry_deadline`` seconds, then raise :class:`~flasher.queue.QueueUnavailableError`; a refused
    call raises :class:`~flasher.queue.QueueError`. Thread-safe.
    """

    def __init__(
        self, client: redis.Redis | RedisCluster, *, key_prefix: str = "flasher", retry_deadline: float = 30.0
    ) -> None:
        self.client = client
        self.retry_deadline = retry_deadline
        self._tag = "{" + QueueKeys(key_prefix).prefix + "}:rollout:"
        self._reserve = client.register_script(RESERVE)
        self._release = client.register_script(RELEASE)
        self._rebuild = client.register_script(REBUILD)
        self._unlock = client.register_script(UNLOCK)

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        return connection.call(f"rollout {operation}", fn, self.retry_deadline)

    # -- key names ------------------------------------------------------------------------------------------

    def key(self, rollout: str, *parts: str) -> str:
        """``{prefix}:rollout:<rollout>:<part>:...``."""
        return self._tag + ":".join((rollout, *parts))

    def failed_key(self, rollout: str, generation: int, firmware: FirmwareKey) -> str:
        """The set of servers whose member of ``generation`` failed ``firmware``."""
        return self.key(rollout, f"g{generation}", "failed", firmware.slug)

    def ended_key(self, rollout: str, generation: int, firmware: FirmwareKey) -> str:
        """The set of servers whose member of ``generation`` ended (success or failed) with ``firmware``."""
        return self.key(rollout, f"g{generation}", "ended", firmware.slug)

    def slots_of(self, rollout: str, policy: CompiledPolicy, member: Member) -> list[Slot]:
        """The sets ``member`` holds a place in while queued or active, with their limits: the rollout's
        (``maxActive``), one per ``maxActivePer`` cap and, when its installs restart the host, one per
        ``maxRebootsPer`` cap."""
        slots = [Slot(self.key(rollout, "slots"), policy.max_active, "max-active")]
        for cap in policy.caps:
            value = member.groups.get(cap.group.text, "")
            slots.append(Slot(self.key(rollout, "cap", f"{cap.group.text}={value}"), cap.limit, f"{cap.label}={value}"))
        if member.reboots:
            for cap in policy.reboot_caps:
                value = member.groups.get(cap.group.text, "")
                key = self.key(rollout, "reboot", f"{cap.group.text}={value}")
                slots.append(Slot(key, cap.limit, f"{cap.label}={value} host restarts"))
        return slots

    # -- slots ----------------------------------------------------------------------------------------------

    def is_built(self, rollout: str) -> bool:
        """Whether the rollout's state was rebuilt since Redis last lost its data."""
        return bool(self._call("built", lambda: self.client.exists(self.key(rollout, "built"))))

    def reserve(self, rollout: str, server_id: str, slots: Sequence[Slot]) -> ReserveResult:
        """Give ``server_id`` a place in every set of ``slots`` if none is at its limit; all or nothing."""
        keys = [self.key(rollout, "built"), self.key(rollout, "held"), *(s.key for s in slots)]
        held = json.dumps([s.key for s in slots])
        args: list[str | int] = [server_id, held, *(-1 if s.limit is None else s.limit for s in slots)]
        reply = self._call("reserve", lambda: self._reserve(keys=keys, args=args))
        outcome = Reservation(as_text(reply[0]))
        if outcome is Reservation.FULL:
            return ReserveResult(outcome, int(reply[1]), int(reply[2]))
        return ReserveResult(outcome)

    def holds(self, rollout: str, server_id: str) -> bool:
        """Whether ``server_id`` holds its slots."""
        return bool(self._call("holds", lambda: self.client.hexists(self.key(rollout, "held"), server_id)))

    def holders(self, rollout: str) -> list[str]:
        """Every server id holding slots."""
        found = self._call("holders", lambda: self.client.hkeys(self.key(rollout, "held")))
        return sorted(as_text(v) for v in found)

    def release(self, rollout: str, server_id: str) -> bool:
        """Give back every place ``server_id`` holds (idempotent); True when it held some."""
        held_key = self.key(rollout, "held")
        for _ in range(5):  # the held value changes only when the member is released and reserved again
            raw = self._call("release", lambda: self.client.hget(held_key, server_id))
            if raw is None:
                return False
            value = as_text(raw)
            keys = [held_key, *json.loads(value)]
            result = int(
                self._call("release", lambda k=keys, v=value: self._release(keys=k, args=[server_id, v]))  # type: ignore[misc]
            )
            if result >= 0:
                return result == 1
        return False

    def rebuild(
        self,
        rollout: str,
        holding: Iterable[tuple[str, Sequence[Slot]]],
        ends: Iterable[tuple[str, Sequence[str]]] = (),
    ) -> int:
        """Rebuild in one atomic step: every ``(server id, slots)`` of ``holding`` (members the inventory says are
        queued or active) takes its places unless it holds some already, every ``(server id, set keys)`` of
        ``ends`` is added to those sets (failures and ends), and the ``built`` marker is set. Only adds;
        returns how many members took places."""
        keys: dict[str, int] = {self.key(rollout, "built"): 1, self.key(rollout, "held"): 2}

        def index(key: str) -> int:
            return keys.setdefault(key, len(keys) + 1)

        plan: dict[str, list[Any]] = {"hold": [], "add": []}
        for server_id, slots in holding:
            plan["hold"].append([server_id, [index(s.key) for s in slots], json.dumps([s.key for s in slots])])
        for server_id, set_keys in ends:
            plan["add"] += [[index(key), server_id] for key in set_keys]
        ordered = sorted(keys, key=keys.__getitem__)
        argument = json.dumps(plan)
        return int(self._call("rebuild", lambda: self._rebuild(keys=ordered, args=[argument])))

    # -- failures -------------------------------------------------------------------------------------------

    def record_end(
        self,
        rollout: str,
        generation: int,
        server_id: str,
        firmware: Iterable[FirmwareKey],
        failed: Iterable[FirmwareKey],
    ) -> None:
        """Record that ``server_id``'s member of ``generation`` ended with ``firmware``, failing ``failed``."""
        ended = [self.ended_key(rollout, generation, key) for key in {*firmware, *failed}]
        failures = [self.failed_key(rollout, generation, key) for key in set(failed)]

        def write() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key in [*ended, *failures]:
                pipe.sadd(key, server_id)
            pipe.execute()

        if ended or failures:
            self._call("record end", write)

    def add_ends(self, ends: Iterable[tuple[str, Sequence[str]]]) -> None:
        """Add each ``(server id, set keys)`` to those sets (failures and ends the inventory shows; only adds)."""
        items = [(server_id, key) for server_id, keys in ends for key in keys]

        def write() -> None:
            pipe = self.client.pipeline(transaction=False)
            for server_id, key in items:
                pipe.sadd(key, server_id)
            pipe.execute()

        if items:
            self._call("add ends", write)

    def counts(
        self, rollout: str, generation: int, firmware: Sequence[FirmwareKey]
    ) -> dict[FirmwareKey, tuple[int, int]]:
        """``{firmware: (failures, ended)}`` of ``generation``."""

        def read() -> list[int]:
            pipe = self.client.pipeline(transaction=False)
            for key in firmware:
                pipe.scard(self.failed_key(rollout, generation, key))
                pipe.scard(self.ended_key(rollout, generation, key))
            return [int(n) for n in pipe.execute()]

        values = self._call("counts", read) if firmware else []
        return {key: (values[2 * i], values[2 * i + 1]) for i, key in enumerate(firmware)}

    def failed_servers(self, rollout: str, generation: int, firmware: FirmwareKey) -> list[str]:
        """The server ids whose member of ``generation`` failed ``firmware``."""
        found = self._call("failed", lambda: self.client.smembers(self.failed_key(rollout, generation, firmware)))
        return sorted(as_text(v) for v in found)

    def first_halt(self, rollout: str, generation: int, firmware: FirmwareKey) -> bool:
        """Note that ``firmware`` is halted in ``generation``; True the first time (for the halts counter)."""
        key = self.key(rollout, f"g{generation}", "halted")
        return bool(self._call("halted", lambda: self.client.sadd(key, firmware.slug)))

    # -- the tick lock --------------------------------------------------------------------------------------

    def lock(self, rollout: str, owner: str, seconds: float) -> bool:
        """Take the rollout's tick lock for ``seconds`` (``SET NX PX``); False when another replica holds it."""
        key = self.key(rollout, "lock")
        return bool(self._call("lock", lambda: self.client.set(key, owner, nx=True, px=max(1, int(seconds * 1000)))))

    def unlock(self, rollout: str, owner: str) -> None:
        """Give the lock back if ``owner`` still holds it."""
        self._call("unlock", lambda: self._unlock(keys=[self.key(rollout, "lock")], args=[owner]))


def slot_label(slots: Sequence[Slot], result: ReserveResult) -> str:
    """``cap rack=r3 2/2 active`` for a ``full`` reservation."""
    if result.outcome is not Reservation.FULL or not 0 <= result.slot < len(slots):
        return result.outcome.value
    slot = slots[result.slot]
    if slot.label.endswith("host restarts"):
        return f"cap {slot.label.removesuffix(' host restarts')} {result.count}/{slot.limit} host restarts"
    return f"cap {slot.label} {result.count}/{slot.limit} active"


def end_keys(slots: RolloutSlots, rollout: str, members: Iterable[Member]) -> list[tuple[str, list[str]]]:
    """For :meth:`RolloutSlots.rebuild`: the failure and end sets each ended member of ``members`` belongs to."""
    found = []
    for member in members:
        if not member.ended or member.status.value == "cancelled":
            continue
        keys = [slots.ended_key(rollout, member.generation, k) for k in {*member.firmware, *member.failed}]
        keys += [slots.failed_key(rollout, member.generation, k) for k in member.failed]
        if keys:
            found.append((member.server_id, keys))
    return found
