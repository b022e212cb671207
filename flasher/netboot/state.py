"""The provision record: the server attribute ``sh.hollow.flasher.provision`` that ties a network boot to its callback.

``{"state", "nonce", "issuedAt", "expiresAt", "profile", "bootedAt", "mac", "calledBackAt", "callback", "by"}``:

============  ==============================================================================================
state         meaning
============  ==============================================================================================
``waiting``   ``provision`` drew a nonce and is power-cycling the server; the boot endpoint has not been asked
``booting``   the boot (or iPXE) endpoint answered for this server with a token of this nonce
``called-back``  the booted machine called back with the token (``calledBackAt``, ``callback``: what it sent)
============  ==============================================================================================

A record is *open* while its state is ``waiting`` or ``booting`` and ``expiresAt`` is in the future; a callback
is accepted only for an open record, once. Times are RFC 3339 UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from flasher.constants import PROVISION_NAMESPACE
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import NotFoundError
from flasher.netboot.tokens import new_nonce

WAITING: Final = "waiting"
BOOTING: Final = "booting"
CALLED_BACK: Final = "called-back"
OPEN_STATES: Final = frozenset({WAITING, BOOTING})


def rfc3339(value: datetime) -> str:
    """``value`` as RFC 3339 UTC with a ``Z``, to the second."""
    return value.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time from the record, or ``None`` when absent or malformed."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def is_open(record: dict[str, Any] | None, now: datetime) -> bool:
    """True when ``record`` awaits a callback: ``waiting``/``booting``, with a nonce, not expired."""
    if not record or record.get("state") not in OPEN_STATES or not isinstance(record.get("nonce"), str):
        return False
    expires = parse_time(record.get("expiresAt"))
    return expires is not None and now < expires


def new_record(now: datetime, ttl: float, *, state: str, by: str, profile: str | None = None) -> dict[str, Any]:
    """A fresh open record with a new nonce, valid ``ttl`` seconds from ``now``."""
    record: dict[str, Any] = {
        "state": state,
        "nonce": new_nonce(),
        "issuedAt": rfc3339(now),
        "expiresAt": rfc3339(now + timedelta(seconds=ttl)),
        "by": by,
    }
    if profile:
        record["profile"] = profile
    return record


def read_record(inventory: InventoryClient, server_uuid: str) -> dict[str, Any] | None:
    """The server's provision record, or ``None`` when it has none."""
    try:
        return inventory.get_attribute(server_uuid, PROVISION_NAMESPACE).as_object() or None
    except NotFoundError:
        return None


def write_record(inventory: InventoryClient, server_uuid: str, record: dict[str, Any]) -> None:
    """Create or replace the server's provision record."""
    inventory.upsert_attribute(server_uuid, PROVISION_NAMESPACE, record)
