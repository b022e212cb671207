"""``flasher onboard --bmc ADDRESS [--facility F] [--name N]``: put a server the inventory does not know into it.

Logs in to the BMC, creates the server, stores the BMC's address and credentials, and collects its hardware into
the inventory as alloy writes it (:mod:`flasher.onboard.create`). ``--queue`` writes an inventory task for the
service instead of collecting here. The password comes from ``--password-file``, else ``FLASHER_ONBOARD_PASSWORD``,
else ``bmc.password`` / ``bmc.password_file`` in the settings; it is never printed. Exit status: 0 onboarded, 1 the
BMC or the inventory failed or the server is already known (nothing created), 2 bad arguments.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from flasher import redact
from flasher.bmc import BMC, BMCError
from flasher.commands.common import fail, print_json, print_table, state
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError
from flasher.onboard.create import OnboardError, onboard

#: Environment variable with the BMC password (read only when no --password-file is given).
PASSWORD_ENV = "FLASHER_ONBOARD_PASSWORD"  # noqa: S105 (the variable's name, not a password)


def _password(ctx: typer.Context, password_file: Path | None) -> str:
    if password_file is not None:
        try:
            text = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            fail(f"--password-file {str(password_file)!r}: {exc.strerror}", code=2)
        if not text:
            fail(f"--password-file {str(password_file)!r} is empty", code=2)
        redact.register(text)
        return text
    if os.environ.get(PASSWORD_ENV):
        text = os.environ[PASSWORD_ENV]
        redact.register(text)
        return text
    settings = state(ctx).settings().bmc
    if settings.password is not None and settings.password.get_secret_value():
        return settings.password.get_secret_value()
    fail(f"no BMC password: give --password-file, set {PASSWORD_ENV}, or bmc.password / bmc.password_file", code=2)


def command(
    ctx: typer.Context,
    *,
    bmc: Annotated[str, typer.Option("--bmc", help="The BMC's address: host, host:port or URL.")],
    facility: Annotated[
        str | None, typer.Option("--facility", help="Facility code (default: inventory.facility).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="The server's name (default: the System's HostName, else its serial).")
    ] = None,
    username: Annotated[str | None, typer.Option("--username", "-u", help="BMC user (default: bmc.username).")] = None,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            help=f"File holding the BMC password (else {PASSWORD_ENV}, else bmc.password).",
            dir_okay=False,
        ),
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="Write an inventory task for the service instead of collecting here.")
    ] = False,
    insecure: Annotated[
        bool, typer.Option("--insecure", "-k", help="Do not verify the BMC's TLS certificate (logged as a warning).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Onboard a server from its BMC: create it, store the BMC's address and credentials, collect its hardware."""
    settings = state(ctx).settings()
    password = _password(ctx, password_file)
    bmc_settings = settings.bmc.model_copy(update={"insecure": True}) if insecure else settings.bmc
    user = username or bmc_settings.username

    def open_bmc(address: str, login: str, secret: str) -> BMC:
        return BMC(address, login, secret, settings=bmc_settings)

    client = InventoryClient(settings.inventory)
    try:
        result = onboard(
            client,
            open_bmc,
            bmc,
            user,
            password,
            facility=facility or settings.inventory.facility,
            name=name,
            queue=queue,
        )
    except ValueError as exc:  # a bad address (BMCAddressError) or argument
        fail(str(exc), code=2)
    except (OnboardError, BMCError, InventoryError) as exc:
        fail(str(exc))
    if as_json:
        print_json(
            {
                "uuid": result.uuid,
                "name": result.name,
                "vendor_attributes": result.collection.vendor_attributes() if result.collection else None,
                "components": [
                    {
                        "type": c.slug,
                        "vendor": c.vendor,
                        "model": c.model,
                        "serial": c.serial,
                        "slot": c.slot,
                        "firmware": c.firmware,
                        "macs": c.macs,
                    }
                    for c in (result.collection.components if result.collection else [])
                ],
                "messages": result.messages,
            }
        )
        return
    typer.echo(f"server {result.uuid} ({result.name})")
    if result.collection is not None:
        rows = [
            [c.slug, c.vendor, c.model, c.serial, c.firmware, " ".join(c.macs)] for c in result.collection.components
        ]
        print_table(None, ["type", "vendor", "model", "serial", "firmware", "MACs"], rows)
    for line in result.messages:
        typer.echo(line)
