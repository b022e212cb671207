"""Mozilla roller's job API (relops-hardware-controller): named hardware tasks by query parameters.

``POST /api/v1/jobs?task_name=NAME&server=UUID`` (or ``&tc_worker_id=ID``) writes the task named ``NAME``
(:data:`TASK_NAMES`) on the server and answers ``201 {"task_name", "tc_worker_id", "task_id", "server"}`` —
roller's answer plus the server. Parameters are in the query, not the body, as roller has them (so Taskcluster
actions can call it). ``GET /api/v1/jobs/{task_id}`` answers the job with ``status`` (``PENDING``, ``RUNNING``,
``COMPLETE``, ``FAILED``; roller's sequence diagram has RUNNING and COMPLETE) and flasher's own status and message.

A ``tc_worker_id`` is resolved through the inventory: the server whose attribute ``api.worker_ids_namespace``
(default ``sh.hollow.flasher.worker_ids``) holds ``{"tc_worker_id": "<ID>"}`` (one attribute filter query); no
such server is 404, several are 409 naming them.

``task_id`` is the ``taskID`` the task carries once admitted. ``GET`` finds it with an attribute filter on
``taskID``; for the seconds before admission it uses a Redis index written by the POST
(``{prefix}:api:job:<task_id>`` → server and kind, kept a day; rebuilt by nothing, needed by nothing after
admission).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final
from uuid import UUID

import redis
from fastapi import APIRouter, Query
from loguru import logger
from pydantic import BaseModel

from flasher.api.context import APIContext, Context, Reader, Writer
from flasher.api.errors import APIError, bad_input
from flasher.api.views import last_message, request_of, task_id_of
from flasher.api.writes import build_request, write_request
from flasher.inventory.errors import NotFoundError
from flasher.inventory.models import Server
from flasher.task.model import TaskKind
from flasher.task.request import object_of, status_of

router = APIRouter(prefix="/api/v1/jobs", tags=["roller"])

#: Seconds the Redis index of a job id is kept.
JOB_INDEX_SECONDS: Final = 86_400


@dataclass(frozen=True)
class TaskName:
    """What a roller task name does: the task ``kind`` and the attribute keys it writes."""

    kind: TaskKind
    data: Mapping[str, Any]
    help: str


def _control(action: str, parameter: str | None = None, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"action": action, **extra}
    if parameter is not None:
        data["action_parameter"] = parameter
    return data


#: The task names ``POST /api/v1/jobs`` takes. roller's own (``ping``, ``reboot``, ``ipmi_*``) map onto
#: flasher's server-control actions; ``firmware_install`` takes ``&firmware_set=`` (else the set matching the
#: server's vendor and model).
TASK_NAMES: Final[Mapping[str, TaskName]] = {
    "ping": TaskName(TaskKind.SERVER_CONTROL, _control("get_power_state"), "read the power state through the BMC"),
    "power_status": TaskName(TaskKind.SERVER_CONTROL, _control("get_power_state"), "read the power state"),
    "power_on": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "on"), "power on"),
    "ipmi_on": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "on"), "power on"),
    "power_off": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "off"), "power off (hard)"),
    "ipmi_off": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "off"), "power off (hard)"),
    "power_soft": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "soft"), "graceful shutdown"),
    "power_cycle": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "cycle"), "power cycle"),
    "ipmi_cycle": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "cycle"), "power cycle"),
    "reboot": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "cycle"), "power cycle"),
    "power_reset": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "reset"), "reset"),
    "ipmi_reset": TaskName(TaskKind.SERVER_CONTROL, _control("set_power_state", "reset"), "reset"),
    "bmc_reset": TaskName(TaskKind.SERVER_CONTROL, _control("power_cycle_bmc"), "restart the BMC"),
    "pxe_boot": TaskName(TaskKind.SERVER_CONTROL, _control("pxe_boot_persistent"), "PXE, persistent, EFI; power on"),
    "boot_pxe": TaskName(TaskKind.SERVER_CONTROL, _control("set_next_boot_device", "pxe"), "next boot: PXE"),
    "boot_disk": TaskName(TaskKind.SERVER_CONTROL, _control("set_next_boot_device", "disk"), "next boot: disk"),
    "boot_bios": TaskName(TaskKind.SERVER_CONTROL, _control("set_next_boot_device", "bios"), "next boot: BIOS setup"),
    "firmware_install": TaskName(TaskKind.INSTALL, {"method": "out-of-band"}, "install firmware"),
    "firmware_install_dry_run": TaskName(
        TaskKind.INSTALL, {"method": "out-of-band", "dryRun": True}, "plan a firmware install, install nothing"
    ),
}


class JobCreated(BaseModel):
    """roller's answer to a job POST, plus the server."""

    task_name: str
    tc_worker_id: str | None
    task_id: str
    server: str


class Job(JobCreated):
    """A job as ``GET /api/v1/jobs/{task_id}`` answers it."""

    kind: str
    status: str
    flasher_status: str
    message: str | None
    updatedAt: str | None  # noqa: N815 (the attribute's key)


def _index_key(context: APIContext, task_id: str) -> str:
    return f"{{{context.settings.redis.key_prefix}}}:api:job:{task_id}"


