"""Process helpers of the sandbox (``flasher_sandbox/procs.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import flasher_sandbox.procs as procs
from flasher_sandbox.procs import FLASHER_ENV_PREFIX, ManagedProcess, console_script, ephemeral_ports, free_port_range

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


def test_the_ephemeral_range_is_read_from_the_kernel_file_or_defaults(tmp_path: Path) -> None:
    path = tmp_path / "ip_local_port_range"
    path.write_text("40000\t50000\n")
    assert ephemeral_ports(path) == (40000, 50000)
    path.write_text("garbage")
    assert ephemeral_ports(path) == procs.DEFAULT_EPHEMERAL_PORTS
    assert ephemeral_ports(tmp_path / "missing") == procs.DEFAULT_EPHEMERAL_PORTS


def test_a_port_range_is_chosen_outside_the_ephemeral_range(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rebooting simulated BMC closes its port: the kernel must not hand it to a server binding port 0."""
    monkeypatch.setattr(procs, "ephemeral_ports", lambda: (15000, 60999))
    for _ in range(20):
        base = free_port_range(50)
        assert base >= procs.LOWEST_FIXED_PORT and base + 50 <= 15000
    monkeypatch.setattr(procs, "ephemeral_ports", lambda: (10040, 64000))  # no room below: the ports above it
    assert 64000 < free_port_range(50) <= 65535 - 49
    monkeypatch.setattr(procs, "ephemeral_ports", lambda: (10010, 65530))  # no room outside: anywhere, as before
    assert procs.LOWEST_FIXED_PORT <= free_port_range(50) <= 65535 - 49
