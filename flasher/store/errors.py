"""Errors of the firmware store. Every one names the image's URL (scrubbed of credentials) and never a secret.

``retriable`` tells the install worker whether the same fetch may succeed later (a server that answered 503,
a dropped connection) or never will (a checksum mismatch, a disallowed URL, a 404).
"""

from __future__ import annotations

from flasher.checksum import Checksum


class StoreError(Exception):
    """Base of the firmware store's errors. ``retriable``: the same fetch may succeed if tried again later."""

    retriable: bool = False


class DisallowedURLError(StoreError):
    """The URL's scheme or host is not in ``store.allowed_schemes`` / ``store.allowed_hosts``."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"image URL {url} is not allowed: {reason}")


class ChecksumMismatchError(StoreError):
    """The image's digest is not the expected one; the image was discarded. ``source``: a URL or a file."""

    def __init__(self, source: str, expected: Checksum, got: str) -> None:
        self.source = source
        self.expected = expected
        self.got = got
        super().__init__(f"checksum mismatch for {source}: expected {expected}, got {expected.algorithm}:{got}")


class DownloadError(StoreError):
    """The image could not be downloaded (HTTP error, connection error, timeout, deadline)."""

    def __init__(self, url: str, message: str, *, retriable: bool) -> None:
        self.url = url
        self.retriable = retriable
        super().__init__(f"download of {url} failed: {message}")


class TruncatedDownloadError(DownloadError):
    """The server announced ``expected`` bytes (Content-Length / Content-Range) but the body ended at ``got``."""

    def __init__(self, url: str, expected: int, got: int) -> None:
        self.expected = expected
        self.got = got
        super().__init__(url, f"truncated: the server announced {expected} bytes, received {got}", retriable=True)


class ImageTooLargeError(StoreError):
    """The image (``size`` bytes) is larger than the whole cache (``store.max_bytes`` = ``limit``)."""

    def __init__(self, source: str, size: int, limit: int) -> None:
        self.source = source
        self.size = size
        self.limit = limit
        super().__init__(
            f"image {source} is {size} bytes, larger than the firmware cache (store.max_bytes = {limit} bytes)"
        )


class ImageNotCachedError(StoreError):
    """The image with ``checksum`` is not in the cache (never fetched, or evicted)."""

    def __init__(self, checksum: Checksum) -> None:
        self.checksum = checksum
        super().__init__(f"image {checksum} is not in the firmware cache")
