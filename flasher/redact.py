"""Keeps secrets (BMC passwords, tokens) out of logs, error messages and status attributes.

Code that learns a secret at run time (a BMC password read from the inventory, an OAuth2 token) registers it
here; :func:`scrub` replaces every registered secret in a text with ``***``. The logging setup scrubs every
log line, and the status writer scrubs every message it writes into the inventory. This is a second line of
defence: code should not put secrets into messages in the first place.
"""

from __future__ import annotations

import re
import threading

_MASK = "***"
_MIN_LEN = 4  # shorter strings would mask ordinary words; such "secrets" are not secret anyway
_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

# user:password@ in URLs (redis://:pw@host, http://user:pw@host)
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


def register(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`scrub` masks it from now on. ``None`` and short values are ignored."""
    global _pattern
    if not secret or len(secret) < _MIN_LEN:
        return
    with _lock:
        if secret in _secrets:
            return
        _secrets.add(secret)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def scrub(text: str) -> str:
    """Return ``text`` with registered secrets and URL passwords replaced by ``***``."""
    if "://" in text:  # the URL pattern costs O(n²) on long runs of letters: only where a URL can be
        text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{_MASK}@", text)
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(_MASK, text)
    return text


def forget_all() -> None:
    """Drop every registered secret (tests only)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None
