"""The sandbox inventory (``flasher-sandbox inventory``) as a real subprocess on a free loopback port, for tests."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from tests.support.processes import ManagedProcess, free_port, wait_until


def sandbox_argv() -> list[str]:
    """How to run ``flasher-sandbox``: the venv's console script, else this interpreter."""
    script = Path(sys.executable).parent / "flasher-sandbox"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from flasher_sandbox.cli import main; main()"]


class InventoryServer:
    """One inventory process with its own SQLite file in ``workdir``.

    ``url`` is the base URL (``http://127.0.0.1:<port>``), ``api`` the same with ``/api/v1``. With
    ``token``, every helper sends ``Authorization: Bearer <token>``.
    """

    def __init__(
        self, workdir: Path, *, token: str | None = None, seed_path: Path | None = None, threads: int = 8
    ) -> None:
        self.workdir = workdir
        self.token = token
        self.seed_path = seed_path
        self.threads = threads
        self.port = free_port()
        self.db_path = workdir / f"inventory-{self.port}.db"
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """Base URL, without ``/api/v1``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        """``<url>/api/v1``."""
        return f"{self.url}/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        """The auth header when the server needs a token, else nothing."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def start(self) -> InventoryServer:
        """Start the process and wait (up to 30 s) until ``/healthz/readiness`` answers 200."""
        argv = [*sandbox_argv(), "inventory", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--db", str(self.db_path), "--threads", str(self.threads), "--log-level", "DEBUG"]
        if self.seed_path is not None:
            argv += ["--seed", str(self.seed_path)]
        env = {"FLASHER_SANDBOX_TOKEN": self.token or ""}
        self.process = ManagedProcess(argv, self.workdir / f"inventory-{self.port}.log", env=env).start()
        try:
            wait_until(self._ready, 30, f"sandbox inventory on port {self.port}")
        except TimeoutError:
            raise TimeoutError(f"sandbox inventory did not start; its log:\n{self.process.tail()}") from None
        return self

    def _ready(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise RuntimeError(f"sandbox inventory exited; its log:\n{self.process.tail()}")
        return requests.get(f"{self.url}/healthz/readiness", timeout=1).status_code == 200

    def stop(self) -> int | None:
        """Stop the process (SIGTERM, then SIGKILL); returns its exit status."""
        if self.process is None:
            return None
        status = self.process.stop()
        self.process = None
        return status

    def restart(self) -> None:
        """Stop and start on the same port and database (the data stays)."""
        self.stop()
        self.seed_path = None
        self.start()

    def log(self, lines: int = 60) -> str:
        """The last lines of the server's log."""
        return self.process.tail(lines) if self.process else ""

    def _call(self, method: str, path: str, json: Any = None) -> requests.Response:
        response = requests.request(method, f"{self.url}{path}", json=json, headers=self.headers, timeout=60)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response

    def seed(self, seed: dict[str, Any]) -> dict[str, Any]:
        """Load a seed (the YAML seed format as a dict) through ``POST /_sandbox/seed``.

        Returns ``{"server_ids": [...], "servers": {name: uuid}, "firmware_ids": [...],
        "firmware_sets": {name: uuid}, "component_types": [...]}``.
        """
        result: dict[str, Any] = self._call("POST", "/_sandbox/seed", seed).json()
        return result

    def reset(self) -> None:
        """Delete every server, component, firmware version and firmware set; clear the fault rule."""
        self._call("POST", "/_sandbox/reset")
        self.clear_faults()

    def set_faults(self, rule: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Set the fault rule (``{"every": 5}``, ``error_rate``, ``status``, ``methods``, ``path_regex``,
        ``phase``, ``times``, ``delay``; see ``flasher_sandbox/inventory/faults.py``); returns the fault state."""
        state: dict[str, Any] = self._call("PUT", "/_sandbox/faults", {**(rule or {}), **fields}).json()
        return state

    def clear_faults(self) -> dict[str, Any]:
        """Remove the fault rule; returns the fault state (counters reset)."""
        state: dict[str, Any] = self._call("DELETE", "/_sandbox/faults").json()
        return state

    def fault_state(self) -> dict[str, Any]:
        """``{"rule": ..., "matched": n, "injected": n}``."""
        state: dict[str, Any] = self._call("GET", "/_sandbox/faults").json()
        return state

    @contextlib.contextmanager
    def faults(self, rule: dict[str, Any] | None = None, **fields: Any) -> Iterator[dict[str, Any]]:
        """``with inventory.faults(every=5): ...``: the rule holds inside the block and is cleared after."""
        state = self.set_faults(rule, **fields)
        try:
            yield state
        finally:
            self.clear_faults()

    def journal(
        self, *, server: str | None = None, namespace: str | None = None, after: int = 0
    ) -> list[dict[str, Any]]:
        """Every write of a server's attribute since ``after`` (``GET /_sandbox/journal``), oldest first."""
        params: dict[str, str | int] = {"after": after}
        if server is not None:
            params["server"] = server
        if namespace is not None:
            params["namespace"] = namespace
        response = requests.get(f"{self.url}/_sandbox/journal", params=params, headers=self.headers, timeout=60)
        response.raise_for_status()
        entries: list[dict[str, Any]] = response.json()["entries"]
        return entries
