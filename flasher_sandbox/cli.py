"""The ``flasher-sandbox`` command: ``inventory`` (the inventory server), ``bmc`` (simulated BMCs), ``up``
(the whole demo: Redis, inventory, BMCs and flasher replicas, one scripted scenario), ``serve`` (the same stack
until stopped, for trying flasher's commands by hand).

Each sub-module defines ``command``, a function mounted here under its name.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="flasher-sandbox",
    help="Run the sandbox: a Serverservice-compatible inventory and simulated Redfish BMCs, on loopback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_COMMANDS: tuple[tuple[str, str], ...] = (
    ("flasher_sandbox.inventory.cli", "inventory"),
    ("flasher_sandbox.bmc.cli", "bmc"),
    ("flasher_sandbox.up", "up"),
    ("flasher_sandbox.serve", "serve"),
)


@app.callback()
def _root() -> None:
    """Sandbox servers for demos and tests. They bind to 127.0.0.1 unless told otherwise."""


def _mount() -> None:
    for module_name, name in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and not exc.name.startswith(("flasher_sandbox", "flasher")):
                raise SystemExit(
                    f"flasher-sandbox needs the sandbox extra ({exc.name} is missing): pip install 'flasher[sandbox]'"
                ) from exc
            raise
        app.command(name=name)(module.command)


_mount()


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
