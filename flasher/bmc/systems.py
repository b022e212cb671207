"""Which of a BMC's ComputerSystems is the server.

Most BMCs list one System, and that one is the server. Some list several: a chassis manager of a multi-node
enclosure (HPE Moonshot, Dell FX2/MX, Supermicro's twin and blade managers), a partitioned host, an OpenBMC
managing several hosts, sushy-tools in front of several VMs. Acting on the first one listed would read the
wrong BIOS, power off the wrong node, or install without being able to restore the server's power, so with
several the server's System is picked by what the inventory knows about the server
(:class:`~flasher.bmc.models.SystemIdentity`): the System whose ``UUID`` is the server's, else the one whose
``SerialNumber`` is (DSP0268 ComputerSystem). When no System, or more than one, matches, every operation that
needs the System is refused with one message (:class:`SeveralSystemsError`) naming the Systems and what was
looked for; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flasher.bmc.errors import BMCNotSupportedError
from flasher.bmc.models import SystemIdentity
from flasher.bmc.session import Connection


class SeveralSystemsError(BMCNotSupportedError):
    """The BMC has several Systems and none (or more than one) is certainly the server."""


@dataclass(frozen=True)
class SystemChoice:
    """The server's System (``path``, its ``@odata.id``) and the BMC's other Systems (``others``)."""

    path: str
    others: tuple[str, ...] = ()

    def owns(self, uri: str | None) -> bool:
        """False when ``uri`` is one of the other Systems or a resource under one (``.../Systems/2/Bios``)."""
        if not uri:
            return True
        path = uri.rstrip("/")
        return not any(path == other or path.startswith(other + "/") for other in self.others)


def _summary(doc: dict[str, Any]) -> str:
    ident = doc.get("Id") or doc.get("@odata.id") or "?"
    return f"{ident} (serial {doc.get('SerialNumber') or '-'}, UUID {doc.get('UUID') or '-'})"


def select_system(conn: Connection, identity: SystemIdentity) -> SystemChoice | None:
    """The server's System among the BMC's (rules in the module docstring); ``None`` when the BMC lists none.

    Raises :class:`SeveralSystemsError` when it lists several and ``identity`` picks out none or more than one;
    :class:`~flasher.bmc.errors.BMCUnreachableError` / :class:`~flasher.bmc.errors.BMCAuthError` as the session
    does.
    """
    collection = conn.link("Systems")
    if collection is None:
        return None
    listed = conn.held(collection, action="list the BMC's Systems").get("Members")
    paths = [
        str(m["@odata.id"]).rstrip("/")
        for m in (listed if isinstance(listed, list) else [])
        if isinstance(m, dict) and isinstance(m.get("@odata.id"), str)
    ]
    if not paths:
        return None
    if len(paths) == 1:
        return SystemChoice(paths[0])
    docs = [conn.get_json(path, action="read the BMC's Systems") for path in paths]
    for field, matches in (("UUID", identity.matches_uuid), ("SerialNumber", identity.matches_serial)):
        chosen = [path for path, doc in zip(paths, docs, strict=True) if matches(doc.get(field))]
        if len(chosen) == 1:
            return SystemChoice(chosen[0], tuple(p for p in paths if p != chosen[0]))
        if len(chosen) > 1:
            raise SeveralSystemsError(_message(conn, docs, identity, f"{len(chosen)} of them match"))
    if not identity.known:
        raise SeveralSystemsError(_message(conn, docs, identity, "flasher was given no serial or UUID of the server"))
    raise SeveralSystemsError(_message(conn, docs, identity, "none matches"))


def _message(conn: Connection, docs: list[dict[str, Any]], identity: SystemIdentity, problem: str) -> str:
    listed = "; ".join(_summary(doc) for doc in docs)
    return (
        f"BMC {conn.base_url} has {len(docs)} Systems ({listed}) and flasher drives only the one that is the server,"
        f" found by its {identity.describe() if identity.known else 'serial or UUID'}: {problem}; nothing was done"
    )
