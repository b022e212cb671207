"""Reading a BMC's hardware description: the Redfish resources onboarding needs, as raw documents.

:func:`read_hardware` walks the resource tree from the service root along the navigation properties that lead
to hardware (:data:`FOLLOW`): Systems (and their EthernetInterfaces, Storage with its Controllers and Drives,
Processors, Memory, NetworkInterfaces), Managers (their EthernetInterfaces), Chassis (NetworkAdapters with Ports
and NetworkDeviceFunctions, Drives, PowerSubsystem.PowerSupplies, the older Power resource, the chassis they
contain), and the UpdateService's FirmwareInventory. PCIeDevices are not read: they describe again the NICs, GPUs
and controllers read above. Sensors, logs, certificates, accounts and the like are never read.

The result is a :class:`HardwareSnapshot`: every document read by URI, plus what could not be read. Turning it
into inventory records is :mod:`flasher.onboard.collect`'s business (pure, so it is tested straight from the
DMTF mockups' files). A resource the BMC lacks (404, 501, malformed) is noted and skipped, never fatal; an
unreachable BMC or refused credentials raise, so a partial snapshot is never taken for a complete one.

Link shapes followed (DSP0268): ``{"@odata.id": uri}``, a list of those, a collection's ``Members``, and
``Links.<name>`` for the link names in :data:`FOLLOW_LINKS` (a Chassis' ``Links.Drives`` and ``Links.Contains``,
a NetworkInterface's ``Links.NetworkAdapter``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final

from loguru import logger

from flasher.bmc.errors import BMCAuthError, BMCError, BMCUnreachableError
from flasher.bmc.session import Connection

#: Navigation properties followed from any document (their values are links or lists of links).
FOLLOW: Final = frozenset(
    {
        "Systems",
        "Managers",
        "Chassis",
        "UpdateService",
        "FirmwareInventory",
        "EthernetInterfaces",
        "NetworkInterfaces",
        "NetworkAdapters",
        "NetworkDeviceFunctions",
        "Ports",
        "Storage",
        "Controllers",
        "Drives",
        "Processors",
        "Memory",
        "PowerSubsystem",
        "PowerSupplies",
        "Power",
        "SimpleStorage",
    }
)
#: ``Links.<name>`` followed (a Chassis lists its drives there when it has no Drives collection).
FOLLOW_LINKS: Final = frozenset({"Drives", "NetworkAdapter", "Contains"})
#: At most this many documents are read from one BMC (a guard against a BMC whose links loop or explode).
MAX_DOCUMENTS: Final = 1500


@dataclass
class HardwareSnapshot:
    """The documents read from one BMC: ``documents`` by URI (path, no host, no trailing slash), ``root`` the
    service root, ``notes`` one line per resource that could not be read (``Systems/1/Memory: 404 ...``)."""

    root: dict[str, Any]
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def get(self, uri: str | None) -> dict[str, Any] | None:
        """The document at ``uri`` (any trailing slash or host ignored), or ``None`` when it was not read."""
        if not uri:
            return None
        return self.documents.get(normalise_uri(uri))

    def members(self, collection: dict[str, Any] | str | None) -> list[dict[str, Any]]:
        """The member documents of a collection (a document or its URI) that were read, in the BMC's order."""
        doc = self.get(collection) if isinstance(collection, str) else collection
        if not doc:
            return []
        out = []
        for member in doc.get("Members") or []:
            uri = member.get("@odata.id") if isinstance(member, dict) else None
            found = self.get(uri) if isinstance(uri, str) else None
            if found is not None:
                out.append(found)
        return out

    def linked(self, doc: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        """The document ``doc[name]`` links to (``{"@odata.id": ...}``), when it was read."""
        if not doc:
            return None
        value = doc.get(name)
        if isinstance(value, dict) and isinstance(value.get("@odata.id"), str):
            return self.get(value["@odata.id"])
        return None

    def linked_list(self, doc: dict[str, Any] | None, name: str) -> list[dict[str, Any]]:
        """The documents a list of links ``doc[name]`` names (``[{"@odata.id": ...}, ...]``) that were read."""
        if not doc:
            return []
        value = doc.get(name)
        if not isinstance(value, list):
            return []
        out = []
        for item in value:
            if isinstance(item, dict) and isinstance(item.get("@odata.id"), str):
                found = self.get(item["@odata.id"])
                if found is not None:
                    out.append(found)
        return out


def normalise_uri(uri: str) -> str:
    """``uri`` as a snapshot key: the path only, without a query or a trailing slash."""
    path = uri.split("://", 1)[-1]
    if "://" in uri:
        path = "/" + path.split("/", 1)[1] if "/" in path else "/"
    path = path.split("?", 1)[0].split("#", 1)[0]
    return path.rstrip("/") or "/"


def links_of(doc: dict[str, Any]) -> list[str]:
    """The URIs :func:`read_hardware` follows from ``doc`` (see :data:`FOLLOW`, :data:`FOLLOW_LINKS`)."""
    found: list[str] = []

    def add(value: Any) -> None:
        if isinstance(value, dict) and isinstance(value.get("@odata.id"), str):
            found.append(value["@odata.id"])
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and isinstance(item.get("@odata.id"), str):
                    found.append(item["@odata.id"])

    for name in FOLLOW:
        if name in doc:
            add(doc[name])
    add(doc.get("Members"))
    links = doc.get("Links")
    if isinstance(links, dict):
        for name in FOLLOW_LINKS:
            add(links.get(name))
    return found


def read_hardware(conn: Connection, *, max_documents: int = MAX_DOCUMENTS) -> HardwareSnapshot:
    """Read the hardware resources of the BMC behind ``conn`` (breadth first from the service root).

    Raises :class:`~flasher.bmc.errors.BMCUnreachableError` / :class:`~flasher.bmc.errors.BMCAuthError` when the BMC
    stops answering or refuses the session; every other failure of one resource becomes a note.
    """
    root = conn.root_json()
    snapshot = HardwareSnapshot(root=root)
    snapshot.documents["/redfish/v1"] = root
    queue: deque[str] = deque(normalise_uri(u) for u in links_of(root))
    seen = set(queue) | {"/redfish/v1"}
    while queue:
        uri = queue.popleft()
        if len(snapshot.documents) >= max_documents:
            snapshot.notes.append(f"stopped after {max_documents} resources; {len(queue) + 1} not read")
            break
        try:
            doc = conn.get_json(uri, action=f"read {uri}")
        except (BMCUnreachableError, BMCAuthError):
            raise
        except BMCError as exc:
            logger.debug("BMC {}: {} not read: {}", conn.base_url, uri, exc)
            snapshot.notes.append(f"{uri}: {exc}")
            continue
        snapshot.documents[uri] = doc
        for link in links_of(doc):
            key = normalise_uri(link)
            if key not in seen and key.startswith("/redfish/v1/"):
                seen.add(key)
                queue.append(key)
    return snapshot
