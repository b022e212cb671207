"""Faults a simulated BMC can be told to show, set at start (fleet config) or at run time (``PUT /sim/faults``).

Two kinds, each optionally scoped to one component type slug (``{"task_exception": {"component": "bios"}}``):

* install faults change what the next install does: ``task_exception``, ``task_hang``, ``completed_critical``,
  ``version_unchanged``, ``image_rejected``, ``task_purged``. They are one-shot: consumed by the next install
  whose targets include the scoped component (any install when unscoped). ``"count": N`` makes one apply to N
  installs; ``"sticky": true`` makes it apply until cleared.
* request faults change how the Redfish API answers: ``http_5xx_burst`` (the next ``count`` Redfish requests answer
  ``status``, default 500), ``slow_seconds`` (every Redfish answer is delayed), ``refuse_credentials`` (every
  authenticated request and every login answers 401), ``unreachable`` (the BMC does not answer: every Redfish
  connection is dropped, as a BMC that hangs or lost its network; ``/sim`` still answers). ``slow_seconds``,
  ``refuse_credentials`` and ``unreachable`` stay until cleared; a burst ends after ``count`` answers unless sticky.
  When scoped to a component, a request fault acts only while an install of that component is in progress.

Value forms for a fault: ``true`` (unscoped, defaults), ``false``/``null`` (remove it), a number (the count of
``http_5xx_burst`` or the seconds of ``slow_seconds``), or an object with ``component``, ``sticky``, ``count``,
``seconds`` and ``status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from flasher.constants import INSTALL_ORDER

#: Faults consumed by installs.
INSTALL_FAULTS: Final[frozenset[str]] = frozenset(
    {"task_exception", "task_hang", "completed_critical", "version_unchanged", "image_rejected", "task_purged"}
)
#: Faults applied to Redfish requests.
REQUEST_FAULTS: Final[frozenset[str]] = frozenset(
    {"http_5xx_burst", "slow_seconds", "refuse_credentials", "unreachable"}
)
#: Every fault name.
FAULT_NAMES: Final[frozenset[str]] = INSTALL_FAULTS | REQUEST_FAULTS
#: HTTP statuses an ``http_5xx_burst`` may answer.
BURST_STATUSES: Final[frozenset[int]] = frozenset({500, 502, 503, 504})
_OPTION_KEYS: Final = frozenset({"component", "sticky", "count", "seconds", "status"})


@dataclass
class Fault:
    """One active fault. ``count`` is the number of uses left (installs, or answers of a 5xx burst)."""

    name: str
    component: str | None = None
    sticky: bool = False
    count: int = 1
    seconds: float = 0.0
    status: int = 500

    def applies_to(self, slugs: Iterable[str]) -> bool:
        """True when unscoped or scoped to one of ``slugs``."""
        return self.component is None or self.component in set(slugs)

    def as_json(self) -> dict[str, Any]:
        """The fault as ``GET /sim/faults`` shows it."""
        out: dict[str, Any] = {"component": self.component, "sticky": self.sticky}
        if self.name in INSTALL_FAULTS or self.name == "http_5xx_burst":
            out["count"] = self.count
        if self.name == "slow_seconds":
            out["seconds"] = self.seconds
        if self.name == "http_5xx_burst":
            out["status"] = self.status
        return out


def parse_fault(name: str, value: Any) -> Fault | None:
    """Parse one fault value (see the module docstring); ``None`` means "remove it".

    Raises ``ValueError`` naming the fault and the bad value.
    """
    if name not in FAULT_NAMES:
        raise ValueError(f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULT_NAMES))}")
    if value is None or value is False:
        return None
    fault = Fault(name)
    if name in ("slow_seconds", "refuse_credentials", "unreachable"):
        fault.sticky = True
    if name == "slow_seconds":
        fault.seconds = 1.0
    if name == "http_5xx_burst":
        fault.count = 5
    if value is True:
        return _checked(fault)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if name == "http_5xx_burst":
            fault.count = _integer(name, "count", value)
        elif name == "slow_seconds":
            fault.seconds = float(value)
        else:
            raise ValueError(f"fault {name!r} takes true, false or an object, got {value!r}")
        return _checked(fault)
    if not isinstance(value, Mapping):
        raise ValueError(f"fault {name!r} takes true, false, a number or an object, got {value!r}")
    unknown = set(value) - _OPTION_KEYS
    if unknown:
        raise ValueError(f"fault {name!r}: unknown option(s) {', '.join(sorted(unknown))}")
    component = value.get("component")
    if component is not None and component not in INSTALL_ORDER:
        raise ValueError(f"fault {name!r}: component {component!r} is not one of {', '.join(INSTALL_ORDER)}")
    fault.component = component
    if "sticky" in value:
        if not isinstance(value["sticky"], bool):
            raise ValueError(f"fault {name!r}: sticky must be true or false, got {value['sticky']!r}")
        fault.sticky = value["sticky"]
    if "count" in value:
        fault.count = _integer(name, "count", value["count"])
    if "seconds" in value:
        seconds = value["seconds"]
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ValueError(f"fault {name!r}: seconds must be a number, got {seconds!r}")
        fault.seconds = float(seconds)
    if "status" in value:
        fault.status = _integer(name, "status", value["status"])
    return _checked(fault)


def _integer(name: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValueError(f"fault {name!r}: {key} must be an integer, got {value!r}")
    return int(value)


def _checked(fault: Fault) -> Fault:
    if fault.count < 1:
        raise ValueError(f"fault {fault.name!r}: count must be at least 1, got {fault.count}")
    if fault.name == "slow_seconds" and not 0 < fault.seconds <= 300:
        raise ValueError(f"fault 'slow_seconds': seconds must be in (0, 300], got {fault.seconds}")
    if fault.status not in BURST_STATUSES:
        raise ValueError(f"fault {fault.name!r}: status must be one of {sorted(BURST_STATUSES)}, got {fault.status}")
    return fault


def validate_faults(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a whole fault mapping (as in the fleet config); return it unchanged. Raises ``ValueError``."""
    for name, value in spec.items():
        parse_fault(name, value)
    return dict(spec)


