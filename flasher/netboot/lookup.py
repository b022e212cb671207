"""Finding a server by one of its MACs: one inventory query on an exact attribute namespace.

Onboarding writes one server attribute per MAC, ``sh.hollow.flasher.mac.<12 lowercase hex digits>``
(:func:`mac_namespace`). ``GET /servers?attr=<that namespace>`` is then a lookup by namespace, which the
inventory answers from its ``(namespace, server)`` index (the sandbox's ``idx_attr_ns_server``; Serverservice's
attributes are keyed by server and namespace too), whatever the fleet's size: no scan of servers or of
attribute values.
"""

from __future__ import annotations

import re
from typing import Final

from flasher.constants import MAC_NAMESPACE_PREFIX
from flasher.inventory.client import InventoryClient
from flasher.inventory.models import Server

_MAC: Final = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$", re.IGNORECASE)


class MACError(ValueError):
    """Not a MAC address; the message names the value."""


class AmbiguousMACError(Exception):
    """Several servers carry the MAC (hardware moved without a re-collection of the old server)."""


def canonical_mac(value: str) -> str:
    """``value`` (``AA:BB:CC:DD:EE:FF``, ``aa-bb-...``, ``aabbccddeeff``) as ``aa:bb:cc:dd:ee:ff``; raises
    :class:`MACError`."""
    text = (value or "").strip()
    if not _MAC.match(text):
        raise MACError(f"MAC {value!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    digits = re.sub(r"[^0-9a-f]", "", text.lower())
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def mac_namespace(mac: str) -> str:
    """The server attribute namespace indexing ``mac``.

    ``aa:bb:cc:dd:ee:ff`` → ``sh.hollow.flasher.mac.aabbccddeeff``."""
    return f"{MAC_NAMESPACE_PREFIX}.{canonical_mac(mac).replace(':', '')}"


def server_by_mac(inventory: InventoryClient, mac: str) -> Server | None:
    """The server whose MAC attribute names ``mac`` (with its attributes), or ``None``.

    Raises :class:`MACError` for a malformed MAC, :class:`AmbiguousMACError` when several servers carry it, and
    the inventory client's errors. All facilities are searched.
    """
    found = inventory.list_servers(attr=[mac_namespace(mac)], facility=None)
    if len(found) > 1:
        uuids = ", ".join(str(s.uuid) for s in found)
        raise AmbiguousMACError(f"MAC {canonical_mac(mac)} is on {len(found)} servers: {uuids}")
    return found[0] if found else None
