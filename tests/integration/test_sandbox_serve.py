"""``flasher-sandbox serve`` as an operator uses it: start it, source its env file, flag a server with the
``flasher`` CLI, watch the task end, SIGTERM the sandbox; it exits 0 and leaves no process behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from flasher_sandbox.procs import console_script
from flasher_sandbox.serve.session import ENV_VARIABLES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any ``FLASHER_*`` variable, plus ``extra``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FLASHER_")} | extra


def _start_time(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks) while the process exists and is not a zombie:
    a pid and its start time name one process, even if the pid is reused later."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else int(fields[19])


def _descendants(pid: int) -> dict[int, int]:
    """Every living descendant of ``pid``: pid → start time (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: dict[int, int] = {}
    pending = list(children.get(pid, []))
    while pending:
        child = pending.pop()
        started = _start_time(child)
        if started is not None:
            found[child] = started
        pending.extend(children.get(child, []))
    return found


def _alive(processes: dict[int, int]) -> list[int]:
    return [pid for pid, started in processes.items() if _start_time(pid) == started]


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _source(env_file: Path) -> dict[str, str]:
    """The ``FLASHER_*`` variables a shell has after ``. env_file`` (bash reads it: the quoting is the shell's)."""
    done = subprocess.run(
        ["bash", "-c", '. "$1" && env -0', "source", str(env_file)],
        env=_clean_environment(),
        capture_output=True,
        check=True,
        timeout=10,
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {name: value for name, value in pairs if name.startswith("FLASHER_")}


class Serve:
    """A ``flasher-sandbox serve`` subprocess in a session of its own, output in a file."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str]) -> None:
        self.env_file = tmp_path / "sandbox env"  # a space: the env file's quoting must hold it
        self.output = tmp_path / "serve.out"
        argv = [*console_script("flasher-sandbox"), "serve", *args, "--env-file", str(self.env_file)]
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path, start_new_session=True
            )
        self.seen: dict[int, int] = {}
        self.workdir: Path | None = None

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_for_env_file(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.env_file.exists():
            assert self.proc.poll() is None, f"serve exited with {self.proc.returncode}:\n{self.text()}"
            assert time.monotonic() < deadline, f"no env file after {timeout} s:\n{self.text()}"
            time.sleep(0.1)

    def remember_children(self) -> dict[int, int]:
        self.seen |= _descendants(self.proc.pid)
        return self.seen

    def kill_everything(self) -> None:
        """Clean-up after a failed test: the group, then every descendant seen."""
        if self.proc.poll() is None:
            self.remember_children()
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for pid in _alive(self.seen):
            os.kill(pid, signal.SIGKILL)
        if self.workdir is not None:  # a killed sandbox cannot remove its own
            shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    # A shell that sourced another sandbox's env file: none of it may reach the sandbox's own processes (an
    # inventory that required this token, or a replica polling this dead URL, would fail the task).
    env = _clean_environment(FLASHER_INVENTORY__URL="http://127.0.0.1:9", FLASHER_SANDBOX_TOKEN="stray-token")
    process = Serve(tmp_path, "--servers", "4", "--replicas", "1", "--install-seconds", "0.3",
                    "--offline-seconds", "0.5", "--power-seconds", "0.2", env=env)  # fmt: skip
    try:
        yield process
    finally:
        process.kill_everything()


def _flasher(env: dict[str, str], *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*console_script("flasher"), *args],
        env=_clean_environment(COLUMNS="200", **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd="/",  # no config/flasher.yaml of the repository: only FLASHER_CONFIG and the exports count
    )


def test_serve_runs_a_task_flagged_by_hand_and_stops_cleanly_on_sigterm(serve: Serve) -> None:
    serve.wait_for_env_file(timeout=40)
    env = _source(serve.env_file)
    assert set(env) == set(ENV_VARIABLES), env
    servers: list[dict[str, Any]] = json.loads(Path(env["FLASHER_SANDBOX_SERVERS"]).read_text())
    assert len(servers) == 4
    assert {s["vendor"] for s in servers} == {"dell", "supermicro", "lenovo"}  # the shapes in turn
    assert all({"uuid", "name", "vendor", "model", "bmc"} <= set(s) for s in servers)
    assert Path(env["FLASHER_CONFIG"]).is_file()
    workdir = serve.workdir = Path(env["FLASHER_SANDBOX_WORKDIR"])
    output = serve.text()
    for value in (env["FLASHER_INVENTORY__URL"], env["FLASHER_REDIS__URL"], env["FLASHER_SANDBOX_BMC_CONTROL"]):
        assert value in output  # the table says what runs where
    assert f"{env['FLASHER_API_URL']}/ui" in output  # flasher api runs too, and its dashboard answers
    dashboard = requests.get(f"{env['FLASHER_API_URL']}/ui", timeout=10)
    assert dashboard.status_code == 200 and "Tasks" in dashboard.text
    children = serve.remember_children()
    assert len(children) >= 4, children  # redis-server, the BMC fleet, the inventory, one replica

    # Nothing is flagged until the operator does it.
    listed = _flasher(env, "task", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stdout + listed.stderr

    server = servers[0]["uuid"]
    flagged = _flasher(env, "task", "install", "--server", server, "--requester", "test")
    assert flagged.returncode == 0, flagged.stdout + flagged.stderr
    try:
        watched = _flasher(env, "task", "status", "--server", server, "--watch", "--interval", "0.3", timeout=25)
    except subprocess.TimeoutExpired:
        log = (workdir / "logs" / "flasher-0.log").read_text(errors="replace")[-3000:]
        pytest.fail(f"the task did not end within 25 s; the replica's log ends:\n{log}")
    assert watched.returncode == 0, watched.stdout + watched.stderr + serve.text()
    status = _flasher(env, "task", "status", "--server", server, "--json")
    data = json.loads(status.stdout)
    assert data["status"] == "success" and data["worker"] == "flasher-0", data
    installed = {slug: entry["status"] for slug, entry in data["Firmware"].items()}
    assert installed and set(installed.values()) == {"installed"}, data["Firmware"]

    children = serve.remember_children()
    started = time.monotonic()
    serve.proc.send_signal(signal.SIGTERM)
    code = serve.proc.wait(timeout=30)
    assert code == 0, serve.text()
    assert time.monotonic() - started < 30
    assert _alive(children) == [], f"left running: {_alive(children)}"
    assert not _group_alive(serve.proc.pid)
    assert not serve.env_file.exists()
    assert not workdir.exists()
    assert "SIGTERM: stopping the sandbox" in serve.text()


@pytest.mark.timeout(150)
def test_serve_onboard_starts_empty_and_installs_from_what_onboarding_wrote(tmp_path: Path) -> None:
    env = _clean_environment()
    serve = Serve(tmp_path, "--servers", "2", "--replicas", "1", "--install-seconds", "0.3",
                  "--offline-seconds", "0.5", "--power-seconds", "0.2", "--onboard", env=env)  # fmt: skip
    try:
        serve.wait_for_env_file(timeout=90)
        assert "onboarded 2 servers from their BMCs (flasher onboard)" in serve.text()
        shell = _source(serve.env_file)
        serve.workdir = Path(shell["FLASHER_SANDBOX_WORKDIR"])
        servers: list[dict[str, Any]] = json.loads(Path(shell["FLASHER_SANDBOX_SERVERS"]).read_text())
        assert [(s["vendor"], s["model"]) for s in servers] == [("dell", "r6515"), ("supermicro", "x12stw")]
        for server in servers:  # what the inventory holds came from the BMC, by flasher onboard
            record = _flasher(shell, "inventory", "server", server["uuid"], "--json")
            assert record.returncode == 0, record.stderr
            data = json.loads(record.stdout)
            inventory_task = next(a for a in data["attributes"] if a["namespace"] == "sh.hollow.flasher.inventory")
            assert inventory_task["data"]["status"] == "success"
            assert inventory_task["data"]["requester"] == "flasher onboard"
        target = servers[1]["uuid"]  # ResolveFirmware: the set labelled with the onboarded vendor and model
        flagged = _flasher(shell, "task", "install", "--server", target, "--requester", "test")
        assert flagged.returncode == 0, flagged.stdout + flagged.stderr
        watched = _flasher(shell, "task", "status", "--server", target, "--watch", "--interval", "0.3", timeout=40)
        assert watched.returncode == 0, watched.stdout + watched.stderr
        status = json.loads(_flasher(shell, "task", "status", "--server", target, "--json").stdout)
        assert status["status"] == "success" and status["mode"] == "ResolveFirmware", status
        assert {entry["status"] for entry in status["Firmware"].values()} == {"installed"}
        serve.proc.send_signal(signal.SIGTERM)
        assert serve.proc.wait(timeout=30) == 0, serve.text()
    finally:
        serve.kill_everything()
