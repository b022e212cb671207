"""``flasher bmc``: ask one BMC directly over Redfish, without the inventory.

``inventory ADDRESS`` prints the firmware components and versions the BMC reports and the install methods its
UpdateService offers; ``power ADDRESS`` prints the host's power state. Both work against any Redfish BMC. The
password comes from ``--password-file``, else ``bmc.password`` / ``bmc.password_file`` in the settings, else
``FLASHER_BMC__PASSWORD``. A BMC that lists several Systems needs ``--system`` (the server's serial number or
UUID) to pick the server's; without a match both refuse. A BMC error prints one line and exits 1; bad arguments
exit 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from flasher import redact
from flasher.bmc import BMC, BMCError, BMCNotSupportedError, SystemIdentity, UpdateCapabilities
from flasher.commands.common import fail, print_json, print_table, state
from flasher.config import BMCSettings

app = typer.Typer(
    name="bmc",
    help="Ask one BMC directly over Redfish: installed firmware and install methods, host power state.",
    no_args_is_help=True,
)

AddressArg = Annotated[
    str, typer.Argument(help="BMC address: host, host:port or URL (scheme from bmc.scheme when absent).")
]
UsernameOption = Annotated[str | None, typer.Option("--username", "-u", help="BMC user (default: bmc.username).")]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="File holding the BMC password (default: bmc.password / bmc.password_file, or FLASHER_BMC__PASSWORD).",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
InsecureOption = Annotated[
    bool, typer.Option("--insecure", "-k", help="Do not verify the BMC's TLS certificate (logged as a warning).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SystemOption = Annotated[
    str | None,
    typer.Option(
        "--system",
        help="The server's serial number or UUID: picks its System when the BMC lists several (else refused).",
        show_default=False,
    ),
]


def system_identity(value: str | None) -> SystemIdentity | None:
    """The :class:`SystemIdentity` for ``--system`` (a serial number or a UUID: either may match)."""
    if value is None:
        return None
    if not value.strip():
        fail("--system: empty (give the server's serial number or UUID)", code=2)
    return SystemIdentity(serial=value.strip(), uuid=value.strip())


def _settings(ctx: typer.Context, insecure: bool) -> BMCSettings:
    settings = state(ctx).settings().bmc
    return settings.model_copy(update={"insecure": True}) if insecure else settings


def _password(settings: BMCSettings, password_file: Path | None) -> SecretStr:
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            fail(f"--password-file {str(password_file)!r}: {exc.strerror}", code=2)
        redact.register(text)
        return SecretStr(text)
    if settings.password is not None:
        return settings.password
    fail(
        "no BMC password: give --password-file, set bmc.password or bmc.password_file, or FLASHER_BMC__PASSWORD",
        code=2,
    )


@contextmanager
def _bmc(
    ctx: typer.Context,
    address: str,
    username: str | None,
    password_file: Path | None,
    insecure: bool,
    *,
    system: str | None = None,
) -> Iterator[BMC]:
    """A connected :class:`BMC`; BMC errors print one line and exit 1, a bad address exits 2."""
    settings = _settings(ctx, insecure)
    password = _password(settings, password_file)
    identity = system_identity(system)
    try:
        with BMC(address, username or settings.username, password, settings=settings, system=identity) as bmc:
            yield bmc
    except ValueError as exc:  # includes BMCAddressError
        fail(str(exc), code=2)
    except BMCError as exc:
        fail(str(exc))


def _methods_line(caps: UpdateCapabilities | None, reason: str | None) -> str:
    if caps is None:
        return f"install methods: none ({reason})"
    parts = []
    if caps.simple_update:
        parts.append(f"SimpleUpdate [{', '.join(caps.transfer_protocols) or 'protocols not listed'}]")
    if caps.multipart_push_uri:
        parts.append(f"multipart push {caps.multipart_push_uri}")
    if caps.http_push_uri:
        parts.append(f"HttpPushUri {caps.http_push_uri}")
    line = "install methods: " + ("; ".join(parts) or "none")
    if caps.apply_times:
        line += f"; apply times: {', '.join(caps.apply_times)}"
    return line


@app.command("inventory")
def inventory(
    ctx: typer.Context,
    address: AddressArg,
    *,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    insecure: InsecureOption = False,
    as_json: JsonOption = False,
    system: SystemOption = None,
) -> None:
    """Firmware components and versions the BMC reports, and the install methods its UpdateService offers."""
    with _bmc(ctx, address, username, password_file, insecure, system=system) as bmc:
        components = bmc.firmware_inventory()
        caps: UpdateCapabilities | None
        reason: str | None = None
        try:
            caps = bmc.update_capabilities()
        except BMCNotSupportedError as exc:
            caps, reason = None, str(exc)
    if as_json:
        print_json(
            {
                "address": bmc.base_url,
                "components": [asdict(c) for c in components],
                "update_service": {**asdict(caps), "methods": list(caps.methods)} if caps else None,
                "update_service_error": reason,
            }
        )
        return
    rows = [[c.slug, c.name, c.version, "yes" if c.updateable else "no", c.model, c.id] for c in components]
    print_table(f"Firmware on {bmc.base_url}", ["type", "name", "version", "updateable", "model", "id"], rows)
    typer.echo(_methods_line(caps, reason))


@app.command("power")
def power(
    ctx: typer.Context,
    address: AddressArg,
    *,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    insecure: InsecureOption = False,
    as_json: JsonOption = False,
    system: SystemOption = None,
) -> None:
    """The host's power state as the BMC reports it (On, Off, PoweringOn, PoweringOff...)."""
    with _bmc(ctx, address, username, password_file, insecure, system=system) as bmc:
        power_state = bmc.power_state()
    if as_json:
        print_json({"address": bmc.base_url, "power_state": power_state})
    else:
        typer.echo(power_state)
