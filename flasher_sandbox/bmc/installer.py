"""Firmware installs on a simulated BMC: accepting a request, checking the image, and running the task.

Timeline of an immediate install taking ``S`` = ``install_seconds``: New for 0.1·S; Running (a pulled image is
downloaded and checked first) with ``PercentComplete`` rising from 10 to 99 over 0.9·S; then Completed and the
targets' version becomes the image's. ``OnReset`` installs wait in Pending (Dell job ``Scheduled``) after the
check until the host boots, then run the install part. A BMC update reboots the BMC at the end instead: the
task stays Running while the BMC is unreachable and reads Completed, with the new version, when it is back.

Checks (a pushed image is checked at submission, answering 400; a pulled one in the task, ending in Exception):
the magic and header (:mod:`flasher_sandbox.images`); the vendor (the image's vendor must be the BMC's vendor slug or
the first word of the target's manufacturer, case-insensitive); the models (when the image lists models, one
must be the target's model or the server's model); the component (the image's component slug must be the
target's type). Without ``Targets`` the targets are every updateable component passing those checks.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from loguru import logger

from flasher_sandbox.bmc.audit import InstallRecord, now_iso
from flasher_sandbox.bmc.components import Component
from flasher_sandbox.bmc.errors import BASE, RedfishError, bad_request
from flasher_sandbox.bmc.shapes import TASK_MONITORS, TASKS
from flasher_sandbox.bmc.tasks import InstallTask
from flasher_sandbox.bmc.vendors import hpe, openbmc, supermicro
from flasher_sandbox.images import MAX_HEADER_BYTES, ImageHeader, InvalidImageError, read_header

if TYPE_CHECKING:
    from flasher_sandbox.bmc.simulator import SimulatedBmc

#: Largest image a BMC accepts (pushed or pulled).
MAX_IMAGE_BYTES: Final = 512 * 1024 * 1024
#: ``@Redfish.OperationApplyTime`` values the simulator supports.
APPLY_TIMES: Final = ("Immediate", "OnReset")
#: ``TransferProtocol`` values SimpleUpdate accepts.
TRANSFER_PROTOCOLS: Final = ("HTTP", "HTTPS")
#: Seconds a BMC waits for a pulled image (connect, whole transfer).
DOWNLOAD_TIMEOUT: Final = aiohttp.ClientTimeout(total=300, sock_connect=10)
_SIMPLE_UPDATE_PARAMETERS: Final = frozenset(
    {
        "ImageURI",
        "TransferProtocol",
        "Targets",
        "Username",
        "Password",
        "@Redfish.OperationApplyTime",
        "ForceUpdate",
        "Oem",
    }
)


class ImageRefusedError(Exception):
    """An image the BMC will not install: ``name`` is the ``Update`` registry message (``VerificationFailed``,
    ``TransferFailed``, ``NoTargetsDetermined``)."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(text)
        self.name = name
        self.text = text


def _first_word(text: str) -> str:
    words = text.split(maxsplit=1)
    return "".join(ch for ch in words[0] if ch.isalnum()).lower() if words else ""


def _fits(bmc: SimulatedBmc, header: ImageHeader, component: Component) -> str | None:
    """Why ``header`` cannot go on ``component``, or ``None`` when it can."""
    if header.component != component.slug:
        return (
            f"the image is for component type '{header.component}', the target {component.id} is a '{component.slug}'"
        )
    vendors = {bmc.spec.vendor.lower(), _first_word(component.spec.manufacturer)}
    if header.vendor.lower() not in vendors:
        return f"the image is for vendor '{header.vendor}', the target {component.id} is made by {sorted(vendors)}"
    if not header.applies_to_model(component.spec.model, bmc.spec.model):
        return (
            f"the image is for models {list(header.models)}, the target {component.id} is a "
            f"'{component.spec.model}' in a '{bmc.spec.model}'"
        )
    if not component.spec.updateable:
        return f"the target {component.id} is not updateable"
    return None


