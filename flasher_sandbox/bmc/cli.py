"""``flasher-sandbox bmc``: run a fleet of simulated Redfish BMCs until interrupted."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from loguru import logger

from flasher_sandbox.bmc.config import FleetSpec, Scheme, default_fleet, load_fleet
from flasher_sandbox.bmc.fleet import Fleet
from flasher_sandbox.bmc.tls import TLSSetupError


def _spec(  # noqa: PLR0917 (the command's options, passed on)
    count: int | None,
    config: Path | None,
    timings: dict[str, float | None],
    username: str | None,
    password: str | None,
    scheme: Scheme | None = None,
) -> FleetSpec:
    overrides: dict[str, Any] = {k: v for k, v in timings.items() if v is not None}
    if scheme is not None:
        overrides["scheme"] = scheme
    if username is not None:
        overrides["username"] = username
    if password is not None:
        overrides["password"] = password
    if config is None:
        return default_fleet(2 if count is None else count, **overrides)
    spec = load_fleet(config)
    if count is not None and count != len(spec.bmcs):
        raise ValueError(f"--count {count} does not match the {len(spec.bmcs)} BMCs in {config}; leave --count out")
    return spec.model_copy(update=overrides) if overrides else spec


def command(  # noqa: PLR0917 (typer options)
    count: Annotated[
        int | None,
        typer.Option("--count", "-n", min=1, help="Number of BMCs (default 2, or as many as --config lists)."),
    ] = None,
    base_port: Annotated[
        int,
        typer.Option(
            "--base-port", "-p", min=1, max=65535, help="Port of the first BMC; BMC i listens on base-port + i."
        ),
    ] = 8443,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    config: Annotated[
        Path | None,
        typer.Option(
            help="Fleet YAML (see docs/sandbox.md): each BMC's vendor, model, credentials, components, "
            "install methods and faults."
        ),
    ] = None,
    install_seconds: Annotated[
        float | None, typer.Option(min=0.01, help="Seconds from an install's acceptance to Completed (default 10).")
    ] = None,
    offline_seconds: Annotated[
        float | None, typer.Option(min=0, help="Seconds a BMC is unreachable while it reboots (default 8).")
    ] = None,
    power_seconds: Annotated[
        float | None, typer.Option(min=0, help="Seconds a power transition takes (default 2).")
    ] = None,
    username: Annotated[str | None, typer.Option(help="BMC user for BMCs without their own (default root).")] = None,
    password: Annotated[
        str | None, typer.Option(help="BMC password for BMCs without their own (default calvin).")
    ] = None,
    control_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Also serve the fleet control API (/fleet...) on this port.")
    ] = None,
    scheme: Annotated[
        Scheme | None,
        typer.Option(
            help="https (each BMC with its own certificate, signed by the sandbox CA) or http, for BMCs whose "
            "config sets none (default https, or the config's scheme)."
        ),
    ] = None,
    tls_dir: Annotated[
        Path,
        typer.Option(
            help="Where the sandbox CA (ca.pem, made on first use and kept) and each BMC's key and certificate go; "
            "clients trust ca.pem."
        ),
    ] = Path("bmc-tls"),
    pdu_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Also serve a Redfish PDU (DMTF's rack-PDU mockup) on this port (HTTPS)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run COUNT simulated Redfish BMCs on HOST, ports BASE-PORT.., until interrupted (Ctrl-C or SIGTERM).

    Without --config, even BMCs are Dell-like (iDRAC ids, JID_ tasks, SimpleUpdate + HttpPushUri + multipart) and
    odd ones Supermicro-like (/Systems/1, multipart only). They serve HTTPS (certificates signed by the CA in
    TLS-DIR) unless --scheme http. Each BMC also serves /sim/faults, /sim/state, /sim/audit and /sim/reset-audit;
    see docs/sandbox.md.
    """
    logger.remove()
    logger.add(sys.stderr, level=log_level.upper(), format="{time:HH:mm:ss.SSS} {level: <7} {message}")
    timings = {"install_seconds": install_seconds, "offline_seconds": offline_seconds, "power_seconds": power_seconds}
    try:
        spec = _spec(count, config, timings, username, password, scheme)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    last = base_port + len(spec.bmcs) - 1
    if last > 65535:
        typer.echo(f"error: {len(spec.bmcs)} BMCs from port {base_port} go past 65535", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(_serve(spec, host, base_port, control_port, tls_dir, pdu_port))
    except TLSSetupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        typer.echo(f"error: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from exc


async def _serve(  # noqa: PLR0917
    spec: FleetSpec, host: str, base_port: int, control_port: int | None, tls_dir: Path, pdu_port: int | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    fleet = Fleet(
        spec, host=host, base_port=base_port, control_port=control_port, tls_dir=tls_dir.resolve(), pdu_port=pdu_port
    )
    await fleet.start()
    control = f", control API on http://{host}:{control_port}/fleet" if control_port is not None else ""
    schemes = sorted({bmc.scheme for bmc in fleet.bmcs})
    ca = f"; CA certificate {fleet.ca_path}" if fleet.ca_path is not None else ""
    typer.echo(
        f"{len(spec.bmcs)} simulated BMCs on {'|'.join(schemes)}://{host}:{base_port}..{base_port + len(spec.bmcs) - 1}"
        f"{control}{ca}" + (f"; a Redfish PDU on https://{host}:{pdu_port}" if pdu_port is not None else "")
    )
    await fleet.run_until(stop)