@dataclass(frozen=True)
class RequestEffects:
    """What the request faults do to one Redfish request."""

    delay: float = 0.0
    status: int | None = None
    refuse_credentials: bool = False
    unreachable: bool = False


class FaultBook:
    """The faults active on one BMC. Not thread-safe: used from the event loop only."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}

    def update(self, spec: Mapping[str, Any]) -> None:
        """Merge ``spec``: each named fault is set (or removed when its value is false or null).

        Validates everything first, so a bad spec changes nothing. Raises ``ValueError``.
        """
        parsed = {name: parse_fault(name, value) for name, value in spec.items()}
        for name, fault in parsed.items():
            if fault is None:
                self._faults.pop(name, None)
            else:
                self._faults[name] = fault

    def clear(self) -> None:
        """Remove every fault."""
        self._faults.clear()

    def as_json(self) -> dict[str, Any]:
        """The active faults, by name."""
        return {name: fault.as_json() for name, fault in sorted(self._faults.items())}

    def take_install_faults(self, slugs: Iterable[str]) -> frozenset[str]:
        """The install faults that apply to an install of components ``slugs``; one-shot ones are used up."""
        slugs = list(slugs)
        taken: set[str] = set()
        for name in INSTALL_FAULTS:
            fault = self._faults.get(name)
            if fault is None or not fault.applies_to(slugs):
                continue
            taken.add(name)
            self._use(fault)
        return frozenset(taken)

    def request_effects(self, installing: Iterable[str]) -> RequestEffects:
        """The request faults for one Redfish request while components ``installing`` are being installed.

        A 5xx burst answer is counted (and the burst ends when its count is used up, unless sticky).
        """
        installing = list(installing)
        delay = 0.0
        status: int | None = None
        refuse = False
        slow = self._faults.get("slow_seconds")
        if slow is not None and slow.applies_to(installing):
            delay = slow.seconds
        refuse_fault = self._faults.get("refuse_credentials")
        if refuse_fault is not None and refuse_fault.applies_to(installing):
            refuse = True
        unreachable = self._faults.get("unreachable")
        if unreachable is not None and unreachable.applies_to(installing):
            return RequestEffects(unreachable=True)
        burst = self._faults.get("http_5xx_burst")
        if burst is not None and burst.applies_to(installing):
            status = burst.status
            self._use(burst)
        return RequestEffects(delay=delay, status=status, refuse_credentials=refuse)

    def _use(self, fault: Fault) -> None:
        if fault.sticky:
            return
        fault.count -= 1
        if fault.count <= 0:
            self._faults.pop(fault.name, None)
