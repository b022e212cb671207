"""What every sub-command shares: the CLI state (settings, output format) and error reporting."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from flasher import redact
from flasher.config import Settings, SettingsError, load_settings

console = Console()
err_console = Console(stderr=True)


@dataclass
class CLIState:
    """Global options of the ``flasher`` command; settings are loaded on first use."""

    config_path: Path | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        """The loaded settings; exits with status 2 and one line per bad field when they are invalid."""
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except SettingsError as exc:
                err_console.print("[bold red]invalid settings[/]", highlight=False)
                for line in exc.lines:
                    err_console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
                raise typer.Exit(2) from None
        return self._settings


def state(ctx: typer.Context) -> CLIState:
    """The :class:`CLIState` the root command stored in the click context."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CLIState):  # a sub-app invoked on its own (tests)
        obj = CLIState()
        ctx.find_root().obj = obj
    return obj


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` (secrets scrubbed) to stderr as one line, never wrapped at the terminal's width (a wrapped
    error breaks ``grep``), and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(redact.scrub(message))}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout (pydantic models through ``model_dump(mode='json')``)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json", by_alias=True)
    elif isinstance(value, list):
        value = [v.model_dump(mode="json", by_alias=True) if hasattr(v, "model_dump") else v for v in value]
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def print_table(title: str | None, columns: list[str], rows: list[list[Any]]) -> None:
    """Print rows as a table on stdout; ``None`` cells print as ``-``. Cells are plain text (never rich markup:
    vendor strings such as ``[r6515]`` print as they are)."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text("-" if cell is None else str(cell)) for cell in row))
    console.print(table)
