"""``/redfish/v1/$metadata``: the OData metadata document of a simulated BMC, and the ``Link: rel=describedby``
header of its resources.

DSP0266 ("OData $metadata"): the service exposes, without authentication, a CSDL document (``application/xml``)
that references the schema of every resource type it serves and has an ``EntityContainer`` extending the
ServiceRoot's ``ServiceContainer``. It is built from the ``@odata.type`` values the BMC serves, so a resource added
to a shape is referenced without anyone listing it, as in the DMTF mockups' ``$metadata/index.xml``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from xml.sax.saxutils import quoteattr

#: Where DMTF publishes its schemas (what real services reference; clients resolve them from a local copy).
SCHEMA_BASE: Final = "http://redfish.dmtf.org/schemas/v1"
_NAMESPACES_ALWAYS: Final = ("RedfishExtensions.v1_0_0",)


def split_type(odata_type: str) -> tuple[str, str | None, str]:
    """``"#ComputerSystem.v1_20_0.ComputerSystem"`` → ``("ComputerSystem", "v1_20_0", "ComputerSystem")``;
    an unversioned type (``"#ComputerSystemCollection.ComputerSystemCollection"``) has ``None`` as its version.
    Raises ``ValueError`` for anything else."""
    parts = odata_type.lstrip("#").split(".")
    if len(parts) == 3 and parts[1].startswith("v"):
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], None, parts[1]
    raise ValueError(f"not an @odata.type: {odata_type!r}")


def describedby(odata_type: str) -> str:
    """The ``Link`` header value naming the JSON schema of a resource of ``odata_type`` (DSP0266 "Link header":
    ``rel=describedby`` on GET and HEAD): the versioned schema for a versioned type, else the unversioned one."""
    namespace, version, _ = split_type(odata_type)
    name = f"{namespace}.{version}" if version else namespace
    return f"<{SCHEMA_BASE}/{name}.json>; rel=describedby"


def metadata_document(odata_types: Iterable[str], service_root_type: str) -> str:
    """The CSDL ``$metadata`` document referencing the schema file of each type in ``odata_types`` (one
    ``edmx:Reference`` per schema file, including the unversioned and the versioned namespace) and the
    ``Service`` container extending the ServiceRoot of ``service_root_type``."""
    by_file: dict[str, set[str]] = {}
    for odata_type in odata_types:
        namespace, version, _ = split_type(odata_type)
        names = by_file.setdefault(namespace, set())
        names.add(namespace)
        if version:
            names.add(f"{namespace}.{version}")
    root_namespace, root_version, _ = split_type(service_root_type)
    by_file.setdefault(root_namespace, {root_namespace}).add(f"{root_namespace}.{root_version}")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">',
    ]
    for file_namespace in sorted(by_file):
        lines.append(f"  <edmx:Reference Uri={quoteattr(f'{SCHEMA_BASE}/{file_namespace}_v1.xml')}>")
        lines += [f"    <edmx:Include Namespace={quoteattr(n)}/>" for n in sorted(by_file[file_namespace])]
        lines.append("  </edmx:Reference>")
    for namespace in _NAMESPACES_ALWAYS:
        file_namespace = namespace.split(".")[0]
        lines.append(f"  <edmx:Reference Uri={quoteattr(f'{SCHEMA_BASE}/{file_namespace}_v1.xml')}>")
        lines.append(f'    <edmx:Include Namespace={quoteattr(namespace)} Alias="Redfish"/>')
        lines.append("  </edmx:Reference>")
    container = f"{root_namespace}.{root_version}.ServiceContainer"
    lines += [
        "  <edmx:DataServices>",
        '    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">',
        f'      <EntityContainer Name="Service" Extends={quoteattr(container)}/>',
        "    </Schema>",
        "  </edmx:DataServices>",
        "</edmx:Edmx>",
        "",
    ]
    return "\n".join(lines)
