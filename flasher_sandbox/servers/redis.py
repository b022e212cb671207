"""A real ``redis-server`` (Debian's package ``redis-server``) on a free loopback port, without persistence."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from flasher_sandbox.procs import FLASHER_ENV_PREFIX, LOOPBACK, ManagedProcess, free_port

#: Every hash slot of a Redis Cluster (0..16383), given to the one node of :class:`RedisServer` with ``cluster``.
_LAST_SLOT = 16383


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:<port>`` with no RDB or AOF file: a restart loses the data.

    ``workdir`` is its ``--dir`` (and where its log goes unless ``log_path`` says otherwise). With ``cluster``,
    the server runs in cluster mode as a one-node Redis Cluster that owns every slot (the cluster bus on a port
    of its own): clients and server then enforce the Cluster rule that every key a command or script touches
    hashes to one slot. Raises ``RuntimeError`` when ``redis-server`` is not installed.
    """

    def __init__(self, workdir: Path, *, log_path: Path | None = None, cluster: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/bootstrap (Debian package redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.cluster = cluster
        self.port = free_port()
        self.log_path = log_path or workdir / f"redis-{self.port}.log"
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def argv(self) -> list[str]:
        """The ``redis-server`` command line: loopback only, protected mode, no persistence, warnings only."""
        argv = [self.binary, "--bind", LOOPBACK, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.workdir), "--protected-mode", "yes", "--loglevel", "warning"]
        if self.cluster:
            # The bus port is port + 10000 by default, which may be taken or past 65535: choose one.
            argv += ["--cluster-enabled", "yes", "--cluster-port", str(free_port())]
            argv += ["--cluster-config-file", str(self._nodes_file)]
        return argv

    @property
    def _nodes_file(self) -> Path:
        return self.workdir / f"nodes-{self.port}.conf"

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start the process and wait until it answers PING (and, in cluster mode, owns every slot).

        Raises ``RuntimeError`` with the end of its log when it exits or is not ready within ``timeout`` s.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.cluster:
            self._nodes_file.unlink(missing_ok=True)  # a fresh node, whose slots are given below
        self.process = ManagedProcess(self.argv(), self.log_path, drop_env=(FLASHER_ENV_PREFIX,)).start()
        node = redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=2)
        self.process.wait_ready(lambda: bool(node.ping()), timeout, f"redis-server on port {self.port}")
        if self.cluster:
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, _LAST_SLOT)  # type: ignore[no-untyped-call]
            self.process.wait_ready(
                lambda: node.cluster("info")["cluster_state"] == "ok", timeout, f"redis cluster on port {self.port}"
            )
        node.close()
        return self

    def stop(self) -> int | None:
        """Stop the process (SIGTERM, then SIGKILL); returns its exit status (``None`` when not running)."""
        if self.process is None:
            return None
        status = self.process.stop()
        self.process = None
        return status

    def restart(self) -> None:
        """Stop and start again on the same port; everything in it is gone (no persistence)."""
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        """A client of this server (the caller closes it)."""
        return redis.Redis.from_url(self.url)
