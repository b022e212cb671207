"""The HTTP server that hands cached firmware images to BMCs (Redfish SimpleUpdate's ``ImageURI``).

A BMC pulls the image itself, so flasher serves it: :meth:`FileServer.publish` makes one cached image
available at ``<base_url>/images/<token>/<filename>`` until :meth:`FileServer.unpublish`. The token is 32 random
bytes (``secrets.token_urlsafe``), so paths cannot be guessed; the file name is kept as the last segment because
some BMCs check the extension. Only ``GET`` and ``HEAD`` of a published path are answered; everything else is
404 (405 for other methods on a published path): no listing, and no path is ever mapped onto the file system.

Responses come from Starlette's ``FileResponse`` (1 MiB reads): ``Content-Length``, ``Accept-Ranges: bytes``,
single ``Range`` requests answered 206, ``If-Range`` against the ``ETag`` (the image's checksum) or
``Last-Modified``. A ``Range`` header naming several ranges or that does not parse is answered 416 with
``Content-Range: bytes */<size>`` before the file is opened, as flasher answered it before (a BMC that asks for
several ranges gets no ``multipart/byteranges``; RFC 9110 §14). Served by uvicorn in a thread
(:class:`flasher.asgiserver.BackgroundASGIServer`), the web stack of ``flasher api`` and the replicas' endpoints,
on ``fileserver.host:port``; ``fileserver.public_url`` is the base BMCs use when they reach flasher through
another address (NAT, a load balancer, a management network interface).
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from typing import Final

from loguru import logger
from starlette.datastructures import Headers
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send
from werkzeug.utils import secure_filename

from flasher import metrics
from flasher.asgiserver import BackgroundASGIServer
from flasher.config import FileServerSettings
from flasher.store.store import CachedImage, FirmwareStore, ImageHold

_TOKEN_BYTES = 32
#: One ``Range`` the server answers: ``bytes=<first>-[<last>]`` or ``bytes=-<suffix length>``.
_ONE_RANGE: Final = re.compile(r"^bytes=(?:\d+-\d*|-\d+)$")


@dataclass(frozen=True)
class _Publication:
    image: CachedImage
    filename: str
    hold: ImageHold
    mtime: float
    size: int


class _ImageResponse(FileResponse):
    """A file response in 1 MiB reads (Starlette's default is 64 KiB: more trips through the event loop)."""

    chunk_size = 1024 * 1024


async def _counting(send: Send, message: Message) -> None:
    """Send ``message``, then count its body bytes in ``BYTES_SERVED`` (once the server took them)."""
    await send(message)
    if message["type"] == "http.response.body":
        metrics.BYTES_SERVED.inc(len(message.get("body", b"")))


class FileServer:
    """Serves published images of ``store`` over HTTP. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, settings: FileServerSettings, store: FirmwareStore) -> None:
        self.settings = settings
        self.store = store
        self._lock = threading.Lock()
        self._by_path: dict[str, _Publication] = {}
        self._server = BackgroundASGIServer(self._asgi, settings.host, settings.port, name="flasher-fileserver")

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
        stat = held.path.stat()
        publication = _Publication(held, safe, hold, stat.st_mtime, stat.st_size)
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

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        with self._lock:
            publication = self._by_path.get(scope["path"])
        response: Response
        if publication is None:
            response = PlainTextResponse("not found\n", status_code=404)
        elif scope["method"] not in ("GET", "HEAD"):
            response = PlainTextResponse("method not allowed\n", status_code=405, headers={"Allow": "GET, HEAD"})
        else:
            wanted = Headers(scope=scope).get("range")
            if wanted is not None and not _ONE_RANGE.match(wanted.strip().replace(" ", "")):
                response = PlainTextResponse(
                    "range not satisfiable\n", status_code=416, headers={"Content-Range": f"bytes */{publication.size}"}
                )
            else:
                response = _ImageResponse(
                    publication.image.path,
                    media_type="application/octet-stream",
                    headers={"ETag": f'"{publication.image.checksum}"'},
                )

                async def sending(message: Message) -> None:
                    await _counting(send, message)

                await response(scope, receive, sending)
                return
        await response(scope, receive, send)
