"""The rollout benchmark's phase report (``bench/rollout/phases.py``) from JSON log lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.rollout.phases import main, phases_of, read_lines, summary


def _line(at: str, message: str, task: str = "t-1") -> str:
    return json.dumps({"time": f"2026-12-03T17:00:{at}Z", "level": "INFO", "message": message, "task_id": task})


DELL = [
    _line("00.000", "firmware image sha256:ab is cached"),
    _line("00.100", "BMC https://127.0.0.1:1: installing bios 'BIOS' (now 1) by simple_update"),
    _line("00.200", "BMC https://127.0.0.1:1: install of bios 'BIOS' runs as task /redfish/v1/TaskService/Tasks/J1"),
    _line("01.100", "BMC https://127.0.0.1:1: power reset (ResetType ForceRestart; host was On)"),
    _line("06.200", "BMC https://127.0.0.1:1: bios 'BIOS' now reports 2"),
    _line("06.250", "install task ended success (1 installed): lease ack"),
]


def read_lines_of(raw: list[str], tmp_path: Path) -> list[tuple[float, str]]:
    """One task's lines as :func:`read_lines` gives them, from a log of ``raw``."""
    log = tmp_path / "flasher-9.log"
    log.write_text("\n".join(raw))
    return read_lines([log])["t-1"]


def test_a_tasks_phases_are_timed_between_its_lines(tmp_path: Path) -> None:
    log = tmp_path / "flasher-0.log"
    log.write_text("\n".join([*reversed(DELL), "not json", _line("00.000", "poll", task="-")]))
    lines = read_lines([log])
    assert list(lines) == ["t-1"]  # lines of no task, and lines that are not JSON, are skipped
    phases = phases_of(lines["t-1"])
    assert phases is not None and phases.method == "simple_update"
    assert phases.seconds == pytest.approx((0.2, 0.9, 5.1, 0.05))


def test_a_task_without_every_line_or_with_two_installs_is_left_out(tmp_path: Path) -> None:
    lines = read_lines_of(DELL[:-1], tmp_path)
    assert phases_of(lines) is None
    twice = read_lines_of([*DELL[:3], DELL[2], *DELL[3:]], tmp_path)
    assert phases_of(twice) is None


def test_the_summary_is_per_install_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    smc = [line.replace("simple_update", "multipart").replace("t-1", "t-2") for line in DELL if "power" not in line]
    (tmp_path / "r" / "logs").mkdir(parents=True)
    (tmp_path / "r" / "logs" / "flasher-1.log").write_text("\n".join(DELL + smc))
    assert main([str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["timed"] == 2
    assert result["by_method"]["multipart"]["to reset"]["median"] == 0
    assert result["by_method"]["simple_update"]["install"]["median"] == pytest.approx(5.1)
    assert summary([]) == {}
