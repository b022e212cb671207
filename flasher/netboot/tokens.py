"""One-time tokens for the booted machine's callback.

A token is ``HMAC-SHA256(key, "<server uuid>|<nonce>")`` in URL-safe base64 (43 characters). The nonce is random
and lives in the server's provision record (``sh.hollow.flasher.provision``); the key is
``netboot.token_secret``, shared by every replica. So any replica can render the same token into a kernel command
line (Pixiecore may ask for a machine's boot several times) and check it on the callback, without storing the
token itself anywhere: a reader of the inventory cannot forge a callback. One-time: the callback marks the
nonce used (:mod:`flasher.netboot.state`); a new ``provision`` or boot draws a new nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_nonce() -> str:
    """A fresh random nonce (24 hex digits)."""
    return secrets.token_hex(12)


def token_for(key: bytes, server_uuid: str, nonce: str) -> str:
    """The token of ``nonce`` for ``server_uuid`` under ``key``."""
    digest = hmac.new(key, f"{server_uuid}|{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_matches(key: bytes, server_uuid: str, nonce: str, token: str) -> bool:
    """True when ``token`` is the token of ``nonce`` for ``server_uuid`` (constant-time comparison)."""
    return hmac.compare_digest(token_for(key, server_uuid, nonce), token or "")
