"""Task attribute benchmark: parsing an install task attribute and writing it back, for a new request and for a
large running task.

    .venv/bin/python -m bench.attribute.run            # 5 rounds
    .venv/bin/python -m bench.attribute.run --json

Every poll parses each open task's attribute, and a worker parses and writes one back at every status write, so
this is the per-task cost of validation (strict types, unknown keys kept apart from the fields, the size and
depth bounds: issue 12). The request is the design's example; the running task has 5 component types, 24 drives
as instances and 10 messages (about 6 KiB of JSON). Each round times ``--repeat`` parses and as many write-backs;
the median round is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from flasher.task.model import json_size, parse_install_task

REQUEST: dict[str, Any] = {
    "method": "out-of-band",
    "status": "",
    "priority": 2,
    "requester": "alice",
    "firmwareSet": "dell-r6515",
    "Firmware": {"bmc": {"version": "2.80.80.80", "preActions": ["resetBMC"]}, "bios": {"version": "2.7.3"}},
    "force": False,
    "dryRun": False,
}


def running_task() -> dict[str, Any]:
    """An active task as flasher writes it while it installs: the plan, per-component results, messages."""
    drives = [
        {
            "name": f"Disk {i}",
            "serial": f"S{i:06d}",
            "version": "GXA7802Q",
            "status": "installed",
            "installedVersion": "GXA7802Q",
            "message": "installed GXA7802Q (confirmed by the BMC)",
            "bmcTask": f"/redfish/v1/TaskService/Tasks/{i}",
        }
        for i in range(24)
    ]
    firmware: dict[str, Any] = {
        slug: {
            "version": "2.80.80.80",
            "updateFileURL": f"https://fw.example.com/repo/{slug}/firmware-2.80.80.80.bin",
            "updateFileChecksum": "sha256:" + "ab" * 32,
            "status": "installed",
            "installedVersion": "2.80.80.80",
            "message": "installed 2.80.80.80 (confirmed by the BMC)",
        }
        for slug in ("bmc", "bios", "cpld", "backplane")
    }
    firmware["drive"] = {"version": "GXA7802Q", "status": "active", "message": "24 installed", "instances": drives}
    return {
        **REQUEST,
        "Firmware": firmware,
        "status": "active",
        "mode": "PredefinedFirmwareSet",
        "taskID": "t-0123456789abcdef01234567",
        "worker": "flasher-0-1234",
        "attempts": 1,
        "createdAt": "2026-11-20T23:55:46Z",
        "updatedAt": "2026-11-20T23:56:10Z",
        "initialPowerState": "On",
        "messages": [f"2026-11-20T23:56:{i:02d}Z [drive] installing GXA7802Q: Running {i * 10}%" for i in range(10)],
    }


def _round(data: dict[str, Any], repeat: int) -> tuple[float, float]:
    """Microseconds per parse and per write-back (``to_attribute``), over ``repeat`` of each."""
    started = time.perf_counter()
    for _ in range(repeat):
        task = parse_install_task(data)
    parsed = time.perf_counter()
    for _ in range(repeat):
        task.to_attribute()
    written = time.perf_counter()
    return (parsed - started) / repeat * 1e6, (written - parsed) / repeat * 1e6


def main() -> None:
    """Run the rounds and print the medians (a table, or JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for name, data in (("new request", REQUEST), ("running task", running_task())):
        _round(data, 50)  # warm up
        rounds = [_round(data, args.repeat) for _ in range(args.rounds)]
        results[name] = {
            "bytes": json_size(data),
            "parse_us": statistics.median(r[0] for r in rounds),
            "write_us": statistics.median(r[1] for r in rounds),
            "rounds": rounds,
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'attribute':<14} {'bytes':>7} {'parse µs':>9} {'write-back µs':>14}")
    for name, row in results.items():
        print(f"{name:<14} {row['bytes']:>7} {row['parse_us']:>9.0f} {row['write_us']:>14.0f}")


if __name__ == "__main__":
    main()
