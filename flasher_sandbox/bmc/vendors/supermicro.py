"""Supermicro X13-like firmware updates: multipart with ``OnStartUpdateRequest``, Verify then Update tasks,
``Preserve*`` options per model, and the licence.

Modelled from Supermicro's published behaviour (Supermicro Redfish Reference Guide for X13/H13, "Firmware
Update": BMC and BIOS updates through ``MultipartHttpPushUri``, then ``UpdateService.StartUpdate``; the
``Oem.Supermicro`` update parameters; the out-of-band licence ``SFT-DCMS-SINGLE`` that BIOS updates need):

* **Upload.** A multipart push must ask for ``@Redfish.OperationApplyTime: OnStartUpdateRequest`` (400 naming it
  otherwise; the UpdateService advertises only that value). The push is answered 202 with a task named
  ``<component> Verify`` ("BIOS Verify", "BMC Verify"), which checks the image and then waits in **Pending** once
  the upload is verified, until ``StartUpdate``.
* **StartUpdate** (``/redfish/v1/UpdateService/Actions/UpdateService.StartUpdate``) ends the Verify task
  Completed and starts ``<component> Update`` ("BIOS Update", "BMC Update"), answered 202 with its monitor; it
  installs as any task does (a BMC update reboots the BMC). A StartUpdate with nothing verified and Pending
  answers 400: a client must wait for Pending.
* **Preserve options** in ``UpdateParameters.Oem.Supermicro.BIOS`` / ``.BMC``, per model: an Intel board (model
  ``x...``) takes ``PreserveME``, ``PreserveNVRAM``, ``PreserveSMBIOS``, ``BackupBIOS`` for the BIOS; an AMD board
  (``h...``) has no ME and refuses ``PreserveME``; the BMC takes ``PreserveCfg``, ``PreserveSdr``, ``PreserveSsl``,
  ``BackupBMC``. An unknown option answers 400 naming it. An option not given is false: the settings it covers
  are reset to their defaults (audit event ``preserve`` with ``settings_kept``).
* **Licence.** A BMC without the licence (``licensed: false``) answers a BIOS update 403
  ``Base.1.16.LicenseRequired`` naming ``SFT-DCMS-SINGLE``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from flasher_sandbox.bmc.errors import BASE, RedfishError, bad_request
from flasher_sandbox.bmc.shapes import TASK_MONITORS, TASKS
from flasher_sandbox.bmc.tasks import InstallTask
from flasher_sandbox.images import InvalidImageError, read_header

if TYPE_CHECKING:
    from flasher_sandbox.bmc.components import Component
    from flasher_sandbox.bmc.simulator import SimulatedBmc

#: The only apply time an X13 multipart push takes.
APPLY_TIME: Final = "OnStartUpdateRequest"
START_UPDATE: Final = "/redfish/v1/UpdateService/Actions/UpdateService.StartUpdate"
#: The licence BIOS updates need.
LICENCE: Final = "SFT-DCMS-SINGLE"
#: The ``Oem.Supermicro`` section for each component type that takes options.
SECTIONS: Final = {"bios": "BIOS", "bmc": "BMC"}
_LABELS: Final = {"bmc": "BMC", "bios": "BIOS", "cpld": "CPLD", "nic": "NIC", "drive": "Drive", "psu": "PSU"}


def options_for(model: str, section: str) -> tuple[str, ...]:
    """The options ``section`` (``BIOS``, ``BMC``) takes on a board of ``model`` (module docstring)."""
    if section == "BMC":
        return ("PreserveCfg", "PreserveSdr", "PreserveSsl", "BackupBMC")
    intel = model.lower().startswith("x")
    return (*(("PreserveME",) if intel else ()), "PreserveNVRAM", "PreserveSMBIOS", "BackupBIOS")


def label(slug: str) -> str:
    """How task names call a component type (``BIOS``, ``BMC``...)."""
    return _LABELS.get(slug, slug.replace("-", " ").title())


def update_service_extras(doc: dict[str, Any]) -> None:
    """The X13 UpdateService: multipart only with ``OnStartUpdateRequest``, and the StartUpdate action."""
    doc["MultipartHttpPushUri@Redfish.OperationApplyTimeSupport"] = {
        "@odata.type": "#Settings.v1_3_5.OperationApplyTimeSupport",
        "SupportedValues": [APPLY_TIME],
    }
    doc["Actions"]["#UpdateService.StartUpdate"] = {"target": START_UPDATE}


def check_push(bmc: SimulatedBmc, parameters: dict[str, Any], image: bytes, targets: list[Component]) -> dict[str, Any]:
    """Check a multipart push's ``UpdateParameters`` before it is accepted; returns the ``Oem.Supermicro``
    options given (section → option → bool). Raises ``RedfishError`` 400 (apply time, unknown option) or 403
    (a BIOS update without the licence)."""
    apply_time = parameters.get("@Redfish.OperationApplyTime")
    if apply_time != APPLY_TIME:
        raise bad_request(
            "ActionParameterNotSupported",
            f"The value {apply_time!r} for @Redfish.OperationApplyTime is not supported: this BMC takes "
            f"{APPLY_TIME} only, then UpdateService.StartUpdate.",
            str(apply_time),
        )
    options = _options(bmc, parameters.get("Oem"))
    slugs = {c.slug for c in targets}
    with contextlib.suppress(InvalidImageError):  # the image check refuses it later, with its own message
        slugs.add(read_header(image).component)
    if "bios" in slugs and not bmc.spec.licensed:
        raise RedfishError(
            403,
            f"{BASE}.LicenseRequired",
            f"A license is required for this operation: {LICENCE}.",
            args=[LICENCE],
        )
    return options


def _options(bmc: SimulatedBmc, oem: Any) -> dict[str, Any]:
    if oem is None:
        return {}
    given = oem.get("Supermicro") if isinstance(oem, dict) else None
    if not isinstance(given, dict):
        raise bad_request("PropertyValueTypeError", "UpdateParameters.Oem must hold a Supermicro object.")
    out: dict[str, Any] = {}
    for section, values in given.items():
        allowed = options_for(bmc.spec.model, section) if section in SECTIONS.values() else ()
        if not allowed or not isinstance(values, dict):
            raise bad_request("PropertyUnknown", f"The property Oem.Supermicro.{section} is not known.", section)
        for key, value in values.items():
            if key not in allowed:
                raise bad_request(
                    "PropertyUnknown",
                    f"The property Oem.Supermicro.{section}.{key} is not an option of model {bmc.spec.model}; "
                    f"it takes {', '.join(allowed)}.",
                    key,
                )
            if not isinstance(value, bool):
                raise bad_request("PropertyValueTypeError", f"Oem.Supermicro.{section}.{key} must be a boolean.", key)
        out[section] = dict(values)
    return out


def note_preserve(bmc: SimulatedBmc, task: InstallTask, options: dict[str, Any]) -> None:
    """Record which settings the update keeps (an option not given is false)."""
    if not task.components:
        return
    slug = task.components[0].slug
    section = SECTIONS.get(slug)
    if section is None:
        return
    given = options.get(section, {})
    effective = {key: bool(given.get(key, False)) for key in options_for(bmc.spec.model, section)}
    kept = all(v for k, v in effective.items() if k.startswith("Preserve"))
    bmc.audit.note("preserve", task=task.id, component=slug, options=effective, settings_kept=kept)


def name_verify(task: InstallTask) -> None:
    """Name the task ``<component> Verify``."""
    if task.components:
        task.name = f"{label(task.components[0].slug)} Verify"


async def verify(bmc: SimulatedBmc, task: InstallTask) -> None:
    """The Verify task: New, Running (checking the image), then Pending until StartUpdate."""
    seconds = bmc.timings.install_seconds
    await asyncio.sleep(seconds * 0.1)
    task.state, task.percent = "Running", 10
    task.note("VerifyingAtComponent", f"Image '{task.image_name}' is being verified at '{task.target_names}'.")
    await asyncio.sleep(seconds * 0.2)
    task.state, task.percent = "Pending", 100
    task.note(
        "AwaitToActivate",
        f"Awaiting for an action to proceed with activating image '{task.image_name}' on '{task.target_names}': "
        "send UpdateService.StartUpdate.",
    )


Runner = Callable[["SimulatedBmc", InstallTask], Coroutine[Any, Any, None]]


def start_update(bmc: SimulatedBmc, run: Runner) -> InstallTask:
    """``UpdateService.StartUpdate``: the Pending Verify task ends Completed and its Update task starts, driven by
    ``run`` (:func:`flasher_sandbox.bmc.installer.run`). Raises ``RedfishError`` 400 when no upload is verified and
    Pending."""
    staged = [t for t in bmc.active_tasks() if t.state == "Pending" and t.name.endswith(" Verify")]
    if not staged:
        raise bad_request(
            "ActionNotSupported",
            "No verified update is staged: wait until the Verify task is Pending, then send StartUpdate.",
            "UpdateService.StartUpdate",
        )
    first = staged[0]
    for old in staged:
        old.note("UpdateSuccessful", f"Image '{old.image_name}' verified; the update starts.")
        old.end("Completed", "OK")
    task_id = bmc.next_task_id()
    task = InstallTask(
        id=task_id,
        uri=f"{TASKS}/{task_id}",
        monitor_uri=f"{TASK_MONITORS}/{task_id}",
        name=f"{label(first.components[0].slug)} Update" if first.components else "Update",
        method=first.method,
        apply_time="Immediate",
        record=first.record,
        image_name=first.image_name,
        image=first.image,
        components=list(first.components),
        header=first.header,
        faults=first.faults,
    )
    first.record.task = task.id
    bmc.remember(task)
    task.runner = bmc.spawn(run(bmc, task))
    bmc.audit.note("start-update", verify_task=first.id, update_task=task.id)
    return task
