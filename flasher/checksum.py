"""Firmware image checksums: parsing the forms operators and the inventory use, and verifying streams.

Accepted forms (the task attribute's ``updateFileChecksum`` and the inventory's firmware ``checksum``):

* ``sha256:<64 hex>``, ``sha512:<128 hex>``, ``md5:<32 hex>`` (prefix case-insensitive);
* plain hex whose length names the algorithm: 32 → md5, 64 → sha256, 128 → sha512.

Anything else raises :class:`ChecksumError` naming the value. Hex is normalised to lowercase, as the
inventory requires (Serverservice refuses an uppercase ``checksum`` with 400).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

ALGORITHMS: Final[dict[str, int]] = {"md5": 32, "sha256": 64, "sha512": 128}
_BY_LENGTH: Final[dict[int, str]] = {length: name for name, length in ALGORITHMS.items()}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


class ChecksumError(ValueError):
    """A checksum that is not one of the accepted forms; the message names the value."""


@dataclass(frozen=True, slots=True)
class Checksum:
    """A parsed checksum: ``algorithm`` is ``md5``, ``sha256`` or ``sha512``; ``hexdigest`` is lowercase."""

    algorithm: str
    hexdigest: str

    @classmethod
    def parse(cls, value: str) -> Checksum:
        """Parse ``value`` in any accepted form; raise :class:`ChecksumError` otherwise."""
        if not isinstance(value, str):
            raise ChecksumError(f"checksum must be a string, got {type(value).__name__} {value!r}")
        raw = value.strip()
        if ":" in raw:
            prefix, _, digest = raw.partition(":")
            algorithm = prefix.lower()
            if algorithm not in ALGORITHMS:
                raise ChecksumError(f"checksum {value!r}: unknown algorithm {prefix!r} (use sha256:, sha512: or md5:)")
            if len(digest) != ALGORITHMS[algorithm] or not _HEX.match(digest):
                raise ChecksumError(f"checksum {value!r}: {algorithm} needs {ALGORITHMS[algorithm]} hex digits")
            return cls(algorithm, digest.lower())
        if not raw or not _HEX.match(raw) or len(raw) not in _BY_LENGTH:
            raise ChecksumError(
                f"checksum {value!r} is neither sha256:/sha512:/md5: hex nor plain hex of 32, 64 or 128 digits"
            )
        return cls(_BY_LENGTH[len(raw)], raw.lower())

    def hasher(self) -> hashlib._Hash:
        """A fresh hashlib object for this algorithm."""
        return hashlib.new(self.algorithm)

    def matches(self, hexdigest: str) -> bool:
        """True when ``hexdigest`` (any case) equals this checksum's digest."""
        return hexdigest.lower() == self.hexdigest

    @property
    def key(self) -> str:
        """A file-name-safe key, ``<algorithm>-<hex>``, used by the firmware store's cache."""
        return f"{self.algorithm}-{self.hexdigest}"

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"
