"""``flasher queue ls`` and ``flasher queue drop`` against a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flasher.commands.queue import app, duration
from flasher.queue import TaskQueue
from flasher_sandbox.procs import free_port
from tests.support.queue_helpers import make_queue

pytestmark = pytest.mark.integration


@pytest.fixture
def queue(redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> TaskQueue:
    monkeypatch.chdir(tmp_path)  # no config/flasher.yaml here: settings come from the environment
    monkeypatch.delenv("FLASHER_CONFIG", raising=False)
    monkeypatch.setenv("FLASHER_REDIS__URL", redis_url)
    monkeypatch.setenv("COLUMNS", "200")
    return make_queue(redis_url)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _fill(queue: TaskQueue) -> None:
    queue.enqueue("srv-low", kind="install", task_id="task-low", priority=0)
    queue.enqueue("srv-high", kind="server_control", task_id="task-high", priority=3)
    queue.enqueue("srv-busy", kind="install", task_id="task-busy", priority=3)
    queue.enqueue("srv-later", kind="install", task_id="task-later", priority=1)
    queue.claim("replica-a")  # srv-high
    busy = queue.claim("replica-b")
    assert busy is not None and busy.server_id == "srv-busy"
    later = queue.claim("replica-b")
    assert later is not None
    queue.fail(later, retry=True, delay=300, reason="BMC busy")


def test_ls_shows_every_state(queue: TaskQueue) -> None:
    _fill(queue)
    code, out, _ = run("ls")
    assert code == 0
    for text in ("queued (in claim order)", "srv-low", "in flight", "replica-a", "replica-b", "delayed", "BMC busy"):
        assert text in out
    assert "queued 1 · delayed 1 · in flight 2 · dead 0" in out


def test_ls_json(queue: TaskQueue) -> None:
    _fill(queue)
    code, out, _ = run("ls", "--json")
    assert code == 0
    data = json.loads(out)
    assert [e["server_id"] for e in data["queued"]] == ["srv-low"]
    assert [e["server_id"] for e in data["delayed"]] == ["srv-later"]
    inflight = {e["server_id"]: e for e in data["inflight"]}
    assert set(inflight) == {"srv-high", "srv-busy"}
    assert inflight["srv-busy"]["owner"] == "replica-b" and 0 < inflight["srv-busy"]["lease_left"] <= 60
    assert data["dead"] == []


def test_drop_says_what_it_removed(queue: TaskQueue) -> None:
    _fill(queue)
    code, out, _ = run("drop", "srv-busy")
    assert code == 0
    assert "install task task-busy of server srv-busy (inflight" in out and "replica-b" in out
    assert queue.entry("srv-busy") is None
    code, _, err = run("drop", "srv-busy")
    assert code == 1 and "no task for server srv-busy" in err


def test_unreachable_redis_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLASHER_REDIS__URL", f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("FLASHER_REDIS__RETRY_DEADLINE", "0.2")
    code, out, err = run("ls")
    assert code == 1 and out == ""
    assert "cannot reach Redis" in err and "Traceback" not in err
    assert "hunter2-secret" not in err


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, None), (4.4, "4s"), (59.6, "1m00s"), (184, "3m04s"), (7500, "2h05m"), (-3, "-3s")]
)
def test_duration(seconds: float | None, text: str | None) -> None:
    assert duration(seconds) == text
