"""The netboot endpoints served for a test: uvicorn in a thread on a free loopback port (a real HTTP server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
import uvicorn

from flasher.config import Settings
from flasher.inventory.client import InventoryClient
from flasher.netboot.api import create_app
from flasher.netboot.service import NetbootService


@dataclass
class NetbootServer:
    """A running netboot server: ``url`` (``http://127.0.0.1:PORT``) and its :class:`NetbootService`."""

    url: str
    service: NetbootService


@contextmanager
def serve_netboot(settings: Settings, *, key: bytes = b"test-key", timeout: float = 20.0) -> Iterator[NetbootServer]:
    """Serve the netboot app for ``settings`` (``netboot.host``/``port``; the port must be free) until the block
    ends; waits until ``/healthz`` answers."""
    service = NetbootService(InventoryClient(settings.inventory), settings, key=key)
    config = uvicorn.Config(
        create_app(service), host=settings.netboot.host, port=settings.netboot.port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="netboot-test", daemon=True)
    thread.start()
    url = f"http://{settings.netboot.host}:{settings.netboot.port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=1).ok:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the netboot server did not start on {url}")
        time.sleep(0.05)
    try:
        yield NetbootServer(url, service)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
