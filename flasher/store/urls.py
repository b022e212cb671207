"""Which image URLs the firmware store may download from, and how a URL is shown in logs and errors.

Settings: ``store.allowed_schemes`` (``http``, ``https``) and ``store.allowed_hosts``, whose patterns and the
hosts refused unless named (loopback, link-local, the cloud metadata services) are :mod:`flasher.hostrules`'.
An empty host list allows any host but those. The rule holds three times: for the URL given
(:func:`check_url`, before the cache is even looked at), for every redirect target (the same function), and for
the address each connection actually reached (:func:`check_peer`, after the TCP connect and before a byte is
sent), so a name that resolves to a refused address, or is re-pointed there between two lookups, gets nothing:
no image, no digest of one in an error message.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flasher import redact
from flasher.hostrules import DEFAULT_PORTS, HostPattern, address_refused_because, normalise_host, refused_because
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


def _patterns(allowed_hosts: Sequence[str | HostPattern]) -> tuple[HostPattern, ...]:
    return tuple(p if isinstance(p, HostPattern) else HostPattern.parse(p) for p in allowed_hosts)


def host_allowed(host: str, allowed_hosts: Sequence[str | HostPattern], port: int | None = None) -> bool:
    """True when ``host`` on ``port`` (any port when ``None``) matches one of ``allowed_hosts``; any host when
    it is empty. Says nothing about hosts refused unless named: see :func:`host_refusal`."""
    patterns = _patterns(allowed_hosts)
    if not patterns:
        return True
    name = normalise_host(host)
    return any(p.covers(name, port if port is not None else p.port or 0) for p in patterns)


def host_refusal(host: str, port: int, allowed_hosts: Sequence[str | HostPattern]) -> str | None:
    """Why ``host`` on ``port`` may not be downloaded from, or ``None`` when it may."""
    patterns = _patterns(allowed_hosts)
    name = normalise_host(host)
    shown = ", ".join(p.entry for p in patterns)
    why = refused_because(host)
    if why is not None and not any(p.names(name, port) for p in patterns):
        return f"host {name!r} is {why}, refused unless store.allowed_hosts names it"
    if patterns and not any(p.covers(name, port) for p in patterns):
        if any(p.covers(name, p.port or port) for p in patterns):
            return f"port {port} of host {name!r} is not in store.allowed_hosts ({shown})"
        return f"host {name!r} is not in store.allowed_hosts ({shown})"
    return None


def check_url(url: str, allowed_schemes: Sequence[str], allowed_hosts: Sequence[str | HostPattern]) -> None:
    """Raise :class:`DisallowedURLError` unless ``url`` has an allowed scheme, host and port."""
    shown = display_url(url)
    if any(ord(c) <= 32 or ord(c) == 127 for c in url):
        raise DisallowedURLError(shown, "it contains spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError as exc:
        raise DisallowedURLError(shown, f"it does not parse ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in allowed_schemes:
        allowed = ", ".join(allowed_schemes) or "none"
        raise DisallowedURLError(shown, f"scheme {scheme or '(none)'!r} is not in store.allowed_schemes ({allowed})")
    if not host:
        raise DisallowedURLError(shown, "it has no host")
    reason = host_refusal(host, port if port is not None else DEFAULT_PORTS.get(scheme, 0), allowed_hosts)
    if reason is not None:
        raise DisallowedURLError(shown, reason)


def check_peer(scheme: str, host: str, port: int, peer: str, allowed_hosts: Sequence[str | HostPattern]) -> None:
    """Raise :class:`DisallowedURLError` when a connection for ``host:port`` reached ``peer`` (the address the
    socket is connected to), an address refused unless ``store.allowed_hosts`` names ``host``."""
    why = address_refused_because(peer)
    if why is None:
        return
    name = normalise_host(host)
    if any(p.names(name, port) for p in _patterns(allowed_hosts)):
        return
    shown = display_url(f"{scheme}://{host if ':' not in host else f'[{host}]'}:{port}/")
    raise DisallowedURLError(
        shown, f"host {name!r} resolves to {peer}, {why}, refused unless store.allowed_hosts names it"
    )
