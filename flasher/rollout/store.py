"""Where a rollout's record lives in the inventory: a firmware set named ``flasher-rollout/<name>``.

Serverservice has no rollout object. The record (definition and control state, :class:`RolloutRecord`) must be
one object every replica reads at each tick and an operator changes with one write, that survives Redis and
every replica, is listable with a filter, and is tied to no server. A firmware set is: named (the name is
unique: a second rollout of one name is refused by the inventory itself), it carries attributes
(``sh.hollow.flasher.rollout`` holds the record), ``GET /server-component-firmware-sets?attr=...`` filters on
them (the controller lists active rollouts with ``attr=sh.hollow.flasher.rollout~phase~eq~active``), and
``PUT`` replaces its attributes. ResolveFirmware never picks it (it has no ``sh.hollow.firmware_set.labels``),
and ``flasher inventory firmware-sets`` does not list it.

The reference server refuses a set without firmware, so the record's set holds the firmware the rollout targets
(its baseline set's, or for ``--resolve`` those of the sets its members resolve to, one per (vendor, component,
version): the server's uniqueness rule). That list is for people reading the inventory: members install what
their own plans say.

Alternatives weighed: a pseudo-server carrying the record would show up in every fleet tool as a server with no
BMC; keeping the definition in every member's attribute would make a pause one write per member, not one.

Writes are read-modify-write: :meth:`RolloutStore.save` re-reads the record first and refuses
(:class:`RolloutConflictError`) when it changed since it was read, so two operators (or an operator and the
controller closing the rollout) do not overwrite each other's change; the window left is one round trip, as for
task attributes (Serverservice has no compare-and-swap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from flasher.constants import ROLLOUT_NAMESPACE, ROLLOUT_RECORD_PREFIX
from flasher.inventory.errors import ConflictError, InventoryError, NotFoundError
from flasher.inventory.filters import attr_filter
from flasher.inventory.models import FirmwareSet, FirmwareVersion
from flasher.rollout.definition import RolloutPhase, RolloutRecord, RolloutSpecError, check_name, record_name


class RolloutError(Exception):
    """A rollout operation that cannot be done; the message says why."""


class RolloutNotFoundError(RolloutError, LookupError):
    """No rollout of that name."""


class RolloutExistsError(RolloutError):
    """A rollout of that name exists already."""


class RolloutConflictError(RolloutError):
    """The record changed between the read and the write: read it again and retry."""


class RecordInventory(Protocol):
    """The inventory calls the store makes (:class:`~flasher.inventory.client.InventoryClient` has them)."""

    def list_firmware_sets(
        self, name: str | None = None, labels: Mapping[str, str] | None = None, attr: Sequence[str] = ()
    ) -> list[FirmwareSet]: ...

    def create_firmware_set(
        self,
        name: str,
        firmware_uuids: Sequence[str],
        labels: Mapping[str, str] | None = None,
        attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> str: ...

    def replace_firmware_set_attributes(
        self, uuid: str, name: str, attributes: Mapping[str, Mapping[str, Any]]
    ) -> None: ...


@dataclass(frozen=True)
class StoredRollout:
    """A record as read: the set's ``uuid``, the ``record``, and the set's ``firmware`` (what the rollout targets)."""

    uuid: str
    record: RolloutRecord
    firmware: tuple[FirmwareVersion, ...] = ()

    @property
    def name(self) -> str:
        return self.record.name


def _stored(fw_set: FirmwareSet) -> StoredRollout:
    attribute = fw_set.attribute(ROLLOUT_NAMESPACE)
    if attribute is None or fw_set.uuid is None:
        raise RolloutSpecError([f"firmware set {fw_set.name!r} holds no rollout record ({ROLLOUT_NAMESPACE})"])
    return StoredRollout(fw_set.uuid, RolloutRecord.from_data(attribute.data), tuple(fw_set.component_firmware))


class RolloutStore:
    """Reads and writes rollout records through ``inventory`` (inventory errors propagate)."""

    def __init__(self, inventory: RecordInventory) -> None:
        self.inventory = inventory

    def get(self, name: str) -> StoredRollout:
        """The rollout ``name``; :class:`RolloutNotFoundError` when there is none, :class:`RolloutSpecError` when
        its record is not valid."""
        check_name(name)
        wanted = record_name(name)
        found = [s for s in self.inventory.list_firmware_sets(name=wanted) if s.name == wanted]
        if not found:
            raise RolloutNotFoundError(f"no rollout named {name!r} (no firmware set {wanted!r} in the inventory)")
        return _stored(found[0])

    def list(self, *, active_only: bool = False) -> tuple[list[StoredRollout], list[str]]:
        """Every rollout (``active_only``: those the controller still ticks), oldest first, and one line per record
        that could not be read."""
        attr = (
            [attr_filter(ROLLOUT_NAMESPACE, "phase", "eq", RolloutPhase.ACTIVE.value)]
            if active_only
            else [ROLLOUT_NAMESPACE]
        )
        rollouts, problems = [], []
        for fw_set in self.inventory.list_firmware_sets(attr=attr):
            if not fw_set.name.startswith(ROLLOUT_RECORD_PREFIX):
                continue
            try:
                rollouts.append(_stored(fw_set))
            except RolloutSpecError as exc:
                problems.append(f"rollout record {fw_set.name!r}: {exc}")
        rollouts.sort(key=lambda r: (r.record.created_at is None, r.record.created_at, r.name))
        return rollouts, problems

    def create(self, record: RolloutRecord, firmware_uuids: Sequence[str]) -> StoredRollout:
        """Write a new record; :class:`RolloutExistsError` when the name is taken."""
        if not firmware_uuids:
            raise RolloutError("the rollout targets no firmware (the inventory refuses a record set without any)")
        try:
            uuid = self.inventory.create_firmware_set(
                record_name(record.name), firmware_uuids, attributes={ROLLOUT_NAMESPACE: record.to_data()}
            )
        except ConflictError:
            raise RolloutExistsError(f"a rollout named {record.name!r} exists already") from None
        except InventoryError as exc:
            if "duplicate key" in str(exc):
                raise RolloutExistsError(f"a rollout named {record.name!r} exists already") from None
            raise
        return StoredRollout(uuid, record)

    def save(self, stored: StoredRollout, record: RolloutRecord) -> StoredRollout:
        """Replace ``stored``'s record with ``record`` if it is still what was read; else
        :class:`RolloutConflictError` (nothing written)."""
        try:
            current = self.get(stored.name)
        except RolloutNotFoundError:
            raise RolloutConflictError(f"rollout {stored.name!r} was deleted meanwhile") from None
        if current.uuid != stored.uuid or current.record != stored.record:
            raise RolloutConflictError(
                f"rollout {stored.name!r} changed since it was read (by {current.record.updated_by or '?'});"
                " read it again"
            )
        try:
            self.inventory.replace_firmware_set_attributes(
                stored.uuid, record_name(record.name), {ROLLOUT_NAMESPACE: record.to_data()}
            )
        except NotFoundError:
            raise RolloutConflictError(f"rollout {stored.name!r} was deleted meanwhile") from None
        return StoredRollout(stored.uuid, record, stored.firmware)
