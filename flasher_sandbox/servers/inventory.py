"""The sandbox inventory (``flasher-sandbox inventory``) as a real process on a free loopback port, with a client
of its sandbox-only controls (``/_sandbox``: seed, reset, faults)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from flasher_sandbox.procs import FLASHER_ENV_PREFIX, LOOPBACK, ManagedProcess, console_script, free_port
from flasher_sandbox.servers.errors import SandboxControlError

#: Ports :meth:`InventoryServer.start` tries when the one it was given is taken by the time it binds.
PORT_ATTEMPTS = 3


class InventoryServer:
    """One inventory process with its own SQLite file.

    ``db_path`` defaults to ``workdir/inventory-<port>.db`` and ``log_path`` to ``workdir/inventory-<port>.log``;
    ``seed_path`` is a seed YAML loaded into an empty database at start (``flasher_sandbox/inventory/README.md``).
    ``threads`` are waitress's request threads; ``log_level`` ``DEBUG`` logs one line per request. With
    ``token``, the server requires ``Authorization: Bearer <token>`` and every helper here sends it. The caller's
    ``FLASHER_*`` environment is not passed on (so no stray ``FLASHER_SANDBOX_TOKEN`` turns auth on).

    ``url`` is the base URL (``http://127.0.0.1:<port>``), ``api`` the same with ``/api/v1``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        token: str | None = None,
        seed_path: Path | None = None,
        threads: int = 8,
        log_level: str = "DEBUG",
        db_path: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.workdir = workdir
        self.token = token
        self.seed_path = seed_path
        self.threads = threads
        self.log_level = log_level
        self.port = free_port()
        self.db_path = db_path or workdir / f"inventory-{self.port}.db"
        self.log_path = log_path or workdir / f"inventory-{self.port}.log"
        self._paths_by_port = db_path is None and log_path is None  # a start on another port gets its own
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """Base URL, without ``/api/v1``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def api(self) -> str:
        """``<url>/api/v1``."""
        return f"{self.url}/api/v1"

    @property
    def headers(self) -> dict[str, str]:
        """The auth header when the server needs a token, else nothing."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def argv(self) -> list[str]:
        """The ``flasher-sandbox inventory`` command line."""
        argv = [*console_script("flasher-sandbox"), "inventory", "--host", LOOPBACK, "--port", str(self.port)]
        argv += ["--db", str(self.db_path), "--threads", str(self.threads), "--log-level", self.log_level]
        if self.seed_path is not None:
            argv += ["--seed", str(self.seed_path)]
        return argv

    def start(self, timeout: float = 60.0, *, other_port_if_taken: bool = True) -> InventoryServer:
        """Start the process and wait until ``/healthz/readiness`` answers 200 (a seed is loaded before that).

        The port was free when this object was made; something may have bound it since (another process, or the
        simulated BMCs started meanwhile). Then, with ``other_port_if_taken``, it starts again on another free port
        (up to :data:`PORT_ATTEMPTS` times; only when the database and log paths were left to this class, as they
        are named by the port): read :attr:`url` after ``start``. Raises ``RuntimeError`` with the end
        of its log when it exits otherwise or is not ready within ``timeout`` s.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {"FLASHER_SANDBOX_TOKEN": self.token or ""}
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.process = ManagedProcess(self.argv(), self.log_path, env=env, drop_env=(FLASHER_ENV_PREFIX,)).start()
            try:
                self.process.wait_ready(self._ready, timeout, f"the sandbox inventory on port {self.port}")
                return self
            except RuntimeError as exc:
                taken = "Address already in use" in str(exc)
                if not (other_port_if_taken and self._paths_by_port and taken) or attempt == PORT_ATTEMPTS:
                    raise
                self.process = None
                self.port = free_port()  # and a fresh database and log: the failed start may have seeded its own
                self.db_path = self.workdir / f"inventory-{self.port}.db"
                self.log_path = self.workdir / f"inventory-{self.port}.log"
        raise AssertionError("unreachable")  # the loop returns or raises

    def _ready(self) -> bool:
        return requests.get(f"{self.url}/healthz/readiness", timeout=1).status_code == 200

    def stop(self) -> int | None:
        """Stop the process (SIGTERM, then SIGKILL); returns its exit status (``None`` when not running)."""
        if self.process is None:
            return None
        status = self.process.stop()
        self.process = None
        return status

    def restart(self) -> None:
        """Stop and start on the same port and database (the data stays; the seed is not loaded again)."""
        self.stop()
        self.seed_path = None
        self.start(other_port_if_taken=False)

    def log(self, lines: int = 60) -> str:
        """The last lines of the server's log."""
        return self.process.tail(lines) if self.process else ""

    # -- the sandbox-only controls (/_sandbox) ----------------------------------------------------------------

    def _call(self, method: str, path: str, json: Any = None) -> requests.Response:
        response = requests.request(method, f"{self.url}{path}", json=json, headers=self.headers, timeout=60)
        if response.status_code >= 400:
            raise SandboxControlError(method, path, response.status_code, response.text)
        return response

    def seed(self, seed: dict[str, Any]) -> dict[str, Any]:
        """Load a seed (the YAML seed format as a dict) through ``POST /_sandbox/seed``.

        Returns ``{"server_ids": [...], "servers": {name: uuid}, "firmware_ids": [...],
        "firmware_sets": {name: uuid}, "component_types": [...]}``. Raises :class:`SandboxControlError`.
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

    def request_counts(self) -> dict[str, int]:
        """The ``/api/v1`` requests it answered since it started, by ``"METHOD route"`` (``GET /_sandbox/requests``:
        ``GET /api/v1/servers``, ``PUT /api/v1/servers/<server_id>/attributes/<namespace>``...)."""
        response = requests.get(f"{self.url}/_sandbox/requests", headers=self.headers, timeout=60)
        response.raise_for_status()
        counts: dict[str, int] = response.json()["requests"]
        return counts
