"""The firmware store's on-disk cache: image files keyed by checksum, per-image locks, LRU eviction.

Layout under ``store.cache_dir``::

    images/<algo>-<hex>          a verified image (only ever created by an atomic rename)
    images/.<algo>-<hex>.part    the download or copy in progress (same directory, so the rename is atomic)
    locks/<algo>-<hex>.fetch     exclusive flock while one process downloads the image
    locks/<algo>-<hex>.use       shared flock while the image is in use (served to a BMC, pushed to it)
    locks/evict.lock             exclusive flock while one process evicts

Locks are ``fcntl.flock`` on lock files that are never deleted (deleting a lock file races with a process that
has just opened it). flock locks belong to the open file, so they exclude threads of one process as well as other
processes, and the kernel drops them when a process dies: a crashed download never blocks the next one.

Recency is the image file's mtime, set to now on every use (:meth:`ImageCache.touch`): visible to every process
on the host without an index file to keep consistent.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from flasher.checksum import Checksum, ChecksumError

_LOCK_POLL = 0.05  # seconds between tries for a lock wanted with a deadline


@dataclass(frozen=True)
class CachedImage:
    """A verified image in the cache: ``path`` to read it from, its ``checksum`` and ``size`` in bytes."""

    path: Path
    checksum: Checksum
    size: int


@dataclass(frozen=True)
class _Entry:
    checksum: Checksum
    path: Path
    size: int
    mtime_ns: int


class LockTimeoutError(Exception):
    """A lock was not free before the deadline."""


class FileLock:
    """An flock on one lock file, held from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, *, shared: bool = False, blocking: bool = True, deadline: float | None = None) -> bool:
        """Take the lock. Non-blocking: return False when taken. With ``deadline`` (monotonic seconds): poll
        until then and raise :class:`LockTimeoutError`. Otherwise wait as long as it takes."""
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        try:
            if blocking and deadline is None:
                fcntl.flock(fd, mode)
            else:
                while True:
                    try:
                        fcntl.flock(fd, mode | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if not blocking:
                            os.close(fd)
                            return False
                        if deadline is not None and time.monotonic() >= deadline:
                            raise LockTimeoutError(f"lock {self.path.name} still held at the deadline") from None
                        time.sleep(_LOCK_POLL)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        """Drop the lock (closing the file releases the flock). Releasing twice does nothing."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None


class ImageCache:
    """The cache directory: where images live, their locks, usage and eviction. Thread- and process-safe."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.images = root / "images"
        self.locks = root / "locks"
        self.images.mkdir(parents=True, exist_ok=True)
        self.locks.mkdir(parents=True, exist_ok=True)

    def path(self, checksum: Checksum) -> Path:
        """Where the verified image with ``checksum`` lives (it may not exist)."""
        return self.images / checksum.key

    def partial_path(self, checksum: Checksum) -> Path:
        """The download or copy in progress; only the holder of :meth:`fetch_lock` writes it."""
        return self.images / f".{checksum.key}.part"

    def fetch_lock(self, checksum: Checksum) -> FileLock:
        """The lock one downloader of ``checksum`` holds (exclusive); others wait, then find the image."""
        return FileLock(self.locks / f"{checksum.key}.fetch")

    def use_lock(self, checksum: Checksum) -> FileLock:
        """Held shared while the image is in use; eviction needs it exclusive and skips images it cannot get."""
        return FileLock(self.locks / f"{checksum.key}.use")

    def lookup(self, checksum: Checksum) -> CachedImage | None:
        """The cached image with ``checksum``, or None. Does not touch its recency."""
        path = self.path(checksum)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        return CachedImage(path=path, checksum=checksum, size=size)

    def touch(self, image: CachedImage) -> bool:
        """Mark ``image`` as used now (LRU). False when it has been evicted meanwhile."""
        try:
            os.utime(image.path)
        except FileNotFoundError:
            return False
        return True

    def commit(self, partial: Path, checksum: Checksum) -> CachedImage:
        """Move the verified, fsynced ``partial`` file into place atomically and fsync the directory."""
        final = self.path(checksum)
        os.replace(partial, final)
        _fsync_dir(self.images)
        return CachedImage(path=final, checksum=checksum, size=final.stat().st_size)

    def entries(self) -> list[_Entry]:
        """Every verified image, least recently used first."""
        found = []
        with os.scandir(self.images) as listing:
            for item in listing:
                if item.name.startswith(".") or not item.is_file(follow_symlinks=False):
                    continue
                checksum = _checksum_of(item.name)
                if checksum is None:
                    continue
                try:
                    info = item.stat(follow_symlinks=False)
                except FileNotFoundError:  # evicted by another process meanwhile
                    continue
                found.append(_Entry(checksum, Path(item.path), info.st_size, info.st_mtime_ns))
        found.sort(key=lambda entry: (entry.mtime_ns, entry.checksum.key))
        return found

    def usage(self) -> int:
        """Bytes taken by verified images (downloads in progress not counted)."""
        return sum(entry.size for entry in self.entries())

    def evict(self, limit: int, *, incoming: int = 0, keep: Collection[Checksum] = ()) -> list[Checksum]:
        """Delete least recently used images until usage + ``incoming`` ≤ ``limit`` bytes.

        Images in ``keep`` and images in use (their use lock is held) stay. Also removes partial files that no
        download holds (left by a crash). Returns the checksums evicted, oldest first; when the images that are
        left cannot be evicted the cache stays over ``limit`` and a warning is logged.
        """
        evicted: list[Checksum] = []
        guard = FileLock(self.locks / "evict.lock")
        guard.acquire()
        try:
            self._remove_stale_partials()
            entries = self.entries()
            usage = sum(entry.size for entry in entries)
            for entry in entries:
                if usage + incoming <= limit:
                    break
                if entry.checksum in keep:
                    continue
                if self._remove_unused(entry):
                    usage -= entry.size
                    evicted.append(entry.checksum)
                    logger.info("evicted firmware image {} ({} bytes) from the cache", entry.checksum, entry.size)
            if usage + incoming > limit:
                logger.warning(
                    "firmware cache holds {} bytes (+{} incoming) over store.max_bytes {}: the rest is in use",
                    usage,
                    incoming,
                    limit,
                )
        finally:
            guard.release()
        return evicted

    def _remove_unused(self, entry: _Entry) -> bool:
        lock = self.use_lock(entry.checksum)
        if not lock.acquire(blocking=False):
            return False
        try:
            entry.path.unlink(missing_ok=True)
        finally:
            lock.release()
        return True

    def _remove_stale_partials(self) -> None:
        for partial in self.images.glob(".*.part"):
            checksum = _checksum_of(partial.name[1:].removesuffix(".part"))
            if checksum is None:
                continue
            lock = self.fetch_lock(checksum)
            if lock.acquire(blocking=False):
                try:
                    partial.unlink(missing_ok=True)
                    logger.info("removed the partial download of {} left by an earlier run", checksum)
                finally:
                    lock.release()


@contextlib.contextmanager
def locked(lock: FileLock, *, shared: bool = False, deadline: float | None = None) -> Iterator[FileLock]:
    """Hold ``lock`` for the ``with`` block (see :meth:`FileLock.acquire` for ``deadline``)."""
    lock.acquire(shared=shared, deadline=deadline)
    try:
        yield lock
    finally:
        lock.release()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _checksum_of(name: str) -> Checksum | None:
    algorithm, sep, digest = name.partition("-")
    if not sep:
        return None
    try:
        return Checksum.parse(f"{algorithm}:{digest}")
    except ChecksumError:
        return None
