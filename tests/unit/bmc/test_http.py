"""HTTP edge cases of the BMC driver, against a Redfish service faked with ``responses``."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from loguru import logger
from werkzeug.formparser import parse_form_data

from flasher import redact
from flasher.bmc import (
    BMC,
    BMCAuthError,
    BMCComponent,
    BMCError,
    BMCInterruptedError,
    BMCNotSupportedError,
    BMCRequestUnansweredError,
    BMCTaskFailedError,
    BMCTimeoutError,
    BMCUnreachableError,
    SeveralSystemsError,
    SystemIdentity,
    TaskHandle,
    TaskProgress,
)
from flasher.bmc.errors import messages_of
from flasher.bmc.multipart import MultipartBody
from flasher.logs import setup_logging
from flasher.metrics import BMC_ERRORS
from tests.support.redfish_fake import (
    BASE,
    PASSWORD,
    ROOT,
    SESSIONS,
    SETTINGS,
    error_body,
    register_service,
    root_doc,
    task_doc,
    update_service_doc,
)

UPDATE = f"{BASE}/redfish/v1/UpdateService"
SIMPLE = f"{UPDATE}/Actions/UpdateService.SimpleUpdate"
TASK = f"{BASE}/redfish/v1/TaskService/Tasks/7"

BIOS = BMCComponent(
    id="BIOS",
    uri="/redfish/v1/UpdateService/FirmwareInventory/BIOS",
    slug="bios",
    name="BIOS",
    version="1.0",
    updateable=True,
    software_id=None,
    manufacturer=None,
    model=None,
    serial=None,
    related_uri=None,
)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_service(mock)
        yield mock


@pytest.fixture
def bmc(rsps: responses.RequestsMock) -> Iterator[BMC]:
    with BMC("bmc.test", "root", PASSWORD, settings=SETTINGS) as driver:
        yield driver


def _posted_json(rsps: responses.RequestsMock, url: str) -> Any:
    calls = [c for c in rsps.calls if c.request.method == "POST" and c.request.url == url]
    assert calls, f"no POST to {url}"
    return json.loads(calls[-1].request.body or b"")


# -- login ---------------------------------------------------------------------------------------------------------
def test_refused_credentials_raise_auth_error_with_the_bmc_message_and_no_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")  # sushy logs every request through the standard logging module
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG")
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
            register_service(mock, login_ok=False)
            with pytest.raises(BMCAuthError) as caught:
                BMC("https://bmc.test", "root", PASSWORD, settings=SETTINGS)
    finally:
        logger.remove(sink)
    assert "Invalid username or password." in str(caught.value)
    assert "'root'" in str(caught.value)
    assert PASSWORD not in str(caught.value)
    assert all(PASSWORD not in line for line in lines)  # never logged, before any scrubbing
    assert caplog.records
    assert all(PASSWORD not in record.getMessage() for record in caplog.records)
    assert redact.scrub(f"x {PASSWORD} y") == "x *** y"


def test_session_login_sends_credentials_and_uses_the_token(rsps: responses.RequestsMock, bmc: BMC) -> None:
    login = next(c for c in rsps.calls if c.request.url == SESSIONS)
    assert json.loads(login.request.body or b"") == {"UserName": "root", "Password": PASSWORD}
    systems = next(c for c in rsps.calls if str(c.request.url).endswith("/redfish/v1/Systems"))
    assert systems.request.headers["X-Auth-Token"] == "tok"


def _credential_requests(mock: responses.RequestsMock) -> list[str]:
    """The requests that presented the credentials: session log-ins and requests with Basic auth."""
    return [
        f"{c.request.method} {c.request.url}"
        for c in mock.calls
        if (c.request.url == SESSIONS and c.request.method == "POST") or "Authorization" in c.request.headers
    ]


def test_a_refused_session_login_is_not_tried_again_with_basic_auth() -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_service(mock, login_ok=False)
        with pytest.raises(BMCAuthError) as caught:
            BMC("https://bmc.test", "root", PASSWORD, settings=SETTINGS)
        assert _credential_requests(mock) == [f"POST {SESSIONS}"]
    assert str(caught.value).startswith(
        "log in to the BMC at https://bmc.test as 'root': the BMC refused the credentials (HTTP 401)"
    )


@pytest.mark.parametrize("status", [404, 405, 501])
def test_basic_auth_only_without_a_session_service(status: int) -> None:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(ROOT, json=root_doc())
        mock.post(SESSIONS, status=status, json=error_body("Sessions are not supported."))
        mock.get(f"{BASE}/redfish/v1/Systems", status=401, json=error_body("Invalid username or password."))
        with pytest.raises(BMCAuthError, match=r"as 'root': the BMC refused the credentials \(HTTP 401\)"):
            BMC("https://bmc.test", "root", PASSWORD, settings=SETTINGS)
        assert _credential_requests(mock) == [f"POST {SESSIONS}", f"GET {BASE}/redfish/v1/Systems"]
        mock.replace(responses.GET, f"{BASE}/redfish/v1/Systems", json={"Members": []})
        with BMC("https://bmc.test", "root", PASSWORD, settings=SETTINGS) as bmc:
            assert bmc._conn.session_key() is None  # logged in with Basic auth
        basic = mock.calls[-1].request.headers["Authorization"]
        assert basic.startswith("Basic ")


def test_sushy_log_lines_go_to_debug() -> None:
    lines: list[tuple[str, str]] = []
    root = logging.getLogger()
    handlers, level_before = root.handlers[:], root.level

    def keep(message: Any) -> None:
        lines.append((message.record["level"].name, message.record["message"]))

    try:
        for level in ("INFO", "DEBUG"):
            setup_logging(level, "text", sink=io.StringIO())
            logger.add(keep, level=level)
            logging.getLogger("sushy.connector").error("Authentication to the session service failed.")
            logging.getLogger("apscheduler.scheduler").error("a job failed")
        assert lines == [
            ("ERROR", "a job failed"),  # at INFO, sushy's line is below what the operator asked for
            ("DEBUG", "Authentication to the session service failed."),
            ("ERROR", "a job failed"),
        ]
    finally:
        logger.remove()
        logger.add(sys.stderr)
        root.handlers[:] = handlers
        root.setLevel(level_before)


def test_connection_refused_is_unreachable() -> None:
    with responses.RequestsMock() as mock:
        mock.get(ROOT, body=requests.ConnectionError("[Errno 111] Connection refused"))
        with pytest.raises(BMCUnreachableError, match="connection refused"):
            BMC("bmc.test", "root", PASSWORD, settings=SETTINGS)


# -- update capabilities and method choice ---------------------------------------------------------------------------
def test_capabilities_from_inline_allowable_values_and_push_uris(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(
        UPDATE,
        json=update_service_doc(
            MultipartHttpPushUri="/redfish/v1/UpdateService/upload",
            **{"MultipartHttpPushUri@Redfish.OperationApplyTimeSupport": {"SupportedValues": ["Immediate", "OnReset"]}},
        ),
    )
    caps = bmc.update_capabilities()
    assert caps.simple_update is True
    assert caps.transfer_protocols == ("HTTP", "HTTPS")
    assert caps.multipart_push_uri == "/redfish/v1/UpdateService/upload"
    assert caps.http_push_uri is None
    assert caps.apply_times == ("Immediate", "OnReset")
    assert caps.methods == ("simple_update", "multipart")


def test_explicit_method_the_bmc_lacks_names_what_it_offers(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(UPDATE, json=update_service_doc())
    with pytest.raises(BMCNotSupportedError, match=r"http_push.*offers: simple_update \(HTTP, HTTPS\)"):
        bmc.install(BIOS, image_path=Path(__file__), method="http_push")


def test_scheme_not_allowed_and_no_file_is_not_supported(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(UPDATE, json=update_service_doc())
    with pytest.raises(BMCNotSupportedError, match="offers: simple_update"):
        bmc.install(BIOS, image_url="ftp://files.test/bios.bin")


def test_install_without_image_is_a_value_error(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(UPDATE, json=update_service_doc())
    with pytest.raises(ValueError, match="image_url"):
        bmc.install(BIOS)


# -- SimpleUpdate ----------------------------------------------------------------------------------------------------
def test_simple_update_sends_targets_even_when_not_advertised(rsps: responses.RequestsMock, bmc: BMC) -> None:
    # Issue 12, item 16: a BMC may require Targets without advertising them (sushy-tools does).
    rsps.get(UPDATE, json=update_service_doc())
    rsps.post(SIMPLE, status=202, headers={"Location": "/redfish/v1/TaskService/Tasks/7"})
    rsps.get(TASK, json=task_doc("7", "New"))
    handle = bmc.install(BIOS, image_url="http://files.test/bios.bin")
    assert handle == TaskHandle(uri="/redfish/v1/TaskService/Tasks/7", method="simple_update")
    assert _posted_json(rsps, SIMPLE) == {
        "ImageURI": "http://files.test/bios.bin",
        "TransferProtocol": "HTTP",
        "Targets": [BIOS.uri],
    }


def test_an_error_with_only_message_ids_shows_the_bmcs_message(rsps: responses.RequestsMock, bmc: BMC) -> None:
    # Issue 12, item 13: sushy-tools' error body; the operator reads its sentence, not Base.1.0.GeneralError.
    body = {
        "error": {
            "code": "Base.1.0.GeneralError",
            "message": "Missing ImageURI and/or Targets.",
            "@Message.ExtendedInfo": [{"MessageId": "Base.1.0.GeneralError"}],
        }
    }
    rsps.get(UPDATE, json=update_service_doc())
    rsps.post(SIMPLE, status=400, json=body)
    with pytest.raises(BMCTaskFailedError) as caught:
        bmc.install(BIOS, image_url="http://files.test/bios.bin")
    assert caught.value.bmc_messages == ("Missing ImageURI and/or Targets.",)
    assert "GeneralError" not in str(caught.value)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"error": {"message": "m", "@Message.ExtendedInfo": [{"MessageId": "A.1.B"}]}}, ("m",)),
        ({"error": {"message": "m", "@Message.ExtendedInfo": [{"MessageId": "A.1.B", "Message": "x"}]}}, ("x",)),
        ({"error": {"@Message.ExtendedInfo": [{"MessageId": "A.1.B"}, {"MessageId": "A.1.C"}]}}, ("A.1.B", "A.1.C")),
        ({"error": {"message": " ", "@Message.ExtendedInfo": {"MessageId": "A.1.B"}}}, ("A.1.B",)),
        ({"@Message.ExtendedInfo": [{"Message": "y"}, {"Message": "y"}]}, ("y",)),
        ({"error": "not an object"}, ()),
        ([{"MessageId": "T.1.Done"}, {"Message": "done"}], ("done",)),
    ],
)
def test_messages_of(body: Any, said: tuple[str, ...]) -> None:
    assert messages_of(body) == said


def test_a_404_names_the_resource(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(f"{BASE}/redfish/v1/Chassis/9", status=404, json=error_body("The resource was not found."))
    with pytest.raises(BMCNotSupportedError) as caught:
        bmc._conn.get_json("/redfish/v1/Chassis/9", action="read the chassis")
    assert str(caught.value) == (
        "read the chassis: the BMC has no resource /redfish/v1/Chassis/9 (HTTP 404)"
        " (BMC says: The resource was not found.)"
    )


def test_simple_update_targets_and_protocol_from_action_info(rsps: responses.RequestsMock, bmc: BMC) -> None:
    doc = update_service_doc()
    doc["Actions"]["#UpdateService.SimpleUpdate"] = {
        "target": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
        "@Redfish.ActionInfo": "/redfish/v1/UpdateService/SimpleUpdateActionInfo",
    }
    rsps.get(UPDATE, json=doc)
    rsps.get(
        f"{UPDATE}/SimpleUpdateActionInfo",
        json={
            "Parameters": [
                {"Name": "ImageURI", "Required": True},
                {"Name": "TransferProtocol", "AllowableValues": ["https", "http"]},
                {"Name": "Targets", "Required": False},
            ]
        },
    )
    rsps.post(SIMPLE, status=202, json=task_doc("7", "New"))
    handle = bmc.install(BIOS, image_url="https://files.test/bios.bin", apply_time="OnReset")
    assert handle.uri == "/redfish/v1/TaskService/Tasks/7"
    assert _posted_json(rsps, SIMPLE) == {
        "ImageURI": "https://files.test/bios.bin",
        "TransferProtocol": "https",
        "Targets": [BIOS.uri],
        "@Redfish.OperationApplyTime": "OnReset",
    }


def test_202_without_location_or_task_is_a_clear_error(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(UPDATE, json=update_service_doc())
    rsps.post(SIMPLE, status=202)
    with pytest.raises(BMCError, match="without a Location header"):
        bmc.install(BIOS, image_url="http://files.test/bios.bin")


def test_task_monitor_location_is_resolved_to_the_task(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(UPDATE, json=update_service_doc())
    rsps.post(SIMPLE, status=202, headers={"Location": f"{BASE}/redfish/v1/TaskService/TaskMonitors/7"})
    rsps.get(f"{BASE}/redfish/v1/TaskService/TaskMonitors/7", status=202, json=task_doc("7", "Running", 5))
    handle = bmc.install(BIOS, image_url="http://files.test/bios.bin")
    assert handle.uri == "/redfish/v1/TaskService/Tasks/7"


def test_rejected_image_is_task_failed_with_the_bmc_message(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(UPDATE, json=update_service_doc())
    rsps.post(SIMPLE, status=400, json=error_body("The firmware image is not valid for this system."))
    with pytest.raises(BMCTaskFailedError, match="not valid for this system"):
        bmc.install(BIOS, image_url="http://files.test/bios.bin")


def test_install_post_is_not_retried_on_a_read_timeout(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(UPDATE, json=update_service_doc())
    rsps.post(SIMPLE, body=requests.ReadTimeout("read timed out"))
    with pytest.raises(BMCRequestUnansweredError, match="read timeout"):
        bmc.install(BIOS, image_url="http://files.test/bios.bin")
    assert sum(1 for c in rsps.calls if c.request.url == SIMPLE) == 1


def test_an_install_post_that_never_connected_is_plainly_unreachable(rsps: responses.RequestsMock, bmc: BMC) -> None:
    """Refused before anything was sent: safe to send again, so not a BMCRequestUnansweredError."""
    import urllib3

    refused = requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(
            None,  # type: ignore[arg-type]
            SIMPLE,
            urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused"),  # type: ignore[arg-type]
        )
    )
    rsps.get(UPDATE, json=update_service_doc())
    rsps.post(SIMPLE, body=refused)
    with pytest.raises(BMCUnreachableError) as caught:
        bmc.install(BIOS, image_url="http://files.test/bios.bin")
    assert not isinstance(caught.value, BMCRequestUnansweredError)


# -- push ------------------------------------------------------------------------------------------------------------
def test_multipart_push_streams_parameters_and_file(rsps: responses.RequestsMock, bmc: BMC, tmp_path: Path) -> None:
    image = tmp_path / "bios.bin"
    image.write_bytes(bytes(range(256)) * 1000)
    rsps.get(UPDATE, json=update_service_doc(MultipartHttpPushUri="/redfish/v1/UpdateService/upload"))
    upload = f"{UPDATE}/upload"
    rsps.post(upload, status=202, headers={"Location": "/redfish/v1/TaskService/Tasks/7"})
    rsps.get(TASK, json=task_doc("7", "New"))
    handle = bmc.install(BIOS, image_path=image)
    assert handle.method == "multipart"
    request = next(c.request for c in rsps.calls if c.request.url == upload)
    payload = request.body  # responses reads the streamed body so that tests can look at it
    assert isinstance(payload, bytes)
    assert int(request.headers["Content-Length"]) == len(payload)
    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": request.headers["Content-Type"],
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
    }
    _, form, files = parse_form_data(environ)
    assert json.loads(form["UpdateParameters"]) == {"Targets": [BIOS.uri], "@Redfish.OperationApplyTime": "Immediate"}
    assert files["UpdateFile"].filename == "bios.bin"
    assert files["UpdateFile"].read() == image.read_bytes()


def test_multipart_body_reads_the_same_in_any_chunk_size(tmp_path: Path) -> None:
    image = tmp_path / "x.bin"
    image.write_bytes(b"abcdefghij" * 701)
    whole = MultipartBody({"Targets": []}, image, boundary="b").read()
    assert len(whole) == len(MultipartBody({"Targets": []}, image, boundary="b"))
    for size in (1, 7, 4096, 65536):
        body = MultipartBody({"Targets": []}, image, boundary="b")
        pieces = []
        while chunk := body.read(size):
            assert len(chunk) <= size
            pieces.append(chunk)
        assert b"".join(pieces) == whole


def test_http_push_sets_targets_then_posts_the_raw_image(
    rsps: responses.RequestsMock, bmc: BMC, tmp_path: Path
) -> None:
    image = tmp_path / "bmc.bin"
    image.write_bytes(b"\x7fIMAGE" * 100)
    rsps.get(UPDATE, json=update_service_doc(HttpPushUri="/redfish/v1/UpdateService/push", HttpPushUriTargets=[]))
    rsps.patch(UPDATE, status=200, json={})
    rsps.post(f"{UPDATE}/push", status=202, json=task_doc("7", "New"))
    handle = bmc.install(BIOS, image_path=image, method="http_push")
    assert handle == TaskHandle(uri="/redfish/v1/TaskService/Tasks/7", method="http_push")
    patch = next(c.request for c in rsps.calls if c.request.method == "PATCH")
    assert json.loads(patch.body or b"") == {"HttpPushUriTargets": [BIOS.uri]}
    push = next(c.request for c in rsps.calls if c.request.url == f"{UPDATE}/push")
    assert push.headers["Content-Type"] == "application/octet-stream"
    assert int(push.headers["Content-Length"]) == image.stat().st_size


@pytest.mark.parametrize(("left", "sent"), [("OnReset", "Immediate"), ("Immediate", None)])
def test_http_push_sets_an_apply_time_left_by_another_client_back_to_immediate(
    rsps: responses.RequestsMock, bmc: BMC, tmp_path: Path, left: str, sent: str | None
) -> None:
    """OpenBMC: ``HttpPushUriOptions`` is one setting of the whole UpdateService, kept as the last client left it."""
    image = tmp_path / "bmc.bin"
    image.write_bytes(b"image")
    allowed = ["Immediate", "OnReset"]
    options = {"HttpPushUriApplyTime": {"ApplyTime": left, "ApplyTime@Redfish.AllowableValues": allowed}}
    rsps.get(UPDATE, json=update_service_doc(HttpPushUri="/redfish/v1/UpdateService/push", HttpPushUriOptions=options))
    rsps.patch(UPDATE, status=200, json={})
    rsps.post(f"{UPDATE}/push", status=202, json=task_doc("7", "New"))
    bmc.install(BIOS, image_path=image, method="http_push")
    patches = [json.loads(c.request.body or b"") for c in rsps.calls if c.request.method == "PATCH"]
    if sent is None:
        assert patches == []
    else:
        assert patches == [{"HttpPushUriOptions": {"HttpPushUriApplyTime": {"ApplyTime": sent}}}]


# -- task reading ----------------------------------------------------------------------------------------------------
def _handle() -> TaskHandle:
    return TaskHandle(uri="/redfish/v1/TaskService/Tasks/7", method="simple_update")


def test_running_task_answering_200_is_not_finished(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(TASK, status=200, json=task_doc("7", "Running", 40, TaskStatus="OK"))
    progress = bmc.task_progress(_handle())
    assert (progress.state, progress.percent, progress.terminal, progress.succeeded) == ("Running", 40, False, False)


def test_unknown_task_state_is_not_terminal(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(TASK, json=task_doc("7", "Verifying", 12))
    progress = bmc.task_progress(_handle())
    assert (progress.state, progress.terminal, progress.awaiting_reset) == ("Verifying", False, False)


@pytest.mark.parametrize("body", [["not", "an", "object"], {"Id": "7", "Name": "no state"}, "garbage"])
def test_malformed_task_is_unknown_and_not_terminal(rsps: responses.RequestsMock, bmc: BMC, body: Any) -> None:
    if isinstance(body, str):
        rsps.get(TASK, status=200, body=body, content_type="application/json")
    else:
        rsps.get(TASK, status=200, json=body)
    progress = bmc.task_progress(_handle())
    assert (progress.state, progress.terminal, progress.succeeded) == ("Unknown", False, False)


def test_completed_with_critical_health_fails_with_messages(rsps: responses.RequestsMock, bmc: BMC) -> None:
    messages = [{"MessageId": "Update.1.0.ApplyFailed", "Message": "Flash write failed.", "Severity": "Critical"}]
    rsps.get(TASK, json=task_doc("7", "Completed", 100, TaskStatus="Critical", Messages=messages))
    progress = bmc.task_progress(_handle())
    assert (progress.terminal, progress.succeeded, progress.messages) == (True, False, ("Flash write failed.",))
    with pytest.raises(BMCTaskFailedError, match=r"ended Completed with health Critical.*Flash write failed"):
        bmc.wait_for_task(_handle(), timeout=5)


def test_pending_task_awaits_a_host_reset(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(TASK, json=task_doc("7", "Pending", 0))
    progress = bmc.wait_for_task(_handle(), timeout=5)
    assert (progress.state, progress.awaiting_reset, progress.terminal) == ("Pending", True, False)


def test_await_to_activate_for_the_manager_is_no_host_reset(rsps: responses.RequestsMock, bmc: BMC) -> None:
    messages = [
        {"MessageId": "Update.1.0.AwaitToActivate", "Message": "Awaiting activation.", "MessageArgs": ["img", "BMC"]},
        {"MessageId": "Base.1.10.ResetRequired", "MessageArgs": ["/redfish/v1/Managers/bmc", "ForceRestart"]},
    ]
    rsps.get(TASK, json=task_doc("7", "Completed", 100, TaskStatus="OK", Messages=messages))
    assert bmc.task_progress(_handle()).awaiting_reset is False


def test_deleted_dell_task_is_read_from_the_dell_job(rsps: responses.RequestsMock, bmc: BMC) -> None:
    jid = "JID_123456789012"
    rsps.get(f"{BASE}/redfish/v1/TaskService/Tasks/{jid}", status=404, json=error_body("not found"))
    rsps.get(
        f"{BASE}/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/{jid}",
        json={"Id": jid, "JobState": "Scheduled", "PercentComplete": 0, "Message": "Task successfully scheduled."},
    )
    progress = bmc.task_progress(TaskHandle(uri=f"/redfish/v1/TaskService/Tasks/{jid}", method="simple_update"))
    assert (progress.state, progress.awaiting_reset, progress.messages) == (
        "Scheduled",
        True,
        ("Task successfully scheduled.",),
    )


def test_task_the_bmc_forgot_is_vanished_not_failed(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(TASK, status=404, json=error_body("The resource was not found."))
    progress = bmc.wait_for_task(_handle(), timeout=5)
    assert (progress.state, progress.terminal, progress.succeeded) == ("Vanished", True, True)


def test_monitor_without_task_body_then_done(rsps: responses.RequestsMock, bmc: BMC) -> None:
    monitor = f"{BASE}/redfish/v1/TaskMonitors/7"
    rsps.get(monitor, status=202)
    handle = TaskHandle(uri="/redfish/v1/TaskMonitors/7", method="multipart")
    assert bmc.task_progress(handle).terminal is False
    rsps.replace(responses.GET, monitor, status=204)
    done = bmc.task_progress(handle)
    assert (done.state, done.terminal, done.succeeded) == ("Completed", True, True)


# -- waiting ---------------------------------------------------------------------------------------------------------
def test_wait_rides_out_5xx_and_connection_errors_and_logs_in_again(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(TASK, json=task_doc("7", "Running", 30))
    rsps.get(TASK, status=503, json=error_body("Service unavailable while flashing."))
    rsps.get(TASK, status=503, json=error_body("Service unavailable while flashing."))
    rsps.get(TASK, body=requests.ConnectionError("Connection refused"))
    rsps.get(TASK, json=task_doc("7", "Completed", 100, TaskStatus="OK"))
    logins_before = sum(1 for c in rsps.calls if c.request.url == SESSIONS)
    seen: list[TaskProgress] = []
    result = bmc.wait_for_task(_handle(), timeout=30, on_progress=seen.append)
    assert result.succeeded and result.state == "Completed"
    states = [p.state for p in seen]
    assert states[0] == "Running" and states[-1] == "Completed" and "Offline" in states
    offline = next(p for p in seen if p.state == "Offline")
    assert offline.percent == 30 and not offline.terminal
    assert sum(1 for c in rsps.calls if c.request.url == SESSIONS) > logins_before


def test_wait_gives_up_after_offline_grace(rsps: responses.RequestsMock) -> None:
    settings = SETTINGS.model_copy(update={"offline_grace": 0.2})
    rsps.get(TASK, body=requests.ConnectionError("Connection refused"))
    with BMC("bmc.test", "root", PASSWORD, settings=settings) as driver:
        rsps.replace(responses.GET, ROOT, body=requests.ConnectionError("Connection refused"))
        with pytest.raises(BMCUnreachableError, match="offline_grace"):
            driver.wait_for_task(_handle(), timeout=30)


def test_wait_times_out_with_the_last_state(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(TASK, json=task_doc("7", "Running", 55))
    with pytest.raises(BMCTimeoutError, match="Running 55%"):
        bmc.wait_for_task(_handle(), timeout=0.05)


def test_keep_going_false_interrupts(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(TASK, json=task_doc("7", "Running", 10))
    calls = iter([True, False])
    with pytest.raises(BMCInterruptedError, match="may still be installing"):
        bmc.wait_for_task(_handle(), timeout=30, keep_going=lambda: next(calls, False))


def test_exception_state_fails_and_is_counted_once(rsps: responses.RequestsMock, bmc: BMC) -> None:
    messages = [{"MessageId": "Update.1.0.TransferFailed", "Message": "Image download failed.", "Severity": "Critical"}]
    rsps.get(TASK, json=task_doc("7", "Exception", 20, TaskStatus="Critical", Messages=messages))
    counter = BMC_ERRORS.labels(error="BMCTaskFailedError")
    before = counter._value.get()
    with pytest.raises(BMCTaskFailedError, match="Image download failed"):
        bmc.wait_for_task(_handle(), timeout=5)
    assert counter._value.get() == before + 1


# -- running tasks, BMC reset ----------------------------------------------------------------------------------------
def test_running_tasks_names_the_install_method(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(UPDATE, json=update_service_doc())
    rsps.get(f"{BASE}/redfish/v1/TaskService", json={"Tasks": {"@odata.id": "/redfish/v1/TaskService/Tasks"}})
    rsps.get(
        f"{BASE}/redfish/v1/TaskService/Tasks",
        json={"Members": [{"@odata.id": f"/redfish/v1/TaskService/Tasks/{n}"} for n in (1, 2, 3)]},
    )
    rsps.get(f"{BASE}/redfish/v1/TaskService/Tasks/1", json=task_doc("1", "Completed", 100))
    rsps.get(
        f"{BASE}/redfish/v1/TaskService/Tasks/2",
        json=task_doc(
            "2", "Running", 50, Payload={"TargetUri": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"}
        ),
    )
    rsps.get(f"{BASE}/redfish/v1/TaskService/Tasks/3", json=task_doc("3", "Pending"))
    assert bmc.running_tasks() == [
        TaskHandle(uri="/redfish/v1/TaskService/Tasks/2", method="simple_update"),
        TaskHandle(uri="/redfish/v1/TaskService/Tasks/3", method="unknown"),
    ]


def test_manager_without_actions_cannot_be_reset(rsps: responses.RequestsMock, bmc: BMC) -> None:
    rsps.get(f"{BASE}/redfish/v1/Managers", json={"Members": [{"@odata.id": "/redfish/v1/Managers/1"}]})
    rsps.get(f"{BASE}/redfish/v1/Managers/1", json={"@odata.id": "/redfish/v1/Managers/1", "Id": "1", "Name": "BMC"})
    with pytest.raises(BMCNotSupportedError, match="no actions"):
        bmc.reset_bmc()


# -- the awaiting-reset rule -----------------------------------------------------------------------------------------
AWAIT = {"MessageId": "Update.1.0.AwaitToActivate", "Message": "Awaiting a host reset.", "MessageArgs": ["i", "BIOS"]}
INSTALLING = {"MessageId": "Update.1.0.InstallingOnComponent", "Message": "Installing on BIOS."}
DONE = {"MessageId": "Update.1.0.UpdateSuccessful", "Message": "Updated."}


@pytest.mark.parametrize(
    ("state", "messages", "awaiting"),
    [
        ("Pending", [], True),
        ("Scheduled", [], True),  # not a Redfish TaskState (sushy gives None): read raw
        ("New", [AWAIT], True),
        ("Running", [AWAIT], False),  # never while running: the host is being flashed
        ("New", [AWAIT, INSTALLING], False),  # a stale AwaitToActivate does not count
        ("Completed", [DONE, AWAIT], True),  # staged: applied at the next reset (OpenBMC)
        ("Completed", [AWAIT, INSTALLING, DONE], False),
        ("Exception", [AWAIT], False),
        ("New", [{"MessageId": "IDRAC.2.8.JCP001", "Message": "Task successfully scheduled."}], True),
    ],
)
def test_awaiting_reset_rule(state: str, messages: list[dict[str, Any]], awaiting: bool) -> None:
    from flasher.bmc.taskmonitor import parse_task

    assert parse_task(task_doc("7", state, Messages=messages, TaskStatus="OK")).awaiting_reset is awaiting


def test_http_push_refused_while_another_client_holds_the_targets(
    rsps: responses.RequestsMock, bmc: BMC, tmp_path: Path
) -> None:
    image = tmp_path / "bmc.bin"
    image.write_bytes(b"image")
    rsps.get(
        UPDATE,
        json=update_service_doc(
            HttpPushUri="/redfish/v1/UpdateService/push", HttpPushUriTargets=["/x"], HttpPushUriTargetsBusy=True
        ),
    )
    with pytest.raises(BMCError, match="HttpPushUriTargetsBusy"):
        bmc.install(BIOS, image_path=image, method="http_push")
    assert not any(c.request.method in ("PATCH", "POST") and "UpdateService" in str(c.request.url) for c in rsps.calls)


# -- flasher bmc on a BMC that lacks things --------------------------------------------------------------------------
def test_cli_inventory_without_update_service_or_firmware_inventory(monkeypatch: pytest.MonkeyPatch) -> None:
    from flasher.cli import app
    from tests.support.cli import invoke

    monkeypatch.setenv("FLASHER_BMC__PASSWORD", PASSWORD)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_service(mock)
        mock.get(UPDATE, status=404, json=error_body("Not found"))
        mock.get(f"{BASE}/redfish/v1/Managers", json={"Members": [{"@odata.id": "/redfish/v1/Managers/1"}]})
        mock.get(
            f"{BASE}/redfish/v1/Managers/1",
            json={"@odata.id": "/redfish/v1/Managers/1", "Id": "1", "FirmwareVersion": "1.2.3", "ManagerType": "BMC"},
        )
        mock.get(f"{BASE}/redfish/v1/Systems/1", json={"@odata.id": "/redfish/v1/Systems/1", "Id": "1"})
        result = invoke(app, ["bmc", "inventory", "bmc.test"])
        assert result.exit_code == 0, result.output
        assert "1.2.3" in result.stdout
        assert "install methods: none" in result.stdout
        result = invoke(app, ["bmc", "power", "bmc.test"])
        assert result.exit_code == 1
        assert "reports no PowerState" in result.output
        assert "Traceback" not in result.output


# -- writes that must not be repeated ----------------------------------------------------------------------------------
SYSTEM = f"{BASE}/redfish/v1/Systems/1"
SYSTEM_RESET = f"{SYSTEM}/Actions/ComputerSystem.Reset"


def _system_doc(power: str) -> dict[str, Any]:
    return {
        "@odata.id": "/redfish/v1/Systems/1",
        "Id": "1",
        "PowerState": power,
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "PowerCycle", "ForceRestart"],
            }
        },
    }


@pytest.mark.parametrize(
    "failure",
    [
        requests.ReadTimeout("HTTPSConnectionPool(host='bmc.test', port=443): Read timed out. (read timeout=5)"),
        requests.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"),
    ],
    ids=["read-timeout", "connection-aborted"],
)
def test_a_power_action_that_got_no_answer_is_sent_once(failure: Exception) -> None:
    """sushy repeats any request that times out or loses its connection; a POST that reached the BMC may have
    run, and a second PowerCycle (or Manager.Reset) must be the caller's decision, not a hidden retry."""
    settings = SETTINGS.model_copy(update={"retries": 3})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_service(mock)
        mock.get(SYSTEM, json=_system_doc("On"))
        mock.post(SYSTEM_RESET, body=failure)
        with BMC("bmc.test", "root", PASSWORD, settings=settings) as driver, pytest.raises(BMCUnreachableError):
            driver.set_power("cycle", wait=False)
        posts = [c for c in mock.calls if c.request.method == "POST" and c.request.url == SYSTEM_RESET]
    assert len(posts) == 1


