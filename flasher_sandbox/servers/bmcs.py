"""The simulated BMC fleet (``flasher-sandbox bmc``) as real processes, with a client of their control API.

:class:`BmcFleet` starts the fleet on a free range of loopback ports plus a control port per process, waits until
every BMC answers, and talks to the simulator's own API through the control ports (so it works while a BMC
reboots): faults, state, audit, restore (``flasher_sandbox/bmc/simapi.py``). One process serves every BMC unless
``processes`` says more: then each process serves a consecutive block of them (a shard: its own event loop, so
its own core), BMC ``i`` still on ``base_port + i``, and the client merges what the shards answer. The BMCs
serve HTTPS by default, with certificates signed by the sandbox CA in ``tls_dir`` (:attr:`BmcFleet.ca_bundle`
is what a client trusts; :attr:`BmcFleet.verify` is ``requests``' ``verify`` for them), or plain HTTP.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from flasher_sandbox.bmc.config import FleetSpec, Scheme, default_fleet
from flasher_sandbox.bmc.tls import CA_CERT
from flasher_sandbox.procs import (
    FLASHER_ENV_PREFIX,
    LOOPBACK,
    ManagedProcess,
    console_script,
    free_port_range,
    wait_until,
)
from flasher_sandbox.servers.errors import SandboxControlError


@dataclass
class Shard:
    """One ``flasher-sandbox bmc`` process of a fleet: BMCs ``first`` .. ``first + count - 1`` (fleet indexes),
    on ``base_port + first``.., its control API on ``control_port``."""

    first: int
    count: int
    control_port: int = 0
    process: ManagedProcess | None = None

    def holds(self, index: int) -> bool:
        """Whether fleet BMC ``index`` is one of this shard's."""
        return self.first <= index < self.first + self.count


def split(count: int, processes: int) -> list[Shard]:
    """``count`` BMCs in ``processes`` consecutive blocks as even as can be (the first ones one larger).
    ``ValueError`` unless 1 <= processes <= count."""
    if not 1 <= processes <= count:
        raise ValueError(f"processes must be between 1 and the {count} BMCs, got {processes}")
    size, extra = divmod(count, processes)
    shards, first = [], 0
    for j in range(processes):
        n = size + (1 if j < extra else 0)
        shards.append(Shard(first, n))
        first += n
    return shards


