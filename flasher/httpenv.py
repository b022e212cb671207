"""What ``requests`` looks up at every request, looked up once per session: the environment and the CA bundle.

A ``requests.Session`` with ``trust_env`` (the default) reads the proxy variables (``HTTPS_PROXY``, ``NO_PROXY``...,
the whole environment walked twice), ``~/.netrc`` when a request carries no auth, and ``REQUESTS_CA_BUNDLE`` /
``CURL_CA_BUNDLE`` for every request; and for every new HTTPS connection urllib3 makes a TLS context and loads the
CA bundle into it (certifi's 140 certificates by default). sushy asks each BMC to close every connection
(``Connection: close``), so a task paid that per request. :func:`settle` resolves the environment once, for the
session's one host, and mounts an adapter whose connections share one context per CA bundle
(:func:`tls_context`). What a request does stays the same: the proxies the environment names for that host, the
same CA bundle, the same hostname check (urllib3's); ``.netrc`` is no longer read (flasher gives every request
its credentials).
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

import requests
from urllib3.util.ssl_ import create_urllib3_context

_CONTEXTS: dict[tuple[str, int, int], ssl.SSLContext] = {}
_CONTEXTS_LOCK = threading.Lock()


def tls_context(ca: str) -> ssl.SSLContext:
    """A verifying client TLS context that trusts the CA bundle file (or directory) ``ca``: made once per process
    and per version of the file (its path, size and modification time: a replaced bundle is loaded again), and
    shared by every session. Hostnames are matched by urllib3, as with the contexts it makes itself. Raises
    ``OSError`` / ``ssl.SSLError`` when ``ca`` cannot be read."""
    info = os.stat(ca)
    key = (ca, info.st_size, info.st_mtime_ns)
    with _CONTEXTS_LOCK:
        context = _CONTEXTS.get(key)
        if context is None:
            context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
            if os.path.isdir(ca):
                context.load_verify_locations(capath=ca)
            else:
                context.load_verify_locations(cafile=ca)
            for stale in [k for k in _CONTEXTS if k[0] == ca]:
                del _CONTEXTS[stale]
            _CONTEXTS[key] = context
        return context


class TLSContextAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter whose verified HTTPS connections use ``context`` (its CA bundle already loaded) instead of
    a context made and loaded for each connection. A request with ``verify=False`` is handled as by requests."""

    def __init__(self, context: ssl.SSLContext, **kwargs: Any) -> None:
        self._context = context
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[Any, Any]:
        host: Any
        pool: Any
        host, pool = super().build_connection_pool_key_attributes(request, verify, cert)
        if verify is not False and host.get("scheme") == "https":
            pool.pop("ca_certs", None)
            pool.pop("ca_cert_dir", None)
            pool["ssl_context"] = self._context
        return host, pool

    def cert_verify(self, conn: Any, url: str, verify: bool | str, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)  # type: ignore[no-untyped-call]
        if verify is not False and url.lower().startswith("https"):
            conn.ca_certs = conn.ca_cert_dir = None  # the context holds them: urllib3 would load them again


def environment_verify(verify: bool | str) -> bool | str:
    """``verify`` as requests resolves it with ``trust_env``: for ``True``, ``REQUESTS_CA_BUNDLE``, else
    ``CURL_CA_BUNDLE``, else ``True`` (certifi's bundle); a path or ``False`` as given."""
    if verify is True:
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return verify


def settle(session: requests.Session, url: str, verify: bool | str) -> bool | str:
    """Resolve the environment of ``session`` once for ``url``'s host, turn ``trust_env`` off, and for HTTPS with
    verification mount a :class:`TLSContextAdapter` (unless another adapter than requests' own is mounted, e.g.
    one with TLS options), keeping its pool sizes and retries. Returns the ``verify`` to pass with each request
    from now on (``True``, a CA bundle path or ``False``). A CA bundle that cannot be read mounts nothing: requests then
    fails the first request saying so, as without this."""
    session.proxies.update(requests.utils.get_environ_proxies(url))
    session.trust_env = False
    resolved = environment_verify(verify)
    mounted = session.adapters.get("https://")
    if (
        resolved is False
        or not url.lower().startswith("https://")
        or type(mounted) is not requests.adapters.HTTPAdapter
    ):
        return resolved
    try:
        context = tls_context(requests.utils.DEFAULT_CA_BUNDLE_PATH if resolved is True else str(resolved))
    except OSError:  # requests will say what is wrong with the bundle, at the first request, as it always has
        return resolved
    pools: Any = mounted  # its pool settings are private attributes, untyped
    session.mount(
        "https://",
        TLSContextAdapter(
            context,
            pool_connections=pools._pool_connections,
            pool_maxsize=pools._pool_maxsize,
            max_retries=pools.max_retries,
            pool_block=pools._pool_block,
        ),
    )
    return resolved
