"""Sandbox inventory benchmark: seed a large fleet, then time flasher's poll queries over loopback HTTP.

    .venv/bin/python -m bench.inventory.run --servers 1000 10000 --flagged 100

For each fleet size: ``load_seed`` of that many servers (3 components with installed versions, BMC address
and credentials, vendor attributes) into a fresh SQLite file, of which ``--flagged`` carry a requested task
and ten times as many a finished one; then ``flasher-sandbox inventory`` is started on it and the poll
queries are timed (median of ``--repeat`` calls, one client):

* ``attr=sh.hollow.flasher.task~status~eq~requested`` (the flagged servers only);
* ``attr=sh.hollow.flasher.task`` (every server with a task, first page of 100);
* a page of 100 servers with no filter, for comparison.

If the poll's cost followed the fleet, its time would grow with ``--servers``; it should stay flat.
Prints a Markdown table and removes every temporary file.
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

from flasher.constants import TASK_NAMESPACE
from flasher_sandbox.inventory.seed import load_seed


def fleet(servers: int, flagged: int) -> dict[str, Any]:
    """A seed of ``servers`` Dell servers: ``flagged`` with a requested task, up to ``10 * flagged`` with a
    finished one (the attribute stays after a task ends), the others without."""
    step = servers // flagged
    finished = min(10, step - 1)
    entries = []
    for i in range(servers):
        entry: dict[str, Any] = {
            "name": f"srv-{i:06d}",
            "vendor": "dell",
            "model": "r6515",
            "serial": f"SN{i:06d}",
            "bmc": {"address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", "username": "root", "password": "pw"},
            "components": [
                {"type": "bmc", "installed": "2.75.75.75"},
                {"type": "bios", "installed": "2.6.6"},
                {"type": "nic", "vendor": "intel", "model": "e810", "serial": f"NIC{i:06d}", "installed": "4.20"},
            ],
        }
        if i % step == 0 and i // step < flagged:
            entry["attributes"] = {TASK_NAMESPACE: {"method": "out-of-band", "status": "requested", "priority": 2}}
        elif 0 < i % step <= finished:
            entry["attributes"] = {TASK_NAMESPACE: {"method": "out-of-band", "status": "success", "priority": 1}}
        entries.append(entry)
    return {"servers": entries}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _timed(url: str, repeat: int) -> tuple[float, int]:
    session = requests.Session()
    session.get(url, timeout=60).raise_for_status()  # warm
    times = []
    total = 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = session.get(url, timeout=60)
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        total = response.json().get("total_record_count", 0)
    return statistics.median(times) * 1000, total


def measure(servers: int, flagged: int, repeat: int, workdir: Path) -> dict[str, Any]:
    db = workdir / f"inventory-{servers}.db"
    started = time.perf_counter()
    load_seed(db, fleet(servers, flagged))
    seed_seconds = time.perf_counter() - started
    port = _free_port()
    script = Path(sys.executable).parent / "flasher-sandbox"
    argv = [str(script), "inventory", "--db", str(db), "--port", str(port), "--log-level", "WARNING"]
    process = subprocess.Popen(argv)
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
        poll_ms, poll_total = _timed(f"{api}?attr={TASK_NAMESPACE}~status~eq~requested&limit=100", repeat)
        ns_ms, ns_total = _timed(f"{api}?attr={TASK_NAMESPACE}&limit=100", repeat)
        page_ms, _ = _timed(f"{api}?limit=100", repeat)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return {
        "servers": servers,
        "seed_s": seed_seconds,
        "poll_ms": poll_ms,
        "poll_total": poll_total,
        "ns_ms": ns_ms,
        "ns_total": ns_total,
        "page_ms": page_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--flagged", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-inventory-"))
    try:
        rows = [measure(n, args.flagged, args.repeat, workdir) for n in args.servers]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("| servers | load_seed | status eq requested (matches) | attr=task, 100 per page (matches) | no filter |")
    print("|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['servers']:,} | {row['seed_s']:.1f} s | {row['poll_ms']:.1f} ms ({row['poll_total']}) "
            f"| {row['ns_ms']:.1f} ms ({row['ns_total']}) | {row['page_ms']:.1f} ms |"
        )


if __name__ == "__main__":
    main()
