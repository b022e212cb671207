"""Groups of servers for a rollout's caps: which value of a key each server has in the inventory.

A group spec is one of::

    facility                 the server's facility code
    vendor, model            sh.hollow.alloy.server_vendor_attributes vendor / model
    vendor/model             both: dell/r6515
    bmc-network/24           the network of the BMC's IP address with this prefix length (IPv4 /0../32, IPv6
                             /0../128): 10.1.2.0/24
    attr:NAMESPACE~KEY.PATH  the value at a dotted key path of a server attribute:
                             attr:sh.example.location~rack -> r3

A server that lacks the value (no such attribute, a BMC address that is a host name) is in the group
``(none)``, which is capped like any other value: a cap never lets servers through because their rack is
unknown. ``--group rack=attr:sh.example.location~rack`` names a spec; caps then say ``rack=2``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from flasher.inventory.models import Server

#: The value of a server that lacks the group's key.
NO_VALUE: Final = "(none)"
_BUILTIN: Final = ("facility", "vendor", "model", "vendor/model")
_NETWORK = re.compile(r"^bmc-network/(\d{1,3})$")
_ATTR = re.compile(r"^attr:([^~\s]+)~([^~\s]+)$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class GroupError(ValueError):
    """A group spec or cap that cannot be read; the message quotes it and lists the forms."""


_FORMS: Final = "facility, vendor, model, vendor/model, bmc-network/PREFIX, attr:NAMESPACE~KEY.PATH, or a --group name"


@dataclass(frozen=True)
class GroupSpec:
    """How a server's value is read: ``kind`` ``facility``, ``vendor``, ``model``, ``vendor/model``,
    ``bmc-network`` (with ``prefix``) or ``attr`` (with ``namespace`` and dotted ``path``); ``text`` is the spec."""

    text: str
    kind: str
    prefix: int = 0
    namespace: str = ""
    path: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> GroupSpec:
        """Read a spec (module docstring); raises :class:`GroupError` naming it."""
        spec = text.strip() if isinstance(text, str) else ""
        if spec in _BUILTIN:
            return cls(spec, spec)
        if match := _NETWORK.match(spec):
            prefix = int(match[1])
            if prefix > 128:
                raise GroupError(f"group {text!r}: prefix length {prefix} is more than 128")
            return cls(spec, "bmc-network", prefix=prefix)
        if match := _ATTR.match(spec):
            path = tuple(match[2].split("."))
            if any(not part for part in path):
                raise GroupError(f"group {text!r}: the key path {match[2]!r} has an empty segment")
            return cls(spec, "attr", namespace=match[1], path=path)
        raise GroupError(f"group {text!r}: not a group ({_FORMS})")

    def value(self, server: Server) -> str:
        """The server's value in this group, or :data:`NO_VALUE`."""
        if self.kind == "facility":
            return server.facility or NO_VALUE
        if self.kind == "vendor":
            return server.vendor or NO_VALUE
        if self.kind == "model":
            return server.model or NO_VALUE
        if self.kind == "vendor/model":
            return f"{server.vendor}/{server.model}" if server.vendor and server.model else NO_VALUE
        if self.kind == "bmc-network":
            return _network(server.bmc_address, self.prefix)
        attribute = server.attribute(self.namespace)
        found: Any = attribute.data if attribute is not None else None
        for key in self.path:
            found = found.get(key) if isinstance(found, Mapping) else None
        if isinstance(found, bool):
            return "true" if found else "false"
        if isinstance(found, str | int | float) and str(found):
            return str(found)
        return NO_VALUE


def _network(address: str | None, prefix: int) -> str:
    if not address:
        return NO_VALUE
    host = urlsplit(address if "//" in address else f"//{address}").hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return NO_VALUE
    if prefix > ip.max_prefixlen:
        return NO_VALUE
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def parse_group_names(given: Mapping[str, str]) -> dict[str, GroupSpec]:
    """``--group NAME=SPEC`` definitions as ``{name: spec}``; raises :class:`GroupError` for a bad name or spec."""
    found = {}
    for name, spec in given.items():
        if not _NAME.match(name) or name in _BUILTIN:
            raise GroupError(f"group name {name!r}: use 1-32 of a-z, 0-9, '_', '-', starting with a letter")
        found[name] = GroupSpec.parse(spec)
    return found


@dataclass(frozen=True)
class Cap:
    """At most ``limit`` members at once per value of ``group``; ``label`` is how messages name the group (the
    ``--group`` name, else the spec)."""

    label: str
    group: GroupSpec
    limit: int


def parse_cap(text: str, names: Mapping[str, GroupSpec]) -> Cap:
    """``GROUP=M`` (``rack=2``, ``vendor/model=5``, ``attr:sh.example.location~rack=2``) into a :class:`Cap`, with
    ``names`` the ``--group`` definitions. Raises :class:`GroupError` naming the text."""
    spec, sep, limit_text = (text or "").rpartition("=")
    if not sep or not spec.strip():
        raise GroupError(f"cap {text!r}: use GROUP=COUNT, e.g. rack=2 or vendor/model=5")
    try:
        limit = int(limit_text)
    except ValueError:
        raise GroupError(f"cap {text!r}: {limit_text!r} is not a whole number") from None
    if limit < 1:
        raise GroupError(f"cap {text!r}: the count must be at least 1")
    spec = spec.strip()
    if spec in names:
        return Cap(spec, names[spec], limit)
    try:
        return Cap(spec, GroupSpec.parse(spec), limit)
    except GroupError:
        known = ", ".join(sorted(names)) or "none defined"
        raise GroupError(f"cap {text!r}: {spec!r} is not a group ({_FORMS}; --group names: {known})") from None
