"""The sandbox stack: Redis, the inventory, the simulated BMCs, an image server and flasher replicas, each a
real process on loopback (the image server a thread), started and stopped together.

Used by ``flasher-sandbox up`` and ``serve``, the end-to-end tests and the rollout benchmarks. The servers are
:mod:`flasher_sandbox.servers`' starters; every one binds to 127.0.0.1 on a free port and is stopped by
:meth:`Stack.stop` (SIGTERM, then SIGKILL). Logs go to ``<workdir>/logs/``.

With ``onboard``, the inventory starts with the firmware and the firmware sets only, and every server is put into
it from its BMC by ``flasher onboard`` (one process per BMC, as an operator would run it): the scenario's tasks then
run from what onboarding wrote.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import yaml
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from flasher_sandbox.procs import FLASHER_ENV_PREFIX, LOOPBACK, ManagedProcess, console_script, free_port
from flasher_sandbox.servers import BmcFleet, ImageServer, InventoryServer, RedisServer
from flasher_sandbox.up.scenario import Scenario


def _answers(url: str) -> bool:
    """Whether ``url`` answers 200."""
    return requests.get(url, timeout=2).status_code == 200


def _reader() -> requests.Session:
    """A session for the stack's own reads and writes, riding out the 5xx that fault tests inject."""
    session = requests.Session()
    retry = Retry(total=8, backoff_factor=0.05, status_forcelist=(500, 502, 503, 504), allowed_methods=None)
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


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

    ``redis_url`` uses an existing Redis instead of starting ``redis-server``. ``bmc_processes``: simulator
    processes sharing the BMCs (:class:`~flasher_sandbox.servers.BmcFleet`'s ``processes``; thousands of
    HTTPS BMCs start faster and are served by more than one core). ``more_servers``: seed entries (as
    :meth:`Scenario.seed` writes them) added to the inventory beside the scenario's, servers no simulated BMC
    answers for (a large inventory for benchmarks; the seed is then written as ``seed.json``). After :meth:`start`,
    ``redis`` (when started here), ``inventory``, ``bmcs`` and ``images`` are the running servers and
    ``seed_data`` the seed the inventory was loaded with. The caller's ``FLASHER_*`` environment reaches none of
    the processes: the replicas' settings are their YAML files alone. ``onboard``: the servers are not seeded but
    onboarded from their BMCs (:meth:`onboard_all`).
    """

    def __init__(
        self,
        workdir: Path,
        scenario: Scenario,
        *,
        redis_url: str | None = None,
        onboard: bool = False,
        bmc_processes: int = 1,
        more_servers: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.workdir = workdir
        self.more_servers = list(more_servers)
        self.onboard = onboard
        self.scenario = scenario
        self.logs = workdir / "logs"
        self.redis_url = redis_url
        self.redis: RedisServer | None = None
        self.inventory = InventoryServer(
            workdir,
            seed_path=workdir / "seed.yaml",
            db_path=workdir / "inventory.db",
            log_path=self.logs / "inventory.log",
            log_level="INFO",
        )
        self.bmcs = BmcFleet(
            workdir,
            config=scenario.fleet,
            config_path=workdir / "fleet.yaml",
            log_path=self.logs / "bmcs.log",
            log_level="INFO",
            pdu=True,
            processes=bmc_processes,
        )
        self.images: ImageServer | None = None
        self.seed_data: dict[str, Any] = {}
        self.onboarded: list[dict[str, Any]] = []
        self.replicas: dict[str, ManagedProcess] = {}
        self.replica_ports: dict[str, int] = {}
        #: ``flasher api`` once :meth:`start_api` ran, and its base URL.
        self.api: ManagedProcess | None = None
        self.api_url: str | None = None
        self.http = _reader()

    # -- the servers ----------------------------------------------------------------------------------------

    @property
    def inventory_url(self) -> str:
        """The inventory's base URL (without ``/api/v1``)."""
        return self.inventory.url

    @property
    def inventory_port(self) -> int:
        """The inventory's port."""
        return self.inventory.port

    @property
    def bmc_base_port(self) -> int:
        """BMC ``i`` of the scenario's fleet listens on this port + ``i`` (0 before :meth:`start`)."""
        return self.bmcs.base_port

    @property
    def control_port(self) -> int:
        """The simulated fleet's control port (0 before :meth:`start`)."""
        return self.bmcs.control_port

    @property
    def control_url(self) -> str:
        """The simulated fleet's control endpoint (``/fleet``, ``/fleet/audit``)."""
        return self.bmcs.control_url

    def start(self) -> Stack:
        """Start Redis (unless given), the image server, the simulated BMCs and the seeded inventory; returns
        once each answers. Raises ``RuntimeError`` with a server's log when it does not start (the servers
        already started keep running: call :meth:`stop`, or use :meth:`running`)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.redis_url is None:
            self.redis = RedisServer(self.workdir, log_path=self.logs / "redis.log").start()
            self.redis_url = self.redis.url
        image_dir = self.workdir / "images"
        self.scenario.write_images(image_dir)
        self.images = ImageServer(image_dir).start()
        self.bmcs.launch()  # the BMCs come up while the inventory loads its seed, which needs their ports
        self.seed_data = self.scenario.seed(
            bmc_base_port=self.bmc_base_port,
            image_base_url=self.images.base_url,
            servers_too=not self.onboard,
            pdu_url=self.bmcs.pdu_url,
        )
        assert self.inventory.seed_path is not None
        if self.more_servers:  # thousands: as JSON (YAML takes minutes), and time to load them
            self.seed_data["servers"] = [*self.seed_data.get("servers", []), *self.more_servers]
            self.inventory.seed_path = self.inventory.seed_path.with_suffix(".json")
            self.inventory.seed_path.write_text(json.dumps(self.seed_data))
        else:
            self.inventory.seed_path.write_text(yaml.safe_dump(self.seed_data, sort_keys=False))
        self.inventory.start(timeout=max(60.0, len(self.seed_data.get("servers", [])) / 100))
        self.bmcs.wait_ready(timeout=120)
        if self.onboard:
            self.onboard_all()
        return self

    def onboard_all(self, facility: str = "sandbox") -> dict[str, str]:
        """Put every BMC's server into the inventory with ``flasher onboard`` (named as the scenario names it) and
        record the uuids the inventory gave them in ``scenario.uuids``; returns them by name. Raises
        ``RuntimeError`` with the command's output when one fails."""
        secrets = self.workdir / "secrets"
        secrets.mkdir(exist_ok=True)
        env = {key: value for key, value in os.environ.items() if not key.startswith(FLASHER_ENV_PREFIX)}
        env |= {
            "FLASHER_INVENTORY__URL": self.inventory_url,
            "FLASHER_INVENTORY__RETRY_DEADLINE": "30",
        }
        if self.bmcs.ca_bundle is not None:
            env["FLASHER_BMC__CA_BUNDLE"] = str(self.bmcs.ca_bundle)
        found: dict[str, str] = {}
        for index, (name, bmc) in enumerate(zip(self.scenario.names, self.scenario.fleet.bmcs, strict=True)):
            password = secrets / f"{name}.password"
            password.write_text(bmc.password or self.scenario.fleet.password)
            password.chmod(0o600)
            argv = [
                *console_script("flasher"),
                "--log-level",
                "WARNING",
                "onboard",
                "--bmc",
                self.bmcs.url(index),
                "--name",
                name,
                "--facility",
                facility,
                "--username",
                bmc.username or self.scenario.fleet.username,
                "--password-file",
                str(password),
                "--json",
            ]
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"flasher onboard of {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
            answer = json.loads(done.stdout)
            uuid = str(answer["uuid"])
            found[name] = uuid
            self.scenario.uuids[name] = uuid
            identity = answer.get("vendor_attributes") or {}
            self.onboarded.append(
                {
                    "uuid": uuid,
                    "name": name,
                    "vendor": identity.get("vendor", bmc.vendor),
                    "model": identity.get("model", bmc.model),
                    "bmc": {
                        "address": self.bmcs.url(index),
                        "username": bmc.username or self.scenario.fleet.username,
                        "password": bmc.password or self.scenario.fleet.password,
                    },
                }
            )
        return found

    def server_entries(self) -> list[dict[str, Any]]:
        """Every server as the seed describes one (``uuid``, ``name``, ``vendor``, ``model``, ``bmc``: ``address``,
        ``username``, ``password``), in fleet order: the seeded ones, or with ``onboard`` the onboarded ones (the
        vendor and model as onboarding read them)."""
        if self.onboard:
            return list(self.onboarded)
        return list(self.seed_data.get("servers", []))[: len(self.scenario.names)]  # not ``more_servers``

    def processes(self) -> dict[str, ManagedProcess]:
        """The stack's child processes started so far, by role: ``redis`` (when started here), ``bmcs`` (or
        ``bmcs-0``, ``bmcs-1``... with several simulator processes), ``inventory``, then each replica by name
        (for benchmarks reading their CPU time)."""
        found = {"redis": self.redis.process if self.redis is not None else None}
        found |= self.bmcs.named_processes()
        found["inventory"] = self.inventory.process
        return {name: process for name, process in found.items() if process is not None} | self.replicas

    # -- flasher replicas -----------------------------------------------------------------------------------

    @property
    def image_host(self) -> str:
        """``127.0.0.1:<port>`` of the image server (an entry of the replicas' ``store.allowed_hosts``)."""
        if self.images is None:
            raise RuntimeError("the image server is not running: start the stack first")
        return urlsplit(self.images.base_url).netloc

    def replica_settings(self, options: ReplicaOptions, *, worker_id: str | None, http_port: int) -> dict[str, Any]:
        """flasher's settings (the YAML file's content) for a replica of this stack: its inventory and Redis,
        the BMCs over HTTPS with the sandbox CA as ``bmc.ca_bundle``, a firmware cache in the work directory
        shared by every replica, images from loopback only, the service's timings from ``options``, ``/healthz``
        on ``http_port`` (0: any free port). Without ``worker_id``, flasher names the replica ``<host>-<pid>``."""
        service: dict[str, Any] = {"worker_id": worker_id} if worker_id is not None else {}
        service |= {
            "concurrency": options.concurrency,
            "poll_interval": options.poll_interval,
            "poll_jitter": options.poll_jitter,
            "heartbeat_interval": options.heartbeat_interval,
            "stale_after": options.stale_after,
            "shutdown_grace": 20,
            "http_host": LOOPBACK,
            "http_port": http_port,
        }
        config: dict[str, Any] = {
            "inventory": {"url": self.inventory_url, "retry_deadline": 30, "retry_max_wait": 1},
            "redis": {"url": self.redis_url},
            "queue": {
                "lease_seconds": options.lease_seconds,
                "max_attempts": options.max_attempts,
                "retry_base_delay": 2,
                "retry_max_delay": 10,
            },
            "bmc": self._bmc_settings(options),
            # The simulated PDU: power through a server's outlet when its BMC does not answer.
            "pdu": {
                "fallback": True,
                "username": self.bmcs.username,
                "password": self.bmcs.password,
                **({"ca_bundle": str(self.bmcs.ca_bundle)} if self.bmcs.ca_bundle is not None else {}),
            },
            "steps": {"connect": {"timeout": 30, "attempts": 3, "backoff": 1}},
            # The image server is on loopback, which flasher refuses unless named: name it, with its port.
            "store": {"cache_dir": str(self.workdir / "firmware-cache"), "allowed_hosts": [self.image_host]},
            "fileserver": {"host": LOOPBACK, "port": 0},
            "service": service,
        }
        for section, values in options.extra.items():
            config.setdefault(section, {}).update(values)
        return config

    def _bmc_settings(self, options: ReplicaOptions) -> dict[str, Any]:
        bmc: dict[str, Any] = {"scheme": "https", "poll_interval": options.bmc_poll_interval, "offline_grace": 60}
        if self.bmcs.ca_bundle is not None:
            bmc["ca_bundle"] = str(self.bmcs.ca_bundle)
        return bmc

    def replica_config(self, name: str, options: ReplicaOptions) -> Path:
        """Write the YAML settings of replica ``name`` (:meth:`replica_settings`, ``/healthz`` on a free port)
        and return the file's path."""
        http_port = free_port()
        self.replica_ports[name] = http_port
        config = self.replica_settings(options, worker_id=name, http_port=http_port)
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def cli_config(self) -> Path:
        """The settings file for ``flasher`` commands run against this stack (inventory and Redis)."""
        path = self.workdir / "cli.yaml"
        if not path.exists():
            config = {"inventory": {"url": self.inventory_url, "retry_deadline": 30}, "redis": {"url": self.redis_url}}
            path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def flasher(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run ``flasher --config <cli.yaml> ARGS...`` (an operator's command, without the caller's ``FLASHER_*``
        environment) and return what it did; the caller checks ``returncode``."""
        argv = [*console_script("flasher"), "--config", str(self.cli_config()), "--log-level", "WARNING", *args]
        env = {key: value for key, value in os.environ.items() if not key.startswith(FLASHER_ENV_PREFIX)}
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)

    def start_replica(self, name: str, options: ReplicaOptions | None = None) -> ManagedProcess:
        """Start ``flasher run`` as replica ``name``; returns once its ``/healthz`` answers 200."""
        options = options or ReplicaOptions()
        config = self.replica_config(name, options)
        argv = [*console_script("flasher"), "--config", str(config), "--log-level", options.log_level]
        argv += ["--log-format", "json", "run"]
        process = ManagedProcess(argv, self.logs / f"{name}.log", drop_env=(FLASHER_ENV_PREFIX,)).start()
        self.replicas[name] = process
        health = f"http://{LOOPBACK}:{self.replica_ports[name]}/healthz"
        process.wait_ready(lambda: requests.get(health, timeout=2).status_code == 200, 60, f"flasher replica {name}")
        return process

    def start_api(self, options: ReplicaOptions | None = None, *, attempts: int = 3) -> ManagedProcess:
        """Start ``flasher api`` (``api.auth: none``, the sandbox's inventory and Redis) on a free loopback port;
        returns once its ``/healthz`` answers 200. :attr:`api_url` is then its base URL. A port taken between
        choosing it and binding it (another process's outgoing connection) is tried again on another one."""
        options = options or ReplicaOptions()
        for attempt in range(1, attempts + 1):
            port = free_port()
            config = self.replica_settings(options, worker_id=None, http_port=0)
            config["api"] = {"host": LOOPBACK, "port": port, "auth": "none"}
            path = self.workdir / "flasher-api.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            argv = [*console_script("flasher"), "--config", str(path), "--log-level", options.log_level]
            argv += ["--log-format", "json", "api"]
            process = ManagedProcess(argv, self.logs / "flasher-api.log", drop_env=(FLASHER_ENV_PREFIX,)).start()
            try:
                process.wait_ready(functools.partial(_answers, f"http://{LOOPBACK}:{port}/healthz"), 60, "flasher api")
            except RuntimeError:
                process.stop(timeout=10)
                if attempt == attempts or "address already in use" not in process.tail():
                    raise
                continue
            self.api = process
            self.api_url = f"http://{LOOPBACK}:{port}"
            return process
        raise AssertionError("unreachable")

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
        if self.api is not None:
            self.api.stop(timeout=20)
            self.api = None
        statuses = {name: process.stop(timeout=40) for name, process in self.replicas.items()}
        self.bmcs.stop()
        self.inventory.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.images is not None:
            self.images.stop()
            self.images = None
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
        if rule is None:
            self.inventory.clear_faults()
        else:
            self.inventory.set_faults(rule)

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
            return requests.get(f"http://{LOOPBACK}:{self.replica_ports[name]}/healthz", timeout=5).status_code
        except requests.RequestException:
            return 0

    def flag_all(self) -> None:
        """Write every task of the scenario (not the rollout's members: ``flasher rollout create`` writes those)."""
        for task in self.scenario.tasks:
            if task.flagged:
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
        return self.bmcs.fleet_audit()

    def bmc_state(self, index: int) -> dict[str, Any]:
        """BMC ``index``'s simulator state (power, boot, versions)."""
        return self.bmcs.state(index)

    @contextlib.contextmanager
    def running(self) -> Iterator[Stack]:
        """``with Stack(...).running() as stack:`` starts it and always stops it."""
        try:
            yield self.start()
        finally:
            self.stop()
