"""Process helpers of the sandbox (``flasher_sandbox/procs.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from flasher_sandbox.procs import FLASHER_ENV_PREFIX, ManagedProcess, console_script

PRINT_ENV = "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.startswith('FLASHER_')}))"


def test_a_child_does_not_inherit_the_dropped_prefix_but_gets_what_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHER_INVENTORY__URL", "http://elsewhere:1")
    monkeypatch.setenv("FLASHERISH", "kept")
    log = tmp_path / "child.log"
    process = ManagedProcess(
        [sys.executable, "-c", PRINT_ENV + "; print(os.environ['FLASHERISH'])"],
        log,
        env={"FLASHER_SANDBOX_TOKEN": ""},
        drop_env=(FLASHER_ENV_PREFIX,),
    ).start()
    assert process.proc is not None and process.proc.wait(timeout=20) == 0

    assert log.read_text().splitlines() == ['{"FLASHER_SANDBOX_TOKEN": ""}', "kept"]


def test_without_drop_env_the_environment_is_inherited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHER_X", "1")
    process = ManagedProcess([sys.executable, "-c", PRINT_ENV], tmp_path / "child.log").start()
    assert process.proc is not None and process.proc.wait(timeout=20) == 0
    assert '"FLASHER_X": "1"' in process.tail()


def test_wait_ready_stops_at_once_when_the_process_exits_and_shows_its_log(tmp_path: Path) -> None:
    process = ManagedProcess(
        [sys.executable, "-c", "print('cannot listen on 127.0.0.1:1'); raise SystemExit(3)"], tmp_path / "x.log"
    ).start()

    with pytest.raises(RuntimeError, match=r"(?s)the thing exited with status 3; its log:\ncannot listen"):
        process.wait_ready(lambda: False, timeout=30, what="the thing")


def test_wait_ready_gives_up_after_the_timeout_with_the_log(tmp_path: Path) -> None:
    process = ManagedProcess(
        [sys.executable, "-c", "import time; print('still starting', flush=True); time.sleep(30)"], tmp_path / "y.log"
    ).start()
    try:
        with pytest.raises(RuntimeError, match=r"(?s)the thing not ready after 1 s; its log:.*still starting"):
            process.wait_ready(lambda: False, timeout=1, what="the thing")
    finally:
        process.stop()


def test_console_script_runs_this_distributions_scripts_only() -> None:
    argv = console_script("flasher-sandbox")
    assert argv[-1].endswith("flasher-sandbox") or argv[-2:] == ["-m", "flasher_sandbox.cli"]
    with pytest.raises(KeyError):
        console_script("redis-server")
