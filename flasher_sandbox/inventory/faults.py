"""Deterministic fault injection for tests: every Nth matching API request answers 5xx.

A rule (``PUT /_sandbox/faults``) is a JSON object:

- ``every`` (int >= 1) or ``error_rate`` (0 < rate <= 1, read as ``every = round(1 / rate)``): the Nth, 2Nth,
  ... matching request fails. Counting starts when the rule is set, so a test knows which calls fail.
- ``status`` (500..599, default 503), or ``null`` with ``delay`` for a slow answer without an error.
- ``methods`` (list, default all), ``path_regex`` (``re.search`` on the path, default every ``/api/v1`` path).
- ``phase``: ``before`` (default: the request is not handled) or ``after`` (the request is handled, its
  changes are kept, and the client gets the error instead of the answer: a lost response).
- ``times`` (optional): stop after that many faults. ``delay`` (seconds, optional): wait before answering.

Health (``/healthz``) and the sandbox controls (``/_sandbox``) are never faulted.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Literal

Phase = Literal["before", "after"]
_NEVER_FAULTED = ("/healthz", "/_sandbox")
_DEFAULT_SCOPE = re.compile(r"^/api/v1(/|$)")


class FaultSpecError(ValueError):
    """A fault rule that cannot be used; the message names the field and the value."""


@dataclass(frozen=True)
class FaultRule:
    """A validated rule (see the module docstring)."""

    every: int
    status: int | None = 503
    methods: frozenset[str] | None = None
    path_regex: str | None = None
    phase: Phase = "before"
    times: int | None = None
    delay: float = 0.0

    @classmethod
    def from_spec(cls, spec: Any) -> FaultRule:
        """Validate a JSON rule; raises :class:`FaultSpecError` naming the bad field."""
        if not isinstance(spec, dict):
            raise FaultSpecError(f"fault rule: expected a JSON object, got {spec!r}")
        unknown = set(spec) - {"every", "error_rate", "status", "methods", "path_regex", "phase", "times", "delay"}
        if unknown:
            raise FaultSpecError(f"fault rule: unknown field(s) {sorted(unknown)}")
        return cls(
            every=_every(spec),
            status=_status(spec.get("status", 503)),
            methods=_methods(spec.get("methods")),
            path_regex=_regex(spec.get("path_regex")),
            phase=_phase(spec.get("phase", "before")),
            times=_positive_int("times", spec.get("times"), optional=True),
            delay=_delay(spec.get("delay", 0), spec.get("status", 503)),
        )

    def as_dict(self) -> dict[str, Any]:
        """The rule as JSON."""
        return {
            "every": self.every,
            "status": self.status,
            "methods": sorted(self.methods) if self.methods else None,
            "path_regex": self.path_regex,
            "phase": self.phase,
            "times": self.times,
            "delay": self.delay,
        }


def _positive_int(name: str, value: Any, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FaultSpecError(f"fault rule: {name} must be an integer >= 1, got {value!r}")
    return value


def _every(spec: dict[str, Any]) -> int:
    if "every" in spec:
        every = _positive_int("every", spec["every"])
        assert every is not None
        return every
    rate = spec.get("error_rate")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise FaultSpecError(f"fault rule: give every (integer >= 1) or error_rate (0 < rate <= 1), got {rate!r}")
    return max(1, round(1 / rate))


def _status(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 500 <= value <= 599:
        raise FaultSpecError(f"fault rule: status must be 500..599 or null, got {value!r}")
    return value


def _methods(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(isinstance(m, str) and m for m in value):
        raise FaultSpecError(f"fault rule: methods must be a non-empty list of HTTP methods, got {value!r}")
    return frozenset(m.upper() for m in value)


def _regex(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FaultSpecError(f"fault rule: path_regex must be a string, got {value!r}")
    try:
        re.compile(value)
    except re.error as exc:
        raise FaultSpecError(f"fault rule: path_regex {value!r} does not compile: {exc}") from None
    return value


def _phase(value: Any) -> Phase:
    if value == "before":
        return "before"
    if value == "after":
        return "after"
    raise FaultSpecError(f"fault rule: phase must be 'before' or 'after', got {value!r}")


def _delay(value: Any, status: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 300:
        raise FaultSpecError(f"fault rule: delay must be 0..300 seconds, got {value!r}")
    if status is None and value == 0:
        raise FaultSpecError("fault rule: status null (no error) needs a delay > 0")
    return float(value)


@dataclass(frozen=True)
class Fault:
    """What to do to one request: wait ``delay`` s, then answer ``status`` (``None``: answer normally)."""

    status: int | None
    phase: Phase
    delay: float
    ordinal: int


class FaultInjector:
    """The current rule and its counters; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rule: FaultRule | None = None
        self._pattern: re.Pattern[str] | None = None
        self._matched = 0
        self._injected = 0

    def configure(self, rule: FaultRule) -> None:
        """Replace the rule and reset the counters."""
        with self._lock:
            self._rule = rule
            self._pattern = re.compile(rule.path_regex) if rule.path_regex else _DEFAULT_SCOPE
            self._matched = self._injected = 0

    def clear(self) -> None:
        """Remove the rule (counters reset)."""
        with self._lock:
            self._rule = self._pattern = None
            self._matched = self._injected = 0

    def decide(self, method: str, path: str) -> Fault | None:
        """The fault for this request, or ``None``. Counts the request when it matches the rule."""
        if path.startswith(_NEVER_FAULTED):
            return None
        with self._lock:
            rule, pattern = self._rule, self._pattern
            if rule is None or pattern is None:
                return None
            if (rule.methods and method.upper() not in rule.methods) or not pattern.search(path):
                return None
            self._matched += 1
            if self._matched % rule.every or (rule.times is not None and self._injected >= rule.times):
                return None
            self._injected += 1
            return Fault(rule.status, rule.phase, rule.delay, self._matched)

    def snapshot(self) -> dict[str, Any]:
        """``{"rule": ... or null, "matched": n, "injected": n}``."""
        with self._lock:
            return {
                "rule": self._rule.as_dict() if self._rule else None,
                "matched": self._matched,
                "injected": self._injected,
            }
