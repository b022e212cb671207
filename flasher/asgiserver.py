"""Running an ASGI application with uvicorn in a background thread: flasher's one web stack.

Used by the file server that hands firmware images to BMCs, the replicas' ``/healthz``, ``/readyz`` and
``/metrics``, and the tests' ``flasher api``; ``flasher api`` itself runs uvicorn in its main thread.

:class:`BackgroundASGIServer` binds the listening socket itself in :meth:`~BackgroundASGIServer.start`, so the
caller can hand out the URL (and port 0 picks a free port) as soon as ``start`` returns, then runs uvicorn's
server on it in a daemon thread with its own event loop (uvicorn installs no signal handlers outside the main
thread). :meth:`~BackgroundASGIServer.stop` asks uvicorn to shut down (the app's lifespan ends, open connections
are closed after ``timeout``) and joins the thread.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn
from loguru import logger


class BackgroundASGIServer:
    """One uvicorn server for ``app`` on ``host:port`` (``port`` 0: a free port chosen by the OS).

    Raises ``OSError`` from :meth:`start` when the address cannot be bound, ``RuntimeError`` when the app's
    startup (lifespan) fails.
    """

    def __init__(self, app: Any, host: str, port: int, *, name: str) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        self.app = app
        self.host = host
        self.name = name
        self._requested_port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def start(self, timeout: float = 10.0) -> BackgroundASGIServer:
        """Bind, listen and serve in a daemon thread; returns once the app has started."""
        if self._server is not None:
            raise RuntimeError(f"{self.name} is already running on {self.url}")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        sock.listen(2048)
        sock.set_inheritable(True)
        config = uvicorn.Config(
            self.app,
            interface="asgi3",
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            ws="none",
        )
        server = uvicorn.Server(config)
        self._port = int(sock.getsockname()[1])
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=self.name, daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                self._server, self._thread = None, None
                sock.close()
                raise RuntimeError(f"{self.name} did not start (see the log for the app's startup error)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s")
            time.sleep(0.01)
        logger.info("{} listening on {}", self.name, self.url)
        return self

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def port(self) -> int:
        """The port the server listens on (the OS-chosen one when constructed with port 0)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (IPv6 hosts in brackets), without a trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Shut down (the app's lifespan ends) and join, waiting up to ``timeout`` s. Twice, or before
        :meth:`start`, does nothing."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server, self._thread = None, None
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(2.0)
            logger.warning("{} did not stop within {:.0f} s", self.name, timeout)
        logger.info("{} stopped", self.name)
