"""The ``flasher`` command: global options, and the sub-command groups of :mod:`flasher.commands`.

Global options come before the sub-command: ``flasher --config c.yaml --log-format json run``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from flasher import __version__
from flasher.commands.common import CLIState
from flasher.logs import setup_logging

app = typer.Typer(
    name="flasher",
    help="Install firmware and run server-control tasks on bare-metal servers through their BMCs (Redfish).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Sub-commands: (module under flasher.commands, name). A module defines ``command`` (one command) or ``app``
#: (a group).
_GROUPS: tuple[tuple[str, str], ...] = (
    ("inventory", "inventory"),
    ("plan", "plan"),
    ("queue", "queue"),
    ("bmc", "bmc"),
    ("install", "install"),
    ("task", "task"),
    ("run", "run"),
    ("onboard", "onboard"),
    ("netboot", "netboot"),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flasher {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="YAML settings file (default config/flasher.yaml when it exists). FLASHER_* variables override it.",
            envvar="FLASHER_CONFIG",
            dir_okay=False,
        ),
    ] = None,
    log_level: Annotated[
        str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.", envvar="FLASHER_LOG_LEVEL")
    ] = "INFO",
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format", help="text (for people) or json (one object per line).", envvar="FLASHER_LOG_FORMAT"
        ),
    ] = "text",
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    try:
        setup_logging(log_level, log_format)  # type: ignore[arg-type]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    ctx.obj = CLIState(config_path=config, log_level=log_level, log_format=log_format)


def _mount() -> None:
    for module_name, name in _GROUPS:
        module = importlib.import_module(f"flasher.commands.{module_name}")
        if hasattr(module, "command"):  # a single command: flasher plan, flasher install, flasher run
            app.command(name=name)(module.command)
        else:  # a group: flasher inventory servers, flasher queue ls, ...
            app.add_typer(module.app, name=name)


_mount()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
