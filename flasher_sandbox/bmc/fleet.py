"""A fleet of simulated BMCs on one event loop: BMC ``i`` listens on ``base_port + i``; an optional control
server aggregates them (:mod:`flasher_sandbox.bmc.simapi`)."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
from aiohttp import web
from loguru import logger

from flasher_sandbox.bmc.config import FleetSpec
from flasher_sandbox.bmc.redfish import build_app
from flasher_sandbox.bmc.simapi import control_app
from flasher_sandbox.bmc.simulator import SimulatedBmc, Timings


class Fleet:
    """The BMCs of ``spec`` on ``host``; :meth:`start` binds every port or raises ``OSError`` naming the port."""

    def __init__(self, spec: FleetSpec, *, host: str, base_port: int, control_port: int | None = None) -> None:
        self.spec = spec
        self.host = host
        self.base_port = base_port
        self.control_port = control_port
        self._http: aiohttp.ClientSession | None = None
        timings = Timings(spec.install_seconds, spec.offline_seconds, spec.power_seconds)
        self.bmcs = [
            SimulatedBmc(
                bmc_spec,
                index=index,
                host=host,
                port=base_port + index,
                timings=timings,
                username=spec.username,
                password=spec.password,
                http=self._client,
            )
            for index, bmc_spec in enumerate(spec.bmcs)
        ]
        self._control: web.AppRunner | None = None

    def _client(self) -> aiohttp.ClientSession:
        assert self._http is not None, "the fleet is not started"
        return self._http

    async def start(self) -> None:
        """Bind every BMC's port (and the control port). On failure, stop what started and re-raise."""
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        try:
            for bmc in self.bmcs:
                try:
                    await bmc.start(build_app(bmc))
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot listen on {self.host}:{bmc.port}: {exc.strerror}") from exc
            if self.control_port is not None:
                self._control = web.AppRunner(control_app(self.bmcs), access_log=None, handle_signals=False)
                await self._control.setup()
                try:
                    await web.TCPSite(self._control, self.host, self.control_port, reuse_address=True).start()
                except OSError as exc:
                    raise OSError(
                        exc.errno, f"cannot listen on {self.host}:{self.control_port}: {exc.strerror}"
                    ) from exc
        except BaseException:
            await self.stop()
            raise
        logger.info(
            "{} simulated BMCs on {}:{}-{}{}",
            len(self.bmcs),
            self.host,
            self.base_port,
            self.base_port + len(self.bmcs) - 1,
            f", control on {self.control_port}" if self.control_port is not None else "",
        )

    async def stop(self) -> None:
        """Stop every BMC, the control server and the download client."""
        await asyncio.gather(*(bmc.stop() for bmc in self.bmcs), return_exceptions=True)
        if self._control is not None:
            await self._control.cleanup()
            self._control = None
        if self._http is not None:
            with contextlib.suppress(Exception):
                await self._http.close()
            self._http = None

    async def run_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then stop."""
        try:
            await stop.wait()
        finally:
            await self.stop()
