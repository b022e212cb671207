"""The service benchmarks (``bench.rollout``, ``bench.detection``, ``bench.poll``, ``bench.netboot``) run end to
end at a tiny size, so they cannot rot. No timing is asserted: only that each runs, cleans up, and reports what it
measured."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bench.poll.run import measure as measure_poll

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]


def run_bench(name: str, *args: str) -> str:
    """Run ``bench.<name>.run`` with its own temporary directory (so another run on the machine cannot look like
    a work directory left behind) and check it left nothing there."""
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}.run", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=170,
            check=False,
            env={**os.environ, "TMPDIR": tmp},
        )
        assert done.returncode == 0, f"bench.{name} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
        left = set(Path(tmp).glob(f"bench-{name}-*"))
        assert not left, f"the work directory was left behind: {left}"
    return done.stdout


def table_rows(output: str) -> list[list[str]]:
    lines = [line for line in output.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[1:]]


def test_rollout_runs_every_task_to_success() -> None:
    output = run_bench(
        "rollout",
        *("--servers", "4", "--point", "1,2,0.5", "--poll-interval", "0.5", "--heartbeat", "1"),
        *("--idle-seconds", "0.5", "--power-seconds", "0.1", "--image-kib", "16", "--timeout", "90"),
    )

    [row] = table_rows(output)
    assert row[0] == "4" and row[1] == "1 x 2" and row[4] == "1"  # ideal: ceil(4 / 2) * 0.5 s
    assert row[-1] == "4/4, overlaps 0"
    assert float(row[8]) > 0  # replica CPU seconds per task were read from /proc


def test_detection_times_each_admission() -> None:
    output = run_bench("detection", "--intervals", "0.5", "--samples", "3", "--timeout", "30")

    [row] = table_rows(output)
    assert row[0] == "0.5" and row[2] == "1" and row[3] == "3"
    low, median, high = float(row[4]), float(row[5]), float(row[7])
    assert 0 < low <= median <= high


def test_poll_requests_follow_the_servers_with_a_task(tmp_path: Path) -> None:
    quiet = measure_poll(servers=40, flagged=4, finished=0, polls=2, page_size=2, root=tmp_path)
    busy = measure_poll(servers=40, flagged=4, finished=6, polls=2, page_size=2, root=tmp_path)

    first, later = quiet["polls"]
    assert first["actions"] == {"queued": 4} and first["errors"] == []
    # The first poll plans and writes each new request; a later one only lists the open statuses (the 4 queued
    # tasks in 2 pages of 2, one empty page for each other open status of the three namespaces: install, server
    # control, inventory: 13 requests) and re-enqueues in Redis.
    assert first["by_path"]["PUT /api/v1/servers/{id}/attributes/sh.hollow.flasher.task"] == 4
    assert later["by_path"] == {"GET /api/v1/servers": 13}
    # Ended tasks keep their attribute, but a later poll does not list them: the same 13 requests, 4 tasks seen.
    assert busy["polls"][1]["by_path"] == {"GET /api/v1/servers": 13}
    assert busy["polls"][1]["seen"] == 4


def test_netboot_lookup_finds_every_server() -> None:
    output = run_bench("netboot", "--servers", "50", "--repeat", "5")

    [row] = table_rows(output)
    assert row[0] == "50" and "found no server" not in output
    assert float(row[2].removesuffix(" ms")) > 0 and float(row[3].removesuffix(" ms")) > 0


def test_taskcost_counts_the_requests_of_each_task() -> None:
    output = run_bench("taskcost", "--tasks", "smc-bios", "smc-power-state", "--install-seconds", "0.5")

    bios, power = table_rows(output)
    assert bios[0] == "smc-bios" and bios[1] == "success" and power[0] == "smc-power-state" and power[1] == "success"
    # One BIOS install logs in, reads the FirmwareInventory, sends the update, polls its task and logs out.
    assert int(bios[6]) >= 1 and int(bios[7]) == 1 and int(bios[8]) >= 1 and int(bios[9]) >= 1
    assert int(bios[5]) >= sum(int(cell) for cell in bios[6:12])
    # A power-state read: one log-in and log-out, no firmware read, no write to the BMC.
    assert power[6:9] == ["1", "1", "0"] and power[11] == "0"
    assert int(power[12]) > 0 and int(power[16]) > 0  # the worker's and the admission's inventory requests
    assert 0 < float(power[4]) <= float(power[3])  # the poll's CPU is part of the task's
