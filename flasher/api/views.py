"""Reading task attributes for ``flasher api``: flasher's own task records and conditionorc's condition records.

Everything here is a pure function of an attribute's ``data`` as the inventory holds it (the source of truth), so
every API replica answers alike. Content that does not parse is shown as it is, never raised.

The ``request`` key (:data:`REQUEST_KEY`) is what ``flasher api`` adds to an attribute it writes: how the task was
asked for (``via``: ``conditionorc``, ``roller`` or ``api``), when (``at``, RFC 3339 with microseconds, which
also makes two equal requests two tasks), and what was given (conditionorc's ``condition`` kind and
``parameters``; roller's ``task_name`` and ``tc_worker_id``; the ``client``). flasher keeps unknown keys, so it
survives admission and every status write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from flasher.task.events import rollout_of
from flasher.task.model import TaskKind, TaskStatus, is_new
from flasher.task.request import request_task_id, status_of

#: The attribute key holding how ``flasher api`` was asked for the task.
REQUEST_KEY: Final = "request"

#: conditionorc's condition states, from flasher's statuses.
CONDITION_STATES: Final[Mapping[str, str]] = {
    "requested": "pending",
    TaskStatus.QUEUED.value: "pending",
    TaskStatus.ACTIVE.value: "active",
    TaskStatus.SUCCESS.value: "succeeded",
    TaskStatus.FAILED.value: "failed",
    TaskStatus.CANCELLED.value: "failed",
}
#: conditionorc's condition kinds, by flasher's task kind.
CONDITION_KINDS: Final[Mapping[TaskKind, str]] = {
    TaskKind.SERVER_CONTROL: "serverControl",
    TaskKind.INSTALL: "firmwareInstall",
}
#: The version conditionorc writes into its condition records.
CONDITION_VERSION: Final = "1.1"
#: Go's zero time, which conditionorc answers as ``updatedAt`` of a condition nobody has touched yet.
ZERO_TIME: Final = "0001-01-01T00:00:00Z"


def now_text() -> str:
    """The current time as RFC 3339 UTC with microseconds (``2026-11-20T23:55:46.123456Z``)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def request_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """The attribute's ``request`` object (``{}`` when absent or not an object)."""
    value = data.get(REQUEST_KEY)
    return dict(value) if isinstance(value, Mapping) else {}


def messages_of(data: Mapping[str, Any]) -> list[str]:
    """The attribute's message lines (strings only)."""
    value = data.get("messages")
    return [m for m in value if isinstance(m, str)] if isinstance(value, list) else []


def strip_time(line: str) -> str:
    """A message line without its leading RFC 3339 timestamp: ``<time> [bios] text`` → ``[bios] text``."""
    head, sep, rest = line.partition(" ")
    return rest if sep and head[:1].isdigit() and "T" in head else line


def last_message(data: Mapping[str, Any]) -> str | None:
    """The newest message without its timestamp, else the error, else ``None``."""
    messages = messages_of(data)
    if messages:
        return strip_time(messages[-1])
    return _text(data.get("error"))


def task_id_of(server_id: str, kind: TaskKind, data: Mapping[str, Any]) -> str:
    """The task's ``taskID``, or for a request not admitted yet the id admission will give it."""
    task_id = _text(data.get("taskID"))
    if task_id is not None and not is_new(str(data.get("status", ""))):
        return task_id
    return request_task_id(server_id, kind, dict(data))


def created_at(data: Mapping[str, Any]) -> str | None:
    """When the task was asked for: ``request.at``, else ``createdAt``, else ``updatedAt``."""
    return _text(request_of(data).get("at")) or _text(data.get("createdAt")) or _text(data.get("updatedAt"))


def component_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An install task's components as ``{"component", "version", "status", "installed", "message"}`` (in the
    attribute's order; ``[]`` without ``Firmware``)."""
    firmware = data.get("Firmware")
    rows: list[dict[str, Any]] = []
    if isinstance(firmware, Mapping):
        items = list(firmware.items())
    elif isinstance(firmware, list):
        items = [(str(e.get("component")), e) for e in firmware if isinstance(e, Mapping)]
    else:
        items = []
    for slug, spec in items:
        if not isinstance(spec, Mapping):
            continue
        rows.append(
            {
                "component": slug,
                "version": _text(spec.get("version")),
                "status": _text(spec.get("status")) or "pending",
                "installed": _text(spec.get("installedVersion")),
                "message": _text(spec.get("message")),
            }
        )
    return rows


