"""The firmware store: images downloaded once, verified against their checksum, cached on local disk.

:meth:`FirmwareStore.fetch` returns a :class:`CachedImage` only after the whole image arrived and its digest
(sha256, sha512 or md5) matched: a checksum mismatch, a truncated body, an image larger than the cache or a
disallowed URL raise a :class:`StoreError` and leave nothing in the cache, so such an image never reaches a BMC.
Downloads go to a partial file next to the cache entry and are moved into place with ``os.replace`` after an
fsync. One process downloads a given image at a time across the whole host (a per-checksum ``flock``); the
others wait and then find it cached. The cache is capped at ``store.max_bytes``; least recently used images go
first, never one that is held (:meth:`FirmwareStore.hold`, the file server while it publishes the image).

Why ``fcntl.flock`` rather than the ``filelock`` library: flasher runs on Linux only, flock is what filelock
itself uses there, and the cache needs shared locks (images in use) next to exclusive ones, which filelock's
portable API does not offer. See :mod:`flasher.store.cache` for the layout.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from pathlib import Path
from types import TracebackType

from loguru import logger

from flasher.checksum import Checksum
from flasher.config import StoreSettings
from flasher.store.cache import CachedImage, FileLock, ImageCache, LockTimeoutError, locked
from flasher.store.download import Downloaded, Downloader, ProgressCallback
from flasher.store.errors import (
    ChecksumMismatchError,
    DisallowedURLError,
    DownloadError,
    ImageNotCachedError,
    ImageTooLargeError,
    StoreError,
    TruncatedDownloadError,
)
from flasher.store.urls import check_url, display_url

__all__ = [
    "CachedImage",
    "ChecksumMismatchError",
    "DisallowedURLError",
    "DownloadError",
    "FirmwareStore",
    "ImageHold",
    "ImageNotCachedError",
    "ImageTooLargeError",
    "StoreError",
    "TruncatedDownloadError",
]

_MIB = 1024 * 1024


class ImageHold:
    """A cached image kept from eviction until :meth:`release` (a shared lock; several holders may share it).

    Use as a context manager (``with store.hold(checksum) as image:``) or call :meth:`release`. The kernel drops
    the lock if the process dies.
    """

    def __init__(self, image: CachedImage, lock: FileLock) -> None:
        self.image = image
        self._lock = lock

    def release(self) -> None:
        """Let the image be evicted again. Releasing twice does nothing."""
        self._lock.release()

    def __enter__(self) -> CachedImage:
        return self.image

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


class FirmwareStore:
    """Fetches, verifies and caches firmware images under ``settings.cache_dir``. Thread- and process-safe.

    ``attempts``, ``backoff`` and ``max_backoff`` shape download retries (see
    :class:`~flasher.store.download.Downloader`); the install worker passes its ``download`` step policy.
    Creates the cache directory; raises ``OSError`` when it cannot.
    """

    def __init__(
        self, settings: StoreSettings, *, attempts: int = 5, backoff: float = 1.0, max_backoff: float = 30.0
    ) -> None:
        self.settings = settings
        self.cache = ImageCache(settings.cache_dir)
        self.downloader = Downloader(settings, attempts=attempts, backoff=backoff, max_backoff=max_backoff)

    def fetch(
        self,
        url: str,
        checksum: str | Checksum,
        *,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> CachedImage:
        """The image at ``url`` with ``checksum``: from the cache, or downloaded, verified and cached.

        ``checksum``: ``sha256:<hex>``, ``sha512:<hex>``, ``md5:<hex>`` or plain hex (a bad one raises
        :class:`~flasher.checksum.ChecksumError`). ``on_progress(received, total)`` is called per chunk while
        downloading. ``deadline``: monotonic seconds by which the image must be here (waiting for another
        process's download of the same image counts).

        Raises :class:`DisallowedURLError` (also for a cached image: the URL is checked first),
        :class:`ChecksumMismatchError`, :class:`TruncatedDownloadError`, :class:`DownloadError` (``retriable``) and
        :class:`ImageTooLargeError`; none of them leaves anything in the cache.

        The image may be evicted by a later fetch (of any process) once it is the least recently used; keep it
        with :meth:`hold` while a BMC needs it (:meth:`FileServer.publish` holds what it publishes).
        """
        expected = _parse(checksum)
        check_url(url, self.settings.allowed_schemes, self.settings.allowed_hosts)
        shown = display_url(url)
        image = self._cached(expected)
        if image is not None:
            logger.info("firmware image {} is cached ({} bytes); not downloading {}", expected, image.size, shown)
            return image
        try:
            with locked(self.cache.fetch_lock(expected), deadline=deadline):
                image = self._cached(expected)  # another process or thread downloaded it while we waited
                if image is not None:
                    logger.info("firmware image {} was downloaded by another task; using it", expected)
                    return image
                return self._download(url, shown, expected, on_progress, deadline)
        except LockTimeoutError:
            raise DownloadError(
                shown, f"deadline passed while another task was downloading {expected}", retriable=True
            ) from None

    def check_source(self, url: str, checksum: str | Checksum) -> str:
        """Whether :meth:`fetch` of ``url`` with ``checksum`` could start, without downloading the image (a dry
        run): the checksum parses, the URL is allowed, and the image is cached or the server answers for it
        (:meth:`Downloader.probe`). Returns what was found (``cached``, ``the server has it (N bytes)``).

        Raises :class:`~flasher.checksum.ChecksumError`, :class:`DisallowedURLError`, :class:`DownloadError` and
        :class:`ImageTooLargeError` (the server announces more than the whole cache holds).
        """
        expected = _parse(checksum)
        check_url(url, self.settings.allowed_schemes, self.settings.allowed_hosts)
        if self.cache.lookup(expected) is not None:
            return f"cached as {expected}"
        shown = display_url(url)
        size = self.downloader.probe(url)
        if size is not None and size > self.settings.max_bytes:
            raise ImageTooLargeError(shown, size, self.settings.max_bytes)
        return f"{shown} answers" + (f" ({size} bytes)" if size is not None else "")

    def check_file(self, path: Path, checksum: str | Checksum) -> str:
        """Whether :meth:`add_file` of ``path`` with ``checksum`` would succeed, without caching it (a dry run):
        the file is read and its digest compared. Returns what was found; raises as :meth:`add_file` does."""
        expected = _parse(checksum)
        shown = str(path)
        try:
            size = path.stat().st_size
            with path.open("rb") as reader:
                digest = hashlib.file_digest(reader, expected.algorithm).hexdigest()
        except OSError as exc:
            raise StoreError(f"cannot read image file {shown}: {exc.strerror}") from None
        if size > self.settings.max_bytes:
            raise ImageTooLargeError(shown, size, self.settings.max_bytes)
        self._verify(shown, expected, digest)
        return f"{shown} matches {expected}"

    def add_file(self, path: Path, checksum: str | Checksum) -> CachedImage:
        """Copy the operator's local image file at ``path`` into the cache after checking its ``checksum``.

        The file is hashed while it is copied, so what is cached is what was verified. Raises
        :class:`ChecksumMismatchError`, :class:`ImageTooLargeError`, or :class:`StoreError` when ``path`` cannot be
        read.
        """
        expected = _parse(checksum)
        shown = str(path)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise StoreError(f"cannot read image file {shown}: {exc.strerror}") from None
        if size > self.settings.max_bytes:
            raise ImageTooLargeError(shown, size, self.settings.max_bytes)
        with locked(self.cache.fetch_lock(expected)):
            partial = self.cache.partial_path(expected)
            try:
                digest = _copy_hashing(path, partial, expected.algorithm, self.settings.chunk_bytes)
                self._verify(shown, expected, digest)
                image = self.cache.lookup(expected)
                if image is None:
                    self._make_room(size, expected)
                    image = self.cache.commit(partial, expected)
                    logger.info("added image file {} to the firmware cache as {} ({} bytes)", shown, expected, size)
                self.cache.touch(image)
                return image
            finally:
                partial.unlink(missing_ok=True)

    def get(self, checksum: str | Checksum) -> CachedImage | None:
        """The cached image with ``checksum`` (marked as just used), or None."""
        return self._cached(_parse(checksum))

    def hold(self, checksum: str | Checksum) -> ImageHold:
        """Keep the cached image with ``checksum`` from eviction until the hold is released.

        Raises :class:`ImageNotCachedError` when it is not (or no longer) in the cache.
        """
        expected = _parse(checksum)
        lock = self.cache.use_lock(expected)
        lock.acquire(shared=True)
        image = self._cached(expected)  # checked under the lock: eviction cannot remove it from here on
        if image is None:
            lock.release()
            raise ImageNotCachedError(expected)
        return ImageHold(image, lock)

    def usage(self) -> int:
        """Bytes taken by cached images."""
        return self.cache.usage()

    def evict(self, keep: Collection[Checksum] = ()) -> list[Checksum]:
        """Evict least recently used images until the cache fits ``store.max_bytes``; returns what went.

        Images in ``keep`` and held images stay. Also removes partial downloads left by a crash.
        """
        return self.cache.evict(self.settings.max_bytes, keep=keep)

    def _cached(self, checksum: Checksum) -> CachedImage | None:
        image = self.cache.lookup(checksum)
        if image is None or not self.cache.touch(image):
            return None
        return image

    def _download(
        self, url: str, shown: str, expected: Checksum, on_progress: ProgressCallback | None, deadline: float | None
    ) -> CachedImage:
        partial = self.cache.partial_path(expected)
        logger.info("downloading firmware image {} from {}", expected, shown)
        try:
            result = self.downloader.download(
                url,
                partial,
                expected.algorithm,
                max_bytes=self.settings.max_bytes,
                on_size=lambda total: self._make_room(total, expected),
                on_progress=on_progress,
                deadline=deadline,
            )
            self._verify(shown, expected, result.hexdigest)
            self._make_room(result.size, expected)
            image = self.cache.commit(partial, expected)
        finally:
            partial.unlink(missing_ok=True)
        _log_finished(shown, expected, result)
        return image

    @staticmethod
    def _verify(source: str, expected: Checksum, hexdigest: str) -> None:
        if not expected.matches(hexdigest):
            logger.error("checksum mismatch for {}: expected {}, got {}", source, expected, hexdigest)
            raise ChecksumMismatchError(source, expected, hexdigest)

    def _make_room(self, incoming: int, checksum: Checksum) -> None:
        """Evict so that ``incoming`` more bytes fit under the cap (the image being added is kept)."""
        if self.cache.usage() + incoming > self.settings.max_bytes:
            self.cache.evict(self.settings.max_bytes, incoming=incoming, keep={checksum})


def _parse(checksum: str | Checksum) -> Checksum:
    return checksum if isinstance(checksum, Checksum) else Checksum.parse(checksum)


def _copy_hashing(source: Path, dest: Path, algorithm: str, chunk_bytes: int) -> str:
    """Copy ``source`` to ``dest`` (fsynced) and return the hex digest of the bytes copied."""
    hasher = hashlib.new(algorithm)
    try:
        with source.open("rb") as reader, dest.open("wb") as writer:
            while chunk := reader.read(chunk_bytes):
                hasher.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
    except OSError as exc:
        raise StoreError(f"cannot copy image file {source} into the cache: {exc.strerror}") from None
    return hasher.hexdigest()


def _log_finished(shown: str, checksum: Checksum, result: Downloaded) -> None:
    rate = result.size / _MIB / result.seconds if result.seconds > 0 else float("inf")
    logger.info(
        "downloaded firmware image {} from {}: {} bytes in {:.1f} s ({:.1f} MiB/s, {} request(s)), verified",
        checksum,
        shown,
        result.size,
        result.seconds,
        rate,
        result.attempts,
    )
