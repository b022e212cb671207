"""Does this ``requests`` exception prove the request never reached the server?

A leaf module (it imports only ``requests`` and ``urllib3``), shared by the inventory transport and the BMC
session: both may send a request again only when it cannot have been received, since a write that reached the
server may have been applied (an attribute written twice, a second PowerCycle or Manager.Reset).
"""

from __future__ import annotations

import requests
from urllib3.exceptions import ConnectTimeoutError


def never_connected(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server: the TCP connection was never made (connect timeout,
    connection refused, name not resolved). False for everything after a connection was made (read timeout,
    connection reset or aborted, an answer cut off), and for failures it cannot place.

    ``requests`` raises ``ConnectTimeout`` for a connect timeout, and otherwise wraps urllib3's ``MaxRetryError``
    whose ``reason`` is a ``NewConnectionError`` (refused; ``NameResolutionError`` is one) or a
    ``ConnectTimeoutError`` (``NewConnectionError``'s base in urllib3 2).
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None  # urllib3's MaxRetryError
    return isinstance(reason, ConnectTimeoutError)
