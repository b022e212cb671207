"""The docs describe ``flasher-sandbox serve`` as it is: every option and every variable of its env file."""

from __future__ import annotations

from pathlib import Path

import typer.main

from flasher_sandbox.cli import app
from flasher_sandbox.serve.session import ENV_VARIABLES

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _docs() -> str:
    return "\n".join(path.read_text() for path in sorted(DOCS.glob("*.md")))


def test_every_option_of_serve_is_in_the_docs() -> None:
    group = typer.main.get_command(app)
    serve = group.commands["serve"]  # type: ignore[attr-defined]
    options = [name for param in serve.params for name in param.opts if name.startswith("--") and name != "--help"]
    text = _docs()

    missing = [option for option in options if f"`{option}" not in text]
    assert options and not missing, f"the docs do not describe these options of flasher-sandbox serve: {missing}"


def test_every_env_file_variable_is_in_the_docs() -> None:
    text = _docs()
    missing = [name for name in ENV_VARIABLES if f"`{name}`" not in text]
    assert not missing, f"the docs do not describe these env file variables: {missing}"
