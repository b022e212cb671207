"""A fleet of simulated BMCs on one event loop: BMC ``i`` listens on ``base_port + i``, over HTTPS with a
certificate of its own (signed by the sandbox CA in ``tls_dir``) or plain HTTP, as its spec says; an optional
control server (plain HTTP: it is the simulator's, not a BMC's) aggregates them
(:mod:`flasher_sandbox.bmc.simapi`)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
from aiohttp import web
from loguru import logger

from flasher_sandbox.bmc.config import FleetSpec
from flasher_sandbox.bmc.pdu import SimulatedPdu
from flasher_sandbox.bmc.redfish import build_app
from flasher_sandbox.bmc.simapi import control_app
from flasher_sandbox.bmc.simulator import SimulatedBmc, Timings
from flasher_sandbox.bmc.tls import CA_CERT, issue, load_or_create_ca, server_context


class Fleet:
    """The BMCs of ``spec`` on ``host``; :meth:`start` binds every port or raises ``OSError`` naming the port.

    ``tls_dir`` holds the sandbox CA (``ca.pem``, made on first use) and each HTTPS BMC's key and certificate
    (``bmc-<port>.pem``); it is required when any BMC serves HTTPS. :meth:`start` raises
    :class:`~flasher_sandbox.bmc.tls.TLSSetupError` when it cannot be used.
    """

    def __init__(
        self,
        spec: FleetSpec,
        *,
        host: str,
        base_port: int,
        control_port: int | None = None,
        tls_dir: Path | None = None,
        pdu_port: int | None = None,
    ) -> None:
        self.spec = spec
        self.host = host
        self.base_port = base_port
        self.control_port = control_port
        self.tls_dir = tls_dir
        if tls_dir is None and any(spec.scheme_of(i) == "https" for i in range(len(spec.bmcs))):
            raise ValueError("a fleet with HTTPS BMCs needs a TLS directory (tls_dir) for its CA and certificates")
        self._http: aiohttp.ClientSession | None = None
        timings = Timings(spec.install_seconds, spec.offline_seconds, spec.power_seconds)
        self.bmcs = [
            SimulatedBmc(
                bmc_spec,
                index=index,
                host=host,
                port=base_port + index,
                scheme=spec.scheme_of(index),
                timings=timings,
                username=spec.username,
                password=spec.password,
                http=self._client,
            )
            for index, bmc_spec in enumerate(spec.bmcs)
        ]
        self._control: web.AppRunner | None = None
        #: A Redfish PDU (:mod:`flasher_sandbox.bmc.pdu`) on ``pdu_port``, over HTTPS with the sandbox CA.
        self.pdu = (
            SimulatedPdu(
                host=host,
                port=pdu_port,
                username=spec.username,
                password=spec.password,
                cycle_seconds=spec.power_seconds,
            )
            if pdu_port is not None
            else None
        )

    @property
    def https_count(self) -> int:
        """How many BMCs serve HTTPS."""
        return sum(bmc.scheme == "https" for bmc in self.bmcs)

    @property
    def ca_path(self) -> Path | None:
        """The sandbox CA's certificate (what clients trust), when some BMC serves HTTPS."""
        return self.tls_dir / CA_CERT if self.tls_dir is not None and self.https_count else None

    def _client(self) -> aiohttp.ClientSession:
        assert self._http is not None, "the fleet is not started"
        return self._http

    async def start(self) -> None:
        """Bind every BMC's port (and the control port). On failure, stop what started and re-raise."""
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64))
        try:
            ca = load_or_create_ca(self.tls_dir) if self.tls_dir is not None and self.https_count else None
            for bmc in self.bmcs:
                context = None
                if bmc.scheme == "https":
                    assert ca is not None and self.tls_dir is not None
                    context = server_context(*issue(ca, self.host, bmc.port, bmc.spec.serial, self.tls_dir))
                try:
                    await bmc.start(build_app(bmc), context)
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot listen on {self.host}:{bmc.port}: {exc.strerror}") from exc
            if self.pdu is not None:
                if self.tls_dir is None:
                    raise ValueError("a PDU needs a TLS directory (tls_dir) for its certificate")
                pdu_ca = ca or load_or_create_ca(self.tls_dir)
                try:
                    await self.pdu.start(server_context(*issue(pdu_ca, self.host, self.pdu.port, "PDU", self.tls_dir)))
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot listen on {self.host}:{self.pdu.port}: {exc.strerror}") from exc
            if self.control_port is not None:
                self._control = web.AppRunner(control_app(self.bmcs, self.pdu), access_log=None, handle_signals=False)
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
        if self.pdu is not None:
            await self.pdu.stop()
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
