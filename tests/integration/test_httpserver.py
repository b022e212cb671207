"""BackgroundServer: a WSGI app served by waitress in a thread, on loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import pytest
import requests

from flasher.httpserver import BackgroundServer
from flasher_sandbox.procs import free_port, port_open

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

pytestmark = pytest.mark.integration


def _hello(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    body = f"hello {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_serves_on_an_os_chosen_port_until_stopped() -> None:
    server = BackgroundServer(_hello, "127.0.0.1", 0, threads=2, name="test-server").start()
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        response = requests.get(server.url + "/x", timeout=5)
        assert response.text == "hello /x"
        assert response.headers["Server"] == "test-server"
        assert server.running
    finally:
        server.stop()

    assert not server.running
    assert not port_open("127.0.0.1", server.port)
    server.stop()  # twice is harmless


def test_serves_on_the_port_asked_for() -> None:
    port = free_port()
    server = BackgroundServer(_hello, "127.0.0.1", port, name="fixed-port").start()
    try:
        assert server.port == port
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    finally:
        server.stop()


def test_a_taken_port_fails_at_start() -> None:
    first = BackgroundServer(_hello, "127.0.0.1", 0, name="first").start()
    try:
        with pytest.raises(OSError):
            BackgroundServer(_hello, "127.0.0.1", first.port, name="second").start()
    finally:
        first.stop()


def test_stop_ends_a_response_still_streaming() -> None:
    started = threading.Event()
    release = threading.Event()

    def endless(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        started.set()
        while not release.is_set():
            yield b"x" * 65536

    server = BackgroundServer(endless, "127.0.0.1", 0, name="streaming").start()
    response = requests.get(server.url, stream=True, timeout=5)
    assert started.wait(5)

    server.stop(timeout=5)
    release.set()

    assert not server.running
    assert not [t for t in threading.enumerate() if t.name == "streaming"]
    response.close()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="threads"):
        BackgroundServer(_hello, "127.0.0.1", 0, threads=0, name="x")
    with pytest.raises(ValueError, match="port"):
        BackgroundServer(_hello, "127.0.0.1", 70000, name="x")


def test_stop_still_closes_when_the_event_loops_trigger_is_gone() -> None:
    """A closed wake-up pipe (the loop ended on its own) must not make stop() raise EBADF."""
    from waitress import trigger as waitress_trigger

    server = BackgroundServer(_hello, "127.0.0.1", 0, threads=1, name="test").start()
    port = server.port
    inner = server._server
    socket_map = inner.map if hasattr(inner, "map") else inner._map
    wake = next(d for d in list(socket_map.values()) if isinstance(d, waitress_trigger.trigger))
    wake.close()
    server.stop(timeout=2)
    assert not port_open("127.0.0.1", port)
