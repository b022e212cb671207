"""A simulated BMC's host as a real program (``host_command``): started when the host powers on, stopped when it
powers off, restarted when it is reset. A QEMU VM makes a host that really boots (netboot tests).

The program gets the BMC's environment plus ``FLASHER_SANDBOX_BOOT`` (``pxe`` when this boot follows a ``Pxe``
boot override, else ``disk``) and ``FLASHER_SANDBOX_SERIAL`` (the server's serial). It is stopped with SIGTERM,
then SIGKILL after :data:`STOP_GRACE` seconds; its output goes wherever it sends it (stdin is closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Final

from loguru import logger

#: Seconds a host program gets to exit after SIGTERM before it is killed.
STOP_GRACE: Final = 5.0


class HostProcess:
    """The program behind one simulated host (``argv``; no shell)."""

    def __init__(self, argv: list[str], serial: str) -> None:
        if not argv:
            raise ValueError("host_command: give the program and its arguments")
        self.argv = list(argv)
        self.serial = serial
        self.starts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        """True while the program runs."""
        return self._process is not None and self._process.returncode is None

    async def start(self, boot: str) -> None:
        """(Re)start the program for a boot from ``boot`` (``pxe`` or ``disk``)."""
        async with self._lock:
            await self._stop()
            env = {**os.environ, "FLASHER_SANDBOX_BOOT": boot, "FLASHER_SANDBOX_SERIAL": self.serial}
            self._process = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL, env=env, start_new_session=True
            )
            self.starts += 1
            logger.info("host {} started ({} boot): pid {}", self.serial, boot, self._process.pid)

    async def stop(self) -> None:
        """Stop the program (SIGTERM, then SIGKILL after :data:`STOP_GRACE` s); nothing when it is not running."""
        async with self._lock:
            await self._stop()

    async def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        logger.info("host {} stopped (exit {})", self.serial, process.returncode)
