"""Starting and stopping the sandbox's servers as child processes: free loopback ports, readiness waits, how
to run the package's console scripts, and clean shutdown. The starters of :mod:`flasher_sandbox.servers` stand
on it; so do ``flasher-sandbox up``/``serve``, the tests and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

#: Every sandbox server binds to this address.
LOOPBACK: Final = "127.0.0.1"
#: Environment variables with this prefix configure flasher (``FLASHER_INVENTORY__URL``...) and the sandbox
#: (``FLASHER_SANDBOX_TOKEN``): the sandbox's starters do not pass the caller's on to their children, so a shell
#: that sourced another sandbox's env file cannot point a replica at the wrong inventory.
FLASHER_ENV_PREFIX: Final = "FLASHER_"

#: Console scripts of this distribution and the module each runs when the script is not installed.
_SCRIPT_MODULES: Final = {"flasher": "flasher.cli", "flasher-sandbox": "flasher_sandbox.cli"}


def console_script(name: str) -> list[str]:
    """The argv prefix that runs console script ``name`` (``flasher`` or ``flasher-sandbox``): the script next to
    this interpreter (a venv's ``bin``), else the one on ``PATH``, else ``python -m <module>``.

    Raises ``KeyError`` for a name that is not one of this distribution's scripts.
    """
    module = _SCRIPT_MODULES[name]
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    if found:
        return [found]
    return [sys.executable, "-m", module]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (chosen by the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: Where the kernel picks a port for ``bind(("", 0))`` when it cannot say (Linux's default
#: ``net.ipv4.ip_local_port_range``).
DEFAULT_EPHEMERAL_PORTS: Final = (32768, 60999)
#: The lowest port :func:`free_port_range` hands out: clear of the registered services below it.
LOWEST_FIXED_PORT: Final = 10000


def ephemeral_ports(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The ``(first, last)`` ports the kernel picks from for ``bind((host, 0))`` and outgoing connections, read
    from ``path`` (Linux); :data:`DEFAULT_EPHEMERAL_PORTS` where it cannot be read."""
    try:
        first, last = (int(word) for word in path.read_text().split())
    except (OSError, ValueError):
        return DEFAULT_EPHEMERAL_PORTS
    return first, last


def free_port_range(count: int, host: str = "127.0.0.1", attempts: int = 200) -> int:
    """The first of ``count`` consecutive TCP ports on ``host`` that nothing is bound to right now, outside the
    kernel's ephemeral range (:func:`ephemeral_ports`).

    Outside, because a simulated BMC closes its port while it reboots: a port from the ephemeral range could then
    be handed by the kernel to any other server binding port 0 (seen in CI: a replica's file server took a
    rebooting BMC's port, and the BMC's client got plain HTTP where TLS was due). The range below the ephemeral
    one is tried first, then the one above it.

    Where neither holds ``count`` ports (an ephemeral range that covers nearly every port, as some containers set
    it), the ports are chosen from all of ``LOWEST_FIXED_PORT``..65535, as before this rule. Raises
    ``RuntimeError`` when ``attempts`` random tries in each range all hit a used port.
    """
    first, last = ephemeral_ports()
    ranges = [(lo, hi) for lo, hi in ((LOWEST_FIXED_PORT, first - 1), (last + 1, 65535)) if hi - lo + 1 >= count]
    ranges = ranges or [(LOWEST_FIXED_PORT, 65535)]
    for lo, hi in ranges:
        for _ in range(attempts):
            base = random.randint(lo, hi - count + 1)
            sockets: list[socket.socket] = []
            try:
                for port in range(base, base + count):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                    sockets.append(sock)
                    sock.bind((host, port))
                return base
            except OSError:
                continue
            finally:
                for sock in sockets:
                    sock.close()
    shown = ", ".join(f"{lo}-{hi}" for lo, hi in ranges)
    raise RuntimeError(f"no {count} consecutive free ports on {host} in {shown}")


class _ExitedError(Exception):
    """The process being waited for is gone (raised by a readiness check to end the wait at once)."""


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Call ``check`` until it returns true; an exception from it counts as "not yet" (but
    :class:`_ExitedError` ends the wait).

    Raises ``TimeoutError`` naming ``what`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except _ExitedError:
            raise
        except Exception:  # noqa: S110 - not ready yet: try again
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(interval)


def port_open(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ManagedProcess:
    """A child process in its own session and process group, stopped (SIGTERM, then SIGKILL) by :meth:`stop`.

    Its output goes to ``log_path`` (appended), so a failure can show it (:meth:`tail`). It inherits this
    process's environment except the variables whose names start with one of ``drop_env``, then ``env`` on top.
    Being a session of its own, it does not get the terminal's Ctrl-C: whoever started it stops it.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        *,
        drop_env: Sequence[str] = (),
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        inherited = {k: v for k, v in os.environ.items() if not any(k.startswith(p) for p in drop_env)}
        self.env = {**inherited, **(env or {})}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        """Start the process; returns at once (wait for readiness yourself)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd, start_new_session=True
            )
        return self

    @property
    def pid(self) -> int:
        """The process id (``RuntimeError`` before :meth:`start`)."""
        if self.proc is None:
            raise RuntimeError("not started")
        return self.proc.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
        """Call ``check`` (an exception counts as "not yet") until it returns true while the process runs.

        Raises ``RuntimeError`` naming ``what``, with the end of the process's log, when the process exits first
        or ``timeout`` seconds pass.
        """

        def ready() -> bool:
            if not self.alive():
                raise _ExitedError
            return check()

        try:
            wait_until(ready, timeout, what, interval=interval)
        except _ExitedError:
            raise RuntimeError(f"{what} exited with status {self.returncode()}; its log:\n{self.tail()}") from None
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}; its log:\n{self.tail()}") from None

    def returncode(self) -> int | None:
        """The exit status once the process ended (negative: killed by that signal), else ``None``."""
        return None if self.proc is None else self.proc.poll()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the whole process group (SIGKILL by default: a crash); waits for a SIGKILL to land."""
        if self.proc is not None and self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            if sig == signal.SIGKILL:
                self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. Returns the exit status (``None`` if never
        started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the process's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
