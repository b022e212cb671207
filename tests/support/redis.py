"""A real ``redis-server`` (Debian's package) on a free loopback port, for tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from tests.support.processes import ManagedProcess, free_port, wait_until


class RedisServer:
    """One ``redis-server`` process without persistence; :meth:`restart` keeps the port (data is lost)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run scripts/bootstrap (Debian package redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        argv = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
        ]
        self.process = ManagedProcess(argv, self.workdir / f"redis-{self.port}.log").start()
        wait_until(lambda: redis.Redis.from_url(self.url, socket_timeout=1).ping(), 15, f"redis-server on {self.port}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port; everything in it is gone (no persistence)."""
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)
