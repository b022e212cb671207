"""A small HTTP server for firmware-store tests that can misbehave on purpose.

Serves byte strings by path on a free loopback port (stdlib ``http.server``, so every fault is under the test's
control) and records every request. Knobs, set before or between requests:

* ``honour_range``: answer ``Range: bytes=N-`` with 206 and send ``Accept-Ranges: bytes`` (True), or ignore
  ``Range`` and send 200 without ``Accept-Ranges`` (False);
* ``fail_status``: statuses answered (in order, one per request) before the real answer, e.g. ``[503]``;
* ``drop_after``: body bytes sent before the connection is cut, one entry per request, e.g. ``[700_000]``;
* ``length_delta``: added to the real size in ``Content-Length`` (a server that lies);
* ``chunk_delay``: seconds slept after every 64 KiB (a slow server);
* ``redirects``: path → ``Location`` answered with 302.
"""

from __future__ import annotations

import hashlib
import re
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class ImageServer:
    files: dict[str, bytes] = field(default_factory=dict)
    honour_range: bool = True
    fail_status: list[int] = field(default_factory=list)
    drop_after: list[int] = field(default_factory=list)
    length_delta: int = 0
    chunk_delay: float = 0.0
    redirects: dict[str, str] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    tls: tuple[Path, Path] | None = None
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, path: str, data: bytes) -> str:
        """Serve ``data`` at ``path``; returns its URL."""
        self.files[path] = data
        return self.url(path)

    def url(self, path: str) -> str:
        assert self._httpd is not None, "server not started"
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}{path}"

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    def gets(self, path: str) -> list[Recorded]:
        """The GET requests received for ``path``."""
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and r.path == path]

    def start(self, tls: tuple[Path, Path] | None = None) -> ImageServer:
        """Listen on a free loopback port; with ``tls`` (certificate, key): HTTPS."""
        server = self
        self.tls = tls

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)

    def _pop(self, values: list[int]) -> int | None:
        with self._lock:
            return values.pop(0) if values else None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        with self._lock:
            self.requests.append(Recorded("GET", path, dict(handler.headers.items())))
        status = self._pop(self.fail_status)
        if status is not None:
            _answer(handler, status, b"injected failure\n")
            return
        if path in self.redirects:
            handler.send_response(302)
            handler.send_header("Location", self.redirects[path])
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        data = self.files.get(path)
        if data is None:
            _answer(handler, 404, b"not found\n")
            return
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        start = 0
        match = _RANGE.match(handler.headers.get("Range", ""))
        if_range = handler.headers.get("If-Range")
        if self.honour_range and match is not None and if_range in (None, etag):
            start = int(match[1])
            if start >= len(data):
                _answer(handler, 416, b"", [("Content-Range", f"bytes */{len(data)}")])
                return
            handler.send_response(206)
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            handler.send_response(200)
        body = data[start:]
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body) + self.length_delta))
        if self.honour_range:
            handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("ETag", etag)
        handler.end_headers()
        limit = self._pop(self.drop_after)
        if limit is not None:
            body = body[:limit]
        for offset in range(0, len(body), _CHUNK):
            try:
                handler.wfile.write(body[offset : offset + _CHUNK])
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
    handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: list[tuple[str, str]] | None = None
) -> None:
    handler.send_response(status)
    for name, value in headers or []:
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1 and its key (``openssl``), for TLS tests."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
