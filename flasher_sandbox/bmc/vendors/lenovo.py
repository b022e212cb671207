"""Lenovo XCC-like firmware pushes: the claimed UpdateService, the task monitor that forgets, 503 and 413.

Modelled from Lenovo's published behaviour (Lenovo XClarity Controller Redfish REST API guide, "Update Service";
Lenovo's python-redfish-lenovo ``update_firmware.py``, which claims the service, pushes, then releases it):

* **Claim.** A client sets ``HttpPushUriTargetsBusy`` true together with ``HttpPushUriTargets`` before it pushes,
  and false (with ``HttpPushUriTargets`` emptied) after. A push while the service is not claimed is refused (400,
  naming ``HttpPushUriTargetsBusy``): the simulator is strict where the XCC guide asks for the claim.
* **Task monitor.** A push is answered 202 with only ``Location``: the task monitor, no body. The monitor answers
  202 (no body) while the task runs; the first read after the task ended answers 204 and deletes the task (the
  Task resource then answers 404), so a client must follow the Task resource, which it finds in the TaskService
  by its ``TaskMonitor``.
* **Busy.** A push while another update runs answers 503 with ``Retry-After`` (the shape's ``busy_retry_after``).
* **Too large.** A push whose ``Content-Length`` exceeds ``MaxImageSizeBytes`` is read to its end and answered 413
  (``Base.PayloadTooLarge``); nothing is installed.
* **One file per push.** ``HttpPushUri`` takes the image as the request body: one file, one task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from flasher_sandbox.bmc.errors import BASE, RedfishError, bad_request

if TYPE_CHECKING:
    from flasher_sandbox.bmc.simulator import SimulatedBmc
    from flasher_sandbox.bmc.tasks import InstallTask

_CHUNK: Final = 1 << 16


def max_image_bytes(bmc: SimulatedBmc, default: int) -> int:
    """``MaxImageSizeBytes`` of ``bmc``: its spec's, else ``default``."""
    return bmc.spec.max_image_bytes or default


def patch_claim(bmc: SimulatedBmc, body: dict[str, Any]) -> None:
    """Apply ``HttpPushUriTargetsBusy`` from a PATCH of the UpdateService (its other keys are applied by the
    caller). Raises ``RedfishError`` 400 for a value that is not a boolean."""
    if "HttpPushUriTargetsBusy" not in body:
        return
    value = body["HttpPushUriTargetsBusy"]
    if not isinstance(value, bool):
        raise bad_request(
            "PropertyValueTypeError",
            f"The value {value!r} for the property HttpPushUriTargetsBusy is not a boolean.",
            repr(value),
            "HttpPushUriTargetsBusy",
        )
    bmc.http_push_busy = value
    bmc.audit.note("claim", busy=value, targets=list(bmc.http_push_targets))


async def read_push(bmc: SimulatedBmc, request: web.Request, default_max: int) -> bytes:
    """The pushed image, once the push is allowed: 400 when the service is not claimed, 413 (after reading the
    body to its end, so that the client gets the answer) when it is larger than ``MaxImageSizeBytes``."""
    limit = max_image_bytes(bmc, default_max)
    if not bmc.http_push_busy:
        await _drain(request)
        raise bad_request(
            "ActionParameterMissing",
            "Set HttpPushUriTargetsBusy to true with HttpPushUriTargets before pushing an image to HttpPushUri.",
            "HttpPushUri",
            "HttpPushUriTargetsBusy",
        )
    size = request.content_length
    if size is not None and size > limit:
        await _drain(request)
        raise _too_large(size, limit)
    data = bytearray()
    async for chunk in request.content.iter_chunked(_CHUNK):
        data += chunk
        if len(data) > limit:
            await _drain(request)
            raise _too_large(len(data), limit)
    return bytes(data)


def _too_large(size: int, limit: int) -> RedfishError:
    return RedfishError(
        413,
        f"{BASE}.PayloadTooLarge",
        f"The image of {size} bytes is larger than MaxImageSizeBytes ({limit} bytes).",
        args=[str(size), str(limit)],
    )


async def _drain(request: web.Request) -> None:
    async for _ in request.content.iter_chunked(_CHUNK):
        pass


def accepted(task: InstallTask, headers: dict[str, str]) -> web.Response:
    """The 202 of an accepted push: the task monitor's ``Location``, no body."""
    assert task.monitor_uri is not None
    return web.Response(status=202, headers={**headers, "Location": task.monitor_uri})


def monitor_answer(bmc: SimulatedBmc, task: InstallTask, headers: dict[str, str]) -> web.Response:
    """A read of the task monitor: 202 while the task runs; 204 once it ended, and the task is deleted."""
    if not task.terminal:
        return web.Response(status=202, headers={**headers, "Retry-After": "1"})
    task.purged = True
    bmc.monitors.pop(task.id, None)
    bmc.audit.note("monitor-deleted-task", task=task.id)
    return web.Response(status=204, headers=headers)
