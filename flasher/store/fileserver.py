"""The HTTP server that hands cached firmware images to BMCs (Redfish SimpleUpdate's ``ImageURI``).

A BMC pulls the image itself, so flasher serves it: :meth:`FileServer.publish` makes one cached image
available at ``<base_url>/images/<token>/<filename>`` until :meth:`FileServer.unpublish`. The token is 32 random
bytes (``secrets.token_urlsafe``), so paths cannot be guessed; the file name is kept as the last segment because
some BMCs check the extension. Only ``GET`` and ``HEAD`` of a published path are answered; everything else is
404 (405 for other methods on a published path): no listing, and no path is ever mapped onto the file system.

Responses come from werkzeug's ``send_file(conditional=True)``: ``Content-Length``, ``Accept-Ranges: bytes``,
single ``Range`` requests answered 206, unsatisfiable, malformed and multi-range ones 416 (werkzeug builds no
``multipart/byteranges``; RFC 9110 §14), ``If-Range``/``If-None-Match``
against the ``ETag`` (the image's checksum). Served by waitress (:class:`flasher.httpserver.BackgroundServer`)
on ``fileserver.host:port``; ``fileserver.public_url`` is the base BMCs use when they reach flasher through
another address (NAT, a load balancer, a management network interface).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from loguru import logger
from werkzeug.exceptions import HTTPException
from werkzeug.utils import secure_filename, send_file
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import FileWrapper

from flasher import metrics
from flasher.config import FileServerSettings
from flasher.httpserver import BackgroundServer
from flasher.store.store import CachedImage, FirmwareStore, ImageHold

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

_TOKEN_BYTES = 32
_SEND_BLOCK = 1024 * 1024


@dataclass(frozen=True)
class _Publication:
    image: CachedImage
    filename: str
    hold: ImageHold
    mtime: float


class _CountingBody:
    """A WSGI response body that counts the bytes the server took from it in ``BYTES_SERVED``.

    A chunk counts once the server asks for the next one (or closes the body), i.e. once it has written it;
    a client that hangs up mid-image is counted for what it was sent.
    """

    def __init__(self, body: Iterable[bytes]) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            yield chunk
            metrics.BYTES_SERVED.inc(len(chunk))

    def close(self) -> None:
        close = getattr(self._body, "close", None)
        if close is not None:
            close()


def _file_wrapper(file: IO[bytes], buffer_size: int = _SEND_BLOCK) -> Iterable[bytes]:
    """werkzeug's file wrapper with 1 MiB blocks instead of send_file's 8 KiB (fewer trips through waitress)."""
    return FileWrapper(file, max(buffer_size, _SEND_BLOCK))


class FileServer:
    """Serves published images of ``store`` over HTTP. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, settings: FileServerSettings, store: FirmwareStore) -> None:
        self.settings = settings
        self.store = store
        self._lock = threading.Lock()
        self._by_path: dict[str, _Publication] = {}
        self._server = BackgroundServer(
            self._wsgi, settings.host, settings.port, threads=settings.threads, name="flasher-fileserver"
        )

    def start(self) -> None:
        """Listen on ``fileserver.host:port`` (``OSError`` when the address is taken or not local)."""
        if not self.settings.enabled:
            raise RuntimeError("the file server is disabled (fileserver.enabled is false)")
        self._server.start()
        if self.settings.public_url is None and self.settings.host in ("0.0.0.0", "::"):
            logger.warning(
                "file server listens on all addresses but fileserver.public_url is unset: BMCs are told {}",
                self.base_url,
            )

    def stop(self) -> None:
        """Stop serving and release every published image (they may be evicted again)."""
        self._server.stop()
        with self._lock:
            publications = list(self._by_path.values())
            self._by_path.clear()
        for publication in publications:
            publication.hold.release()

    @property
    def base_url(self) -> str:
        """``fileserver.public_url`` if set, else ``http://host:port`` (the bound port once started)."""
        if self.settings.public_url is not None:
            return str(self.settings.public_url).rstrip("/")
        port = self._server.port if self._server.running else self.settings.port
        host = f"[{self.settings.host}]" if ":" in self.settings.host else self.settings.host
        return f"http://{host}:{port}"

    def publish(self, image: CachedImage, filename: str) -> str:
        """Serve ``image`` under a new unguessable path ending in ``filename``; returns the URL for the BMC.

        The image is held (not evicted) until :meth:`unpublish`. ``filename`` is reduced to a safe single path
        segment (``werkzeug.utils.secure_filename``); one that is empty after that raises ``ValueError``.
        Raises :class:`~flasher.store.errors.ImageNotCachedError` when the image has left the cache, and
        ``RuntimeError`` before :meth:`start`.
        """
        if not self._server.running:
            raise RuntimeError("the file server is not running: start() it before publishing images")
        safe = secure_filename(filename)
        if not safe:
            raise ValueError(f"filename {filename!r} has no usable characters for a URL path segment")
        hold = self.store.hold(image.checksum)
        held = hold.image
        path = f"{self._path_prefix()}/images/{secrets.token_urlsafe(_TOKEN_BYTES)}/{safe}"
        publication = _Publication(held, safe, hold, held.path.stat().st_mtime)
        with self._lock:
            self._by_path[path] = publication
        logger.info("publishing firmware image {} as {} for BMCs", held.checksum, safe)
        return self._public_root() + path

    def unpublish(self, url: str) -> None:
        """Stop serving ``url`` (as returned by :meth:`publish`) and release the image. Unknown URLs are ignored."""
        root = self._public_root()
        if not url.startswith(root):
            return
        with self._lock:
            publication = self._by_path.pop(url[len(root) :], None)
        if publication is not None:
            publication.hold.release()
            logger.info("unpublished firmware image {} ({})", publication.image.checksum, publication.filename)

    def published(self) -> int:
        """How many URLs are published right now."""
        with self._lock:
            return len(self._by_path)

    def _public_root(self) -> str:
        """``base_url`` without its path (the path prefix is part of the published path)."""
        base = self.base_url
        prefix = self._path_prefix()
        return base[: len(base) - len(prefix)] if prefix else base

    def _path_prefix(self) -> str:
        if self.settings.public_url is None:
            return ""
        return (self.settings.public_url.path or "").rstrip("/")

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        with self._lock:
            publication = self._by_path.get(request.path)
        if publication is None:
            response = Response("not found\n", status=404, mimetype="text/plain")
        elif request.method not in ("GET", "HEAD"):
            response = Response("method not allowed\n", status=405, mimetype="text/plain")
            response.allow.update(("GET", "HEAD"))
        else:
            environ["wsgi.file_wrapper"] = _file_wrapper
            try:
                response = send_file(
                    publication.image.path,
                    environ,
                    mimetype="application/octet-stream",
                    conditional=True,
                    etag=str(publication.image.checksum),
                    last_modified=publication.mtime,
                )
            except HTTPException as exc:  # 416: a range past the end, several ranges, a malformed Range header
                return exc(environ, start_response)
            return _CountingBody(response(environ, start_response))
        return response(environ, start_response)
