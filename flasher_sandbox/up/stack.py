"""The sandbox stack: Redis, the inventory, the simulated BMCs, an image server and flasher replicas, each a
real process on loopback, started and stopped together.

Used by ``flasher-sandbox up``, the end-to-end tests and the rollout benchmarks. Every server binds to
127.0.0.1 on a free port; every process is stopped by :meth:`Stack.stop` (SIGTERM, then SIGKILL). Logs go to
``<workdir>/logs/``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import requests
import yaml
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from flasher_sandbox.procs import ManagedProcess, free_port, free_port_range, wait_until
from flasher_sandbox.up.scenario import Scenario

HOST = "127.0.0.1"


def _reader() -> requests.Session:
    """A session for the stack's own reads and writes, riding out the 5xx that fault tests inject."""
    session = requests.Session()
    retry = Retry(total=8, backoff_factor=0.05, status_forcelist=(500, 502, 503, 504), allowed_methods=None)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


def _script(name: str) -> list[str]:
    """How to run one of the package's console scripts: next to this interpreter, on PATH, or as a module."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    if found:
        return [found]
    module = "flasher.cli" if name == "flasher" else "flasher_sandbox.cli"
    return [sys.executable, "-m", module]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class ImageServer:
    """Serves a directory of firmware images over HTTP on loopback (the firmware's ``repository_url``)."""

    def __init__(self, directory: Path) -> None:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        self._server = http.server.ThreadingHTTPServer((HOST, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="image-server", daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> Self:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()


@dataclass
class ReplicaOptions:
    """How the flasher replicas run: workers each, poll interval, lease, heartbeat, staleness (seconds)."""

    concurrency: int = 4
    poll_interval: float = 2.0
    poll_jitter: float = 0.5
    lease_seconds: float = 15.0
    heartbeat_interval: float = 2.0
    stale_after: float = 20.0
    max_attempts: int = 3
    bmc_poll_interval: float = 0.5
    log_level: str = "INFO"
    extra: dict[str, Any] = field(default_factory=dict)


class Stack:
    """One sandbox: call :meth:`start`, then :meth:`start_replica` as often as wanted; :meth:`stop` ends all.

    ``redis_url`` uses an existing Redis instead of starting ``redis-server``.
    """

    def __init__(self, workdir: Path, scenario: Scenario, *, redis_url: str | None = None) -> None:
        self.workdir = workdir
        self.scenario = scenario
        self.logs = workdir / "logs"
        self.redis_url = redis_url
        self._redis: ManagedProcess | None = None
        self.inventory_port = free_port()
        self.bmc_base_port = free_port_range(len(scenario.fleet.bmcs) + 1)
        self.control_port = self.bmc_base_port + len(scenario.fleet.bmcs)
        self._inventory: ManagedProcess | None = None
        self._bmcs: ManagedProcess | None = None
        self.images: ImageServer | None = None
        self.replicas: dict[str, ManagedProcess] = {}
        self.replica_ports: dict[str, int] = {}
        self.http = _reader()

    # -- the servers ----------------------------------------------------------------------------------------

    @property
    def inventory_url(self) -> str:
        """The inventory's base URL (without ``/api/v1``)."""
        return f"http://{HOST}:{self.inventory_port}"

    @property
    def control_url(self) -> str:
        """The simulated fleet's control endpoint (``/fleet``, ``/fleet/audit``)."""
        return f"http://{HOST}:{self.control_port}"

    def start(self) -> Stack:
        """Start Redis (unless given), the image server, the simulated BMCs and the seeded inventory."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.redis_url is None:
            self._start_redis()
        image_dir = self.workdir / "images"
        self.scenario.write_images(image_dir)
        self.images = ImageServer(image_dir).start()
        fleet_path = self.workdir / "fleet.yaml"
        self.scenario.fleet.dump_yaml(fleet_path)
        self._bmcs = ManagedProcess(
            [
                *_script("flasher-sandbox"),
                "bmc",
                "--config",
                str(fleet_path),
                "--base-port",
                str(self.bmc_base_port),
                "--control-port",
                str(self.control_port),
            ],
            self.logs / "bmcs.log",
        ).start()
        seed_path = self.workdir / "seed.yaml"
        seed = self.scenario.seed(bmc_base_port=self.bmc_base_port, image_base_url=self.images.base_url)
        seed_path.write_text(yaml.safe_dump(seed, sort_keys=False))
        self._inventory = ManagedProcess(
            [
                *_script("flasher-sandbox"),
                "inventory",
                "--host",
                HOST,
                "--port",
                str(self.inventory_port),
                "--db",
                str(self.workdir / "inventory.db"),
                "--seed",
                str(seed_path),
            ],
            self.logs / "inventory.log",
        ).start()
        self._wait(self._inventory, f"{self.inventory_url}/healthz", "the sandbox inventory")
        self._wait(self._bmcs, f"{self.control_url}/fleet", "the simulated BMCs", timeout=120)
        return self

    def _start_redis(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server; scripts/bootstrap)")
        port = free_port()
        self.redis_url = f"redis://{HOST}:{port}/0"
        self._redis = ManagedProcess(
            [binary, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"],
            self.logs / "redis.log",
            cwd=self.workdir,
        ).start()
        wait_until(lambda: _redis_ping(port), 20, "redis-server")

    def _wait(self, process: ManagedProcess, url: str, what: str, timeout: float = 60) -> None:
        def ready() -> bool:
            if not process.alive():
                raise RuntimeError(f"{what} exited:\n{process.tail()}")
            return requests.get(url, timeout=2).status_code == 200

        try:
            wait_until(ready, timeout, what, interval=0.2)
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}; its log:\n{process.tail()}") from None

    def processes(self) -> dict[str, ManagedProcess]:
        """The stack's child processes started so far, by role: ``redis`` (when started here), ``bmcs``,
        ``inventory``, then each replica by name (for benchmarks reading their CPU time)."""
        found = {"redis": self._redis, "bmcs": self._bmcs, "inventory": self._inventory}
        return {name: process for name, process in found.items() if process is not None} | self.replicas

    # -- flasher replicas -----------------------------------------------------------------------------------

    def replica_config(self, name: str, options: ReplicaOptions) -> Path:
        """Write the YAML settings of replica ``name`` and return the file's path."""
        http_port = free_port()
        self.replica_ports[name] = http_port
        config: dict[str, Any] = {
            "inventory": {"url": self.inventory_url, "retry_deadline": 30, "retry_max_wait": 1},
            "redis": {"url": self.redis_url},
            "queue": {
                "lease_seconds": options.lease_seconds,
                "max_attempts": options.max_attempts,
                "retry_base_delay": 2,
                "retry_max_delay": 10,
            },
            "bmc": {"scheme": "http", "poll_interval": options.bmc_poll_interval, "offline_grace": 60},
            "steps": {"connect": {"timeout": 30, "attempts": 3, "backoff": 1}},
            "store": {"cache_dir": str(self.workdir / "firmware-cache"), "allowed_hosts": [HOST]},
            "fileserver": {"host": HOST, "port": 0},
            "service": {
                "worker_id": name,
                "concurrency": options.concurrency,
                "poll_interval": options.poll_interval,
                "poll_jitter": options.poll_jitter,
                "heartbeat_interval": options.heartbeat_interval,
                "stale_after": options.stale_after,
                "shutdown_grace": 20,
                "http_host": HOST,
                "http_port": http_port,
            },
        }
        for section, values in options.extra.items():
            config.setdefault(section, {}).update(values)
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start_replica(self, name: str, options: ReplicaOptions | None = None) -> ManagedProcess:
        """Start ``flasher run`` as replica ``name``; returns once its ``/healthz`` answers 200."""
        options = options or ReplicaOptions()
        config = self.replica_config(name, options)
        process = ManagedProcess(
            [
                *_script("flasher"),
                "--config",
                str(config),
                "--log-level",
                options.log_level,
                "--log-format",
                "json",
                "run",
            ],
            self.logs / f"{name}.log",
        ).start()
        self.replicas[name] = process
        self._wait(process, f"http://{HOST}:{self.replica_ports[name]}/healthz", f"flasher replica {name}")
        return process

    def start_replicas(self, names: list[str], options: ReplicaOptions | None = None) -> None:
        """Start the replicas ``names`` side by side (each as :meth:`start_replica`); raises the first error."""
        errors: list[BaseException] = []

        def start(name: str) -> None:
            try:
                self.start_replica(name, options)
            except BaseException as exc:  # handed to the caller below
                errors.append(exc)

        threads = [threading.Thread(target=start, args=(name,), name=f"start-{name}") for name in names]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def stop_replica(self, name: str, timeout: float = 30) -> int | None:
        """SIGTERM replica ``name`` (SIGKILL after ``timeout`` s); returns its exit status."""
        return self.replicas[name].stop(timeout=timeout)

    def stop(self) -> dict[str, int | None]:
        """Stop every replica (SIGTERM, their shutdown grace), then the BMCs, inventory, images and Redis.
        Returns each replica's exit status."""
        statuses = {name: process.stop(timeout=40) for name, process in self.replicas.items()}
        for process in (self._bmcs, self._inventory, self._redis):
            if process is not None:
                process.stop()
        if self.images is not None:
            self.images.stop()
        return statuses

    # -- reading and writing the inventory --------------------------------------------------------------------

    def flag(self, server_uuid: str, namespace: str, data: dict[str, Any]) -> None:
        """Write a task attribute as an operator's tool would (create, or replace when it exists)."""
        url = f"{self.inventory_url}/api/v1/servers/{server_uuid}/attributes"
        response = self.http.put(f"{url}/{namespace}", json={"data": data}, timeout=30)
        if response.status_code == 404:
            response = self.http.post(url, json={"namespace": namespace, "data": data}, timeout=30)
        response.raise_for_status()

    def set_inventory_faults(self, rule: dict[str, Any] | None) -> None:
        """Make the inventory answer 5xx by ``rule`` (``{"every": 5}``: one call in five); ``None`` clears it."""
        url = f"{self.inventory_url}/_sandbox/faults"
        response = requests.delete(url, timeout=30) if rule is None else requests.put(url, json=rule, timeout=30)
        response.raise_for_status()

    def attribute_journal(
        self, *, server: str | None = None, namespace: str | None = None, after: int = 0
    ) -> list[dict[str, Any]]:
        """Every write of a server's attribute since ``after``, in the order the writes took effect (the sandbox
        inventory's ``GET /_sandbox/journal``): ``{"seq", "server", "namespace", "op", "data", "agent", "at"}``."""
        params: dict[str, str | int] = {"after": after}
        if server is not None:
            params["server"] = server
        if namespace is not None:
            params["namespace"] = namespace
        entries: list[dict[str, Any]] = []
        while True:
            response = self.http.get(f"{self.inventory_url}/_sandbox/journal", params=params, timeout=60)
            response.raise_for_status()
            page: list[dict[str, Any]] = response.json()["entries"]
            entries.extend(page)
            if not page:
                return entries
            params["after"] = page[-1]["seq"]

    def replica_health(self, name: str) -> int:
        """The HTTP status of replica ``name``'s ``/healthz`` (0 when it does not answer)."""
        try:
            return requests.get(f"http://{HOST}:{self.replica_ports[name]}/healthz", timeout=5).status_code
        except requests.RequestException:
            return 0

    def flag_all(self) -> None:
        """Write every task of the scenario."""
        for task in self.scenario.tasks:
            self.flag(self.scenario.uuids[task.server], task.namespace, task.data)

    def task_attributes(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every task attribute in the inventory: ``(server uuid, namespace) -> data``, in one listing per
        namespace."""
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for namespace in (TASK_NAMESPACE, SERVER_CONTROL_NAMESPACE):
            page = 1
            while True:
                response = self.http.get(
                    f"{self.inventory_url}/api/v1/servers",
                    params={"attr": namespace, "page": page, "limit": 1000},
                    timeout=60,
                )
                response.raise_for_status()
                body = response.json()
                for server in body.get("records") or []:
                    for attribute in server.get("attributes") or []:
                        if attribute["namespace"] == namespace:
                            found[(server["uuid"], namespace)] = attribute["data"]
                if page >= int(body.get("total_pages") or 0):
                    break
                page += 1
        return found

    def fleet_audit(self) -> dict[str, Any]:
        """The simulated BMCs' audit: every install and power change, and the overlapping install count."""
        response = self.http.get(f"{self.control_url}/fleet/audit", timeout=60)
        response.raise_for_status()
        audit: dict[str, Any] = response.json()
        return audit

    def bmc_state(self, index: int) -> dict[str, Any]:
        """BMC ``index``'s simulator state (power, boot, versions)."""
        response = self.http.get(f"{self.control_url}/fleet/state/{self.bmc_base_port + index}", timeout=30)
        response.raise_for_status()
        state: dict[str, Any] = response.json()
        return state

    @contextlib.contextmanager
    def running(self) -> Iterator[Stack]:
        """``with Stack(...).running() as stack:`` starts it and always stops it."""
        try:
            yield self.start()
        finally:
            self.stop()


def _redis_ping(port: int) -> bool:
    import redis

    return bool(redis.Redis(host=HOST, port=port, socket_timeout=1).ping())
