"""conditionorc's API, as metal-toolbox's tools (mctl, the flipflop README's curl session) call it.

* ``POST /api/v1/servers/{id}/condition/serverControl`` with ``{"exclusive", "parameters": {"asset_id",
  "action", "action_parameter", ...}}``: a server-control task (the parameters are the attribute's keys).
* ``POST /api/v1/servers/{id}/condition/firmwareInstall`` with conditionorc's parameters: an install task
  (``firmware_set_id`` → ``firmwareSet``, ``firmwares`` → ``Firmware`` entries, ``force_install`` → ``force``,
  ``dry_run`` → ``dryRun``, ``reset_bmc_before_install`` → a ``resetBMC`` pre-action of the first component
  installed, ``require_host_powered_off`` → ``requireHostPoweredOff`` (the install steps power the host off
  before each component and restore its power at the end).
* ``GET /api/v1/servers/{id}/status``: the server's conditions (its server-control and install tasks) with
  conditionorc's states and flasher's last message as ``status.msg``.

Both POSTs answer ``{"message": "condition set", "records": {"serverID", "conditions": [<record>]}}`` where the
record's ``id`` is the ``taskID`` the task will carry (:func:`flasher.task.request.request_task_id`) and its
``state`` is ``pending``. ``exclusive: true`` (conditionorc's meaning) refuses the request with 409 while any task
of the server is queued or active; otherwise only one of the same kind does. Shapes from conditionorc's
``ServerResponse`` and rivets' ``condition.Condition`` (version 1.1) as the flipflop README shows them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from flasher.api.context import Context, Reader, Writer
from flasher.api.errors import APIError, bad_input, from_validation
from flasher.api.views import CONDITION_KINDS, condition_record
from flasher.api.writes import build_request, write_request
from flasher.constants import INSTALL_ORDER
from flasher.task.model import TaskKind, TaskValidationError
from flasher.task.request import object_of

router = APIRouter(prefix="/api/v1/servers", tags=["conditionorc"])

ServerID = Annotated[UUID, Path(description="The server's uuid in the inventory.")]


class ServerControlParameters(BaseModel):
    """rivets' ``ServerControlTaskParameters``: the server-control attribute's keys."""

    model_config = ConfigDict(extra="forbid")

    asset_id: UUID
    action: StrictStr = Field(description="set_power_state, get_power_state, power_cycle_bmc, ...")
    action_parameter: StrictStr | None = Field(None, description="on, off, soft, cycle, reset; a boot device")
    set_next_boot_device_persistent: StrictBool = False
    set_next_boot_device_efi: StrictBool = False


class ServerControlCondition(BaseModel):
    """A ``serverControl`` condition request."""

    model_config = ConfigDict(extra="forbid")

    exclusive: StrictBool = False
    parameters: ServerControlParameters


class FirmwareParameter(BaseModel):
    """One of ``firmwares`` (rivets' ``Firmware``); flasher uses ``component``, ``version``, ``URL`` and
    ``checksum`` and ignores the inventory's other keys."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    component: StrictStr
    version: StrictStr
    url: StrictStr | None = Field(None, alias="URL")
    checksum: StrictStr | None = None


class FirmwareInstallParameters(BaseModel):
    """conditionorc's ``firmwareInstall`` parameters."""

    model_config = ConfigDict(extra="forbid")

    asset_id: UUID
    firmware_set_id: StrictStr | None = Field(None, description="A firmware set's uuid (or name).")
    firmwares: list[FirmwareParameter] | None = None
    force_install: StrictBool = False
    dry_run: StrictBool = False
    reset_bmc_before_install: StrictBool = False
    require_host_powered_off: StrictBool = False


class FirmwareInstallCondition(BaseModel):
    """A ``firmwareInstall`` condition request."""

    model_config = ConfigDict(extra="forbid")

    exclusive: StrictBool = False
    parameters: FirmwareInstallParameters


class ConditionStatus(BaseModel):
    msg: str


class Condition(BaseModel):
    """rivets' ``condition.Condition`` as conditionorc answers it."""

    version: str
    client: str
    id: str
    kind: Literal["serverControl", "firmwareInstall"]
    parameters: dict[str, Any]
    state: Literal["pending", "active", "succeeded", "failed"]
    status: ConditionStatus | None = None
    updatedAt: str  # noqa: N815 (conditionorc's key)
    createdAt: str  # noqa: N815


class ConditionRecords(BaseModel):
    serverID: str  # noqa: N815
    state: Literal["pending", "active", "succeeded", "failed"] | None = None
    conditions: list[Condition]


class ServerResponse(BaseModel):
    """conditionorc's ``v1types.ServerResponse``."""

    message: str | None = None
    records: ConditionRecords


#: Attribute fields as the firmwareInstall parameters name them (for error messages).
_INSTALL_FIELDS = {
    "firmwareSet": "parameters.firmware_set_id",
    "Firmware": "parameters.firmwares",
    "force": "parameters.force_install",
    "dryRun": "parameters.dry_run",
    "requireHostPoweredOff": "parameters.require_host_powered_off",
}
_CONTROL_FIELDS = {
    "action": "parameters.action",
    "action_parameter": "parameters.action_parameter",
    "set_next_boot_device_persistent": "parameters.set_next_boot_device_persistent",
    "set_next_boot_device_efi": "parameters.set_next_boot_device_efi",
}


def _check_asset(server_id: UUID, asset_id: UUID) -> None:
    if asset_id != server_id:
        raise bad_input([("parameters.asset_id", str(asset_id), f"is not the server of the path ({server_id})")])


def _created(
    context: Context,
    principal: Reader,
    server: UUID,
    kind: TaskKind,
    request: dict[str, Any],
    *,
    exclusive: bool,
    rename: dict[str, str],
) -> dict[str, Any]:
    server_id = str(server)
    try:
        write_request(context, principal, server_id, kind, request, exclusive=exclusive)
    except TaskValidationError as exc:
        raise from_validation(exc, rename) from None
    return {
        "message": "condition set",
        "records": {"serverID": server_id, "conditions": [condition_record(server_id, kind, request, fresh=True)]},
    }


@router.post("/{server_id}/condition/serverControl", response_model=ServerResponse, response_model_exclude_none=True)
def server_control(server_id: ServerID, body: ServerControlCondition, context: Context, principal: Writer) -> Any:
    """Queue a ``serverControl`` condition: power on/off/soft/cycle/reset, read the power state, reset the BMC, set
    the next boot device (metal-toolbox flipflop's actions)."""
    parameters = body.parameters
    _check_asset(server_id, parameters.asset_id)
    data: dict[str, Any] = {"action": parameters.action}
    given = parameters.model_dump(mode="json", exclude_unset=True)
    if parameters.action_parameter is not None:
        data["action_parameter"] = parameters.action_parameter
    for key in ("set_next_boot_device_persistent", "set_next_boot_device_efi"):
        if key in given:
            data[key] = given[key]
    request = build_request(
        context,
        principal,
        TaskKind.SERVER_CONTROL,
        data,
        via="conditionorc",
        condition="serverControl",
        parameters=given,
    )
    return _created(
        context,
        principal,
        server_id,
        TaskKind.SERVER_CONTROL,
        request,
        exclusive=body.exclusive,
        rename=_CONTROL_FIELDS,
    )


@router.post("/{server_id}/condition/firmwareInstall", response_model=ServerResponse, response_model_exclude_none=True)
def firmware_install(server_id: ServerID, body: FirmwareInstallCondition, context: Context, principal: Writer) -> Any:
    """Queue a ``firmwareInstall`` condition: a firmware set, listed firmware, or (with neither) the firmware set
    matching the server's vendor and model."""
    parameters = body.parameters
    _check_asset(server_id, parameters.asset_id)
    data: dict[str, Any] = {"method": "out-of-band", "force": parameters.force_install, "dryRun": parameters.dry_run}
    if parameters.firmware_set_id:
        data["firmwareSet"] = parameters.firmware_set_id
    if parameters.firmwares:
        entries: list[dict[str, Any]] = []
        for firmware in parameters.firmwares:
            entry: dict[str, Any] = {"component": firmware.component, "version": firmware.version}
            if firmware.url:
                entry["updateFileURL"] = firmware.url
            if firmware.checksum:
                entry["updateFileChecksum"] = firmware.checksum
            entries.append(entry)
        if parameters.reset_bmc_before_install:
            first = min(range(len(entries)), key=lambda i: _install_rank(entries[i]["component"]))
            entries[first]["preActions"] = ["resetBMC"]
        data["Firmware"] = entries
    elif parameters.reset_bmc_before_install:
        raise bad_input(
            [
                (
                    "parameters.reset_bmc_before_install",
                    True,
                    "needs 'firmwares': flasher resets the BMC as a pre-action of the first component it installs",
                )
            ]
        )
    if parameters.require_host_powered_off:
        data["requireHostPoweredOff"] = True
    given = parameters.model_dump(mode="json", exclude_unset=True, by_alias=True)
    request = build_request(
        context, principal, TaskKind.INSTALL, data, via="conditionorc", condition="firmwareInstall", parameters=given
    )
    return _created(
        context, principal, server_id, TaskKind.INSTALL, request, exclusive=body.exclusive, rename=_INSTALL_FIELDS
    )


def _install_rank(component: str) -> int:
    slug = component.strip().lower()
    return INSTALL_ORDER.index(slug) if slug in INSTALL_ORDER else len(INSTALL_ORDER)


@router.get("/{server_id}/status", response_model=ServerResponse, response_model_exclude_none=True)
def status(server_id: ServerID, context: Context, principal: Reader) -> Any:
    """The server's conditions with their states: ``pending`` (new or queued), ``active``, ``succeeded``,
    ``failed`` (failed or cancelled); ``status.msg`` is flasher's last message. ``records.state`` is the state of
    the newest condition."""
    server = context.inventory.get_server(str(server_id))
    conditions = []
    for kind in CONDITION_KINDS:
        attribute = server.attribute(kind.namespace)
        if attribute is not None:
            conditions.append(condition_record(str(server.uuid), kind, object_of(attribute.data)))
    if not conditions:
        raise APIError(404, f"no condition found for server {server_id}")
    conditions.sort(key=lambda c: c["createdAt"])
    return {"records": {"serverID": str(server.uuid), "state": conditions[-1]["state"], "conditions": conditions}}
