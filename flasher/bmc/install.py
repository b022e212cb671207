"""Starting a firmware install on a BMC, and the handle to the task it starts.

Every install request is sent exactly once (:meth:`Connector.send_once`): a retried POST could start a second
install or replay a half-read upload. The answer must name the task: a Task document in the body
(``@odata.id``), else the ``Location`` header (a Task or its task monitor; DSP0266 "Asynchronous operations").
A task monitor is resolved to its Task once, so that progress comes from the Task, not from the monitor's
HTTP 202. An answer without either is an error: without a task, the outcome cannot be followed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import requests
from loguru import logger
from sushy.exceptions import SushyError

from flasher.bmc import quirks, taskmonitor
from flasher.bmc.errors import (
    BMCError,
    BMCInterruptedError,
    BMCNotSupportedError,
    BMCRequestUnansweredError,
    BMCTaskFailedError,
    messages_of,
    translate,
    translated,
)
from flasher.bmc.models import BMCComponent, TaskHandle
from flasher.bmc.multipart import MultipartBody
from flasher.bmc.quirks import lenovo, supermicro
from flasher.bmc.session import Connection
from flasher.bmc.updateservice import UpdateService, apply_time_for, choose_method, transfer_protocol

_B = TypeVar("_B", bound="IO[bytes] | MultipartBody")

#: Seconds to wait for the BMC's answer once an image is uploaded: BMCs check the image before answering.
UPLOAD_READ_TIMEOUT = 600.0


def _json_body(response: requests.Response) -> dict[str, Any]:
    if not response.content:
        return {}
    try:
        doc = response.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _looks_like_task(doc: dict[str, Any]) -> bool:
    odata_type = str(doc.get("@odata.type") or "")
    return isinstance(doc.get("@odata.id"), str) and ("TaskState" in doc or "#Task." in odata_type)


def task_uri_from_response(conn: Connection, response: requests.Response, what: str) -> str:
    """The task URI an install answer names (body Task ``@odata.id``, else ``Location``); raises
    :class:`BMCError` when it names none."""
    body = _json_body(response)
    if _looks_like_task(body):
        return conn.relative(str(body["@odata.id"]))
    location = response.headers.get("Location")
    if location:
        return resolve_monitor(conn, conn.relative(location))
    said = messages_of(body)
    raise BMCError(
        f"{what}: the BMC answered HTTP {response.status_code} without a Location header or a task, so the "
        "install cannot be followed; read the installed version to learn what happened",
        bmc_messages=said,
    )


def resolve_monitor(conn: Connection, uri: str) -> str:
    """The Task behind ``uri`` when ``uri`` is a task monitor that answers with a Task document; else ``uri``."""
    try:
        response = conn.connector.get(uri)
    except (SushyError, requests.RequestException) as exc:  # not readable yet: poll the URI as given
        logger.debug("BMC {}: could not read {} right after the install started: {}", conn.base_url, uri, exc)
        return uri
    body = _json_body(response)
    if _looks_like_task(body):
        task = conn.relative(str(body["@odata.id"]))
        if task != uri:
            logger.debug("BMC {}: task monitor {} is task {}", conn.base_url, uri, task)
        return task
    return uri


class _Bodies:
    """Upload bodies made for one request (a fresh one per attempt), closed when the request is done."""

    def __init__(self) -> None:
        self._made: list[IO[bytes] | MultipartBody] = []

    def keep(self, body: _B) -> _B:
        self._made.append(body)
        return body

    def __enter__(self) -> _Bodies:
        return self

    def __exit__(self, *_exc: object) -> None:
        for body in self._made:
            body.close()


def _send(conn: Connection, what: str, path: str, **kwargs: Any) -> requests.Response:
    try:
        return conn.connector.send_once("POST", path, **kwargs)
    except (SushyError, requests.RequestException) as exc:
        err = translate(what, exc)
        if isinstance(err, BMCRequestUnansweredError):  # it went out, no answer came: it may have started
            note = "the install may have started: look at the BMC's tasks and the installed version"
            raise BMCRequestUnansweredError(f"{err}; {note}", bmc_messages=err.bmc_messages) from exc
        if type(err) is BMCError and getattr(exc, "status_code", None) in (400, 409, 412, 415, 422):
            # The BMC refused the request itself: the image, a parameter, or a conflicting job (iDRAC LC068).
            raise BMCTaskFailedError(str(err), bmc_messages=err.bmc_messages) from exc
        raise err from exc


def simple_update(
    conn: Connection, service: UpdateService, component: BMCComponent, image_url: str, apply_time: str | None
) -> str:
    """POST SimpleUpdate (``ImageURI``, ``TransferProtocol``, ``Targets``, apply time when given); returns the
    task URI.

    ``Targets`` is the component's URI whenever flasher knows it, advertised or not: some BMCs require it without
    listing it in ``Targets@Redfish.AllowableValues`` or an ActionInfo (sushy-tools answers 400 ``Missing
    ImageURI and/or Targets.``), and a BMC given no targets may flash every device the image fits.
    """
    assert service.simple_update_target is not None
    payload: dict[str, Any] = {"ImageURI": image_url}
    protocol = transfer_protocol(service, image_url)
    if protocol is not None:
        payload["TransferProtocol"] = protocol
    if component.uri:
        payload["Targets"] = [component.uri]
    if apply_time is not None:
        payload["@Redfish.OperationApplyTime"] = apply_time
    what = f"start SimpleUpdate of {component.slug} {component.id!r}"
    response = _send(conn, what, service.simple_update_target, json=payload)
    return task_uri_from_response(conn, response, what)


def send_multipart(
    conn: Connection, what: str, push_uri: str, parameters: dict[str, Any], image_path: Path
) -> requests.Response:
    """POST ``UpdateParameters`` and the image (streamed from disk) to ``push_uri`` once; raises the driver's errors."""
    boundary = secrets.token_hex(16)
    with _Bodies() as bodies:
        return _send(
            conn,
            what,
            push_uri,
            body=lambda: bodies.keep(MultipartBody(parameters, image_path, boundary=boundary)),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            read_timeout=UPLOAD_READ_TIMEOUT,
        )


