"""Collected components paired with the inventory's (flasher.onboard.write.match)."""

from __future__ import annotations

from typing import Any

from flasher.constants import OUTOFBAND_METADATA_NAMESPACE
from flasher.inventory.models import Attributes, Component
from flasher.onboard.collect import CollectedComponent
from flasher.onboard.write import match


def collected(slug: str, serial: str, slot: str, *, reported: bool = True) -> CollectedComponent:
    return CollectedComponent(
        slug=slug, vendor="v", model="m", serial=serial, slot=slot, uri=f"/x/{slot}", serial_reported=reported
    )


def existing(uuid: str, slug: str, serial: str, slot: str | None = None, **metadata: Any) -> Component:
    attributes = []
    if slot is not None:
        attributes.append(Attributes(namespace=OUTOFBAND_METADATA_NAMESPACE, data={"slot": slot, **metadata}))
    return Component(uuid=uuid, serial=serial, component_type_slug=slug, attributes=attributes)


def test_serials_first_then_slots_then_the_only_one_of_a_type() -> None:
    nic_a = collected("nic", "NIC-A", "NetworkAdapters/2")  # renumbered: was slot 1
    nic_new = collected("nic", "NIC-C", "NetworkAdapters/3")
    dimm = collected("physicalmemory", "0", "Memory/A1", reported=False)
    bmc = collected("bmc", "0", "Managers/1", reported=False)
    pairs, new, vanished = match(
        [nic_a, nic_new, dimm, bmc],
        [
            existing("u1", "nic", "NIC-A", "NetworkAdapters/1"),
            existing("u2", "nic", "NIC-B", "NetworkAdapters/2"),
            existing("u3", "physicalmemory", "1", "Memory/A1", serial_placeholder=True),
            existing("u4", "bmc", "CN7X01"),  # seeded with the server's serial, no metadata
        ],
    )
    assert {(c.serial, e.uuid) for c, e in pairs} == {("NIC-A", "u1"), ("0", "u3"), ("0", "u4")}
    assert new == [nic_new]
    assert [e.uuid for e in vanished] == ["u2"]


def test_a_placeholder_serial_never_matches_by_serial() -> None:
    dimm = collected("physicalmemory", "0", "Memory/B1", reported=False)
    pairs, new, vanished = match(
        [dimm, collected("physicalmemory", "1", "Memory/B2", reported=False)],
        [existing("u1", "physicalmemory", "0", "Memory/A1", serial_placeholder=True)],
    )
    assert pairs == [] and len(new) == 2 and [e.uuid for e in vanished] == ["u1"]
