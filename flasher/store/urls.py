"""Which image URLs the firmware store may download from, and how a URL is shown in logs and errors.

Settings: ``store.allowed_schemes`` (``http``, ``https``) and ``store.allowed_hosts``: exact host names or IP
addresses, or ``*.example.com`` for any name under ``example.com`` (at any depth, not ``example.com`` itself).
An empty host list allows any host. Names compare case-insensitively and without a trailing dot. The check runs
on the URL given and on every redirect target.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flasher import redact
from flasher.store.errors import DisallowedURLError


def display_url(url: str) -> str:
    """``url`` safe for a log line or an error: password and registered secrets masked, query values masked.

    Query values go because pre-signed URLs (S3, GCS) carry their signature there.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact.scrub(url)
    if parts.query:
        masked = urlencode([(key, "***") for key, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
        parts = parts._replace(query=masked)
    return redact.scrub(urlunsplit(parts))


def host_allowed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """True when ``host`` matches one of ``allowed_hosts`` (exact or ``*.suffix``); any host when it is empty."""
    if not allowed_hosts:
        return True
    name = host.lower().rstrip(".")
    for pattern in allowed_hosts:
        wanted = pattern.lower().rstrip(".")
        if wanted.startswith("*."):
            if name.endswith(wanted[1:]):
                return True
        elif name == wanted:
            return True
    return False


def check_url(url: str, allowed_schemes: Sequence[str], allowed_hosts: Sequence[str]) -> None:
    """Raise :class:`DisallowedURLError` unless ``url`` has an allowed scheme and host."""
    shown = display_url(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise DisallowedURLError(shown, f"it does not parse ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in allowed_schemes:
        allowed = ", ".join(allowed_schemes) or "none"
        raise DisallowedURLError(shown, f"scheme {scheme or '(none)'!r} is not in store.allowed_schemes ({allowed})")
    if not host:
        raise DisallowedURLError(shown, "it has no host")
    if not host_allowed(host, allowed_hosts):
        raise DisallowedURLError(shown, f"host {host!r} is not in store.allowed_hosts ({', '.join(allowed_hosts)})")