def test_reads_are_still_retried_after_a_read_timeout() -> None:
    settings = SETTINGS.model_copy(update={"retries": 3})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_service(mock)
        mock.get(SYSTEM, body=requests.ReadTimeout("Read timed out."))
        mock.get(SYSTEM, json=_system_doc("Off"))
        with BMC("bmc.test", "root", PASSWORD, settings=settings) as driver:
            assert driver.power_state() == "Off"


def test_a_power_action_whose_connection_was_refused_is_retried() -> None:
    """Nothing reached the BMC, so sending again is safe (sushy's retry stays for that case)."""
    import urllib3

    refused = requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(
            None,  # type: ignore[arg-type]
            SYSTEM_RESET,
            urllib3.exceptions.NewConnectionError(None, "[Errno 111] Connection refused"),  # type: ignore[arg-type]
        )
    )
    settings = SETTINGS.model_copy(update={"retries": 3})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_service(mock)
        mock.get(SYSTEM, json=_system_doc("On"))
        mock.post(SYSTEM_RESET, body=refused)
        mock.post(SYSTEM_RESET, status=204)
        with BMC("bmc.test", "root", PASSWORD, settings=settings) as driver:
            driver.set_power("cycle", wait=False)
        posts = [c for c in mock.calls if c.request.method == "POST" and c.request.url == SYSTEM_RESET]
    assert len(posts) == 2


