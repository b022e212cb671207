"""A multipart/form-data body that streams its file part from disk (RFC 7578).

requests' ``files=`` reads every file into memory; firmware images reach hundreds of MB and a worker may push
to several BMCs at once. :class:`MultipartBody` is a file-like object with a known length, so requests sends
it with a ``Content-Length`` (BMCs rarely accept chunked uploads) while reading the image in chunks.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any, BinaryIO


def _quote(value: str) -> str:
    # RFC 7578 §4.2: names in quoted strings; strip what would break the header line.
    return value.replace("\\", "_").replace('"', "_").replace("\r", "_").replace("\n", "_")


class MultipartBody:
    """``UpdateParameters`` (JSON) then ``UpdateFile`` (the image at ``path``), as a readable stream.

    ``content_type`` is the header value to send; ``len(body)`` is the exact byte count. Close it after use
    (it holds the image file open once reading started).
    """

    def __init__(
        self, parameters: dict[str, Any], path: Path, *, boundary: str | None = None, file_field: str = "UpdateFile"
    ) -> None:
        self.boundary = boundary or secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={self.boundary}"
        params = json.dumps(parameters).encode()
        head = (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="UpdateParameters"\r\n'
            "Content-Type: application/json\r\n\r\n"
        ).encode()
        file_head = (
            f"\r\n--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="{_quote(file_field)}"; filename="{_quote(path.name)}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._path = path
        self._size = path.stat().st_size
        self._parts: list[bytes | Path] = [head + params + file_head, path, tail]
        self._index = 0
        self._buffer = b""
        self._file: BinaryIO | None = None
        self._length = len(head) + len(params) + len(file_head) + self._size + len(tail)

    def __len__(self) -> int:
        return self._length

    def _next_chunk(self, size: int) -> bytes:
        while self._index < len(self._parts):
            part = self._parts[self._index]
            if isinstance(part, bytes):
                self._index += 1
                return part
            if self._file is None:
                self._file = part.open("rb")
            chunk = self._file.read(size)
            if chunk:
                return chunk
            self._file.close()
            self._file = None
            self._index += 1
        return b""

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when ``size`` < 0); ``b""`` at the end."""
        want = self._length if size is None or size < 0 else size
        out = bytearray(self._buffer)
        self._buffer = b""
        while len(out) < want:
            chunk = self._next_chunk(max(want - len(out), 64 * 1024))
            if not chunk:
                break
            out += chunk
        if len(out) > want:
            self._buffer = bytes(out[want:])
            del out[want:]
        return bytes(out)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
