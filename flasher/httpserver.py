"""Running a WSGI application with waitress in a background thread.

Used by the file server that hands firmware images to BMCs and by the service's ``/healthz`` and ``/metrics``
endpoints. waitress binds and listens in :meth:`BackgroundServer.start`, so a caller can hand out the URL as
soon as ``start`` returns; :meth:`BackgroundServer.stop` closes the listening socket and every open connection
from inside waitress's own event loop (waitress' trigger), then joins the threads.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Protocol

from loguru import logger
from waitress import trigger as waitress_trigger
from waitress.channel import HTTPChannel
from waitress.server import MultiSocketServer, create_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


class _Dispatcher(Protocol):
    def close(self) -> None: ...


class BackgroundServer:
    """One waitress server for ``app`` on ``host:port`` (``port`` 0: a free port chosen by the OS).

    ``threads`` is waitress's worker thread count (concurrent requests); ``name`` names the thread and the
    ``Server`` header. Raises ``OSError`` from :meth:`start` when the address cannot be bound. A host name
    that resolves to several addresses is served on all of them; :attr:`port` is then the first one's.
    """

    def __init__(self, app: WSGIApplication, host: str, port: int, *, threads: int = 8, name: str) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port}")
        self.app = app
        self.host = host
        self.name = name
        self._requested_port = port
        self._threads = threads
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def start(self) -> BackgroundServer:
        """Bind, listen and serve in a daemon thread; returns once the socket accepts connections."""
        if self._server is not None:
            raise RuntimeError(f"{self.name} is already running on {self.url}")
        server: Any = create_server(
            self.app, host=self.host, port=self._requested_port, threads=self._threads, ident=self.name
        )
        # A MultiSocketServer (the host resolved to several addresses) lists (host, port) per socket.
        port = int(server.effective_listen[0][1] if isinstance(server, MultiSocketServer) else server.effective_port)
        self._server = server
        self._port = port
        self._thread = threading.Thread(target=server.run, name=self.name, daemon=True)
        self._thread.start()
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

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and all connections, then join; waits up to ``timeout`` s for each.

        Requests still running are told their client is gone (waitress raises ``ClientDisconnected`` in the
        thread writing the response). Calling ``stop`` twice, or before ``start``, does nothing.
        """
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._server = None
        self._thread = None
        socket_map: dict[int, _Dispatcher] = server.map if hasattr(server, "map") else server._map

        def close_all(_: None = None) -> None:  # the stub types thunks as taking one argument
            # Runs in waitress's event-loop thread. A connection's handle_close (not close) wakes a request
            # thread that waits for its output buffer to drain; once the map is empty the loop returns.
            for dispatcher in list(socket_map.values()):
                if isinstance(dispatcher, HTTPChannel):
                    dispatcher.handle_close()
                else:
                    dispatcher.close()
            socket_map.clear()

        wake = next((d for d in list(socket_map.values()) if isinstance(d, waitress_trigger.trigger)), None)
        try:
            if wake is None:
                raise OSError("waitress's trigger is gone")
            wake.pull_trigger(close_all)
        except OSError as exc:  # the trigger's pipe is closed: the event loop has ended, close from here
            logger.debug("{}: cannot wake the event loop ({}); closing its sockets directly", self.name, exc)
            close_all()
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("{} did not stop within {:.0f} s", self.name, timeout)
        server.task_dispatcher.shutdown(timeout=timeout)
        logger.info("{} stopped", self.name)