def resolve_worker(context: APIContext, worker_id: str) -> Server:
    """The one server whose worker-ids attribute names ``worker_id``; 404 for none, 409 for several."""
    namespace = context.settings.api.worker_ids_namespace
    if "~" in worker_id or not worker_id.strip():
        raise bad_input([("tc_worker_id", worker_id, "is not a worker id (no '~', not empty)")])
    found = context.inventory.list_servers(attr=[f"{namespace}~tc_worker_id~eq~{worker_id}"])
    if not found:
        raise APIError(404, f"no server has worker id {worker_id!r} (attribute {namespace}, key tc_worker_id)")
    if len(found) > 1:
        names = ", ".join(str(s.uuid) for s in found)
        raise APIError(409, f"worker id {worker_id!r} names several servers: {names}")
    return found[0]


@router.post("", status_code=201, response_model=JobCreated)
def create_job(
    *,
    context: Context,
    principal: Writer,
    task_name: Annotated[str, Query(description=f"One of: {', '.join(TASK_NAMES)}.")],
    server: Annotated[UUID | None, Query(description="The server's uuid.")] = None,
    tc_worker_id: Annotated[str | None, Query(description="A Taskcluster worker id (resolved to a server).")] = None,
    firmware_set: Annotated[str | None, Query(description="firmware_install: the firmware set (name or uuid).")] = None,
    priority: Annotated[int | None, Query(description="0 (lowest) to 3.", ge=0, le=3)] = None,
) -> Any:
    """Run a named task on a server (roller's ``POST /api/v1/jobs``)."""
    named = TASK_NAMES.get(task_name)
    if named is None:
        raise bad_input([("task_name", task_name, f"is not a known task name (known: {', '.join(TASK_NAMES)})")])
    if (server is None) == (tc_worker_id is None):
        raise bad_input([("server", None, "give server or tc_worker_id (one of them)")])
    server_id = str(server) if server is not None else str(resolve_worker(context, str(tc_worker_id)).uuid)
    data = dict(named.data)
    if firmware_set is not None:
        if named.kind is not TaskKind.INSTALL:
            raise bad_input([("firmware_set", firmware_set, f"applies to firmware_install, not {task_name}")])
        data["firmwareSet"] = firmware_set
    if priority is not None:
        data["priority"] = priority
    request = build_request(
        context, principal, named.kind, data, via="roller", task_name=task_name, tc_worker_id=tc_worker_id
    )
    submitted = write_request(context, principal, server_id, named.kind, request)
    try:  # only for the seconds before admission; the inventory finds the job after that
        context.queue.client.set(
            _index_key(context, submitted.task_id), f"{server_id} {named.kind.value}", ex=JOB_INDEX_SECONDS
        )
    except redis.RedisError as exc:
        logger.warning("job {}: index not written ({}); GET finds it once it is admitted", submitted.task_id, exc)
    return {"task_name": task_name, "tc_worker_id": tc_worker_id, "task_id": submitted.task_id, "server": server_id}


_ROLLER_STATUS: Final = {
    "requested": "PENDING",
    "queued": "PENDING",
    "active": "RUNNING",
    "success": "COMPLETE",
    "failed": "FAILED",
    "cancelled": "FAILED",
}


def _find(context: APIContext, task_id: str) -> tuple[str, TaskKind, dict[str, Any]] | None:
    for kind in TaskKind:
        for found in context.inventory.list_servers(attr=[f"{kind.namespace}~taskID~eq~{task_id}"]):
            attribute = found.attribute(kind.namespace)
            data = object_of(attribute.data) if attribute is not None else {}
            if data.get("taskID") == task_id:
                return str(found.uuid), kind, data
    try:
        raw = context.queue.client.get(_index_key(context, task_id))
    except redis.RedisError:
        raw = None
    if raw is None:
        return None
    server_id, _, kind_text = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(" ")
    kind = TaskKind(kind_text)
    try:
        data = object_of(context.inventory.get_attribute(server_id, kind.namespace).data)
    except NotFoundError:
        raise APIError(410, f"job {task_id}: the server's {kind.namespace} attribute was deleted") from None
    return server_id, kind, data


@router.get("/{task_id}", response_model=Job)
def get_job(task_id: str, context: Context, principal: Reader) -> Any:
    """A job's state (roller's ``GET /api/v1/jobs/{task_id}``)."""
    if "~" in task_id or not task_id.strip():
        raise bad_input([("task_id", task_id, "is not a task id")])
    found = _find(context, task_id)
    if found is None:
        raise APIError(404, f"no job {task_id}")
    server_id, kind, data = found
    if task_id_of(server_id, kind, data) != task_id:
        raise APIError(410, f"job {task_id}: the server's {kind.namespace} attribute holds another task now")
    request = request_of(data)
    status = status_of(data)
    return {
        "task_name": str(request.get("task_name") or kind.value),
        "tc_worker_id": request.get("tc_worker_id"),
        "task_id": task_id,
        "server": server_id,
        "kind": kind.value,
        "status": _ROLLER_STATUS.get(status, "FAILED"),
        "flasher_status": status,
        "message": last_message(data),
        "updatedAt": data.get("updatedAt") if isinstance(data.get("updatedAt"), str) else None,
    }
