"""The sandbox firmware image format, shared by the simulated BMCs, the demo and the tests.

An image is three parts::

    FLASHER-SANDBOX-FIRMWARE/1\\n
    {"component": "bios", "vendor": "dell", "models": ["r6515"], "version": "2.7.3"}\\n
    <deterministic binary padding up to the image's size>

The header line is compact JSON with exactly the keys ``component`` (a component type slug such as ``bmc``,
``bios``, ``nic``), ``vendor`` (lowercase vendor slug, as in the inventory's firmware table), ``models``
(model strings the image applies to; empty means any) and ``version``. The padding is SHAKE-256 of the header
line, so the same arguments always give the same bytes (and the same checksum).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: The image's first line, without its newline.
MAGIC: Final = b"FLASHER-SANDBOX-FIRMWARE/1"
#: The default image size in bytes.
DEFAULT_SIZE: Final = 65536
#: At most this many bytes are read to find the magic and header lines.
MAX_HEADER_BYTES: Final = 8192


class InvalidImageError(ValueError):
    """The bytes are not a sandbox firmware image (bad magic, unreadable or incomplete header)."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image says about itself: the component type slug, vendor slug, models and version."""

    component: str
    vendor: str
    models: tuple[str, ...]
    version: str

    def as_json(self) -> dict[str, Any]:
        """The header as the JSON object stored in the image."""
        return {
            "component": self.component,
            "vendor": self.vendor,
            "models": list(self.models),
            "version": self.version,
        }

    def applies_to_model(self, *models: str) -> bool:
        """True when the image lists no models or lists one of ``models`` (compared case-insensitively)."""
        if not self.models:
            return True
        wanted = {m.lower() for m in self.models}
        return any(m.lower() in wanted for m in models if m)


def make_image(component: str, vendor: str, version: str, models: Sequence[str], size: int = DEFAULT_SIZE) -> bytes:
    """Build an image of exactly ``size`` bytes for ``component`` (slug) by ``vendor`` (slug) at ``version``.

    Raises ``ValueError`` when a field is empty or contains a newline, or when ``size`` is smaller than the
    magic and header lines.
    """
    for name, value in (("component", component), ("vendor", vendor), ("version", version)):
        if not value or "\n" in value:
            raise ValueError(f"image {name} must be a non-empty single-line string, got {value!r}")
    if isinstance(models, str):
        raise ValueError(f"image models must be a list of strings, got the string {models!r}")
    header = ImageHeader(component, vendor, tuple(models), version)
    head = MAGIC + b"\n" + json.dumps(header.as_json(), separators=(",", ":")).encode() + b"\n"
    if size < len(head):
        raise ValueError(f"image size {size} is smaller than its {len(head)}-byte header")
    return head + hashlib.shake_256(head).digest(size - len(head))


def read_header(image: bytes | Path) -> ImageHeader:
    """Read the header of an image given as bytes or as a file path (only its first bytes are read).

    Raises :class:`InvalidImageError` naming what is wrong: a missing or different magic line, a header line that
    is not a JSON object, or a missing or mistyped field.
    """
    if isinstance(image, Path):
        try:
            with image.open("rb") as handle:
                start = handle.read(MAX_HEADER_BYTES)
        except OSError as exc:
            raise InvalidImageError(f"cannot read image {image}: {exc.strerror}") from exc
    else:
        start = bytes(image[:MAX_HEADER_BYTES])
    lines = start.split(b"\n", 2)
    if lines[0] != MAGIC:
        shown = lines[0][:40].decode("ascii", "replace")
        raise InvalidImageError(f"not a sandbox firmware image: first line is {shown!r}, expected {MAGIC.decode()!r}")
    if len(lines) < 3:
        raise InvalidImageError("sandbox firmware image is truncated: no complete header line after the magic")
    try:
        data = json.loads(lines[1])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidImageError(f"sandbox firmware image header is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidImageError(f"sandbox firmware image header must be a JSON object, got {type(data).__name__}")
    for key in ("component", "vendor", "version"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise InvalidImageError(f"sandbox firmware image header field {key!r} must be a non-empty string")
    models = data.get("models")
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise InvalidImageError("sandbox firmware image header field 'models' must be a list of strings")
    return ImageHeader(data["component"], data["vendor"], tuple(models), data["version"])