def send_json(conn: Connection, what: str, target: str, payload: dict[str, Any]) -> requests.Response:
    """POST ``payload`` as JSON to ``target`` once (an action); raises the driver's errors."""
    return _send(conn, what, target, json=payload)


def multipart_push(
    conn: Connection,
    service: UpdateService,
    component: BMCComponent,
    image_path: Path,
    apply_time: str | None,
    *,
    keep_going: Callable[[], bool] | None = None,
) -> str:
    """POST the image to ``MultipartHttpPushUri`` (streamed from disk), then ``StartUpdate`` when the apply time
    is ``OnStartUpdateRequest``; returns the task URI. A Supermicro BMC gets the options that keep its settings and
    its StartUpdate once the upload is verified (:mod:`flasher.bmc.quirks.supermicro`), ``keep_going`` (the
    caller's fence) asked before it."""
    push_uri = service.capabilities.multipart_push_uri
    assert push_uri is not None
    if apply_time == "OnStartUpdateRequest" and service.start_update_target is None:
        raise BMCNotSupportedError(
            "apply time OnStartUpdateRequest needs the UpdateService.StartUpdate action, which the BMC lacks"
        )
    if quirks.detect_vendor(conn.root_json()) == "supermicro":
        return supermicro.multipart_push(
            conn,
            push_uri=push_uri,
            start_update_target=service.start_update_target,
            component=component,
            image_path=image_path,
            apply_time=apply_time,
            send_multipart=send_multipart,
            send_json=send_json,
            task_uri=task_uri_from_response,
            read_task=taskmonitor.read_task,
            keep_going=keep_going,
        )
    parameters: dict[str, Any] = {"Targets": [component.uri] if component.uri else []}
    if apply_time is not None:
        parameters["@Redfish.OperationApplyTime"] = apply_time
    what = f"push {image_path.name} to {component.slug} {component.id!r} (multipart)"
    response = send_multipart(conn, what, push_uri, parameters, image_path)
    if apply_time == "OnStartUpdateRequest":
        assert service.start_update_target is not None
        if keep_going is not None and not keep_going():
            raise BMCInterruptedError("the image was pushed, but StartUpdate was not sent: the caller's lease is gone")
        what = "start the pushed update (UpdateService.StartUpdate)"
        response = send_json(conn, what, service.start_update_target, {})
    return task_uri_from_response(conn, response, what)


