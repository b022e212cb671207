"""Installed firmware: FirmwareInventory members normalised to :class:`~flasher.bmc.models.BMCComponent`.

Members are read from ``UpdateService.FirmwareInventory`` (with ``$expand`` when the BMC supports it), filtered
and classified by :mod:`flasher.bmc.classify`, and completed from their ``RelatedItem`` (Manufacturer, Model,
SerialNumber). When several members describe one Dell device (``Installed-`` and ``Current-`` entries with the
same FQDD) the ``Installed-`` one is kept.

On a BMC with several Systems (:mod:`flasher.bmc.systems`) only the server's components count: members related
to another System are left out.

Fallbacks, for BMCs without a FirmwareInventory (404, no link; e.g. sushy-tools) or whose inventory lacks them:
a ``bmc`` component from the Manager's ``FirmwareVersion`` and a ``bios`` component from the System's
``BiosVersion`` (``Manager:<Id>`` / ``System:<Id>`` ids, the Manager/System URI as ``uri``).
"""

from __future__ import annotations

import re
from typing import Any

from loguru import logger

from flasher.bmc import classify
from flasher.bmc.errors import BMCAuthError, BMCError, BMCNotSupportedError, BMCUnreachableError
from flasher.bmc.models import BMCComponent
from flasher.bmc.session import Connection
from flasher.bmc.systems import SystemChoice


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _related_uris(member: dict[str, Any]) -> list[str]:
    related = member.get("RelatedItem")
    if isinstance(related, dict):
        related = [related]
    if not isinstance(related, list):
        return []
    return [str(r["@odata.id"]) for r in related if isinstance(r, dict) and isinstance(r.get("@odata.id"), str)]


def component_from_member(member: dict[str, Any], related_doc: dict[str, Any] | None = None) -> BMCComponent:
    """A component for one FirmwareInventory member document; ``related_doc`` is its first RelatedItem's
    document when it was read. Missing fields become ``None``; ``updateable`` is ``False`` unless the BMC says
    ``Updateable: true``."""
    member_id = _text(member.get("Id")) or _text(member.get("@odata.id")) or "?"
    uri = _text(member.get("@odata.id")) or ""
    name = _text(member.get("Name")) or member_id
    software_id = _text(member.get("SoftwareId"))
    related = _related_uris(member)
    related_doc = related_doc or {}
    return BMCComponent(
        id=member_id,
        uri=uri,
        slug=classify.slug_for(member_id, name, software_id, related),
        name=name,
        version=_text(member.get("Version")),
        updateable=member.get("Updateable") is True,
        software_id=software_id,
        manufacturer=_text(related_doc.get("Manufacturer")) or _text(member.get("Manufacturer")),
        model=_text(related_doc.get("Model")),
        serial=_text(related_doc.get("SerialNumber")),
        related_uri=related[0] if related else None,
    )


def normalise(members: list[dict[str, Any]], related_docs: dict[str, dict[str, Any]]) -> list[BMCComponent]:
    """Components for installed members, one per device (Dell ``Installed-`` preferred over ``Current-``), in
    the BMC's order. ``related_docs`` maps RelatedItem URIs to their documents (missing ones are fine)."""
    chosen: dict[str, tuple[BMCComponent, bool]] = {}
    for member in members:
        if not classify.is_installed(member):
            continue
        related = _related_uris(member)
        component = component_from_member(member, related_docs.get(related[0]) if related else None)
        key = classify.identity_key(component.id, component.uri)
        installed = component.id.startswith("Installed-")
        previous = chosen.get(key)
        if previous is None or (installed and not previous[1]):
            chosen[key] = (component, installed)
    return [component for component, _ in chosen.values()]


def _expanded_related(member: dict[str, Any]) -> dict[str, Any] | None:
    """The first RelatedItem's document when the BMC expanded it into the member (``$levels=2``)."""
    related = member.get("RelatedItem")
    first = related[0] if isinstance(related, list) and related else related
    return first if isinstance(first, dict) and len(first) > 1 and "@odata.id" in first else None


