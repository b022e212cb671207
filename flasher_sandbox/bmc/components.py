"""Components at run time: the configured component plus its Redfish ids, URIs and current version."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass

from flasher_sandbox.bmc.config import ComponentSpec
from flasher_sandbox.bmc.shapes import REDFISH, Related, Shape

FIRMWARE_INVENTORY = f"{REDFISH}/UpdateService/FirmwareInventory"


@dataclass
class Component:
    """One component with firmware. ``version`` changes when an install succeeds.

    ``member_id`` is the FirmwareInventory member Id; on the Dell-like shape it carries ``{version}``
    (``Installed-159-{version}__BIOS.Setup.1-1``), so the Id, and the member's URI, change with the version, as
    iDRAC's do (Dell iDRAC Redfish API guide, FirmwareInventory: ``Installed-<ComponentID>-<Version>__<FQDD>``).
    """

    spec: ComponentSpec
    ordinal: int
    member_id: str
    related: Related
    version: str
    software_id: str

    @property
    def id(self) -> str:
        """The FirmwareInventory member Id now (with the running version on the Dell-like shape)."""
        return self.member_id.replace("{version}", self.version)

    @property
    def slug(self) -> str:
        return self.spec.slug

    @property
    def uri(self) -> str:
        """The FirmwareInventory member URI (what ``Targets`` name)."""
        return f"{FIRMWARE_INVENTORY}/{self.id}"


def build_components(specs: list[ComponentSpec], shape: Shape) -> list[Component]:
    """Give each configured component its ordinal among its type, ids and related resource for ``shape``."""
    seen: Counter[str] = Counter()
    out: list[Component] = []
    for spec in specs:
        seen[spec.slug] += 1
        related = shape.related(spec.slug, seen[spec.slug])
        member_id = spec.id or shape.inventory_id(spec.slug, seen[spec.slug], related)
        if spec.software_id:
            software_id = spec.software_id
        elif shape.name == "dell":
            software_id = member_id.split("__", 1)[0].removeprefix("Installed-").split("-", 1)[0]
        else:
            software_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{spec.manufacturer}/{spec.slug}/{spec.model}")).upper()
        out.append(Component(spec, seen[spec.slug], member_id, related, spec.version, software_id))
    ids = [c.member_id for c in out]
    if len(ids) != len(set(ids)):
        raise ValueError(f"component ids collide: {sorted(i for i in ids if ids.count(i) > 1)}")
    return out