class BmcFleet:
    """``flasher-sandbox bmc`` processes serving ``count`` BMCs on ``base_port``.. and a control port per
    process after them (``processes``, default 1: one process, one control port at ``base_port + count``).

    Without ``config``, BMC ``i`` is Dell-like for even ``i`` and Supermicro-like for odd ``i``, all with
    ``username``/``password`` (the simulator's defaults ``root``/``calvin``); with a ``config``
    (:class:`~flasher_sandbox.bmc.config.FleetSpec`), its BMCs, credentials and timings, unless the timings are
    given here. The config's YAML goes to ``config_path`` (default ``workdir/fleet-<base port>.yaml``), the
    log to ``log_path`` (default ``workdir/bmcsim-<base port>.log``) at ``log_level``. Ports are chosen at
    :meth:`start`.

    ``scheme`` is the fleet's (``https`` unless the config says otherwise; a config's BMC may set its own);
    the sandbox CA and the BMCs' certificates go to ``tls_dir`` (default ``workdir/bmc-tls``; the CA is made
    once and kept there, so fleets sharing a ``tls_dir`` share their CA).

    With ``processes`` > 1, process ``j`` serves the ``j``-th block of :func:`split` (its config the block's
    BMCs, written to ``<config_path stem>-<j>.yaml``; its log ``<log_path stem>-<j>.log``; the default fleet
    without ``config`` is the same as with one process), its control API on ``base_port + count + j``, the PDU
    (when asked for) on the port after the last control port, served by process 0. The fleet-wide calls
    (:meth:`fleet`, :meth:`fleet_audit`, :meth:`restore`, :meth:`reset_audit`) ask every process; a BMC's own
    calls go to the process that serves it.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        count: int | None = None,
        install_seconds: float | None = None,
        offline_seconds: float | None = None,
        power_seconds: float | None = None,
        config: FleetSpec | None = None,
        username: str = "root",
        password: str = "calvin",  # noqa: S107 (the simulator's well-known default, as in bmc/config.py)
        log_path: Path | None = None,
        log_level: str = "WARNING",
        config_path: Path | None = None,
        scheme: Scheme | None = None,
        tls_dir: Path | None = None,
        pdu: bool = False,
        processes: int = 1,
    ) -> None:
        if count is None:
            count = len(config.bmcs) if config is not None else 2
        if config is not None and count != len(config.bmcs):
            raise ValueError(f"count {count} does not match the {len(config.bmcs)} BMCs of the config")
        self.workdir = workdir
        self.count = count
        defaults = (config.install_seconds, config.offline_seconds, config.power_seconds) if config else (1.0, 1.0, 0.5)
        #: The fleet-wide timings (a config's BMC may override its own).
        self.install_seconds = defaults[0] if install_seconds is None else install_seconds
        self.offline_seconds = defaults[1] if offline_seconds is None else offline_seconds
        self.power_seconds = defaults[2] if power_seconds is None else power_seconds
        self.config = config
        self.username = config.username if config is not None else username
        self.password = config.password if config is not None else password
        self.log_path = log_path
        self.config_path = config_path
        self.log_level = log_level
        self.scheme: Scheme | None = scheme
        self.tls_dir = tls_dir or workdir / "bmc-tls"
        fleet_scheme = scheme or (config.scheme if config is not None else "https")
        #: Each BMC's scheme, in index order.
        self.schemes: list[Scheme] = [
            (config.bmcs[i].scheme if config is not None else None) or fleet_scheme for i in range(count)
        ]
        #: The processes, each a block of BMCs (:class:`Shard`), in index order.
        self.shards = split(count, processes)
        self.base_port = 0
        #: Also serve a Redfish PDU (``--pdu-port``, the port after the control port): :attr:`pdu_url`.
        self.pdu = pdu
        self.pdu_port = 0
        self.http = requests.Session()

    @property
    def process(self) -> ManagedProcess | None:
        """The first (with one process: the only) simulator process, ``None`` when not running."""
        return self.shards[0].process

    @property
    def control_port(self) -> int:
        """The first process's control port (with one process, the fleet's); 0 before :meth:`launch`."""
        return self.shards[0].control_port

    def named_processes(self) -> dict[str, ManagedProcess]:
        """The running simulator processes by name: ``bmcs`` for a single one, ``bmcs-0``, ``bmcs-1``... for
        several (for benchmarks reading their CPU time and memory)."""
        if len(self.shards) == 1:
            return {"bmcs": self.shards[0].process} if self.shards[0].process is not None else {}
        return {f"bmcs-{j}": shard.process for j, shard in enumerate(self.shards) if shard.process is not None}

    def shard_of(self, i: int) -> Shard:
        """The process serving BMC ``i`` (``IndexError`` outside the fleet)."""
        self._check(i)
        return next(shard for shard in self.shards if shard.holds(i))

    # ---- lifecycle ------------------------------------------------------------------------------------------

    def argv(self, shard: int = 0) -> list[str]:
        """The ``flasher-sandbox bmc`` command line of process ``shard`` for the current ports (writes its
        config's YAML when it has one)."""
        part = self.shards[shard]
        argv = [*console_script("flasher-sandbox"), "bmc", "--count", str(part.count), "--host", LOOPBACK]
        argv += ["--base-port", str(self.base_port + part.first), "--control-port", str(part.control_port)]
        argv += ["--install-seconds", str(self.install_seconds), "--offline-seconds", str(self.offline_seconds)]
        argv += ["--power-seconds", str(self.power_seconds), "--log-level", self.log_level]
        argv += ["--tls-dir", str(self.tls_dir)]
        if self.pdu and shard == 0:
            argv += ["--pdu-port", str(self.pdu_port)]
        if self.scheme is not None or self.config is None:
            argv += ["--scheme", self.scheme or "https"]
        config = self.config
        if config is None and len(self.shards) > 1:  # each block of the default fleet, as one process makes it
            config = default_fleet(self.count, username=self.username, password=self.password)
        if config is not None:
            path = self.config_path or self.workdir / f"fleet-{self.base_port}.yaml"
            if len(self.shards) > 1:
                path = path.with_name(f"{path.stem}-{shard}{path.suffix}")
                config = config.model_copy(update={"bmcs": config.bmcs[part.first : part.first + part.count]})
            config.dump_yaml(path)
            argv += ["--config", str(path)]
        else:
            argv += ["--username", self.username, "--password", self.password]
        return argv

    def _log_path(self, shard: int) -> Path:
        part = self.shards[shard]
        if self.log_path is None:
            return self.workdir / f"bmcsim-{self.base_port + part.first}.log"
        if len(self.shards) == 1:
            return self.log_path
        return self.log_path.with_name(f"{self.log_path.stem}-{shard}{self.log_path.suffix}")

    def launch(self) -> BmcFleet:
        """Choose free ports and start the process; returns at once (then :meth:`wait_ready`). The ports are
        known from here on, so the inventory can be seeded while the BMCs come up."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.base_port = free_port_range(self.count + len(self.shards) + (1 if self.pdu else 0))
        for j, shard in enumerate(self.shards):
            shard.control_port = self.base_port + self.count + j
        self.pdu_port = self.base_port + self.count + len(self.shards) if self.pdu else 0
        for j, shard in enumerate(self.shards):
            shard.process = ManagedProcess(self.argv(j), self._log_path(j), drop_env=(FLASHER_ENV_PREFIX,)).start()
        return self

    def wait_ready(self, timeout: float = 60.0) -> BmcFleet:
        """Wait until every process's control API lists its BMCs and each BMC answers ``GET /redfish/v1``.

        Raises ``RuntimeError`` with the end of the log when the process exits (a port taken meanwhile among
        the reasons) or is not ready within ``timeout`` s; the process is stopped then.
        """
        if self._wait_bound(timeout):
            self._check_all_answer()
            return self
        log = self.log()
        self.stop()
        raise RuntimeError(f"simulated BMCs did not start within {timeout:.0f} s:\n{log}")

    def start(self, timeout: float = 60.0) -> BmcFleet:
        """:meth:`launch` and :meth:`wait_ready`, again on other ports when one was taken meanwhile (up to three
        times). Raises ``RuntimeError`` with the end of the log when it does not start."""
        for _attempt in range(3):
            self.launch()
            try:
                return self.wait_ready(timeout)
            except RuntimeError as exc:
                if "cannot listen" not in str(exc):
                    raise
        raise RuntimeError("simulated BMCs could not bind their ports three times in a row")

    def _wait_bound(self, timeout: float) -> bool:
        """True once every process's control port answers (a process binds it after its BMCs' ports); False
        when a process exits or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        waiting = list(self.shards)
        while waiting and time.monotonic() < deadline:
            shard = waiting[0]
            assert shard.process is not None
            if not shard.process.alive():
                return False
            try:
                fleet = self.http.get(f"http://{LOOPBACK}:{shard.control_port}/fleet", timeout=2).json()
                if fleet["count"] == shard.count:
                    waiting.pop(0)
                    continue
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return not waiting

    def _check_all_answer(self) -> None:
        def status(url: str) -> int:
            return requests.get(f"{url}/redfish/v1", timeout=10, verify=self.verify).status_code

        with ThreadPoolExecutor(min(8, self.count)) as pool:  # thousands of TLS handshakes: not one by one
            for url, code in zip(self.urls, pool.map(status, self.urls), strict=True):
                if code != 200:
                    raise RuntimeError(f"simulated BMC {url} answers {code}:\n{self.log()}")

    def stop(self) -> int | None:
        """Stop every process (SIGTERM, then SIGKILL); returns an exit status: the first that is not 0, else 0
        (``None`` when none was running)."""
        statuses = []
        for shard in self.shards:
            if shard.process is not None:
                statuses.append(shard.process.stop())
                shard.process = None
        self.http.close()
        return next((status for status in statuses if status), statuses[0] if statuses else None)

    def log(self) -> str:
        """The end of every process's output (for failure messages)."""
        tails = [shard.process.tail() for shard in self.shards if shard.process is not None]
        return "\n".join(tails)

    # ---- addresses ------------------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """Base URLs of the BMCs (``https://127.0.0.1:PORT``, or ``http://`` for a plain-HTTP BMC), in index
        order."""
        return [f"{self.schemes[i]}://{LOOPBACK}:{self.base_port + i}" for i in range(self.count)]

    @property
    def ca_bundle(self) -> Path | None:
        """The sandbox CA's certificate (PEM) that signs every HTTPS BMC's; ``None`` when no BMC serves HTTPS.
        It exists once the fleet has started."""
        return self.tls_dir / CA_CERT if "https" in self.schemes else None

    @property
    def verify(self) -> bool | str:
        """``requests``' ``verify`` for these BMCs: the CA bundle's path, or ``True`` (plain HTTP only)."""
        return str(self.ca_bundle) if self.ca_bundle is not None else True

    def port(self, i: int) -> int:
        """Port of BMC ``i``."""
        self._check(i)
        return self.base_port + i

    def url(self, i: int) -> str:
        """Base URL of BMC ``i``."""
        return f"{self.schemes[i]}://{LOOPBACK}:{self.port(i)}"

    def address(self, i: int) -> str:
        """BMC ``i``'s address with its scheme (``https://127.0.0.1:PORT``), as an inventory may store it."""
        return self.url(i)

    def redfish(self, i: int, path: str = "") -> str:
        """``url(i) + /redfish/v1 + path``."""
        return f"{self.url(i)}/redfish/v1{path}"

    def session(self, i: int) -> requests.Session:
        """A ``requests`` session with BMC ``i``'s Basic credentials that trusts the sandbox CA (the caller closes
        it). It ignores the environment (``trust_env``): requests lets ``REQUESTS_CA_BUNDLE`` or
        ``CURL_CA_BUNDLE`` override a session's ``verify``, and the BMCs are on loopback, behind no proxy."""
        session = requests.Session()
        session.trust_env = False
        session.auth = self.credentials(i)
        session.verify = self.verify
        return session

    def credentials(self, i: int) -> tuple[str, str]:
        """BMC ``i``'s user and password: its own in the config, else the fleet's."""
        self._check(i)
        bmc = self.config.bmcs[i] if self.config is not None else None
        username = bmc.username if bmc is not None and bmc.username else self.username
        password = bmc.password if bmc is not None and bmc.password else self.password
        return username, password

    def _check(self, i: int) -> None:
        if not 0 <= i < self.count:
            raise IndexError(f"BMC index {i} outside 0..{self.count - 1}")

    # ---- the simulator's API (through the control port) -----------------------------------------------------

    @property
    def control_url(self) -> str:
        """The first process's control API base URL (``http://127.0.0.1:<control port>``; its routes start with
        ``/fleet``); with several processes, BMC ``i``'s is :meth:`control_url_of`."""
        return f"http://{LOOPBACK}:{self.control_port}"

    def control_url_of(self, i: int) -> str:
        """The control API of the process that serves BMC ``i``."""
        return f"http://{LOOPBACK}:{self.shard_of(i).control_port}"

    def _control(self, method: str, path: str, body: Any = None, timeout: float = 10, *, bmc: int = 0) -> Any:
        url = f"{self.control_url_of(bmc)}{path}"
        response = self.http.request(method, url, json=body, timeout=timeout)
        if response.status_code >= 400:
            raise SandboxControlError(method, path, response.status_code, response.text)
        return response.json()

    def _each(self, method: str, path: str, timeout: float = 10) -> list[Any]:
        """The answer of every process to the same fleet-wide call, in shard order."""
        return [self._control(method, path, timeout=timeout, bmc=shard.first) for shard in self.shards]

    def fleet(self) -> list[dict[str, Any]]:
        """Every BMC's port, URL, shape, vendor, model, serial and components (``index``: its fleet index)."""
        found: list[dict[str, Any]] = []
        for shard, answer in zip(self.shards, self._each("GET", "/fleet"), strict=True):
            found.extend({**bmc, "index": shard.first + int(bmc["index"])} for bmc in answer["bmcs"])
        return found

    def set_faults(self, i: int, faults: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``faults`` into BMC ``i``'s faults (a false or null value removes one); returns the active ones."""
        return dict(self._control("PUT", f"/fleet/faults/{self.port(i)}", dict(faults), bmc=i))

    def clear_faults(self, i: int) -> None:
        """Remove every fault of BMC ``i``."""
        self._control("DELETE", f"/fleet/faults/{self.port(i)}", bmc=i)

    def faults(self, i: int) -> dict[str, Any]:
        """BMC ``i``'s active faults."""
        return dict(self._control("GET", f"/fleet/faults/{self.port(i)}", bmc=i))

    def state(self, i: int) -> dict[str, Any]:
        """BMC ``i``'s state: online, power, boot, versions (by FirmwareInventory Id), sessions, tasks, faults."""
        return dict(self._control("GET", f"/fleet/state/{self.port(i)}", bmc=i))

    def audit(self, i: int) -> dict[str, Any]:
        """BMC ``i``'s audit: installs, power, bmc_resets, overlapping_installs."""
        return dict(self._control("GET", f"/fleet/audit/{self.port(i)}", bmc=i))

    def fleet_audit(self) -> dict[str, Any]:
        """Every BMC's audit (in index order, from every process) and the fleet's total ``overlapping_installs``."""
        answers = self._each("GET", "/fleet/audit", timeout=120)  # thousands of BMCs take a while
        return {
            "overlapping_installs": sum(int(answer["overlapping_installs"]) for answer in answers),
            "bmcs": [audit for answer in answers for audit in answer["bmcs"]],
        }

    def reset_audit(self, i: int | None = None) -> None:
        """Forget the audit records of BMC ``i`` (every BMC when ``None``)."""
        if i is None:
            self._each("POST", "/fleet/reset-audit")
        else:
            self._control("POST", f"/fleet/reset-audit/{self.port(i)}", bmc=i)

    def restore(self, i: int | None = None) -> None:
        """Put BMC ``i`` (every BMC when ``None``) back to its configured initial state."""
        if i is None:
            self._each("POST", "/fleet/restore")
        else:
            self._control("POST", f"/fleet/restore/{self.port(i)}", bmc=i)

    @property
    def pdu_url(self) -> str:
        """The PDU's base URL (``https://127.0.0.1:<pdu port>``); the fleet must have been made with ``pdu=True``."""
        if not self.pdu:
            raise ValueError("this fleet has no PDU: BmcFleet(..., pdu=True)")
        return f"https://{LOOPBACK}:{self.pdu_port}"

    def pdu_outlet(self, outlet: str) -> str:
        """The Redfish URI of the PDU's outlet ``outlet`` (``A1``...: DMTF's rack-PDU mockup, RackPDUs/1)."""
        return f"{self.pdu_url}/redfish/v1/PowerEquipment/RackPDUs/1/Outlets/{outlet}"

    def pdu_state(self) -> dict[str, Any]:
        """The PDU's outlets (URI → PowerState), PowerCycles per outlet, and its PowerControl log."""
        return dict(self._control("GET", "/fleet/pdu"))

    def version(self, i: int, slug: str, nth: int = 0) -> str:
        """The installed version of the ``nth`` component of type ``slug`` on BMC ``i``."""
        components = [c for c in self.state(i)["components"] if c["slug"] == slug]
        return str(components[nth]["version"])

    def component_id(self, i: int, slug: str, nth: int = 0) -> str:
        """The FirmwareInventory Id of the ``nth`` component of type ``slug`` on BMC ``i``."""
        components = [c for c in self.state(i)["components"] if c["slug"] == slug]
        return str(components[nth]["id"])

    def wait_for(
        self, i: int, check: Callable[[dict[str, Any]], bool], timeout: float, what: str = "state"
    ) -> dict[str, Any]:
        """Poll BMC ``i``'s state until ``check(state)``; return that state. Raises ``TimeoutError``."""
        found: dict[str, Any] = {}

        def probe() -> bool:
            found.update(self.state(i))
            return check(found)

        wait_until(probe, timeout, f"BMC {i} {what}", interval=0.05)
        return found

    def wait_online(self, i: int, timeout: float = 30.0) -> None:
        """Wait until BMC ``i`` answers on its own port again."""
        wait_until(
            lambda: requests.get(self.redfish(i), timeout=1, verify=self.verify).status_code == 200,
            timeout,
            f"BMC {i} back online",
        )
