"""Which hosts firmware images may come from: ``store.allowed_hosts`` patterns and the addresses refused unless
a pattern names them.

A pattern (one ``store.allowed_hosts`` entry) is a host name (``fw.example.com``), an IP address (``10.0.0.5``,
``fd00::5``, or ``[fd00::5]`` with a port), or ``*.example.com`` for any name under ``example.com`` at any depth
(not ``example.com`` itself), each optionally followed by ``:port`` (``fw.example.com:8443``): without a port
any port matches, with one only that port (a URL without a port has its scheme's, 80 or 443). Names compare
case-insensitively and without a trailing dot.

Refused unless named (:data:`REFUSED_NETWORKS`, :data:`REFUSED_NAMES`): loopback (127.0.0.0/8, ::1,
``localhost`` and ``*.localhost``, RFC 6761), link-local (169.254.0.0/16, fe80::/10), the cloud metadata
services (169.254.169.254 of AWS, GCP, Azure and OpenStack, fd00:ec2::254 of AWS, 100.100.100.200 of Alibaba
Cloud, ``metadata.google.internal``) and the unspecified addresses (0.0.0.0/8, ``::``; a connection to 0.0.0.0
reaches the local host on Linux). An image URL whose host is one of them, or a name that resolves to one, is
refused even when ``store.allowed_hosts`` is empty, unless an entry names that very host: the exact name or
address, never through ``*.`` (a wildcard covers names an attacker may point anywhere). Why: an attribute is
written by anyone with inventory write access, and flasher runs next to credentials such a URL could read
(the metadata service hands out cloud credentials) or services on loopback (Redis, the replica's endpoints).

Addresses are compared as the C library reads them: IPv4 in the old short forms (``127.1``, ``2130706433``,
``0x7f000001``, which ``inet_aton`` and so every HTTP client accept) is the address it stands for, and an
IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) is its IPv4 address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Networks refused unless a pattern names the host, with what to call them; the first match names the reason.
REFUSED_NETWORKS: Final[tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]] = (
    (ipaddress.ip_network("169.254.169.254/32"), "the cloud metadata address"),
    (ipaddress.ip_network("fd00:ec2::254/128"), "the cloud metadata address"),
    (ipaddress.ip_network("100.100.100.200/32"), "the cloud metadata address"),
    (ipaddress.ip_network("127.0.0.0/8"), "a loopback address"),
    (ipaddress.ip_network("::1/128"), "a loopback address"),
    (ipaddress.ip_network("169.254.0.0/16"), "a link-local address"),
    (ipaddress.ip_network("fe80::/10"), "a link-local address"),
    (ipaddress.ip_network("0.0.0.0/8"), "an unspecified address"),
    (ipaddress.ip_network("::/128"), "an unspecified address"),
)
#: Names refused unless a pattern names them (``*.localhost`` too).
REFUSED_NAMES: Final[dict[str, str]] = {
    "localhost": "a loopback name",
    "metadata.google.internal": "the cloud metadata name",
}
DEFAULT_PORTS: Final[dict[str, int]] = {"http": 80, "https": 443}

_LEGACY_IPV4 = re.compile(r"^(?:0x[0-9a-f]+|[0-9]+)(?:\.(?:0x[0-9a-f]+|[0-9]+)){0,3}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def parse_address(host: str) -> IPAddress | None:
    """``host`` as an IP address (brackets, the old IPv4 short forms and IPv4-mapped IPv6 read as the C library
    reads them), or ``None`` when it is a name."""
    text = host.strip().lower().removeprefix("[").removesuffix("]")
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if not _LEGACY_IPV4.match(text):
            return None
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalise_host(host: str) -> str:
    """``host`` as rules compare it: an IP address in its canonical form, else the name in lower case without a
    trailing dot."""
    address = parse_address(host)
    if address is not None:
        return str(address)
    return host.strip().lower().rstrip(".")


def refused_because(host: str) -> str | None:
    """Why ``host`` (a name or address) is refused unless named (``a loopback address``...), or ``None``."""
    address = parse_address(host)
    if address is not None:
        return address_refused_because(address)
    name = normalise_host(host)
    if name in REFUSED_NAMES:
        return REFUSED_NAMES[name]
    if name.endswith(".localhost"):
        return REFUSED_NAMES["localhost"]
    return None


def address_refused_because(address: IPAddress | str) -> str | None:
    """Why ``address`` is refused unless named, or ``None`` (``address`` may carry an IPv6 zone, ``fe80::1%eth0``)."""
    parsed = parse_address(str(address).split("%", 1)[0]) if isinstance(address, str) else address
    if parsed is None:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    for network, why in REFUSED_NETWORKS:
        if parsed.version == network.version and parsed in network:
            return why
    return None


@dataclass(frozen=True)
class HostPattern:
    """One parsed ``store.allowed_hosts`` entry: ``host`` (normalised; ``*.suffix`` for a wildcard) and ``port``
    (``None``: any port). Build with :meth:`parse`."""

    entry: str
    host: str
    port: int | None

    @property
    def wildcard(self) -> bool:
        """True for ``*.example.com``."""
        return self.host.startswith("*.")

    @classmethod
    def parse(cls, entry: str) -> HostPattern:
        """Parse one entry; ``ValueError`` saying what is wrong with it."""
        text = entry.strip()
        if not text:
            raise ValueError("an entry is empty")
        host, port = _split_port(text)
        if parse_address(host) is not None:
            return cls(entry=entry, host=normalise_host(host), port=port)
        name = host.lower().rstrip(".")
        bare = name.removeprefix("*.")
        if "*" in bare or not all(_LABEL.match(label) for label in bare.split(".")):
            raise ValueError(f"entry {entry!r} is not a host name, an IP address or *.domain (optionally with :port)")
        return cls(entry=entry, host=name, port=port)

    def covers(self, host: str, port: int) -> bool:
        """True when this pattern allows ``host`` (normalised, see :func:`normalise_host`) on ``port``."""
        if self.port is not None and self.port != port:
            return False
        if self.wildcard:
            return host.endswith(self.host[1:])
        return host == self.host

    def names(self, host: str, port: int) -> bool:
        """True when this pattern names ``host`` itself (not through a wildcard) and allows ``port``."""
        return not self.wildcard and self.covers(host, port)


def _split_port(text: str) -> tuple[str, int | None]:
    """(host, port) of ``host``, ``host:port``, ``[v6]:port``, ``[v6]`` or a bare IPv6 address."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"entry {text!r} opens a bracket it does not close")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"entry {text!r} has {rest!r} after the bracketed address")
        return host, _port(text, rest[1:]) if rest else None
    if text.count(":") > 1:  # a bare IPv6 address: no port
        return text, None
    host, sep, port = text.partition(":")
    return host, _port(text, port) if sep else None


def _port(entry: str, text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"entry {entry!r}: the port must be a number from 1 to 65535, got {text!r}")
    return int(text)


def parse_patterns(entries: Iterable[str]) -> tuple[HostPattern, ...]:
    """Every entry parsed (:meth:`HostPattern.parse`); the first bad one raises ``ValueError``."""
    return tuple(HostPattern.parse(entry) for entry in entries)