def push_file(conn: Connection, what: str, push_uri: str, image_path: Path) -> requests.Response:
    """POST the raw image at ``image_path`` to ``push_uri`` once (streamed from disk); raises the driver's errors."""
    with _Bodies() as bodies:
        return _send(
            conn,
            what,
            push_uri,
            body=lambda: bodies.keep(image_path.open("rb")),
            headers={"Content-Type": "application/octet-stream"},
            read_timeout=UPLOAD_READ_TIMEOUT,
        )


def http_push(
    conn: Connection, service: UpdateService, component: BMCComponent, image_path: Path, apply_time: str | None
) -> str:
    """Set ``HttpPushUriTargets`` (when the BMC has it) and the push apply time, then POST the raw image to
    ``HttpPushUri``; returns the task URI. A Lenovo XCC claims and releases the targets and is followed by its Task
    (:mod:`flasher.bmc.quirks.lenovo`).

    The push apply time is a setting of the whole UpdateService (``HttpPushUriOptions``) that stays as the last
    client left it (OpenBMC, iDRAC): when none was asked for and the BMC reports one other than ``Immediate``,
    ``Immediate`` is set (when offered), so a value left by someone else never stages the image unseen. This holds
    for every vendor, an XCC's claim included."""
    push_uri = service.capabilities.http_push_uri
    assert push_uri is not None
    offered = not service.http_push_apply_times or "Immediate" in service.http_push_apply_times
    if apply_time is None and service.http_push_apply_time not in (None, "Immediate") and offered:
        logger.info(
            "BMC {}: HttpPushUri apply time is {} (left by another client); setting Immediate",
            conn.base_url,
            service.http_push_apply_time,
        )
        apply_time = "Immediate"
    if quirks.detect_vendor(conn.root_json()) == "lenovo":
        return lenovo.http_push(
            conn,
            service_uri=service.uri,
            push_uri=push_uri,
            component=component,
            image_path=image_path,
            apply_time=apply_time,
            send=push_file,
        )
    if service.http_push_takes_targets and service.http_push_targets_busy:
        raise BMCError("another client holds HttpPushUriTargets (HttpPushUriTargetsBusy is true); not pushing")
    patch: dict[str, Any] = {}
    if service.http_push_takes_targets and component.uri:
        patch["HttpPushUriTargets"] = [component.uri]
    if apply_time is not None:
        patch["HttpPushUriOptions"] = {"HttpPushUriApplyTime": {"ApplyTime": apply_time}}
    if patch:
        with translated("set HttpPushUriTargets / apply time on the UpdateService"):
            conn.connector.patch(service.uri, data=patch)
    what = f"push {image_path.name} to {component.slug} {component.id!r} (HttpPushUri)"
    return task_uri_from_response(conn, push_file(conn, what, push_uri, image_path), what)


def start_install(
    conn: Connection,
    service: UpdateService,
    component: BMCComponent,
    *,
    image_url: str | None,
    image_path: Path | None,
    method: str,
    apply_time: str | None,
    keep_going: Callable[[], bool] | None = None,
) -> TaskHandle:
    """Choose the method (:func:`~flasher.bmc.updateservice.choose_method`) and start the install; ``keep_going``
    (the caller's fence) is asked before a second request that starts it (``StartUpdate`` after a push)."""
    if image_path is not None and not image_path.is_file():
        raise ValueError(f"image_path {str(image_path)!r} is not a file")
    chosen = choose_method(service, method, image_url, image_path is not None)
    when = apply_time_for(service, chosen, apply_time)
    logger.info(
        "BMC {}: installing {} {!r} (now {}) by {}{}",
        conn.base_url,
        component.slug,
        component.id,
        component.version,
        chosen,
        f", apply time {when}" if when else "",
    )
    if chosen == "simple_update":
        assert image_url is not None
        uri = simple_update(conn, service, component, image_url, when)
    elif chosen == "multipart":
        assert image_path is not None
        uri = multipart_push(conn, service, component, image_path, when, keep_going=keep_going)
    else:
        assert image_path is not None
        uri = http_push(conn, service, component, image_path, when)
    logger.info("BMC {}: install of {} {!r} runs as task {}", conn.base_url, component.slug, component.id, uri)
    return TaskHandle(uri=uri, method=chosen)
