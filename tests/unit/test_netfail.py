"""``flasher.netfail.never_connected``: which ``requests`` failures prove the request never reached the server."""

from __future__ import annotations

import http.client
import socket

import pytest
import requests
from urllib3.connection import HTTPConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from flasher.netfail import never_connected
from flasher_sandbox.procs import free_port

_CONN = HTTPConnection("127.0.0.1", 9)


def _wrapped(reason: Exception) -> requests.ConnectionError:
    """What ``requests`` raises when urllib3 gives up: a ConnectionError around a MaxRetryError with a reason."""
    return requests.ConnectionError(MaxRetryError(None, "/redfish/v1/", reason))  # type: ignore[arg-type]


def test_a_refused_connection_never_connected() -> None:
    with pytest.raises(requests.ConnectionError) as caught:
        requests.post(f"http://127.0.0.1:{free_port()}/x", timeout=2)
    assert never_connected(caught.value)


@pytest.mark.parametrize(
    "exc",
    [
        requests.ConnectTimeout("connect timeout"),
        _wrapped(NewConnectionError(_CONN, "Failed to establish a new connection: [Errno 111] Connection refused")),
        _wrapped(NameResolutionError("bmc.invalid", _CONN, socket.gaierror(-2, "Name or service not known"))),
        _wrapped(ConnectTimeoutError(_CONN, "Connection to bmc.test timed out. (connect timeout=3)")),
    ],
    ids=["connect-timeout", "refused", "name-not-resolved", "connect-timeout-wrapped"],
)
def test_failures_before_the_request_left(exc: requests.RequestException) -> None:
    assert never_connected(exc)


@pytest.mark.parametrize(
    "exc",
    [
        requests.ReadTimeout("Read timed out."),
        requests.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"),
        requests.ConnectionError(ProtocolError("Connection aborted.", http.client.RemoteDisconnected("closed"))),
        _wrapped(ReadTimeoutError(None, "/redfish/v1/", "Read timed out.")),  # type: ignore[arg-type]
        _wrapped(ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))),
        requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"),
        requests.RequestException(),
    ],
    ids=["read-timeout", "aborted-text", "aborted", "read-timeout-wrapped", "reset", "chunked", "bare"],
)
def test_failures_after_the_request_may_have_left(exc: requests.RequestException) -> None:
    assert not never_connected(exc)
