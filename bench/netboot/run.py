"""Netboot's MAC lookup on a large fleet: one query on an exact attribute namespace, against the alternative.

    .venv/bin/python -m bench.netboot.run --servers 1000 10000

For each fleet size: ``load_seed`` of that many servers, each with two MACs indexed as onboarding writes them
(one server attribute ``sh.hollow.flasher.mac.<12 hex>`` per MAC) and, for comparison, the same MACs in one
attribute's data (``sh.hollow.bench.macs`` ``{"all": "aa:bb:...,cc:dd:..."}``); then ``flasher-sandbox
inventory`` is started on it and, over loopback HTTP with one client (median of ``--repeat`` calls, a different
server's MAC each call):

* ``attr=sh.hollow.flasher.mac.<hex>``: flasher's lookup (``flasher.netboot.lookup``);
* ``attr=sh.hollow.bench.macs~all~like~%<mac>%``: a MAC inside a value, which no index can answer.

flasher's lookup should take the same time on every fleet size; the other grows with the fleet. Prints a
Markdown table and removes every temporary file.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from flasher.netboot.lookup import mac_namespace
from flasher_sandbox.inventory.seed import load_seed


def mac(i: int, port: int) -> str:
    """The ``port``-th MAC of server ``i`` (locally administered)."""
    value = (0x02 << 40) | (i << 8) | port
    return ":".join(f"{(value >> shift) & 0xFF:02x}" for shift in range(40, -8, -8))


def fleet(servers: int) -> dict[str, Any]:
    entries = []
    for i in range(servers):
        macs = [mac(i, 1), mac(i, 2)]
        attributes: dict[str, Any] = {
            mac_namespace(m): {"mac": m, "slug": "nic", "slot": f"NIC.{n}"} for n, m in enumerate(macs)
        }
        attributes["sh.hollow.bench.macs"] = {"all": ",".join(macs)}
        entries.append({"name": f"srv-{i:06d}", "attributes": attributes})
    return {"servers": entries}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(urls: list[str]) -> tuple[float, int]:
    session = requests.Session()
    session.get(urls[0], timeout=60).raise_for_status()  # warm
    times, found = [], 0
    for url in urls:
        started = time.perf_counter()
        response = session.get(url, timeout=60)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        found += len(response.json().get("records") or [])
    return statistics.median(times) * 1000, found


def measure(servers: int, repeat: int, workdir: Path) -> dict[str, Any]:
    db = workdir / f"inventory-{servers}.db"
    started = time.perf_counter()
    load_seed(db, fleet(servers))
    seed_seconds = time.perf_counter() - started
    port = _free_port()
    script = Path(sys.executable).parent / "flasher-sandbox"
    process = subprocess.Popen(
        [str(script), "inventory", "--db", str(db), "--port", str(port), "--log-level", "WARNING"]
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base}/healthz/readiness", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("inventory did not start")
            time.sleep(0.1)
        api = f"{base}/api/v1/servers"
        picks = [(k * 7919) % servers for k in range(repeat)]
        exact_ms, exact_found = _timed([f"{api}?attr={mac_namespace(mac(i, 2))}" for i in picks])
        like_ms, like_found = _timed([f"{api}?attr=sh.hollow.bench.macs~all~like~%25{mac(i, 2)}%25" for i in picks])
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return {
        "servers": servers,
        "seed_s": seed_seconds,
        "exact_ms": exact_ms,
        "exact_ok": exact_found == repeat,
        "like_ms": like_ms,
        "like_ok": like_found == repeat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-netboot-"))
    try:
        rows = [measure(n, args.repeat, workdir) for n in args.servers]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("| servers | load_seed | MAC lookup, exact namespace | MAC inside a value (`like`) |")
    print("|---:|---:|---:|---:|")
    for row in rows:
        ok = "" if row["exact_ok"] and row["like_ok"] else " (a lookup found no server!)"
        print(
            f"| {row['servers']:,} | {row['seed_s']:.1f} s | {row['exact_ms']:.1f} ms | {row['like_ms']:.1f} ms |{ok}"
        )


if __name__ == "__main__":
    main()