# -- the host reset that applies an update ----------------------------------------------------------------------------
@pytest.mark.parametrize(("power", "reset_type"), [("On", "ForceRestart"), ("Off", "On"), ("PoweringOff", "On")])
def test_applying_an_update_waiting_for_a_reset_boots_a_host_that_is_off(power: str, reset_type: str) -> None:
    """``apply_reset``: a warm reset of a host that is on; power on for one that is off or powering off."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_service(mock)
        mock.get(SYSTEM, json=_system_doc(power))
        mock.post(SYSTEM_RESET, status=204)
        with BMC("bmc.test", "root", PASSWORD, settings=SETTINGS) as driver:
            assert driver.apply_reset(wait=False) == power  # without wait: the state before
        sent = [json.loads(c.request.body or b"{}") for c in mock.calls if c.request.url == SYSTEM_RESET]
    assert sent == [{"ResetType": reset_type}]


# -- several Systems -------------------------------------------------------------------------------------------------
def _two_nodes(rsps: responses.RequestsMock) -> None:
    """Two Systems, each with a BIOS member in one FirmwareInventory (a chassis manager of two nodes)."""
    systems = [f"{BASE}/redfish/v1/Systems/{n}" for n in (1, 2)]
    rsps.replace(
        responses.GET,
        f"{BASE}/redfish/v1/Systems",
        json={"Members": [{"@odata.id": "/redfish/v1/Systems/1"}, {"@odata.id": "/redfish/v1/Systems/2"}]},
    )
    for n, url in enumerate(systems, start=1):
        doc = {"@odata.id": f"/redfish/v1/Systems/{n}", "Id": str(n), "SerialNumber": f"NODE{n}", "UUID": f"uuid-{n}"}
        rsps.get(url, json={**doc, "PowerState": "On", "BiosVersion": f"{n}.0"})
    rsps.get(UPDATE, json=update_service_doc())
    inventory = f"{UPDATE}/FirmwareInventory"
    rsps.get(
        inventory,
        json={"Members": [{"@odata.id": f"/redfish/v1/UpdateService/FirmwareInventory/BIOS{n}"} for n in (1, 2)]},
    )
    for n in (1, 2):
        rsps.get(
            f"{inventory}/BIOS{n}",
            json={
                "@odata.id": f"/redfish/v1/UpdateService/FirmwareInventory/BIOS{n}",
                "Id": f"BIOS{n}",
                "Name": "BIOS",
                "Version": f"{n}.0",
                "Updateable": True,
                "RelatedItem": [{"@odata.id": f"/redfish/v1/Systems/{n}"}],
            },
        )
    rsps.get(f"{BASE}/redfish/v1/Managers", json={"Members": []})


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (SystemIdentity(serial="node2"), ["BIOS2"]),
        (SystemIdentity(uuid="UUID-1"), ["BIOS1"]),
        (SystemIdentity(serial="NODE1", uuid="uuid-2"), ["BIOS2"]),  # the UUID decides first
    ],
)
def test_the_inventory_of_several_systems_is_the_servers_only(
    rsps: responses.RequestsMock, identity: SystemIdentity, expected: list[str]
) -> None:
    _two_nodes(rsps)  # before the log-in: the BMC holds the Systems collection it read to check the credentials
    with BMC("bmc.test", "root", PASSWORD, settings=SETTINGS, system=identity) as bmc:
        assert [c.id for c in bmc.firmware_inventory()] == expected


def test_several_systems_matching_the_serial_are_refused(rsps: responses.RequestsMock) -> None:
    _two_nodes(rsps)
    rsps.replace(
        responses.GET,
        f"{BASE}/redfish/v1/Systems/2",
        json={"@odata.id": "/redfish/v1/Systems/2", "Id": "2", "SerialNumber": "NODE1", "UUID": "uuid-2"},
    )
    identity = SystemIdentity(serial="NODE1")
    with (
        BMC("bmc.test", "root", PASSWORD, settings=SETTINGS, system=identity) as bmc,
        pytest.raises(SeveralSystemsError, match="serial 'NODE1': 2 of them match; nothing was done"),
    ):
        bmc.power_state()
