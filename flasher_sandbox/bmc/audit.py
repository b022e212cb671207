"""The audit log of one simulated BMC: every install, power change and BMC reset, with times.

``overlapping_installs`` counts install requests that arrived while another install on the same BMC was still
in progress (New, Running or Pending), whether the BMC accepted them or refused them: tests use it to prove
that no BMC ever had two installs at once. ``failed_logins`` counts credentials the BMC refused (a session login
or a Basic request with a wrong user or password, or any while ``refuse_credentials`` is on): real BMCs lock an
account after a few, so a client must not try twice. Times are ISO 8601 UTC strings with microseconds (they sort).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    """The current UTC time as ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class InstallRecord:
    """One install request. ``outcome`` is ``None`` while it is in progress, then one of ``success``,
    ``version-unchanged``, ``critical``, ``exception``, ``interrupted``, ``killed``, ``rejected`` (the image or
    request was refused at submission) or ``refused`` (another install was in progress)."""

    method: str
    component: str | None
    targets: list[str]
    from_version: str | None
    to_version: str | None
    image: str | None
    apply_time: str
    task: str | None = None
    start: str = field(default_factory=now_iso)
    end: str | None = None
    outcome: str | None = None
    installed_version: str | None = None
    message: str = ""
    overlapped: bool = False


@dataclass
class PowerRecord:
    """One host power request: ``action`` is the Redfish ResetType; ``end`` is when the state was reached."""

    action: str
    from_state: str
    to_state: str
    start: str = field(default_factory=now_iso)
    end: str | None = None
    outcome: str | None = None


@dataclass
class ResetRecord:
    """One BMC reboot (``Manager.Reset`` or a BMC firmware update): unreachable from ``start`` to ``end``."""

    reason: str
    start: str = field(default_factory=now_iso)
    end: str | None = None


class AuditLog:
    """Records of one BMC. Used from the event loop only."""

    def __init__(self) -> None:
        self.installs: list[InstallRecord] = []
        self.power: list[PowerRecord] = []
        self.resets: list[ResetRecord] = []
        self.overlapping_installs = 0
        self.max_concurrent_installs = 0
        self.failed_logins = 0
        #: Vendor behaviours seen (:mod:`flasher_sandbox.bmc.vendors`): ``{"event": ..., "time": ..., ...}``.
        self.vendor: list[dict[str, Any]] = []
        self._in_progress: set[int] = set()

    @property
    def installs_in_progress(self) -> int:
        """How many installs are New, Running or Pending right now."""
        return len(self._in_progress)

    def begin_install(self, record: InstallRecord) -> InstallRecord:
        """Record an accepted install; it counts as an overlap when another is in progress."""
        self._note_overlap(record)
        self._in_progress.add(id(record))
        self.max_concurrent_installs = max(self.max_concurrent_installs, len(self._in_progress))
        self.installs.append(record)
        return record

    def refuse_install(self, record: InstallRecord, outcome: str, message: str) -> InstallRecord:
        """Record an install request refused at submission (``rejected`` or ``refused``)."""
        self._note_overlap(record)
        record.end = record.start
        record.outcome = outcome
        record.message = message
        self.installs.append(record)
        return record

    def finish_install(self, record: InstallRecord, outcome: str, message: str, installed_version: str | None) -> None:
        """Close an install with its outcome and the version the component reports afterwards."""
        self._in_progress.discard(id(record))
        record.end = now_iso()
        record.outcome = outcome
        record.message = message
        record.installed_version = installed_version

    def begin_power(self, action: str, from_state: str, to_state: str) -> PowerRecord:
        """Record a host power request."""
        record = PowerRecord(action, from_state, to_state)
        self.power.append(record)
        return record

    def login_refused(self) -> None:
        """Count one set of credentials the BMC refused."""
        self.failed_logins += 1

    def note(self, event: str, **details: Any) -> None:
        """Record a vendor behaviour (a claim of the UpdateService, a task deleted by its monitor...)."""
        self.vendor.append({"event": event, "time": now_iso(), **details})

    def begin_reset(self, reason: str) -> ResetRecord:
        """Record a BMC reboot starting now."""
        record = ResetRecord(reason)
        self.resets.append(record)
        return record

    def clear(self, *, forget_in_progress: bool = False) -> None:
        """Forget all records and counters. Installs in progress stay in progress (they still count for
        overlaps) unless ``forget_in_progress``."""
        if forget_in_progress:
            self._in_progress.clear()
        self.installs = []
        self.power = []
        self.resets = []
        self.overlapping_installs = 0
        self.failed_logins = 0
        self.vendor = []
        self.max_concurrent_installs = len(self._in_progress)

    def as_json(self) -> dict[str, Any]:
        """The whole log, as ``GET /sim/audit`` returns it."""
        return {
            "installs": [asdict(r) for r in self.installs],
            "power": [asdict(r) for r in self.power],
            "bmc_resets": [asdict(r) for r in self.resets],
            "overlapping_installs": self.overlapping_installs,
            "max_concurrent_installs": self.max_concurrent_installs,
            "installs_in_progress": self.installs_in_progress,
            "failed_logins": self.failed_logins,
            "vendor": list(self.vendor),
        }

    def _note_overlap(self, record: InstallRecord) -> None:
        if self._in_progress:
            record.overlapped = True
            self.overlapping_installs += 1
