"""Timestamps: stored as integer microseconds since the epoch (UTC), written out like Go's ``time.Time``.

The reference server keeps PostgreSQL ``timestamptz`` values (microsecond precision) and marshals them with
Go's RFC 3339 "nano" layout, which drops trailing zeros of the fraction: ``2026-11-20T23:55:46.40815Z``.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from functools import lru_cache

_lock = threading.Lock()
_last = 0


def now_us() -> int:
    """Microseconds since the epoch, strictly increasing within this process.

    Strictly increasing values keep "newest first" well defined: two rows written in the same microsecond
    still have an order, as they would in a database whose clock ticks between statements.
    """
    global _last
    with _lock:
        current = time.time_ns() // 1000
        _last = current if current > _last else _last + 1
        return _last


def rfc3339(us: int) -> str:
    """``us`` (microseconds since the epoch) as Go's ``time.RFC3339Nano`` in UTC: trailing zeros trimmed."""
    seconds, micros = divmod(us, 1_000_000)
    text = _seconds(seconds)
    if micros:
        text += "." + f"{micros:06d}".rstrip("0")
    return text + "Z"


@lru_cache(maxsize=8192)
def _seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
