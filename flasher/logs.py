"""Logging through loguru: human-readable lines by default, JSON lines with ``--log-format json``.

The standard ``logging`` records of libraries reach the same sink (from WARNING up, everything at ``DEBUG``): at
their own level (apscheduler...), or at DEBUG for :data:`QUIET_LIBRARIES` (sushy), whose lines only detail what
flasher reports itself.

Every line carries ``server_id`` and ``task_id`` (``-`` outside task work): wrap task work in
:func:`task_context`. Every line is passed through :func:`flasher.redact.scrub`, so a registered secret never
reaches a log sink even if code puts one into a message by mistake.

JSON lines have the keys ``time`` (RFC 3339, UTC), ``level``, ``message``, ``logger``, ``server_id``,
``task_id``, plus any other ``extra`` bound with ``logger.bind(...)``, and ``exception`` when there is one.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal, TextIO

from loguru import logger

from flasher import redact

if TYPE_CHECKING:
    from loguru import Record

LogFormat = Literal["text", "json"]
_TEXT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{name}</cyan> [server={extra[server_id]} task={extra[task_id]}] {extra[_message]}\n{exception}"
)


def _patch(record: Record) -> None:
    extra = record["extra"]
    extra.setdefault("server_id", "-")
    extra.setdefault("task_id", "-")
    extra["_message"] = redact.scrub(record["message"])


def _json_format(record: Record) -> str:
    payload: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record["level"].name,
        "message": redact.scrub(record["message"]),
        "logger": record["name"],
    }
    for key, value in record["extra"].items():
        if not key.startswith("_"):
            payload[key] = value if isinstance(value, int | float | bool | None) else redact.scrub(str(value))
    if record["exception"] is not None:
        exc = record["exception"]
        payload["exception"] = redact.scrub(f"{exc.type.__name__ if exc.type else 'Exception'}: {exc.value}")
    record["extra"]["_json"] = json.dumps(payload, separators=(",", ":"))
    return "{extra[_json]}\n"


#: Libraries whose own log lines are details of what flasher reports itself, so they go to loguru at DEBUG
#: whatever their level: sushy warns "Falling back to Basic authentication" and logs an ERROR for a refused
#: login that flasher already turns into one error line.
QUIET_LIBRARIES: tuple[str, ...] = ("sushy",)


class _InterceptHandler(logging.Handler):
    """Sends records of libraries that use the standard ``logging`` module (sushy, apscheduler) to loguru, at
    their own level, or at DEBUG for :data:`QUIET_LIBRARIES`."""

    def emit(self, record: logging.LogRecord) -> None:
        level: str | int
        if any(record.name == name or record.name.startswith(name + ".") for name in QUIET_LIBRARIES):
            level = "DEBUG"
        else:
            try:
                level = logger.level(record.levelname).name
            except ValueError:
                level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).log(level, record.getMessage())


class _CurrentStderr:
    """A file-like sink that writes to whatever ``sys.stderr`` is at the moment of writing (not at set-up), so a
    replaced or closed stream (a test runner's capture) never breaks logging."""

    def write(self, text: str) -> None:
        sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def setup_logging(level: str = "INFO", fmt: LogFormat = "text", sink: TextIO | None = None) -> None:
    """Replace loguru's handlers with one sink (stderr by default) at ``level`` in format ``fmt``.

    Raises ``ValueError`` for an unknown level or format.
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format {fmt!r}: use 'text' or 'json'")
    level = level.upper()
    logger.level(level)  # raises ValueError for an unknown level
    target: Any = sink if sink is not None else _CurrentStderr()
    logger.remove()
    logger.configure(patcher=_patch)
    if fmt == "json":
        logger.add(target, level=level, format=_json_format, backtrace=False, diagnose=False)
    else:
        colorize = hasattr(target, "isatty") and target.isatty()
        logger.add(target, level=level, format=_TEXT, colorize=colorize, backtrace=False, diagnose=False)
    debug = logger.level(level).no <= logger.level("DEBUG").no
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.DEBUG if debug else logging.WARNING, force=True)


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(key: str, message: str, *args: object) -> bool:
    """Log ``message`` (loguru ``{}`` placeholders filled from ``args``) at WARNING the first time ``key`` is
    seen in this process; later calls with the same ``key`` log nothing. Returns whether it logged.

    For standing conditions an operator must know about but need not read on every request or session, such as
    TLS verification turned off (``inventory.verify_tls``, ``store.verify_tls``, ``bmc.insecure``)."""
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
    logger.opt(depth=1).warning(message, *args)
    return True


def forget_warnings() -> None:
    """Forget which :func:`warn_once` keys were seen (for tests)."""
    with _warned_lock:
        _warned.clear()


@contextmanager
def task_context(server_id: str, task_id: str | None) -> Iterator[None]:
    """Within this block every log line carries ``server_id`` and ``task_id``."""
    with logger.contextualize(server_id=server_id, task_id=task_id or "-"):
        yield
