"""Install tasks: their state and how they read as a Redfish Task (and, Dell-like, as a Dell job).

A task goes New → Running → Completed (or Exception); an install applied ``OnReset`` waits in Pending (Dell job
state ``Scheduled``) until the host boots. Messages use the DMTF ``Update`` registry; the Dell job carries
iDRAC-style job states and messages (``Task successfully scheduled.``, ``Job completed successfully.``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Final

from flasher_sandbox.bmc.audit import InstallRecord, now_iso
from flasher_sandbox.bmc.components import Component
from flasher_sandbox.bmc.shapes import REDFISH, Shape
from flasher_sandbox.images import ImageHeader

#: Task states after which a task never changes again.
TERMINAL_STATES: Final = frozenset({"Completed", "Exception", "Killed", "Cancelled", "Interrupted"})
#: Registry prefix of the install messages.
UPDATE_REGISTRY: Final = "Update.1.0"


def redfish_message(message_id: str, text: str, args: list[str], severity: str = "OK") -> dict[str, Any]:
    """A Redfish ``Message`` object."""
    return {
        "@odata.type": "#Message.v1_1_1.Message",
        "MessageId": message_id,
        "Message": text,
        "MessageArgs": args,
        "Severity": severity,
        "MessageSeverity": severity,
        "Resolution": "None." if severity == "OK" else "Check the image and the target, then retry the update.",
    }


@dataclass
class InstallTask:
    """One install. ``components`` may stay empty until a pulled image's header picks the targets."""

    id: str
    uri: str
    monitor_uri: str | None
    name: str
    method: str
    apply_time: str
    record: InstallRecord
    image_name: str
    image_uri: str | None = None
    image: bytes | None = None
    components: list[Component] = field(default_factory=list)
    header: ImageHeader | None = None
    faults: frozenset[str] = frozenset()
    state: str = "New"
    status: str = "OK"
    percent: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    start_time: str = field(default_factory=now_iso)
    running_since: str | None = None
    end_time: str | None = None
    job_state: str = "New"
    job_message: str = "Job created."
    job_message_id: str = "IDRAC.2.8.JCP000"
    purged: bool = False
    host_booted: asyncio.Event = field(default_factory=asyncio.Event)
    runner: asyncio.Task[None] | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def slugs(self) -> list[str]:
        return [c.slug for c in self.components]

    @property
    def target_names(self) -> str:
        return ", ".join(c.id for c in self.components) or "(not yet determined)"

    def note(self, name: str, text: str, severity: str = "OK", *, args: list[str] | None = None) -> None:
        """Append an ``Update`` registry message ``name``."""
        self.messages.append(redfish_message(f"{UPDATE_REGISTRY}.{name}", text, args or [], severity))

    def set_job(self, job_state: str, message_id: str, message: str) -> None:
        """Set the Dell job's state and message."""
        self.job_state, self.job_message_id, self.job_message = job_state, message_id, message

    def end(self, state: str, status: str) -> None:
        """Move to a terminal ``state`` with TaskStatus ``status``."""
        self.state = state
        self.status = status
        self.end_time = now_iso()
        if state == "Completed":
            self.percent = 100

    def target_uri(self, shape: Shape) -> str | None:
        """The URI the install request was sent to (``Payload.TargetUri``), by install method; ``None`` if unknown."""
        return {
            "SimpleUpdate": f"{REDFISH}/UpdateService/Actions/UpdateService.SimpleUpdate",
            "MultipartHttpPush": shape.multipart_path,
            "HttpPush": shape.http_push_path,
        }.get(self.method)

    def as_redfish(self, shape: Shape) -> dict[str, Any]:
        """The Task resource."""
        doc: dict[str, Any] = {
            "@odata.type": "#Task.v1_6_0.Task",
            "@odata.id": self.uri,
            "Id": self.id,
            "Name": self.name,
            "Description": "Firmware update task",
            "TaskState": self.state,
            "PercentComplete": self.percent,
            "StartTime": self.start_time,
            "Messages": list(self.messages),
        }
        if not shape.task_reports_percent:
            del doc["PercentComplete"]
        if self.terminal or shape.has_dell_jobs:
            doc["TaskStatus"] = self.status
        if self.end_time is not None:
            doc["EndTime"] = self.end_time
        if self.monitor_uri is not None:
            doc["TaskMonitor"] = self.monitor_uri
        target = self.target_uri(shape)
        if target is not None:  # Task.v1_3 Payload: the request that started it, as real BMCs report it
            doc["Payload"] = {"TargetUri": target, "HttpOperation": "POST", "HttpHeaders": [], "JsonBody": ""}
        if shape.has_dell_jobs:
            doc["Oem"] = {"Dell": self.as_dell_job(shape)}
        return doc

    def as_dell_job(self, shape: Shape) -> dict[str, Any]:
        """The iDRAC job (``Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/<id>``)."""
        return {
            "@odata.type": "#DellJob.v1_4_0.DellJob",
            "@odata.id": f"{shape.dell_jobs_uri}/{self.id}",
            "Id": self.id,
            "Name": self.name,
            "Description": "Job Instance",
            "JobType": "FirmwareUpdate",
            "JobState": self.job_state,
            "Message": self.job_message,
            "MessageId": self.job_message_id,
            "MessageArgs": [],
            "PercentComplete": self.percent,
            "StartTime": "TIME_NOW",
            "EndTime": "TIME_NA",
            "ActualRunningStartTime": self.running_since,
            "ActualRunningStopTime": self.end_time,
            "CompletionTime": self.end_time,
            "TargetSettingsURI": None,
        }
