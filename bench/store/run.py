"""Firmware store benchmark: fetch + verify of a large image over loopback, beside curl + sha256sum.

    .venv/bin/python -m bench.store.run --size-gib 1

Generates one image of ``--size-gib`` GiB in a temporary directory, serves it with ``python -m http.server`` in
a process of its own on 127.0.0.1, and for each of ``--repeat`` rounds times:

* ``FirmwareStore.fetch`` (download to the cache, sha256 while streaming, fsync, atomic rename) in a fresh
  child process (:mod:`bench.store.fetch_child`), with that process's RSS before and after and its peak
  (``VmHWM``): flat memory means the peak does not grow with the image;
* ``curl -s -o FILE URL`` followed by ``sha256sum FILE``, timed around the subprocesses, on the same file;
* ``curl`` pulling the cached image from flasher's own file server (what a BMC does), for its throughput.

Prints a Markdown table (median and best of the rounds) and removes every temporary file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flasher.config import FileServerSettings, StoreSettings
from flasher.store.fileserver import FileServer
from flasher.store.store import FirmwareStore
from flasher_sandbox.procs import ManagedProcess, free_port, port_open, wait_until

MIB = 1024 * 1024
_BLOCK = 4 * MIB


def _generate(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes to ``path``; return their sha256 (``sha256:<hex>``)."""
    hasher = hashlib.sha256()
    block = os.urandom(_BLOCK)
    with path.open("wb") as out:
        written = 0
        counter = 0
        while written < size:
            # Vary each block cheaply so the file does not repeat (no compression or dedup can help anyone).
            piece = counter.to_bytes(8, "little") + block[8:]
            piece = piece[: size - written]
            out.write(piece)
            hasher.update(piece)
            written += len(piece)
            counter += 1
    return "sha256:" + hasher.hexdigest()


def _timed(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(argv, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, result.stdout


def _fetch_in_child(url: str, checksum: str, cache_dir: Path) -> dict[str, float]:
    argv = [
        sys.executable,
        "-m",
        "bench.store.fetch_child",
        "--url",
        url,
        "--checksum",
        checksum,
        "--cache-dir",
        str(cache_dir),
    ]
    result = subprocess.run(argv, check=True, capture_output=True, text=True)
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _curl_and_sha256sum(url: str, dest: Path, checksum: str) -> tuple[float, float]:
    curl_s, _ = _timed(["curl", "-s", "-f", "-o", str(dest), url])
    sum_s, out = _timed(["sha256sum", str(dest)])
    if "sha256:" + out.split()[0] != checksum:
        raise RuntimeError("curl's copy does not match the image")
    dest.unlink()
    return curl_s, sum_s


def _mib_s(size: int, seconds: float) -> str:
    return f"{size / MIB / seconds:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=1.0, help="image size in GiB (default 1)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the table shows medians (default 3)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temporary files")
    args = parser.parse_args()
    size = int(args.size_gib * 1024**3)

    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    work = Path(tempfile.mkdtemp(prefix="flasher-bench-store-", dir=args.dir))
    server: ManagedProcess | None = None
    try:
        serve_dir = work / "serve"
        serve_dir.mkdir()
        print(f"generating {size / MIB:,.0f} MiB in {work} ...", file=sys.stderr)
        checksum = _generate(serve_dir / "image.bin", size)
        port = free_port()
        server = ManagedProcess(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(serve_dir), str(port)],
            work / "http-server.log",
        ).start()
        wait_until(lambda: port_open("127.0.0.1", port), 15, "http.server")
        url = f"http://127.0.0.1:{port}/image.bin"

        fetches: list[dict[str, float]] = []
        curls: list[float] = []
        sums: list[float] = []
        served: list[float] = []
        for round_no in range(1, args.repeat + 1):
            cache_dir = work / f"cache-{round_no}"
            fetches.append(_fetch_in_child(url, checksum, cache_dir))
            curl_s, sum_s = _curl_and_sha256sum(url, work / "curl.bin", checksum)
            curls.append(curl_s)
            sums.append(sum_s)
            served.append(_serve_with_fileserver(cache_dir, checksum, work / "from-fileserver.bin"))
            shutil.rmtree(cache_dir)
            print(
                f"round {round_no}: fetch {fetches[-1]['seconds']:.2f} s, curl {curl_s:.2f} s + "
                f"sha256sum {sum_s:.2f} s, file server {served[-1]:.2f} s",
                file=sys.stderr,
            )

        rows = {
            "`FirmwareStore.fetch` (download + sha256 + fsync + rename)": [f["seconds"] for f in fetches],
            "`curl -s -o file`": curls,
            "`sha256sum file`": sums,
            "curl + sha256sum": [c + s for c, s in zip(curls, sums, strict=True)],
            "flasher file server → `curl -o file`": served,
        }
        peak = max(f["peak_rss_kib"] for f in fetches) / 1024
        before = statistics.median(f["rss_before_kib"] for f in fetches) / 1024
        after = statistics.median(f["rss_after_kib"] for f in fetches) / 1024
        print(
            f"\nimage {size / MIB:,.0f} MiB, {args.repeat} rounds, loopback, http.server as origin, "
            f"load average before {load_before}\n"
        )
        print("| what | median s | median MiB/s | best s | best MiB/s |")
        print("|---|---:|---:|---:|---:|")
        for what, seconds in rows.items():
            median, best = statistics.median(seconds), min(seconds)
            print(f"| {what} | {median:.2f} | {_mib_s(size, median)} | {best:.2f} | {_mib_s(size, best)} |")
        print(f"\nfetch process RSS: {before:.0f} MiB before, {after:.0f} MiB after, peak (VmHWM) {peak:.0f} MiB")
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _serve_with_fileserver(cache_dir: Path, checksum: str, dest: Path) -> float:
    """Seconds for curl to pull the cached image from flasher's file server (in this process)."""
    store = FirmwareStore(StoreSettings(cache_dir=cache_dir, max_bytes=64 * 1024**3))
    image = store.get(checksum)
    if image is None:
        raise RuntimeError("the fetched image is not in the cache")
    fileserver = FileServer(FileServerSettings(host="127.0.0.1", port=0), store)
    fileserver.start()
    try:
        url = fileserver.publish(image, "image.bin")
        seconds, _ = _timed(["curl", "-s", "-f", "-o", str(dest), url])
        if dest.stat().st_size != image.size:
            raise RuntimeError("the file server sent a different size")
        dest.unlink()
        return seconds
    finally:
        fileserver.stop()


if __name__ == "__main__":
    main()
