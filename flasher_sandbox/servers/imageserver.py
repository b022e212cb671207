"""The sandbox's image server: firmware images over HTTP on a free loopback port (a firmware's
``repository_url``), in a thread of the process that starts it, able to misbehave on purpose.

It serves the files under a directory (``root``, optional) and byte strings added by path (:meth:`ImageServer.add`,
:meth:`ImageServer.image`; these win over a file of the same path). Downloads can resume: ``Range: bytes=N-``
gets 206 with ``Content-Range`` (RFC 9110 §14), honoured only while ``If-Range`` is absent or names the current
``ETag``; ``HEAD`` gets the headers alone. Every request is recorded (``requests``, :meth:`ImageServer.gets`).
The knobs, set before or between requests, make it fail the way real download servers do:

* ``honour_range``: answer ``Range`` with 206 and send ``Accept-Ranges: bytes`` (True), or ignore ``Range`` and
  send 200 without ``Accept-Ranges`` (False);
* ``fail_status``: statuses answered (in order, one per request) before the real answer, e.g. ``[503]``;
* ``drop_after``: body bytes sent before the connection is cut, one entry per request, e.g. ``[700_000]``;
* ``length_delta``: added to the real size in ``Content-Length`` (a server that lies);
* ``chunk_delay``: seconds slept after every 64 KiB (a slow server);
* ``redirects``: path → ``Location`` answered with 302.

``start(tls=(certificate, key))`` serves HTTPS instead.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from flasher_sandbox.images import make_image
from flasher_sandbox.procs import LOOPBACK

_CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclass
class Recorded:
    """One request the server received: method, path (with any query) and headers."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class _Found:
    """What a path names: its size, ETag, and how to read it from an offset."""

    size: int
    etag: str
    data: bytes | None = None
    file: Path | None = None

    def chunks(self, start: int, limit: int | None) -> Iterator[bytes]:
        """The bytes from ``start`` (at most ``limit`` of them), in pieces of 64 KiB."""
        end = self.size if limit is None else min(self.size, start + limit)
        if self.data is not None:
            for offset in range(start, end, _CHUNK):
                yield self.data[offset : min(offset + _CHUNK, end)]
            return
        assert self.file is not None
        with self.file.open("rb") as handle:
            handle.seek(start)
            yield from _read(handle, end - start)


def _read(handle: BinaryIO, count: int) -> Iterator[bytes]:
    while count > 0:
        piece = handle.read(min(_CHUNK, count))
        if not piece:
            return
        count -= len(piece)
        yield piece


class ImageServer:
    """Image files over HTTP on ``127.0.0.1:<free port>``: :meth:`start` serves in a daemon thread, :meth:`stop`
    closes the socket. ``root`` is a directory served as it is (``GET /dell/bios.bin`` is ``root/dell/bios.bin``;
    nothing outside it). The knobs are described in the module's docstring."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root.resolve() if root is not None else None
        self.files: dict[str, bytes] = {}
        self.honour_range = True
        self.fail_status: list[int] = []
        self.drop_after: list[int] = []
        self.length_delta = 0
        self.chunk_delay = 0.0
        self.redirects: dict[str, str] = {}
        self.requests: list[Recorded] = []
        self.tls: tuple[Path, Path] | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # ---- addresses ------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (``RuntimeError`` before :meth:`start`)."""
        if self._httpd is None:
            raise RuntimeError("the image server is not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (``https`` with TLS)."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def url(self, path: str) -> str:
        """The URL of ``path`` (with or without its leading ``/``; it need not exist: then it answers 404)."""
        return f"{self.base_url}/{path.lstrip('/')}"

    # ---- content --------------------------------------------------------------------------------------------

    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path`` (replacing what was there); returns its URL."""
        with self._lock:
            self.files["/" + path.lstrip("/")] = data
        return self.url(path)

    def image(
        self,
        component: str,
        vendor: str,
        version: str,
        models: Sequence[str] = (),
        *,
        size: int = 65536,
        name: str | None = None,
    ) -> str:
        """Serve a sandbox firmware image (:func:`flasher_sandbox.images.make_image`) as ``name`` (default
        ``<vendor>-<component>-<version>.bin``, spaces in the version as ``_``); returns its URL."""
        filename = name or f"{vendor}-{component}-{version.replace(' ', '_')}.bin"
        return self.add(filename, make_image(component, vendor, version, list(models), size=size))

    def gets(self, path: str) -> list[Recorded]:
        """The GET requests received for ``path``."""
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and r.path == path]

    # ---- lifecycle ------------------------------------------------------------------------------------------

    def start(self, tls: tuple[Path, Path] | None = None) -> ImageServer:
        """Listen on a free loopback port and serve in a daemon thread; with ``tls`` (certificate, key): HTTPS."""
        server = self
        self.tls = tls

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self, body=True)

            def do_HEAD(self) -> None:
                server._handle(self, body=False)

        self._httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="image-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (connections still open end with the process)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    # ---- answering ------------------------------------------------------------------------------------------

    def _pop(self, values: list[int]) -> int | None:
        with self._lock:
            return values.pop(0) if values else None

    def _find(self, path: str) -> _Found | None:
        with self._lock:
            data = self.files.get(path)
        if data is not None:
            return _Found(len(data), '"' + hashlib.sha256(data).hexdigest()[:16] + '"', data=data)
        if self.root is None:
            return None
        candidate = (self.root / unquote(urlsplit(path).path).lstrip("/")).resolve()
        if self.root not in candidate.parents or not candidate.is_file():
            return None
        stat = candidate.stat()
        return _Found(stat.st_size, f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"', file=candidate)

    def _handle(self, handler: BaseHTTPRequestHandler, *, body: bool) -> None:
        path = handler.path
        with self._lock:
            self.requests.append(Recorded(handler.command, path, dict(handler.headers.items())))
        status = self._pop(self.fail_status)
        if status is not None:
            _answer(handler, status, b"injected failure\n", body=body)
            return
        if path in self.redirects:
            handler.send_response(302)
            handler.send_header("Location", self.redirects[path])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        found = self._find(path)
        if found is None:
            _answer(handler, 404, b"not found\n", body=body)
            return
        start = 0
        match = _RANGE.match(handler.headers.get("Range", ""))
        if_range = handler.headers.get("If-Range")
        if self.honour_range and match is not None and if_range in (None, found.etag):
            start = int(match[1])
            if start >= found.size:
                _answer(handler, 416, b"", [("Content-Range", f"bytes */{found.size}")], body=body)
                return
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{found.size - 1}/{found.size}")
        else:
            handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(found.size - start + self.length_delta))
        if self.honour_range:
            handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("ETag", found.etag)
        handler.end_headers()
        if not body:
            return
        limit = self._pop(self.drop_after)
        for piece in found.chunks(start, limit):
            try:
                handler.wfile.write(piece)
                handler.wfile.flush()
            except OSError:
                return
            if self.chunk_delay:
                time.sleep(self.chunk_delay)
        if limit is not None or self.length_delta:
            # Cut the connection: the body does not match Content-Length, so it cannot be reused.
            handler.close_connection = True
            handler.wfile.flush()
            handler.connection.shutdown(2)


def _answer(
    handler: BaseHTTPRequestHandler,
    status: int,
    content: bytes,
    headers: list[tuple[str, str]] | None = None,
    *,
    body: bool = True,
) -> None:
    handler.send_response(status)
    for name, value in headers or []:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(content)))
    handler.end_headers()
    if body:
        handler.wfile.write(content)
