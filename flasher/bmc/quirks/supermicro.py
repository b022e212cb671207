"""Supermicro (X12/X13, H12/H13): the multipart push, ``StartUpdate`` once the upload is verified, the ``Preserve*``
options, and the licence.

Sources: Supermicro Redfish Reference Guide (X13/H13), "Firmware Update" (``MultipartHttpPushUri``
``/redfish/v1/UpdateService/upload`` with ``@Redfish.OperationApplyTime: OnStartUpdateRequest``, then
``UpdateService.StartUpdate``; the tasks "BMC Verify", "BMC Update", "BIOS Verify", "BIOS Update"; the
``Oem.Supermicro.BIOS`` and ``Oem.Supermicro.BMC`` update parameters); Supermicro's licence notes (BIOS updates
out of band need ``SFT-DCMS-SINGLE``, answered 403 without it).

What flasher does on a Supermicro BMC (recognised by ServiceRoot ``Vendor`` ``Supermicro`` or an ``Oem.Supermicro``
key; the board from the Manager's ``Model``):

* **Keep settings by default.** A BIOS push carries ``Oem.Supermicro.BIOS`` with ``PreserveNVRAM`` and
  ``PreserveSMBIOS`` true, and ``PreserveME`` true on Intel boards (``X...``; AMD boards, ``H...``, have no ME and
  refuse the option); a BMC push carries ``Oem.Supermicro.BMC`` with ``PreserveCfg``, ``PreserveSdr`` and
  ``PreserveSsl`` true. An option left out is false on these BMCs: the settings it covers would be reset.
  Other component types get no options.
* **StartUpdate after Pending.** With ``OnStartUpdateRequest`` (X13 advertises only that) the push's task is the
  "Verify" task: flasher follows it until it reads ``Pending`` (the upload is verified), and only then sends
  ``StartUpdate``, whose answer names the "Update" task that flasher follows to the end. Sent earlier, StartUpdate
  finds nothing staged; and the Verify task's ``Pending`` is not a wait for a host reset, which is what the generic
  rules would read in it (:mod:`flasher.bmc.taskmonitor`).
* **A staged upload met later** (a worker that crashed between the upload and StartUpdate, and the one that resumes
  follows the task it recorded): a Verify task that reads ``Pending`` is started with StartUpdate and its Update
  task followed instead (:func:`start_staged`), never taken for a wait for a host reset.
* **Fenced.** The wait for Pending can last minutes, and the task's lease may be lost meanwhile: the caller's
  ``keep_going`` (its fence) is asked between the Verify task's readings and again right before StartUpdate
  (in :func:`multipart_push` and :func:`start_staged`), so a worker that lost its lease never starts the update.
* **Licence.** A 403 to the push fails the component naming the licence (the one the BMC names, else
  ``SFT-DCMS-SINGLE``), instead of a bare "refused the operation".
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import requests
from loguru import logger

from flasher.bmc.errors import (
    BMCAuthError,
    BMCError,
    BMCInterruptedError,
    BMCTaskFailedError,
    BMCTimeoutError,
    BMCUnreachableError,
)
from flasher.bmc.models import BMCComponent, TaskHandle, TaskProgress
from flasher.bmc.quirks import detect_vendor
from flasher.bmc.session import Connection

#: The licence a Supermicro BIOS update needs when the BMC does not name one.
LICENCE: Final = "SFT-DCMS-SINGLE"
#: Longest wait for the Verify task to read Pending (seconds).
VERIFY_TIMEOUT: Final = 900.0
_LICENCE_NAME = re.compile(r"\bSFT-[A-Z0-9-]+\b")

SendMultipart = Callable[[Connection, str, str, dict[str, Any], Path], requests.Response]
SendJson = Callable[[Connection, str, str, dict[str, Any]], requests.Response]
TaskUri = Callable[[Connection, requests.Response, str], str]
ReadTask = Callable[[Connection, TaskHandle], TaskProgress]
KeepGoing = Callable[[], bool]


def is_supermicro(root: dict[str, Any]) -> bool:
    """Whether a ServiceRoot document is a Supermicro BMC's, as :func:`flasher.bmc.quirks.detect_vendor` reads it
    (``Vendor``, else the ``Oem`` keys)."""
    return detect_vendor(root) == "supermicro"


def update_options(slug: str, board: str | None) -> dict[str, dict[str, bool]] | None:
    """The ``Oem.Supermicro`` update parameters that keep the settings of component ``slug`` on board ``board``
    (the Manager's Model, ``X13SEI``...); ``None`` for component types that take none."""
    if slug == "bmc":
        return {"BMC": {"PreserveCfg": True, "PreserveSdr": True, "PreserveSsl": True}}
    if slug == "bios":
        intel = board is None or not board.strip().upper().startswith("H")
        return {"BIOS": {**({"PreserveME": True} if intel else {}), "PreserveNVRAM": True, "PreserveSMBIOS": True}}
    return None


def licence_named(messages: tuple[str, ...]) -> str:
    """The licence a 403's messages name (``SFT-...``), else :data:`LICENCE`."""
    for message in messages:
        match = _LICENCE_NAME.search(message)
        if match is not None:
            return match.group(0)
    return LICENCE


def board_model(conn: Connection) -> str | None:
    """The board's model as the Manager reports it (``Model``); ``None`` when it says nothing."""
    path = conn.link("Managers")
    if path is None:
        return None
    managers = conn.members(path, action="read the BMC's Managers")  # one request where it offers $expand
    model = managers[0].get("Model") if managers else None
    return model if isinstance(model, str) and model.strip() else None


def _wait_for_verified(
    conn: Connection,
    task: str,
    read_task: ReadTask,
    *,
    timeout: float,
    sleep: Callable[[float], None],
    keep_going: KeepGoing | None,
) -> None:
    deadline = time.monotonic() + timeout
    handle = TaskHandle(uri=task, method="multipart")
    while True:
        progress = read_task(conn, handle)
        if progress.terminal and not progress.succeeded:
            raise BMCTaskFailedError(
                f"the BMC's verification of the image (task {task}) ended {progress.state}",
                bmc_messages=progress.messages,
            )
        if progress.state == "Pending" or progress.awaiting_reset or progress.terminal:
            return
        if time.monotonic() >= deadline:
            raise BMCTimeoutError(f"task {task} has not verified the image after {timeout:.0f} s ({progress.state})")
        _check(keep_going, f"stopped waiting for task {task} to verify the image; StartUpdate not sent")
        sleep(conn.settings.poll_interval)


def _check(keep_going: KeepGoing | None, why: str) -> None:
    """Raise :class:`BMCInterruptedError` (``why``) when ``keep_going`` says stop (the caller's lease is gone)."""
    if keep_going is not None and not keep_going():
        raise BMCInterruptedError(why)


def multipart_push(
    conn: Connection,
    *,
    push_uri: str,
    start_update_target: str | None,
    component: BMCComponent,
    image_path: Path,
    apply_time: str | None,
    send_multipart: SendMultipart,
    send_json: SendJson,
    task_uri: TaskUri,
    read_task: ReadTask,
    sleep: Callable[[float], None] = time.sleep,
    keep_going: KeepGoing | None = None,
) -> str:
    """Push the image with the options that keep the settings, and with ``OnStartUpdateRequest`` start it once
    verified (module rules); returns the task URI to follow (the Update task). Raises :class:`BMCTaskFailedError`
    (403: the licence; a failed verification), :class:`BMCTimeoutError`, and what the requests raise.

    ``keep_going`` (the caller's fence: false once its lease is lost) is asked between the Verify task's readings
    and right before ``StartUpdate``; false raises :class:`BMCInterruptedError` and StartUpdate is not sent (the
    upload stays staged on the BMC, Verify ``Pending``, for the task's next owner: :func:`start_staged`)."""
    parameters: dict[str, Any] = {"Targets": [component.uri] if component.uri else []}
    if apply_time is not None:
        parameters["@Redfish.OperationApplyTime"] = apply_time
    try:
        board = board_model(conn)
    except BMCError as exc:
        if isinstance(exc, BMCUnreachableError | BMCAuthError):
            raise
        board = None
    options = update_options(component.slug, board)
    if options is not None:
        parameters["Oem"] = {"Supermicro": options}
        logger.info("BMC {}: keeping the settings of {} ({}): {}", conn.base_url, component.slug, board, options)
    what = f"push {image_path.name} to {component.slug} {component.id!r} (multipart)"
    try:
        response = send_multipart(conn, what, push_uri, parameters, image_path)
    except BMCAuthError as exc:
        if "HTTP 403" not in str(exc):
            raise
        licence = licence_named(exc.bmc_messages)
        raise BMCTaskFailedError(
            f"{what}: the BMC needs the licence {licence} for this update (HTTP 403); activate it on the BMC",
            bmc_messages=exc.bmc_messages,
        ) from exc
    task = task_uri(conn, response, what)
    if apply_time != "OnStartUpdateRequest":
        return task
    if start_update_target is None:
        raise BMCError(f"{what}: the BMC staged the image for StartUpdate but offers no UpdateService.StartUpdate")
    logger.info("BMC {}: waiting for task {} to verify the image before StartUpdate", conn.base_url, task)
    _wait_for_verified(conn, task, read_task, timeout=VERIFY_TIMEOUT, sleep=sleep, keep_going=keep_going)
    _check(keep_going, f"task {task} verified the image, but StartUpdate was not sent: the caller's lease is gone")
    what = "start the pushed update (UpdateService.StartUpdate)"
    return task_uri(conn, send_json(conn, what, start_update_target, {}), what)


def start_staged(
    conn: Connection,
    handle: TaskHandle,
    *,
    start_update_target: str | None,
    send_json: SendJson,
    task_uri: TaskUri,
    keep_going: KeepGoing | None = None,
) -> TaskHandle:
    """``handle`` itself, unless it is a Verify task that reads ``Pending`` (an upload verified and staged, waiting
    for StartUpdate): then StartUpdate is sent and the handle of the Update task it starts is returned. Raises
    :class:`BMCUnreachableError` / :class:`BMCAuthError` when the BMC does not answer (the caller then follows
    ``handle`` as it is), :class:`BMCInterruptedError` when ``keep_going`` (the caller's fence) says stop right
    before StartUpdate."""
    if start_update_target is None:
        return handle
    try:
        doc = conn.get_json(handle.uri, action=f"read task {handle.uri}")
    except BMCError as exc:
        if isinstance(exc, BMCUnreachableError | BMCAuthError):
            raise
        return handle  # gone or unreadable: the generic rules decide
    name = doc.get("Name")
    if doc.get("TaskState") != "Pending" or not isinstance(name, str) or not name.endswith(" Verify"):
        return handle
    _check(keep_going, f"task {handle.uri} has a verified upload staged; StartUpdate not sent: the lease is gone")
    logger.info("BMC {}: task {} ({}) has a verified upload staged; starting it", conn.base_url, handle.uri, name)
    what = "start the staged update (UpdateService.StartUpdate)"
    return TaskHandle(uri=task_uri(conn, send_json(conn, what, start_update_target, {}), what), method=handle.method)
