"""One FirmwareStore.fetch in a fresh process, reporting time and memory as one JSON line on stdout.

Run by :mod:`bench.store.run`; a process of its own so that its peak RSS (``VmHWM``) is the fetch's alone.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path
from urllib.parse import urlsplit

from flasher.config import StoreSettings
from flasher.store.store import FirmwareStore


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--checksum", required=True)
    parser.add_argument("--cache-dir", type=Path, required=True)
    args = parser.parse_args()

    # The benchmark's image server is on loopback, which the store refuses unless allowed_hosts names it.
    host = urlsplit(args.url).netloc
    store = FirmwareStore(StoreSettings(cache_dir=args.cache_dir, max_bytes=64 * 1024**3, allowed_hosts=[host]))
    rss_before = _status_kib("VmRSS")
    started = time.perf_counter()
    image = store.fetch(args.url, args.checksum)
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "size": image.size,
        "rss_before_kib": rss_before,
        "rss_after_kib": _status_kib("VmRSS"),
        "peak_rss_kib": _status_kib("VmHWM"),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }
    print(json.dumps(result))  # the parent reads this line


if __name__ == "__main__":
    main()
