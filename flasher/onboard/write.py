"""Writing a :class:`~flasher.onboard.collect.Collection` into the inventory, idempotently.

What is written (alloy's namespaces, so flasher's planner and metal-toolbox's tools read it unchanged):

* ``sh.hollow.alloy.server_vendor_attributes``: vendor, model, serial (other keys kept);
* ``sh.hollow.alloy.server_metadata_attributes``: the System's UUID, BIOS version, power state and boot settings
  (strings, as alloy's server metadata);
* components, typed with the planner's slugs (component types created when missing), each with its
  ``sh.hollow.alloy.outofband.metadata`` attribute and its ``sh.hollow.alloy.outofband.status`` versioned
  attribute (``firmware.installed``);
* ``sh.hollow.flasher.mac.<12 hex digits>``: one server attribute per MAC (``{"mac", "slug", "slot", "serial"}``),
  so that netboot finds a server by MAC with one query on an exact namespace (:mod:`flasher.netboot.lookup`);
* ``sh.hollow.flasher.collection``: a server versioned attribute with the collection's digest: an unchanged
  server posts the same data, which only bumps its ``tally`` (and ``last_reported_at``).

Idempotent: a second collection of an unchanged server writes nothing but that tally. Components are matched to
the inventory's by type and serial (serials the BMC reported), then by type and slot (NICs renumbered across
reboots keep their serial; components without a serial keep their slot). A matched component whose fields,
metadata or status changed is updated (``PUT``: its fields and metadata replaced, a new status version only when
the status changed); a new one is created. A component that vanished is removed: the reference API deletes only
*all* of a server's components at once, so the others are then re-created with their uuids and their current
data (their older status versions, and attributes other tools wrote on them, are lost; this happens only when
hardware was removed).
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flasher.constants import (
    COLLECTION_NAMESPACE,
    MAC_NAMESPACE_PREFIX,
    OUTOFBAND_METADATA_NAMESPACE,
    OUTOFBAND_STATUS_NAMESPACE,
    SERVER_VENDOR_NAMESPACE,
)
from flasher.inventory.client import InventoryClient
from flasher.inventory.models import Component, ComponentType
from flasher.netboot.lookup import mac_namespace
from flasher.onboard.collect import TYPE_NAMES, CollectedComponent, Collection

#: Alloy's namespace for the server's other facts (``internal/store/serverservice/consts.go``).
SERVER_METADATA_NAMESPACE = "sh.hollow.alloy.server_metadata_attributes"


@dataclass
class WriteReport:
    """What a write changed: component labels (``nic CSC125J87D``) added, updated, removed; unchanged count;
    whether the server's attributes changed."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    attributes_changed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when anything but the collection's tally was written."""
        return bool(self.added or self.updated or self.removed or self.attributes_changed)

    def summary(self) -> str:
        """One line: ``12 components: 2 added, 1 updated, 0 removed, 9 unchanged``."""
        total = len(self.added) + len(self.updated) + self.unchanged
        text = (
            f"{total} components: {len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.removed)} removed, {self.unchanged} unchanged"
        )
        if self.attributes_changed:
            text += f"; attributes written: {', '.join(self.attributes_changed)}"
        return text


def _label(slug: str, serial: str) -> str:
    return f"{slug} {serial}"


def _attribute_data(component: Component, namespace: str) -> dict[str, Any] | None:
    attribute = next((a for a in component.attributes if a.namespace == namespace), None)
    return attribute.as_object() if attribute is not None else None


def _status_data(component: Component) -> dict[str, Any] | None:
    newest = component.versioned_attribute(OUTOFBAND_STATUS_NAMESPACE)
    return newest.as_object() if newest is not None else None


def match(
    collected: list[CollectedComponent], existing: list[Component]
) -> tuple[list[tuple[CollectedComponent, Component]], list[CollectedComponent], list[Component]]:
    """Pair collected components with the inventory's: ``(pairs, new, vanished)``.

    First by type and serial (case-insensitive; only serials the BMC reported, on both sides), then by type and
    slot (the ``slot`` key of the inventory component's ``sh.hollow.alloy.outofband.metadata``), then, for a type
    whose components carry no slot (written by another tool), by type and serial as written; last, a type with
    exactly one component left on each side pairs them (the BMC, the BIOS: alloy writes serial ``0``, a seed may
    have written the server's serial), unless both serials are ones the BMC reported: then it is another device.
    """
    pairs: list[tuple[CollectedComponent, Component]] = []
    left = list(collected)
    pool = list(existing)

    def placeholder(component: Component) -> bool:
        metadata = _attribute_data(component, OUTOFBAND_METADATA_NAMESPACE) or {}
        return bool(metadata.get("serial_placeholder"))

    def slot(component: Component) -> str | None:
        metadata = _attribute_data(component, OUTOFBAND_METADATA_NAMESPACE) or {}
        value = metadata.get("slot")
        return value if isinstance(value, str) else None

    def reported(component: Component) -> bool:
        """A serial onboarding wrote as the BMC reported it."""
        return slot(component) is not None and not placeholder(component)

    passes: tuple[Callable[[CollectedComponent, Component], bool], ...] = (
        lambda c, e: c.serial_reported and not placeholder(e) and c.serial.lower() == e.serial.lower(),
        lambda c, e: slot(e) is not None and slot(e) == c.slot,
        lambda c, e: slot(e) is None and c.serial.lower() == e.serial.lower(),
    )
    for same in passes:
        for item in list(left):
            fits = [e for e in pool if e.component_type_slug == item.slug and same(item, e)]
            if len(fits) == 1:
                pairs.append((item, fits[0]))
                left.remove(item)
                pool.remove(fits[0])
    for slug in {item.slug for item in left}:
        mine = [item for item in left if item.slug == slug]
        theirs = [e for e in pool if e.component_type_slug == slug]
        # ... unless both serials are real and differ: that is another device (a NIC replaced)
        if len(mine) == 1 and len(theirs) == 1 and not (mine[0].serial_reported and reported(theirs[0])):
            pairs.append((mine[0], theirs[0]))
            left.remove(mine[0])
            pool.remove(theirs[0])
    return pairs, left, pool


class InventoryWriter:
    """Writes collections for one inventory (``client``); component types are read once and created as needed."""

    def __init__(self, client: InventoryClient) -> None:
        self.client = client
        self._types: dict[str, ComponentType] | None = None

    def _type(self, slug: str) -> ComponentType:
        if self._types is None:
            self._types = {t.slug: t for t in self.client.list_component_types()}
        if slug not in self._types:
            self.client.create_component_type(TYPE_NAMES.get(slug, slug), slug)
            self._types = {t.slug: t for t in self.client.list_component_types()}
            if slug not in self._types:
                raise ValueError(f"component type {slug!r} was created but the inventory does not list it")
        return self._types[slug]

    def _body(
        self, item: CollectedComponent, uuid: str, server: str, *, metadata: bool, status: bool
    ) -> dict[str, Any]:
        kind = self._type(item.slug)
        body: dict[str, Any] = {
            "uuid": uuid,
            "server_uuid": server,
            "name": item.name,
            "vendor": item.vendor,
            "model": item.model,
            "serial": item.serial,
            "component_type_id": kind.id,
            "component_type_name": kind.name,
            "component_type_slug": kind.slug,
            "attributes": [],
            "versioned_attributes": [],
        }
        if metadata:
            body["attributes"].append({"namespace": OUTOFBAND_METADATA_NAMESPACE, "data": item.metadata_data()})
        if status and item.status_data():
            body["versioned_attributes"].append({"namespace": OUTOFBAND_STATUS_NAMESPACE, "data": item.status_data()})
        return body

    def write(
        self, server_uuid: str, collection: Collection, *, check: Callable[[], object] = lambda: None
    ) -> WriteReport:
        """Write ``collection`` for server ``server_uuid`` (rules in the module docstring); ``check()`` runs
        before every write (a task's fence check). Raises the inventory client's errors."""
        report = WriteReport()
        server = self.client.get_server(server_uuid)
        self._server_attributes(server_uuid, server.attributes, collection, report, check)
        existing = self.client.list_components(server_uuid)
        pairs, new, vanished = match(collection.components, existing)
        updates: list[dict[str, Any]] = []
        for item, current in pairs:
            fields_changed = (item.name, item.vendor, item.model, item.serial, item.slug) != (
                current.name,
                current.vendor,
                current.model,
                current.serial,
                current.component_type_slug,
            )
            metadata_changed = _attribute_data(current, OUTOFBAND_METADATA_NAMESPACE) != item.metadata_data()
            status_changed = bool(item.status_data()) and _status_data(current) != item.status_data()
            if fields_changed or metadata_changed or status_changed:
                updates.append(
                    self._body(item, current.uuid, server_uuid, metadata=metadata_changed, status=status_changed)
                )
                report.updated.append(_label(item.slug, item.serial))
            else:
                report.unchanged += 1
        creates = [self._body(i, str(uuidlib.uuid4()), server_uuid, metadata=True, status=True) for i in new]
        report.added = [_label(i.slug, i.serial) for i in new]
        if vanished:
            # No per-component delete in the API: delete all, then re-create what is still there, same uuids.
            report.removed = [_label(c.component_type_slug, c.serial) for c in vanished]
            check()
            self.client.delete_components(server_uuid)
            kept = [self._body(i, c.uuid, server_uuid, metadata=True, status=True) for i, c in pairs]
            check()
            self.client.create_components(server_uuid, kept + creates)
        else:
            if updates:
                check()
                self.client.update_components(server_uuid, updates)
            if creates:
                check()
                self.client.create_components(server_uuid, creates)
        check()
        self.client.create_versioned_attribute(
            server_uuid,
            COLLECTION_NAMESPACE,
            {"digest": collection.digest(), "components": len(collection.components)},
        )
        return report

    def _server_attributes(
        self,
        server_uuid: str,
        attributes: list[Any],
        collection: Collection,
        report: WriteReport,
        check: Callable[[], object],
    ) -> None:
        current = {a.namespace: a.as_object() for a in attributes}
        wanted: dict[str, dict[str, Any]] = {}
        vendor = dict(current.get(SERVER_VENDOR_NAMESPACE, {}))
        vendor.update(collection.vendor_attributes())
        wanted[SERVER_VENDOR_NAMESPACE] = vendor
        metadata = {
            key: value
            for key, value in (
                ("uuid", collection.uuid),
                ("bios_version", collection.bios_version),
                ("power_state", collection.power_state),
                *((f"boot_{k}", str(v)) for k, v in collection.boot.items()),
            )
            if value
        }
        if metadata:
            wanted[SERVER_METADATA_NAMESPACE] = {**current.get(SERVER_METADATA_NAMESPACE, {}), **metadata}
        for mac, where in collection.macs().items():
            wanted[mac_namespace(mac)] = {"mac": mac, **where}
        for namespace, data in wanted.items():
            if current.get(namespace) != data:
                check()
                self.client.upsert_attribute(server_uuid, namespace, data)
                report.attributes_changed.append(namespace)
        for namespace in current:
            if namespace.startswith(MAC_NAMESPACE_PREFIX + ".") and namespace not in wanted:
                check()
                self.client.delete_attribute(server_uuid, namespace)
                report.attributes_changed.append(f"-{namespace}")