def _fetch_related(conn: Connection, members: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each installed member's first RelatedItem document: expanded in the member, else held by the connection
    (a device's manufacturer, model and serial do not change), else read once."""
    docs: dict[str, dict[str, Any]] = {}
    for member in members:
        if not classify.is_installed(member):
            continue
        related = _related_uris(member)
        if not related or related[0] in docs:
            continue
        expanded = _expanded_related(member)
        if expanded is not None:
            conn.hold(related[0], expanded)
            docs[related[0]] = expanded
            continue
        try:
            docs[related[0]] = conn.held(related[0], action="read a firmware component's device")
        except (BMCAuthError, BMCUnreachableError):
            raise
        except BMCError as exc:
            logger.debug("BMC {}: related item {} unreadable: {}", conn.base_url, related[0], exc)
            docs[related[0]] = {}
    return docs


def _first_member(conn: Connection, key: str, prefer: tuple[str, str] | None = None) -> dict[str, Any] | None:
    """The first member of service root collection ``key`` (the one whose ``prefer[0]`` equals ``prefer[1]``
    when there are several), or ``None`` when the BMC has no such collection."""
    path = conn.link(key)
    if path is None:
        return None
    try:
        members = conn.members(path, action=f"read {key}")
    except BMCNotSupportedError:
        return None
    if prefer is not None:
        for member in members:
            if member.get(prefer[0]) == prefer[1]:
                return member
    return members[0] if members else None


def manager_model(conn: Connection) -> str | None:
    """The ``Model`` of the BMC's Manager (the ``ManagerType`` BMC one), ``None`` when it has none or cannot be
    read (unreachable BMCs and refused sessions raise)."""
    try:
        doc = _first_member(conn, "Managers", ("ManagerType", "BMC"))
    except (BMCAuthError, BMCUnreachableError):
        raise
    except BMCError:
        return None
    return _text(doc.get("Model")) if doc else None


def _system_doc(conn: Connection, system: SystemChoice | None) -> dict[str, Any] | None:
    if system is None:
        return None
    try:
        return conn.get_json(system.path, action="read the server's System")
    except BMCNotSupportedError:
        return None


def fallback_components(conn: Connection, missing: set[str], system: SystemChoice | None) -> list[BMCComponent]:
    """``bmc`` from the Manager's FirmwareVersion and ``bios`` from the server's System's BiosVersion (``system``,
    as :func:`flasher.bmc.systems.select_system` chose it), for each slug in ``missing`` that the BMC reports a
    version for."""
    out: list[BMCComponent] = []
    sources = (("bmc", "Managers", "FirmwareVersion", "Manager"), ("bios", "Systems", "BiosVersion", "System"))
    for slug, collection, field, kind in sources:
        if slug not in missing:
            continue
        doc = _system_doc(conn, system) if kind == "System" else _first_member(conn, collection, ("ManagerType", "BMC"))
        version = _text(doc.get(field)) if doc else None
        if doc is None or version is None:
            continue
        ident = _text(doc.get("Id")) or "1"
        out.append(
            BMCComponent(
                id=f"{kind}:{ident}",
                uri=_text(doc.get("@odata.id")) or "",
                slug=slug,
                name=_text(doc.get("Name")) or kind,
                version=version,
                # Redfish has no Updateable flag here; BMC and BIOS are updated through the UpdateService.
                updateable=True,
                software_id=None,
                manufacturer=_text(doc.get("Manufacturer")),
                model=_text(doc.get("Model")),
                serial=_text(doc.get("SerialNumber")),
                related_uri=_text(doc.get("@odata.id")),
            )
        )
    return out


_INVENTORY_LINK = "flasher:FirmwareInventory"


def _inventory_path(conn: Connection) -> str | None:
    """``UpdateService.FirmwareInventory``'s URI, read once per BMC (a link does not move); ``None`` without."""
    known = conn.held_value(_INVENTORY_LINK)
    if known is not None:
        return known or None
    update_service = conn.link("UpdateService")
    inventory_path = ""
    if update_service is not None:
        try:
            doc = conn.held(update_service, action="read the UpdateService")
            link = doc.get("FirmwareInventory")
            if isinstance(link, dict) and isinstance(link.get("@odata.id"), str):
                inventory_path = link["@odata.id"]
        except BMCNotSupportedError:
            inventory_path = ""
    conn.hold_value(_INVENTORY_LINK, inventory_path)
    return inventory_path or None


def read_firmware_inventory(conn: Connection, system: SystemChoice | None) -> list[BMCComponent]:
    """Every installed component the BMC reports for the server, plus the bmc/bios fallbacks where needed.

    ``system`` is the server's System (``None`` when the BMC lists none): members whose RelatedItem is another
    System, or a resource under one, belong to another server and are left out; the bios fallback reads this
    System's BiosVersion.

    Raises :class:`BMCNotSupportedError` when the BMC reports neither a FirmwareInventory nor a Manager firmware
    version nor a System BIOS version; :class:`BMCUnreachableError` / :class:`BMCAuthError` as the session does.
    """
    members: list[dict[str, Any]] = []
    inventory_path = _inventory_path(conn)
    if inventory_path is not None:
        try:
            # Two levels: the members and their RelatedItem in one request where the BMC expands that deep.
            members = conn.members(inventory_path, action="read the FirmwareInventory", levels=2)
        except BMCNotSupportedError:
            logger.info(
                "BMC {} has no FirmwareInventory ({}); using Manager and System versions", conn.base_url, inventory_path
            )
    components = normalise(members, _fetch_related(conn, members))
    if system is not None:
        components = [c for c in components if system.owns(c.related_uri)]
    missing = {"bmc", "bios"} - {c.slug for c in components}
    components.extend(fallback_components(conn, missing, system))
    if not components:
        raise BMCNotSupportedError(
            f"BMC {conn.base_url} reports no firmware: no FirmwareInventory, Manager FirmwareVersion "
            "or System BiosVersion"
        )
    return components


#: What a BMC may append to a version it reports: anything in brackets (System ``BiosVersion``:
#: ``P79 v1.45 (12/06/2017)``) or a release date (``mm/dd/yyyy``, ``yyyy-mm-dd``, HPE iLO's ``Jun 01 2023``).
_APPENDED = re.compile(
    r"\s*\(.*\)|\s+(?:\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2}|[a-z]{3}\.?\s+\d{1,2},?\s+\d{4})",
    re.IGNORECASE,
)


def versions_match(reported: str | None, expected: str) -> bool:
    """True when the BMC's ``reported`` version is ``expected``: equal ignoring case and surrounding space, or
    ``expected`` followed by text in brackets or a release date (``P79 v1.45 (12/06/2017)``, ``2.78 Jun 01
    2023``). Other trailing words are a different version (``2.7.3 beta`` is not ``2.7.3``)."""
    if reported is None:
        return False
    got, want = reported.strip().lower(), expected.strip().lower()
    return got == want or (got.startswith(want) and _APPENDED.fullmatch(got[len(want) :]) is not None)


def find_component(components: list[BMCComponent], wanted: BMCComponent) -> BMCComponent | None:
    """``wanted``'s device in a fresh reading: same identity key (Dell FQDD, else URI), else the only component
    with the same slug and name."""
    key = classify.identity_key(wanted.id, wanted.uri)
    for component in components:
        if classify.identity_key(component.id, component.uri) == key:
            return component
    same = [c for c in components if c.slug == wanted.slug and c.name == wanted.name]
    return same[0] if len(same) == 1 else None