def select_targets(bmc: SimulatedBmc, header: ImageHeader, explicit: list[Component]) -> list[Component]:
    """The components ``header`` will be installed on: ``explicit`` ones (each must fit) or, when there are
    none, every component the image fits. Raises :class:`ImageRefusedError`."""
    if explicit:
        for component in explicit:
            reason = _fits(bmc, header, component)
            if reason is not None:
                raise ImageRefusedError("VerificationFailed", f"Image rejected: {reason}.")
        return explicit
    chosen = [c for c in bmc.components if _fits(bmc, header, c) is None]
    if not chosen:
        raise ImageRefusedError(
            "NoTargetsDetermined",
            f"No target device will be updated with the image for {header.vendor} {header.component} "
            f"{list(header.models)} version {header.version}.",
        )
    return chosen


def parse_targets(bmc: SimulatedBmc, value: Any) -> list[Component]:
    """``Targets`` as components: each entry a FirmwareInventory member URI or a component's RelatedItem URI.
    Raises ``RedfishError`` 400."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_request(
            "ActionParameterValueTypeError", f"The value {value!r} for the parameter Targets is not a list of URIs."
        )
    out: list[Component] = []
    for uri in value:
        component = bmc.component_by_uri(uri)
        if component is None:
            raise RedfishError(
                400, f"{BASE}.ResourceMissingAtURI", f"The resource at the URI {uri} was not found.", args=[uri]
            )
        if component not in out:
            out.append(component)
    return out


def check_one_target(bmc: SimulatedBmc, targets: list[Component], action: str) -> None:
    """Dell-like: 400 ``ActionParameterValueError`` when a request names more than one target (iDRAC creates one
    job per component: Dell iDRAC Redfish API guide, SimpleUpdate ``Targets``; one URI per request)."""
    if bmc.shape.one_target_per_request and len(targets) > 1:
        raise bad_request(
            "ActionParameterValueError",
            f"The value for the parameter Targets in the action {action} is invalid: it names {len(targets)} "
            "targets; this service updates one component per request.",
            "Targets",
            action,
        )


def parse_apply_time(value: Any) -> str | None:
    """``@Redfish.OperationApplyTime`` (``None`` when absent). Raises ``RedfishError`` 400."""
    if value is None:
        return None
    if isinstance(value, str) and value in APPLY_TIMES:
        return value
    raise bad_request(
        "ActionParameterNotSupported",
        f"The value {value!r} for @Redfish.OperationApplyTime is not supported; use one of {', '.join(APPLY_TIMES)}.",
        str(value),
    )


def _record(method: str, *, targets: list[Component], image: str, apply_time: str | None) -> InstallRecord:
    return InstallRecord(
        method=method,
        component=targets[0].slug if targets else None,
        targets=[c.id for c in targets],
        from_version=targets[0].version if targets else None,
        to_version=None,
        image=image,
        apply_time=apply_time or "default",
    )


def _refuse_if_busy(bmc: SimulatedBmc, record: InstallRecord) -> None:
    if bmc.shape.refuses_concurrent_install and bmc.audit.installs_in_progress:
        after = str(bmc.shape.busy_retry_after)
        text = f"An update is already in progress. Retry in {after} seconds."
        bmc.audit.refuse_install(record, "refused", text)
        raise RedfishError(
            503, f"{BASE}.ServiceTemporarilyUnavailable", text, args=[after], headers={"Retry-After": after}
        )


def submit_simple_update(bmc: SimulatedBmc, body: Any) -> InstallTask:
    """Accept ``UpdateService.SimpleUpdate``: validate the request, create the task and start it.

    Raises ``RedfishError`` (400 for a bad request, 503 when busy on a shape that refuses concurrent installs).
    """
    if not isinstance(body, dict):
        raise bad_request("UnrecognizedRequestBody", "The SimpleUpdate request body must be a JSON object.")
    unknown = sorted(set(body) - _SIMPLE_UPDATE_PARAMETERS)
    if unknown:
        raise bad_request(
            "ActionParameterUnknown",
            f"The action UpdateService.SimpleUpdate was submitted with the invalid parameter {unknown[0]}.",
            "UpdateService.SimpleUpdate",
            unknown[0],
        )
    image_uri = body.get("ImageURI")
    if not isinstance(image_uri, str) or not image_uri:
        raise bad_request(
            "ActionParameterMissing",
            "The action UpdateService.SimpleUpdate requires the parameter ImageURI to be present in the request body.",
            "UpdateService.SimpleUpdate",
            "ImageURI",
        )
    if not image_uri.lower().startswith(("http://", "https://")):
        raise bad_request(
            "ActionParameterValueFormatError",
            f"The value {image_uri} for the parameter ImageURI in the action UpdateService.SimpleUpdate is of a "
            "different format than the parameter can accept: use an http:// or https:// URI.",
            image_uri,
            "ImageURI",
        )
    protocol = body.get("TransferProtocol")
    if protocol is not None and protocol not in TRANSFER_PROTOCOLS:
        raise bad_request(
            "ActionParameterNotSupported",
            f"The parameter TransferProtocol={protocol!r} for the action UpdateService.SimpleUpdate is not supported "
            f"on the target resource; allowed: {', '.join(TRANSFER_PROTOCOLS)}.",
            str(protocol),
            "UpdateService.SimpleUpdate",
        )
    targets = parse_targets(bmc, body.get("Targets"))
    check_one_target(bmc, targets, "UpdateService.SimpleUpdate")
    apply_time = parse_apply_time(body.get("@Redfish.OperationApplyTime"))
    record = _record("SimpleUpdate", targets=targets, image=image_uri, apply_time=apply_time)
    _refuse_if_busy(bmc, record)
    task = _new_task(bmc, record, image_uri.rsplit("/", 1)[-1], targets, apply_time)
    task.image_uri = image_uri
    return _accept(bmc, task)


def submit_push(
    bmc: SimulatedBmc,
    method: str,
    *,
    image: bytes,
    filename: str,
    targets: list[Component],
    apply_time: str | None,
) -> InstallTask:
    """Accept a pushed image (``MultipartHttpPush`` or ``HttpPush``): check it now, create the task, start it.

    Raises ``RedfishError`` 400 when the image is refused (recorded in the audit as ``rejected``) and 503 when
    busy on a shape that refuses concurrent installs.
    """
    check_one_target(bmc, targets, method)
    record = _record(method, targets=targets, image=filename, apply_time=apply_time)
    _refuse_if_busy(bmc, record)
    try:
        header = read_header(image)
        record.to_version = header.version
        chosen = select_targets(bmc, header, targets)
    except InvalidImageError as exc:
        raise _rejected(bmc, record, "VerificationFailed", str(exc)) from exc
    except ImageRefusedError as exc:
        raise _rejected(bmc, record, exc.name, exc.text) from exc
    record.component, record.targets, record.from_version = chosen[0].slug, [c.id for c in chosen], chosen[0].version
    faults = bmc.faults.take_install_faults(c.slug for c in chosen)
    if "image_rejected" in faults:
        raise _rejected(bmc, record, "VerificationFailed", "Image rejected: the update package failed verification.")
    task = _new_task(bmc, record, filename, chosen, apply_time)
    task.image, task.header, task.faults = image, header, faults
    return _accept(bmc, task)


def _rejected(bmc: SimulatedBmc, record: InstallRecord, name: str, text: str) -> RedfishError:
    bmc.audit.refuse_install(record, "rejected", text)
    logger.info("BMC {} rejected a pushed image: {}", bmc.port, text)
    return RedfishError(400, f"Update.1.0.{name}", text, args=[record.image or ""])


def _new_task(
    bmc: SimulatedBmc,
    record: InstallRecord,
    image_name: str,
    targets: list[Component],
    apply_time: str | None,
) -> InstallTask:
    task_id = bmc.next_task_id()
    monitor = f"{TASK_MONITORS}/{task_id}" if bmc.shape.has_task_monitor else None
    task = InstallTask(
        id=task_id,
        uri=f"{TASKS}/{task_id}",
        monitor_uri=monitor,
        name="Firmware Update",
        method=record.method,
        apply_time=apply_time or "",
        record=record,
        image_name=image_name,
        components=list(targets),
    )
    _name_task(bmc, task)
    return task


def _name_task(bmc: SimulatedBmc, task: InstallTask) -> None:
    if task.components:
        first = task.components[0]
        task.name = bmc.shape.job_name(first.slug, first.spec.name)
        if not task.apply_time:
            task.apply_time = bmc.shape.default_apply_time(first.slug)
        task.record.apply_time = task.apply_time


def _accept(bmc: SimulatedBmc, task: InstallTask) -> InstallTask:
    task.record.task = task.id
    bmc.audit.begin_install(task.record)
    bmc.remember(task)
    if bmc.shape.x13_update and task.header is not None:  # a pushed image: verified, then Pending until StartUpdate
        supermicro.name_verify(task)
        task.runner = bmc.spawn(supermicro.verify(bmc, task))
    else:
        task.runner = bmc.spawn(run(bmc, task))
    logger.info("BMC {} accepted {} as task {} ({})", bmc.port, task.method, task.id, task.target_names)
    return task


def kill(bmc: SimulatedBmc, task: InstallTask) -> None:
    """End a task that is not terminal as Killed (``DELETE`` of the task or its monitor)."""
    if task.terminal:
        return
    _end(bmc, task, "Killed", "Warning", outcome="killed", text="The task was cancelled by a client.")
    if task.runner is not None:
        task.runner.cancel()


async def run(bmc: SimulatedBmc, task: InstallTask) -> None:
    """Drive ``task`` through its states (see the module docstring)."""
    seconds = bmc.timings.install_seconds
    try:
        await asyncio.sleep(seconds * 0.1)
        if bmc.shape.fifo_install_queue:
            await hpe.wait_turn(bmc, task)
        task.state, task.running_since = "Running", now_iso()
        if task.header is None and not await _pull(bmc, task):
            return
        task.percent = 10
        task.note("VerifyingAtComponent", f"Image '{task.image_name}' is being verified at '{task.target_names}'.")
        if task.apply_time == "OnReset":
            task.state = "Pending"
            task.set_job("Scheduled", "IDRAC.2.8.JCP001", "Task successfully scheduled.")
            task.note(
                "AwaitToActivate",
                f"Awaiting for an action to proceed with activating image '{task.image_name}' on "
                f"'{task.target_names}': reset the host.",
            )
            await task.host_booted.wait()
            task.state = "Running"
        refusal = openbmc.refuse_bios_with_host_on(bmc, task)
        if refusal is not None:
            _fail(bmc, task, "ApplyFailed", refusal)
            return
        task.set_job("Running", "IDRAC.2.8.PR19", "Job in progress.")
        task.note("InstallingOnComponent", f"Image '{task.image_name}' is being installed on '{task.target_names}'.")
        self_update = any(c.slug == "bmc" for c in task.components)
        steps = 10
        for step in range(1, steps + 1):
            if "task_exception" in task.faults and task.percent >= 50:
                _fail(
                    bmc,
                    task,
                    "ApplyFailed",
                    f"Installation of image '{task.image_name}' to '{task.target_names}' failed.",
                )
                return
            if "task_hang" in task.faults and task.percent >= 40:
                await asyncio.Event().wait()
            if self_update and step == steps:
                break
            await asyncio.sleep(seconds * 0.9 / steps)
            task.percent = min(99, 10 + 9 * step)
        if self_update:
            task.note("ApplyingOnComponent", f"Image '{task.image_name}' is being applied on '{task.target_names}'.")
            await bmc.reboot("firmware update", on_return=lambda: _complete(bmc, task))
        else:
            _complete(bmc, task)
    except asyncio.CancelledError:
        if not task.terminal:
            _end(
                bmc,
                task,
                "Interrupted",
                "Critical",
                outcome="interrupted",
                text="The task was interrupted by a BMC reset.",
            )
        raise


async def _pull(bmc: SimulatedBmc, task: InstallTask) -> bool:
    """Download and check a SimpleUpdate image; False (task ended in Exception) when it is refused."""
    assert task.image_uri is not None
    task.set_job("Downloading", "IDRAC.2.8.RED003", f"Downloading the {task.image_name} update package.")
    task.note("TransferringToComponent", f"Image '{task.image_uri}' is being transferred to '{task.target_names}'.")
    try:
        head = await _download(bmc, task.image_uri)
        header = read_header(head)
        task.header = header
        task.record.to_version = header.version
        task.components = select_targets(bmc, header, task.components)
    except InvalidImageError as exc:
        _fail(bmc, task, "VerificationFailed", f"Verification of image '{task.image_name}' failed: {exc}.")
        return False
    except ImageRefusedError as exc:
        _fail(bmc, task, exc.name, exc.text)
        return False
    task.record.component = task.components[0].slug
    task.record.targets = [c.id for c in task.components]
    task.record.from_version = task.components[0].version
    _name_task(bmc, task)
    task.faults = bmc.faults.take_install_faults(task.slugs)
    if "image_rejected" in task.faults:
        _fail(
            bmc,
            task,
            "VerificationFailed",
            f"Verification of image '{task.image_name}' failed: the update package was rejected.",
        )
        return False
    return True


async def _download(bmc: SimulatedBmc, uri: str) -> bytes:
    """GET ``uri`` to the end (as a BMC must); return its first bytes. Raises :class:`ImageRefusedError`."""
    try:
        async with bmc.http().get(uri, timeout=DOWNLOAD_TIMEOUT) as response:
            if response.status != 200:
                raise ImageRefusedError("TransferFailed", f"Transfer of image '{uri}' failed: HTTP {response.status}.")
            head = bytearray()
            total = 0
            async for chunk in response.content.iter_chunked(1 << 16):
                total += len(chunk)
                if total > MAX_IMAGE_BYTES:
                    raise ImageRefusedError(
                        "TransferFailed", f"Transfer of image '{uri}' failed: larger than {MAX_IMAGE_BYTES} bytes."
                    )
                if len(head) < MAX_HEADER_BYTES:
                    head += chunk[: MAX_HEADER_BYTES - len(head)]
            return bytes(head)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ImageRefusedError(
            "TransferFailed", f"Transfer of image '{uri}' failed: {exc or type(exc).__name__}."
        ) from exc


def _fail(bmc: SimulatedBmc, task: InstallTask, name: str, text: str) -> None:
    task.note(name, text, "Critical")
    task.set_job("Failed", "IDRAC.2.8.RED007", text)
    _end(bmc, task, "Exception", "Critical", outcome="exception", text=text)


def _complete(bmc: SimulatedBmc, task: InstallTask) -> None:
    assert task.header is not None
    if "completed_critical" in task.faults:
        text = f"Installation of image '{task.image_name}' to '{task.target_names}' failed."
        task.note("ApplyFailed", text, "Critical")
        task.set_job("CompletedWithErrors", "IDRAC.2.8.RED008", text)
        _end(bmc, task, "Completed", "Critical", outcome="critical", text=text)
        return
    if bmc.shape.stages_bios_until_host_boot and "bios" in task.slugs:
        hpe.stage(bmc, task)  # the version changes at the next host boot
    elif "version_unchanged" not in task.faults:
        for component in task.components:
            component.version = task.header.version
    text = f"Device '{task.target_names}' successfully updated with image '{task.image_name}'."
    task.note("UpdateSuccessful", text)
    task.set_job("Completed", "IDRAC.2.8.RED001", "Job completed successfully.")
    outcome = "version-unchanged" if "version_unchanged" in task.faults else "success"
    _end(bmc, task, "Completed", "OK", outcome=outcome, text=text)


def _end(bmc: SimulatedBmc, task: InstallTask, state: str, status: str, *, outcome: str, text: str) -> None:
    if state in ("Interrupted", "Killed"):
        task.note("ApplyFailed", text, "Critical")
        task.set_job("Failed", "IDRAC.2.8.RED007", text)
    task.end(state, status)
    version = task.components[0].version if task.components else None
    bmc.audit.finish_install(task.record, outcome, text, version)
    if "task_purged" in task.faults:
        task.purged = True
        bmc.monitors.pop(task.id, None)
    logger.info("BMC {} task {} ended {} ({})", bmc.port, task.id, state, outcome)