def what_of(kind: TaskKind, data: Mapping[str, Any]) -> str:
    """What the task asks for in a few words: ``set_power_state on``, ``firmware set dell-r6515``."""
    if kind is TaskKind.SERVER_CONTROL:
        parts = [_text(data.get("action")) or "?", _text(data.get("action_parameter")) or ""]
        return " ".join(p for p in parts if p)
    if kind is not TaskKind.INSTALL:
        return f"{kind.value.replace('_', ' ')} task"
    rows = component_rows(data)
    if _text(data.get("firmwareSet")):
        base = f"firmware set {data['firmwareSet']}"
    elif rows:
        base = ", ".join(f"{r['component']} {r['version']}" for r in rows)
    else:
        base = "firmware set of the server's vendor and model"
    return base + (" (dry run)" if data.get("dryRun") is True else "")


def task_record(
    server_id: str, kind: TaskKind, data: Mapping[str, Any], facts: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """flasher's record of one task: server facts, kind, status, ids, times, the last message, the attribute."""
    facts = facts or {}
    return {
        "server": server_id,
        "name": facts.get("name") or None,
        "facility": facts.get("facility") or None,
        "vendor": facts.get("vendor") or None,
        "model": facts.get("model") or None,
        "kind": kind.value,
        "status": status_of(data),
        "taskID": task_id_of(server_id, kind, data),
        "what": what_of(kind, data),
        "priority": data.get("priority"),
        "requester": _text(data.get("requester")),
        "worker": _text(data.get("worker")),
        "attempts": data.get("attempts"),
        "cancel": data.get("cancel") is True,
        "rollout": rollout_of(data),
        "createdAt": created_at(data),
        "updatedAt": _text(data.get("updatedAt")),
        "completedAt": _text(data.get("completedAt")),
        "error": _text(data.get("error")),
        "message": last_message(data),
        "components": component_rows(data),
        "messages": messages_of(data),
        "attribute": dict(data),
    }


def condition_state(data: Mapping[str, Any]) -> str:
    """conditionorc's state of the task: pending (new, queued), active, succeeded, failed (failed, cancelled)."""
    return CONDITION_STATES.get(status_of(data), "failed")


def condition_parameters(server_id: str, kind: TaskKind, data: Mapping[str, Any]) -> dict[str, Any]:
    """The condition's ``parameters``: as the client gave them when it came through conditionorc's endpoint, else
    built from the attribute."""
    request = request_of(data)
    given = request.get("parameters")
    if isinstance(given, Mapping):
        return dict(given)
    if kind is TaskKind.SERVER_CONTROL:
        parameters: dict[str, Any] = {"asset_id": server_id, "action": data.get("action")}
        if "action_parameter" in data:
            parameters["action_parameter"] = data.get("action_parameter")
        for key in ("set_next_boot_device_persistent", "set_next_boot_device_efi"):
            if key in data:
                parameters[key] = data[key]
        return parameters
    install: dict[str, Any] = {"asset_id": server_id}
    if _text(data.get("firmwareSet")):
        install["firmware_set_id"] = data["firmwareSet"]
    rows = component_rows(data)
    if rows:
        install["firmwares"] = [{"component": r["component"], "version": r["version"]} for r in rows]
    install["force_install"] = data.get("force") is True
    install["dry_run"] = data.get("dryRun") is True
    return install


def condition_record(server_id: str, kind: TaskKind, data: Mapping[str, Any], *, fresh: bool = False) -> dict[str, Any]:
    """conditionorc's condition record of the task (``fresh``: as answered to the POST that created it, with
    conditionorc's zero ``updatedAt`` and no ``status``)."""
    request = request_of(data)
    record: dict[str, Any] = {
        "version": CONDITION_VERSION,
        "client": _text(request.get("client")) or "",
        "id": task_id_of(server_id, kind, data),
        "kind": CONDITION_KINDS[kind],
        "parameters": condition_parameters(server_id, kind, data),
        "state": condition_state(data),
    }
    message = None if fresh else last_message(data)
    if message is not None:
        record["status"] = {"msg": message}
    record["updatedAt"] = ZERO_TIME if fresh else (_text(data.get("updatedAt")) or ZERO_TIME)
    record["createdAt"] = created_at(data) or ZERO_TIME
    return record
