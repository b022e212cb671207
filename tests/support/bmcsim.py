"""Simulated BMCs for tests: a real ``flasher-sandbox bmc`` process, and a loopback HTTP server for images.

:class:`BmcFleet` starts the fleet on a free range of loopback ports with a control port, waits until every BMC
answers, and talks to the simulator's own API through the control port (so it works while a BMC reboots):
faults, state, audit, restore. :class:`FirmwareServer` serves image files to the BMCs' SimpleUpdate.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from flasher_sandbox.bmc.config import FleetSpec
from flasher_sandbox.images import make_image
from flasher_sandbox.up.stack import ImageServer
from tests.support.processes import ManagedProcess, free_port_range, wait_until

HOST = "127.0.0.1"


def _sandbox_command() -> list[str]:
    script = Path(sys.executable).parent / "flasher-sandbox"
    if script.exists():
        return [str(script)]
    found = shutil.which("flasher-sandbox")
    return [found] if found else [sys.executable, "-m", "flasher_sandbox.cli"]


class BmcFleet:
    """A ``flasher-sandbox bmc`` subprocess serving ``count`` BMCs on ``base_port``.. and a control port.

    BMC ``i`` is Dell-like for even ``i`` and Supermicro-like for odd ``i`` unless ``config`` says otherwise.
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
        password: str = "calvin",
    ) -> None:
        if count is None:
            count = len(config.bmcs) if config is not None else 2
        self.workdir = workdir
        self.count = count
        defaults = (config.install_seconds, config.offline_seconds, config.power_seconds) if config else (1.0, 1.0, 0.5)
        #: The fleet-wide timings (a config's BMC may override its own).
        self.install_seconds = defaults[0] if install_seconds is None else install_seconds
        self.offline_seconds = defaults[1] if offline_seconds is None else offline_seconds
        self.power_seconds = defaults[2] if power_seconds is None else power_seconds
        self.config = config
        self.username = username
        self.password = password
        self.base_port = 0
        self.control_port = 0
        self.process: ManagedProcess | None = None
        self.http = requests.Session()

    # ---- lifecycle ------------------------------------------------------------------------------------------

    def start(self, timeout: float = 60.0) -> BmcFleet:
        """Start the process on free ports (retrying if a port is taken meanwhile) and wait for every BMC."""
        for _attempt in range(3):
            self.base_port = free_port_range(self.count + 1)
            self.control_port = self.base_port + self.count
            argv = [
                *_sandbox_command(),
                "bmc",
                "--count",
                str(self.count),
                "--base-port",
                str(self.base_port),
                "--host",
                HOST,
                "--control-port",
                str(self.control_port),
                "--install-seconds",
                str(self.install_seconds),
                "--offline-seconds",
                str(self.offline_seconds),
                "--power-seconds",
                str(self.power_seconds),
                "--log-level",
                "WARNING",
            ]
            if self.config is not None:
                path = self.workdir / f"fleet-{self.base_port}.yaml"
                self.config.dump_yaml(path)
                argv += ["--config", str(path)]
            else:
                argv += ["--username", self.username, "--password", self.password]
            self.process = ManagedProcess(argv, self.workdir / f"bmcsim-{self.base_port}.log").start()
            if self._wait_bound(timeout):
                self._check_all_answer()
                return self
            alive = self.process.alive()
            log = self.process.tail()
            self.process.stop()
            if alive or "cannot listen" not in log:
                raise RuntimeError(f"simulated BMCs did not start within {timeout:.0f} s:\n{log}")
        raise RuntimeError("simulated BMCs could not bind their ports three times in a row")

    def _wait_bound(self, timeout: float) -> bool:
        """True once the control port answers (the fleet binds it after every BMC's port); False when the
        process exits or ``timeout`` passes first."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.alive() and time.monotonic() < deadline:
            try:
                fleet = self.http.get(f"http://{HOST}:{self.control_port}/fleet", timeout=2).json()
                if fleet["count"] == self.count:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return False

    def _check_all_answer(self) -> None:
        for url in self.urls:
            response = requests.get(f"{url}/redfish/v1", timeout=10)
            if response.status_code != 200:
                raise RuntimeError(f"simulated BMC {url} answers {response.status_code}:\n{self.log()}")

    def stop(self) -> None:
        """Stop the process."""
        if self.process is not None:
            self.process.stop()
            self.process = None
        self.http.close()

    def log(self) -> str:
        """The end of the process's output (for failure messages)."""
        return self.process.tail() if self.process is not None else ""

    # ---- addresses ------------------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """Base URLs of the BMCs (``http://127.0.0.1:PORT``), in index order."""
        return [f"http://{HOST}:{self.base_port + i}" for i in range(self.count)]

    def port(self, i: int) -> int:
        """Port of BMC ``i``."""
        self._check(i)
        return self.base_port + i

    def url(self, i: int) -> str:
        """Base URL of BMC ``i``."""
        return f"http://{HOST}:{self.port(i)}"

    def address(self, i: int) -> str:
        """BMC ``i``'s address as the sandbox inventory stores it: ``http://127.0.0.1:PORT`` (the scheme is part
        of it because the simulator speaks plain HTTP)."""
        return self.url(i)

    def redfish(self, i: int, path: str = "") -> str:
        """``url(i) + /redfish/v1 + path``."""
        return f"{self.url(i)}/redfish/v1{path}"

    def session(self, i: int) -> requests.Session:
        """A ``requests`` session with BMC ``i``'s Basic credentials (the caller closes it)."""
        session = requests.Session()
        session.auth = (self.username, self.password)
        return session

    def _check(self, i: int) -> None:
        if not 0 <= i < self.count:
            raise IndexError(f"BMC index {i} outside 0..{self.count - 1}")

    # ---- the simulator's API (through the control port) -----------------------------------------------------

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, f"http://{HOST}:{self.control_port}{path}", json=body, timeout=10)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text}")
        return response.json()

    def fleet(self) -> list[dict[str, Any]]:
        """Every BMC's port, URL, shape, vendor, model, serial and components."""
        return list(self._control("GET", "/fleet")["bmcs"])

    def set_faults(self, i: int, faults: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``faults`` into BMC ``i``'s faults (a false or null value removes one); returns the active ones."""
        return dict(self._control("PUT", f"/fleet/faults/{self.port(i)}", dict(faults)))

    def clear_faults(self, i: int) -> None:
        """Remove every fault of BMC ``i``."""
        self._control("DELETE", f"/fleet/faults/{self.port(i)}")

    def faults(self, i: int) -> dict[str, Any]:
        """BMC ``i``'s active faults."""
        return dict(self._control("GET", f"/fleet/faults/{self.port(i)}"))

    def state(self, i: int) -> dict[str, Any]:
        """BMC ``i``'s state: online, power, boot, versions (by FirmwareInventory Id), sessions, tasks, faults."""
        return dict(self._control("GET", f"/fleet/state/{self.port(i)}"))

    def audit(self, i: int) -> dict[str, Any]:
        """BMC ``i``'s audit: installs, power, bmc_resets, overlapping_installs."""
        return dict(self._control("GET", f"/fleet/audit/{self.port(i)}"))

    def fleet_audit(self) -> dict[str, Any]:
        """Every BMC's audit and the fleet's total ``overlapping_installs``."""
        return dict(self._control("GET", "/fleet/audit"))

    def reset_audit(self, i: int | None = None) -> None:
        """Forget the audit records of BMC ``i`` (every BMC when ``None``)."""
        self._control("POST", "/fleet/reset-audit" if i is None else f"/fleet/reset-audit/{self.port(i)}")

    def restore(self, i: int | None = None) -> None:
        """Put BMC ``i`` (every BMC when ``None``) back to its configured initial state."""
        self._control("POST", "/fleet/restore" if i is None else f"/fleet/restore/{self.port(i)}")

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
        wait_until(lambda: requests.get(self.redfish(i), timeout=1).status_code == 200, timeout, f"BMC {i} back online")


class FirmwareServer(ImageServer):
    """Image files served over loopback HTTP (the sandbox's image server), for SimpleUpdate."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root)

    def url(self, name: str) -> str:
        """URL of file ``name`` (it need not exist: a missing file answers 404)."""
        return f"{self.base_url}/{name}"

    def put(self, name: str, data: bytes) -> str:
        """Serve ``data`` as ``name``; returns its URL."""
        (self.root / name).write_bytes(data)
        return self.url(name)

    def image(
        self,
        component: str,
        vendor: str,
        version: str,
        models: Sequence[str] = (),
        *,
        size: int = 65536,
        name: str | None = None,
    ) -> str:
        """Serve a sandbox firmware image (:func:`flasher_sandbox.images.make_image`); returns its URL."""
        filename = name or f"{vendor}-{component}-{version}.bin"
        return self.put(filename, make_image(component, vendor, version, list(models), size=size))
