"""Lenovo XClarity Controller (XCC): pushing an image to ``HttpPushUri`` the way XCC wants it.

Sources: Lenovo XClarity Controller Redfish REST API guide ("Update Service": ``HttpPushUriTargetsBusy``,
``HttpPushUriTargets``, ``MaxImageSizeBytes``); Lenovo's python-redfish-lenovo ``update_firmware.py`` (claims the
service, pushes, follows the task, releases the service); DSP0268 UpdateService (``HttpPushUriTargetsBusy``: a
client sets it true before it uses ``HttpPushUriTargets`` and false after) and DSP0266 "Asynchronous operations"
(a task monitor may be deleted once the client has read the completed operation).

What flasher does on an XCC (recognised by ServiceRoot ``Vendor`` ``Lenovo`` or an ``Oem.Lenovo`` key):

1. Wait, bounded by ``bmc.busy_wait``, while another client holds the push targets (``HttpPushUriTargetsBusy``).
2. Claim: PATCH ``HttpPushUriTargetsBusy: true`` with ``HttpPushUriTargets`` (the component) and the apply time.
3. Push the one image (``HttpPushUri`` takes one file per request). A 503 (another update runs) is waited out,
   bounded by ``bmc.busy_wait``, the same image pushed again (a 503 means the BMC took nothing); a 413 fails the
   component saying the image is larger than the BMC accepts (``MaxImageSizeBytes``).
4. Release, whatever happened: PATCH ``HttpPushUriTargetsBusy: false`` and ``HttpPushUriTargets: []``.
5. Follow the Task resource, never the task monitor: XCC answers the push with the monitor's ``Location`` only,
   and reading the monitor of a finished task deletes the task (with its messages, and so the reason a failed
   install failed). The Task is found in the TaskService by its ``TaskMonitor`` property.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from loguru import logger

from flasher.bmc.errors import BMCError, BMCTaskFailedError, BMCTimeoutError, BMCUnreachableError, translated
from flasher.bmc.models import BMCComponent
from flasher.bmc.quirks import detect_vendor
from flasher.bmc.session import Connection

#: Tasks read, newest first, to find the Task behind a task monitor.
MAX_TASKS_SCANNED = 64

Send = Callable[..., requests.Response]


def is_lenovo(root: dict[str, Any]) -> bool:
    """Whether a ServiceRoot document is a Lenovo XCC's, as :func:`flasher.bmc.quirks.detect_vendor` reads it
    (``Vendor``, else the ``Oem`` keys)."""
    return detect_vendor(root) == "lenovo"


def _status(exc: BaseException) -> int | None:
    cause: BaseException | None = exc
    while cause is not None:
        status = getattr(cause, "status_code", None)
        if isinstance(status, int):
            return status
        cause = cause.__cause__
    return None


def busy_delay(poll_interval: float) -> float:
    """Seconds between two looks at a busy BMC: the poll interval, at least one second."""
    return max(poll_interval, 1.0)


def _targets_busy(conn: Connection, service_uri: str) -> bool:
    doc = conn.get_json(service_uri, action="read the UpdateService")
    return doc.get("HttpPushUriTargetsBusy") is True


def _wait_unclaimed(conn: Connection, service_uri: str, deadline: float, sleep: Callable[[float], None]) -> None:
    while _targets_busy(conn, service_uri):
        if time.monotonic() >= deadline:
            raise BMCTimeoutError(
                f"BMC {conn.base_url}: another client has held the push targets (HttpPushUriTargetsBusy) for "
                f"{conn.settings.busy_wait:.0f} s (bmc.busy_wait); not pushing"
            )
        logger.info("BMC {}: another client holds HttpPushUriTargets; waiting", conn.base_url)
        sleep(busy_delay(conn.settings.poll_interval))


def _release(conn: Connection, service_uri: str) -> None:
    try:
        with translated("release the UpdateService (HttpPushUriTargetsBusy false)"):
            conn.connector.patch(service_uri, data={"HttpPushUriTargetsBusy": False, "HttpPushUriTargets": []})
    except BMCError as exc:  # the push's own outcome matters more; say so loudly
        logger.warning("BMC {}: could not release the push targets: {}", conn.base_url, exc)


def _push(
    conn: Connection,
    send: Send,
    push_uri: str,
    image_path: Path,
    *,
    deadline: float,
    what: str,
    sleep: Callable[[float], None],
) -> requests.Response:
    size = image_path.stat().st_size
    while True:
        try:
            return send(conn, what, push_uri, image_path)
        except BMCError as exc:
            status = _status(exc)
            if status == 413:
                raise BMCTaskFailedError(
                    f"{what}: the BMC refused the image as too large (HTTP 413): {size} bytes is more than it "
                    "accepts (UpdateService MaxImageSizeBytes)",
                    bmc_messages=exc.bmc_messages,
                ) from exc
            if status != 503 or not isinstance(exc, BMCUnreachableError):
                raise
            if time.monotonic() >= deadline:
                raise BMCTimeoutError(
                    f"{what}: the BMC stayed busy with another update (HTTP 503) for {conn.settings.busy_wait:.0f} s "
                    "(bmc.busy_wait)",
                    bmc_messages=exc.bmc_messages,
                ) from exc
            logger.info("BMC {}: busy with another update (HTTP 503); pushing again later", conn.base_url)
            sleep(busy_delay(conn.settings.poll_interval))


def task_for_monitor(conn: Connection, monitor: str) -> str | None:
    """The Task whose ``TaskMonitor`` is ``monitor``, read from the TaskService newest first (at most
    :data:`MAX_TASKS_SCANNED`); ``None`` when none is. The monitor itself is never read."""
    monitor = conn.relative(monitor).rstrip("/")
    service_path = conn.link("Tasks")
    if service_path is None:
        return None
    link = conn.get_json(service_path, action="read the TaskService").get("Tasks")
    if not isinstance(link, dict) or not isinstance(link.get("@odata.id"), str):
        return None
    members = conn.get_json(link["@odata.id"], action="list the BMC's tasks").get("Members")
    paths = [m["@odata.id"] for m in members or [] if isinstance(m, dict) and isinstance(m.get("@odata.id"), str)]
    for path in reversed(paths[-MAX_TASKS_SCANNED:]):
        try:
            task = conn.get_json(path, action=f"read task {path}")
        except BMCError as exc:
            if isinstance(exc, BMCUnreachableError):
                raise
            continue
        given = task.get("TaskMonitor")
        if isinstance(given, str) and conn.relative(given).rstrip("/") == monitor:
            return conn.relative(str(task.get("@odata.id") or path))
    return None


def http_push(
    conn: Connection,
    *,
    service_uri: str,
    push_uri: str,
    component: BMCComponent,
    image_path: Path,
    apply_time: str | None,
    send: Send,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Claim, push, release (module steps 1-4); returns the Task URI to follow (step 5). ``send(conn, what, uri,
    image_path)`` POSTs the image once and raises the driver's errors (:func:`flasher.bmc.install.push_file`).

    Raises :class:`BMCTimeoutError` (busy longer than ``bmc.busy_wait``), :class:`BMCTaskFailedError` (413, or the
    BMC refused the image), and what the requests raise."""
    deadline = time.monotonic() + conn.settings.busy_wait
    what = f"push {image_path.name} to {component.slug} {component.id!r} (HttpPushUri)"
    _wait_unclaimed(conn, service_uri, deadline, sleep)
    targets = [component.uri] if component.uri else []
    claim: dict[str, Any] = {"HttpPushUriTargets": targets, "HttpPushUriTargetsBusy": True}
    if apply_time is not None:
        claim["HttpPushUriOptions"] = {"HttpPushUriApplyTime": {"ApplyTime": apply_time}}
    with translated("claim the UpdateService (HttpPushUriTargetsBusy true)"):
        conn.connector.patch(service_uri, data=claim)
    try:
        response = _push(conn, send, push_uri, image_path, deadline=deadline, what=what, sleep=sleep)
    finally:
        _release(conn, service_uri)
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
    if isinstance(body, dict) and "TaskState" in body and isinstance(body.get("@odata.id"), str):
        return conn.relative(body["@odata.id"])
    location = response.headers.get("Location")
    if not location:
        raise BMCError(f"{what}: the BMC answered HTTP {response.status_code} without a Location header")
    task = task_for_monitor(conn, location)
    if task is None:
        logger.warning(
            "BMC {}: no Task names task monitor {}; following the monitor (a finished task may then be gone)",
            conn.base_url,
            location,
        )
        return conn.relative(location)
    logger.debug("BMC {}: task monitor {} is task {}", conn.base_url, location, task)
    return task
