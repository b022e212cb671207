"""Answering network boots: Pixiecore's API (``boot``), iPXE scripts (``ipxe``) and the booted machine's callback.

``boot(mac)``: the server the inventory knows by ``mac`` (:mod:`flasher.netboot.lookup`) with a boot profile
(:mod:`flasher.netboot.profiles`) gets ``{"kernel", "initrd", "cmdline"}``; anything else gets ``None`` (404:
Pixiecore then leaves the machine alone). The command line carries a one-time token: the open provision record's
nonce (``provision`` wrote it) or, when there is none, a new record drawn here, valid ``netboot.token_ttl``
seconds; the record moves to ``booting``. Asking again during the same boot gives the same token.

``callback(uuid, token, data)``: the booted machine's one call. Accepted once, while the record is open and the
token is that of its nonce; the record becomes ``called-back`` with what the machine sent (at most
:data:`MAX_CALLBACK_KEYS` keys of :data:`MAX_CALLBACK_VALUE` characters) and its address.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from loguru import logger

from flasher.config import Settings
from flasher.constants import BOOT_NAMESPACE
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import NotFoundError
from flasher.netboot import state
from flasher.netboot.lookup import canonical_mac, server_by_mac
from flasher.netboot.profiles import BootProfile, ProfileError, resolve
from flasher.netboot.tokens import token_for, token_matches

MAX_CALLBACK_KEYS: Final = 32
MAX_CALLBACK_VALUE: Final = 512


class CallbackOutcome(StrEnum):
    """How a callback ended: accepted, or why not (the HTTP status follows from it)."""

    ACCEPTED = "accepted"
    UNKNOWN = "unknown"  # no such server, no record, or a wrong token: 404, says nothing more
    USED = "used"  # the record was called back already: 410
    EXPIRED = "expired"  # the record's time ran out: 410


@dataclass(frozen=True)
class BootAnswer:
    """What a machine boots: the rendered profile, and the server it is for."""

    server_uuid: str
    profile: BootProfile

    def pixiecore(self) -> dict[str, Any]:
        """Pixiecore's API answer: ``{"kernel": URL, "initrd": [URL, ...], "cmdline": "..."}``."""
        return {"kernel": self.profile.kernel, "initrd": list(self.profile.initrd), "cmdline": self.profile.cmdline}

    def ipxe(self) -> str:
        """The same as an iPXE script."""
        lines = ["#!ipxe", f"kernel {self.profile.kernel} {self.profile.cmdline}".rstrip()]
        lines += [f"initrd {url}" for url in self.profile.initrd]
        lines.append("boot")
        return "\n".join(lines) + "\n"


def token_key(settings: Settings) -> bytes:
    """``netboot.token_secret`` as bytes, else a random key for this process (logged: one replica only)."""
    secret = settings.netboot.token_secret
    if secret is not None:
        return secret.get_secret_value().encode()
    logger.warning("netboot.token_secret is not set: tokens are signed with a random key of this process only")
    return secrets.token_bytes(32)


class NetbootService:
    """The netboot answers for one inventory. ``key`` signs tokens (default: :func:`token_key`); ``now`` is the
    clock (UTC). Thread-safe."""

    def __init__(
        self,
        inventory: InventoryClient,
        settings: Settings,
        *,
        key: bytes | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.inventory = inventory
        self.settings = settings
        self.key = key if key is not None else token_key(settings)  # netboot.token_secret is registered by config
        self.now = now
        self.base_url = str(settings.netboot.public_url or f"http://{settings.netboot.host}:{settings.netboot.port}")
        self.base_url = self.base_url.rstrip("/")
        self._lock = threading.Lock()

    def callback_url(self, server_uuid: str, token: str) -> str:
        """The one-time URL the booted machine calls: ``<base>/v1/callback/<uuid>/<token>``."""
        return f"{self.base_url}/v1/callback/{server_uuid}/{token}"

    def boot(self, mac: str) -> BootAnswer | None:
        """The boot for ``mac`` (module docstring), or ``None``. Raises
        :class:`~flasher.netboot.lookup.MACError` for a malformed MAC and the inventory client's errors; a bad
        profile is logged and answers ``None``."""
        canonical = canonical_mac(mac)
        server = server_by_mac(self.inventory, canonical)
        if server is None:
            logger.info("netboot: MAC {} is not in the inventory", canonical)
            return None
        uuid = str(server.uuid)
        attribute = server.attribute(BOOT_NAMESPACE)
        if attribute is None:
            logger.info("netboot: server {} (MAC {}) has no boot profile", uuid, canonical)
            return None
        try:
            profile = resolve(attribute.data, self.settings.netboot.profiles)
        except ProfileError as exc:
            logger.warning("netboot: server {} has a boot attribute that cannot be used: {}", uuid, exc)
            return None
        if profile is None:
            return None
        with self._lock:  # one replica's concurrent asks for one boot share one nonce
            record = self._record_for_boot(uuid, canonical, profile)
        token = token_for(self.key, uuid, record["nonce"])
        values = {
            "uuid": uuid,
            "name": server.name,
            "facility": server.facility,
            "mac": canonical,
            "token": token,
            "callback_url": self.callback_url(uuid, token),
            "base_url": self.base_url,
        }
        try:
            rendered = profile.render(values)
        except ProfileError as exc:
            logger.warning("netboot: server {}: {}", uuid, exc)
            return None
        logger.info("netboot: server {} (MAC {}) boots {}", uuid, canonical, profile.name or "its own profile")
        return BootAnswer(uuid, rendered)

    def _record_for_boot(self, uuid: str, mac: str, profile: BootProfile) -> dict[str, Any]:
        now = self.now()
        record = state.read_record(self.inventory, uuid)
        if record is None or not state.is_open(record, now):
            record = state.new_record(
                now, self.settings.netboot.token_ttl, state=state.BOOTING, by="netboot", profile=profile.name
            )
        elif record.get("state") == state.BOOTING and record.get("mac") == mac:
            return record  # asked again during the same boot: nothing to write
        record.update(state=state.BOOTING, bootedAt=state.rfc3339(now), mac=mac)
        state.write_record(self.inventory, uuid, record)
        return record

    def callback(
        self, server_uuid: str, token: str, data: Mapping[str, Any], *, remote: str | None = None
    ) -> CallbackOutcome:
        """Record the booted machine's callback (module docstring). Raises the inventory client's errors."""
        with self._lock:
            try:
                record = state.read_record(self.inventory, server_uuid)
            except (NotFoundError, ValueError):
                return CallbackOutcome.UNKNOWN
            nonce = record.get("nonce") if record else None
            if not record or not isinstance(nonce, str) or not token_matches(self.key, server_uuid, nonce, token):
                logger.warning("netboot: callback for server {} with a token it does not have", server_uuid)
                return CallbackOutcome.UNKNOWN
            now = self.now()
            if record.get("state") == state.CALLED_BACK:
                return CallbackOutcome.USED
            if not state.is_open(record, now):
                return CallbackOutcome.EXPIRED
            sent = {
                str(key)[:64]: str(value)[:MAX_CALLBACK_VALUE] for key, value in list(data.items())[:MAX_CALLBACK_KEYS]
            }
            record.update(state=state.CALLED_BACK, calledBackAt=state.rfc3339(now), callback=sent)
            if remote:
                record["callbackFrom"] = remote
            state.write_record(self.inventory, server_uuid, record)
        logger.info("netboot: server {} called back", server_uuid)
        return CallbackOutcome.ACCEPTED
