"""Images for the install engine: fetched and verified by the firmware store, served by the file server.

:class:`StoreImages` is the engine's :class:`~flasher.install.state.ImageSource`. ``http(s)`` image URLs are
fetched through :meth:`FirmwareStore.fetch` (allowed schemes and hosts, checksum, cache); ``file:`` URLs only
when the file was handed over explicitly (``local_files``: the one-shot ``flasher install --file``), through
:meth:`FirmwareStore.add_file`, so an attribute can never make flasher read a local path. Either way the image
reaches a BMC only after its checksum matched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from flasher.checksum import Checksum, ChecksumError
from flasher.install.plan import PlannedInstall
from flasher.store.download import ProgressCallback
from flasher.store.fileserver import FileServer
from flasher.store.store import CachedImage, DisallowedURLError, FirmwareStore, StoreError


class StoreImages:
    """Images from ``store``; published on ``fileserver`` for BMCs that pull (``None``: push only).

    ``fileserver`` may also be a callable returning the file server, called on the first publish (the one-shot
    command starts its own server only when a BMC needs one); ``served_scheme`` is then the scheme its URLs will
    have (``None``: it serves none).
    """

    def __init__(
        self,
        store: FirmwareStore,
        fileserver: FileServer | Callable[[], FileServer | None] | None,
        *,
        local_files: Mapping[str, Path] | None = None,
        served_scheme: str | None = "http",
    ) -> None:
        self.store = store
        self._fileserver = fileserver
        self._local = dict(local_files or {})
        self._served_scheme = served_scheme

    def check(self, item: PlannedInstall) -> str:
        """Whether :meth:`fetch` of ``item`` could start, without fetching it (a dry run); returns what it found.
        Raises the store's errors (a checksum that does not parse as a :class:`StoreError` naming it)."""
        try:
            checksum = Checksum.parse(item.checksum)
        except ChecksumError as exc:
            raise StoreError(f"checksum {item.checksum!r} of {item.component} {item.version}: {exc}") from None
        if item.image_url in self._local:
            return self.store.check_file(self._local[item.image_url], checksum)
        if item.image_url.lower().startswith("file:"):
            raise DisallowedURLError(item.image_url, "file: URLs are only for images given to flasher install --file")
        return self.store.check_source(item.image_url, checksum)

    def pull_scheme(self) -> str | None:
        """The scheme of the URLs :meth:`publish` hands out, ``None`` when it hands out none (push only)."""
        if self._fileserver is None:
            return None
        if isinstance(self._fileserver, FileServer):
            return urlsplit(self._fileserver.base_url).scheme or "http"
        return self._served_scheme

    def fetch(self, item: PlannedInstall, *, on_progress: ProgressCallback, deadline: float) -> CachedImage:
        """The verified image of ``item`` (see the module docstring). Raises the store's errors."""
        if item.image_url in self._local:
            return self.store.add_file(self._local[item.image_url], item.checksum)
        if item.image_url.lower().startswith("file:"):
            raise DisallowedURLError(item.image_url, "file: URLs are only for images given to flasher install --file")
        return self.store.fetch(item.image_url, item.checksum, on_progress=on_progress, deadline=deadline)

    def _server(self) -> FileServer | None:
        if self._fileserver is None or isinstance(self._fileserver, FileServer):
            return self._fileserver
        self._fileserver = self._fileserver()
        return self._fileserver

    def publish(self, image: CachedImage, filename: str) -> str | None:
        """A URL the BMC can pull ``image`` from, or ``None`` without a file server."""
        server = self._server()
        return server.publish(image, filename) if server is not None else None

    def unpublish(self, url: str) -> None:
        """Stop serving ``url``."""
        server = self._server()
        if server is not None:
            server.unpublish(url)
