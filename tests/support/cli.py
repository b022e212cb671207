"""Running the top-level ``flasher`` CLI in-process (typer's ``CliRunner``) without leaking its log set-up.

``flasher.cli`` replaces loguru's handlers with one on ``sys.stderr``; inside ``CliRunner.invoke`` that is the
runner's captured stream, closed when ``invoke`` returns. Left in place, the handler makes every later log line,
in any later test, fail with a "Logging error in Loguru Handler" traceback printed to whatever ``sys.stderr`` is
then (a later CLI test finds it in its own captured stderr). :func:`invoke` puts one handler on the process's
stderr back afterwards, as loguru starts.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any

import typer
from loguru import logger
from typer.testing import CliRunner, Result


def invoke(app: typer.Typer, args: Sequence[str], *, env: Mapping[str, str] | None = None, **kwargs: Any) -> Result:
    """``CliRunner().invoke(app, args, env=env, **kwargs)``, then loguru's handlers reset to one on stderr."""
    try:
        return CliRunner().invoke(app, list(args), env=env, **kwargs)
    finally:
        logger.remove()
        logger.add(sys.stderr)
