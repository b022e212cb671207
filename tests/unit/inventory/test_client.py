"""InventoryClient against mocked HTTP (responses): errors, retries and their bounds, paging, requests' shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses
from urllib3.exceptions import NewConnectionError

from flasher import redact
from flasher.constants import OUTOFBAND_STATUS_NAMESPACE, TASK_NAMESPACE
from flasher.inventory import (
    BadRequestError,
    ComponentFilter,
    ConflictError,
    FilterError,
    FirmwareVersion,
    InventoryClient,
    MalformedResponseError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
)
from flasher.inventory.models import Component
from tests.support.inventory_helpers import (
    API,
    BASE,
    SERVER_ID,
    FakeTime,
    client,
    errors_counted,
    fake_time,
    make_client,
    path,
    query,
    rsps,
    sent_json,
    warnings,
)
from tests.support.serverservice_transcript import body

SERVER_URL = f"{API}/servers/{SERVER_ID}"
TASK_URL = f"{SERVER_URL}/attributes/{TASK_NAMESPACE}"
NOT_FOUND = body("GET missing server")
DUPLICATE = body("POST same namespace again -> error")
FIXTURES = (client, fake_time, rsps, warnings)  # pytest finds these fixtures by name in this module
HTML_502 = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center></body></html>"
)


# -- reads and their shapes ----------------------------------------------------------------------------------


def req_kwargs(request: Any) -> dict[str, Any]:
    """What ``responses`` recorded of the call's keyword arguments (``timeout``, ``verify``)."""
    kwargs: dict[str, Any] = request.req_kwargs
    return kwargs


def test_get_server(fake_time: FakeTime, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests would use them in place of verify=True
        monkeypatch.delenv(name, raising=False)
    client = make_client(fake_time)  # the environment is read when the client is made (flasher.httpenv)
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    server = client.get_server(SERVER_ID)
    assert server.uuid == SERVER_ID
    assert server.bmc_address == "127.0.1.1"
    request = rsps.calls[0].request
    assert request.headers["Accept"] == "application/json"
    assert "Authorization" not in request.headers
    assert req_kwargs(request)["timeout"] == (3.0, 15.0)
    assert req_kwargs(request)["verify"] is True


def test_tls_and_timeouts_come_from_settings(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    make_client(fake_time, verify_tls=False, connect_timeout=1.5, read_timeout=7).get_server(SERVER_ID)
    make_client(fake_time, ca_bundle="/etc/ssl/inventory-ca.pem").get_server(SERVER_ID)
    assert req_kwargs(rsps.calls[0].request)["verify"] is False
    assert req_kwargs(rsps.calls[0].request)["timeout"] == (1.5, 7.0)
    assert req_kwargs(rsps.calls[1].request)["verify"] == "/etc/ssl/inventory-ca.pem"


def test_a_url_that_already_ends_in_api_v1_is_not_doubled(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    make_client(fake_time, url=API + "/").get_server(SERVER_ID)
    assert path(rsps.calls[0]) == f"/api/v1/servers/{SERVER_ID}"


def test_create_server(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{API}/servers", status=201, json=body("POST /servers"))
    client = make_client(fake_time, facility="sandbox")
    assert client.create_server("r6515-a01") == SERVER_ID
    assert client.create_server("r6515-a01", "ams1", uuid=SERVER_ID.upper()) == SERVER_ID
    assert sent_json(rsps.calls[0]) == {"name": "r6515-a01", "facility": "sandbox"}
    assert sent_json(rsps.calls[1]) == {"name": "r6515-a01", "facility": "ams1", "uuid": SERVER_ID}


def test_get_attribute_and_list_components(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(TASK_URL, json=body("GET /servers/{uuid}/attributes/sh.hollow.flasher.task"))
    rsps.get(f"{SERVER_URL}/components", json=body("GET /servers/{uuid}/components", occurrence=1))
    task = client.get_attribute(SERVER_ID, TASK_NAMESPACE)
    assert isinstance(task.data, dict) and task.data["status"] == "queued"
    components = client.list_components(SERVER_ID)
    assert [(c.component_type_slug, c.installed_firmware()) for c in components] == [
        ("bmc", "2.75.75.75"),
        ("bios", "2.6.6"),
    ]
    # the component list has no totals and no next link: one request
    assert len(rsps.calls) == 2


def test_empty_lists_and_null_records(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/servers", json=body("GET /servers empty filter"))
    rsps.get(f"{SERVER_URL}/components", json=body("GET /servers/{uuid}/components", occurrence=0))
    rsps.get(f"{SERVER_URL}/versioned-attributes", json={"page_size": 100, "page": 1, "records": None})
    assert client.list_servers(attr=[TASK_NAMESPACE]) == []
    assert client.list_components(SERVER_ID) == []
    assert client.list_versioned_attributes(SERVER_ID) == []
    assert len(rsps.calls) == 3


def test_list_servers_sends_filters_and_paging(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    client = make_client(fake_time, facility="sandbox", page_size=50)
    rsps.get(f"{API}/servers", json=body("GET /servers?attr=sh.hollow.flasher.task"))
    ver = f"{OUTOFBAND_STATUS_NAMESPACE}~firmware.installed~eq~2.75.75.75"
    servers = client.list_servers(
        attr=[f"{TASK_NAMESPACE}~status~eq~"], components=[ComponentFilter(type="bmc", ver_attr=[ver])]
    )
    assert [s.uuid for s in servers] == [SERVER_ID]
    assert query(rsps.calls[0]) == [
        ("attr", f"{TASK_NAMESPACE}~status~eq~"),
        ("sc_0[type]", "bmc"),
        ("sc_0_ver_attr", ver),
        ("facility-code", "sandbox"),
        ("page", "1"),
        ("limit", "50"),
    ]
    client.list_servers(facility="ams1", include_deleted=True)
    assert ("facility-code", "ams1") in query(rsps.calls[1])
    assert ("include-deleted", "true") in query(rsps.calls[1])


def test_bad_arguments_fail_before_any_request(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    with pytest.raises(FilterError, match="unknown operator"):
        client.list_servers(attr=[f"{TASK_NAMESPACE}~status~equals~x"])
    with pytest.raises(ValueError, match="server uuid 'r6515-a01' is not a UUID"):
        client.get_server("r6515-a01")
    with pytest.raises(ValueError, match="namespace"):
        client.get_attribute(SERVER_ID, "a/b")
    with pytest.raises(TypeError, match="JSON object"):
        client.replace_attribute(SERVER_ID, TASK_NAMESPACE, ["not", "an", "object"])  # type: ignore[arg-type]
    assert len(rsps.calls) == 0


# -- paging --------------------------------------------------------------------------------------------------


def _server(index: int) -> dict[str, Any]:
    return {"uuid": f"00000000-0000-4000-8000-{index:012d}", "name": f"s{index}", "attributes": None}


def _paged(records: list[dict[str, Any]], limit: int, *, totals: bool = True, shift: int = 0) -> Any:
    """A callback serving ``records`` page by page like the reference server; ``shift`` inserts that many
    records at the head after the first page (a server created while a client pages)."""
    served: list[int] = []

    def callback(request: Any) -> tuple[int, dict[str, str], str]:
        params = dict(query(type("Call", (), {"request": request})()))
        page, size = int(params["page"]), int(params["limit"])
        assert size == limit
        served.append(page)
        current = records
        if shift and len(served) > 1:
            current = [_server(900 + i) for i in range(shift)] + records
        chunk = current[(page - 1) * size : page * size]
        total_pages = -(-len(current) // size)
        answer: dict[str, Any] = {"page_size": size, "page": page, "_links": {}, "records": chunk}
        if chunk:
            answer["page_count"] = len(chunk)
        if totals and current:
            answer |= {"total_pages": total_pages, "total_record_count": len(current)}
        if not totals and page < total_pages:
            answer["_links"]["next"] = {"href": f"/api/v1/servers?page={page + 1}"}
        return 200, {}, __import__("json").dumps(answer)

    return callback


@pytest.mark.parametrize("totals", [True, False], ids=["total_pages", "next-link"])
def test_paging_follows_every_page(fake_time: FakeTime, rsps: responses.RequestsMock, totals: bool) -> None:
    client = make_client(fake_time, page_size=2)
    records = [_server(i) for i in range(5)]
    rsps.add_callback(responses.GET, f"{API}/servers", callback=_paged(records, 2, totals=totals))
    servers = client.list_servers()
    assert [s.name for s in servers] == ["s0", "s1", "s2", "s3", "s4"]
    assert [dict(query(c))["page"] for c in rsps.calls] == ["1", "2", "3"]


def test_paging_drops_a_record_repeated_by_a_shift(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    client = make_client(fake_time, page_size=2)
    records = [_server(i) for i in range(4)]
    rsps.add_callback(responses.GET, f"{API}/servers", callback=_paged(records, 2, shift=1))
    names = [s.name for s in client.iter_servers()]
    # s1 comes back on page 2 after a new server shifted the list: it is yielded once
    assert names.count("s1") == 1
    assert names[:4] == ["s0", "s1", "s2", "s3"]


def test_paging_stops_when_the_server_ignores_the_page(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    first_page = {"page": 1, "total_pages": 5, "records": [_server(0), _server(1)]}
    rsps.get(f"{API}/servers", json=first_page)
    assert len(client.list_servers()) == 2
    assert len(rsps.calls) == 2  # page 2 repeated page 1: the list ends there


def test_records_that_are_not_a_list_are_malformed(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/servers", json={"records": {"uuid": SERVER_ID}})
    with pytest.raises(MalformedResponseError, match="records is not a list"):
        client.list_servers()


# -- error classes -------------------------------------------------------------------------------------------


def test_not_found_names_the_call_and_is_not_retried(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, status=404, json=NOT_FOUND)
    before = errors_counted("GET /servers/{uuid}", "NotFoundError")
    with pytest.raises(NotFoundError) as info:
        client.get_server(SERVER_ID)
    error = info.value
    assert (error.call, error.status, error.message, error.error) == (
        "GET /servers/{uuid}",
        404,
        "resource not found",
        "sql: no rows in result set",
    )
    assert error.target == f"/servers/{SERVER_ID}"
    assert str(error) == (
        f"inventory GET /servers/{{uuid}} [/servers/{SERVER_ID}]: not found "
        "(HTTP 404: resource not found; sql: no rows in result set)"
    )
    assert len(rsps.calls) == 1
    assert errors_counted("GET /servers/{uuid}", "NotFoundError") == before + 1


def test_bad_request_carries_the_servers_error(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rejected = body("POST /server-component-firmwares (uppercase vendor -> error)")
    rsps.post(f"{API}/server-component-firmwares", status=400, json=rejected)
    with pytest.raises(BadRequestError) as info:
        client.create_firmware({"vendor": "dell", "version": "1", "component": "bios"})
    assert info.value.status == 400
    assert info.value.call == "POST /server-component-firmwares"
    assert "UpstreamURL' Error:Field validation" in (info.value.error or "")
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", [409, 400])
def test_duplicates_are_conflicts(client: InventoryClient, rsps: responses.RequestsMock, status: int) -> None:
    answer = DUPLICATE if status == 400 else {"message": "conflict", "error": "exists"}
    rsps.post(f"{SERVER_URL}/attributes", status=status, json=answer)
    with pytest.raises(ConflictError) as info:
        client.create_attribute(SERVER_ID, TASK_NAMESPACE, {"status": ""})
    assert info.value.status == status
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorised_is_not_retried(client: InventoryClient, rsps: responses.RequestsMock, status: int) -> None:
    rsps.get(SERVER_URL, status=status, json={"message": "invalid auth token", "error": "missing scope"})
    with pytest.raises(UnauthorizedError) as info:
        client.get_server(SERVER_ID)
    assert info.value.status == status
    assert "check inventory.auth" in str(info.value)
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_are_never_retried(client: InventoryClient, rsps: responses.RequestsMock, status: int) -> None:
    rsps.put(TASK_URL, status=status, json={"message": "no", "error": "nope"})
    with pytest.raises((BadRequestError, NotFoundError)):
        client.replace_attribute(SERVER_ID, TASK_NAMESPACE, {"status": "queued"})
    assert len(rsps.calls) == 1


def test_invalid_json_is_malformed(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, body="{not json", content_type="application/json")
    with pytest.raises(MalformedResponseError) as info:
        client.get_server(SERVER_ID)
    assert info.value.call == "GET /servers/{uuid}"
    assert "not a JSON object" in str(info.value)
    assert "body: {not json" in str(info.value)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"_links": {}}, "no record object"),
        ({"record": [1, 2]}, "no record object"),
        ({"record": {"name": "r6515-a01"}}, "not a valid Server: uuid: Field required"),
        ([{"uuid": SERVER_ID}], "not a JSON object"),
    ],
)
def test_answers_missing_fields_are_malformed(
    client: InventoryClient, rsps: responses.RequestsMock, answer: Any, expected: str
) -> None:
    rsps.get(SERVER_URL, json=answer)
    with pytest.raises(MalformedResponseError, match=expected) as info:
        client.get_server(SERVER_ID)
    assert info.value.call == "GET /servers/{uuid}"


def test_a_404_that_is_not_the_servers_json_is_malformed(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, status=404, body="404 page not found", content_type="text/plain")
    with pytest.raises(MalformedResponseError, match=r"is inventory.url right"):
        client.get_server(SERVER_ID)


def test_an_html_502_page_is_retried_then_unavailable(
    client: InventoryClient, rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(SERVER_URL, status=502, body=HTML_502, content_type="text/html")
    with pytest.raises(UnavailableError) as info:
        client.get_server(SERVER_ID)
    message = str(info.value)
    assert info.value.status == 502
    assert "502 Bad Gateway" in message
    assert "<html>" in message  # a short snippet of the page, on one line
    assert len(message.splitlines()) == 1
    assert len(rsps.calls) > 1


def test_a_redirect_is_not_followed(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, status=302, headers={"Location": "https://sso.example/login"})
    with pytest.raises(MalformedResponseError, match=r"redirect to https://sso.example/login"):
        client.get_server(SERVER_ID)


# -- retries -------------------------------------------------------------------------------------------------


def test_5xx_is_retried_with_backoff_then_succeeds(
    client: InventoryClient, rsps: responses.RequestsMock, fake_time: FakeTime, warnings: list[str]
) -> None:
    rsps.get(SERVER_URL, status=503, json={"message": "datastore error", "error": "db down"})
    rsps.get(SERVER_URL, status=500, json={"message": "datastore error", "error": "db down"})
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    assert client.get_server(SERVER_ID).uuid == SERVER_ID
    assert len(rsps.calls) == 3
    assert len(fake_time.sleeps) == 2
    assert all(0 <= s <= 4.0 for s in fake_time.sleeps)
    assert len(warnings) == 2
    assert all("GET /servers/{uuid}" in line and "retry" in line for line in warnings)


def test_retries_stop_at_the_deadline(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    client = make_client(fake_time, retry_deadline=20, retry_max_wait=3)
    rsps.get(SERVER_URL, status=500, json={"message": "datastore error", "error": "boom"})
    before = errors_counted("GET /servers/{uuid}", "UnavailableError")
    with pytest.raises(UnavailableError) as info:
        client.get_server(SERVER_ID)
    # waited no longer than the deadline in total, no single wait above retry_max_wait
    assert sum(fake_time.sleeps) <= 20 + 1e-9  # float sums
    assert all(s <= 3 for s in fake_time.sleeps)
    # and kept trying until the deadline: the last attempt starts at it or the next wait would pass it
    assert sum(fake_time.sleeps) > 20 - 3
    assert len(rsps.calls) == len(fake_time.sleeps) + 1 >= 7
    assert f"gave up after {len(rsps.calls)} attempts" in str(info.value)
    assert errors_counted("GET /servers/{uuid}", "UnavailableError") == before + 1  # once per call, not per try


def test_deadline_zero_means_one_try(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    client = make_client(fake_time, retry_deadline=0)
    rsps.get(SERVER_URL, status=503, json={"message": "down"})
    with pytest.raises(UnavailableError):
        client.get_server(SERVER_ID)
    assert len(rsps.calls) == 1
    assert fake_time.sleeps == []


def test_retry_after_seconds_is_honoured(
    client: InventoryClient, rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(SERVER_URL, status=429, headers={"Retry-After": "7"}, json={"message": "slow down"})
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    client.get_server(SERVER_ID)
    assert fake_time.sleeps == [7.0]  # longer than retry_max_wait (4): the server asked


def test_retry_after_http_date_is_honoured(
    client: InventoryClient, rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=12), usegmt=True)
    rsps.get(SERVER_URL, status=503, headers={"Retry-After": when}, json={"message": "maintenance"})
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    client.get_server(SERVER_ID)
    assert len(fake_time.sleeps) == 1
    assert 9 <= fake_time.sleeps[0] <= 12


def test_retry_after_past_the_deadline_gives_up_at_once(
    client: InventoryClient, rsps: responses.RequestsMock, fake_time: FakeTime
) -> None:
    rsps.get(SERVER_URL, status=429, headers={"Retry-After": "3600"}, json={"message": "slow down"})
    with pytest.raises(UnavailableError, match=r"asked to retry after 3600 s, past inventory.retry_deadline"):
        client.get_server(SERVER_ID)
    assert len(rsps.calls) == 1
    assert fake_time.sleeps == []


@pytest.mark.parametrize(
    "failure",
    [requests.ConnectionError("connection reset by peer"), requests.ReadTimeout("read timed out")],
    ids=["connection-error", "read-timeout"],
)
def test_reads_are_retried_on_connection_errors_and_timeouts(
    client: InventoryClient, rsps: responses.RequestsMock, failure: Exception
) -> None:
    rsps.get(SERVER_URL, body=failure)
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    assert client.get_server(SERVER_ID).uuid == SERVER_ID
    assert len(rsps.calls) == 2


def test_connection_errors_past_the_deadline_are_unavailable(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    client = make_client(fake_time, retry_deadline=5, retry_max_wait=1)
    rsps.get(SERVER_URL, body=requests.ConnectionError("refused"))
    with pytest.raises(UnavailableError, match=f"cannot connect to {BASE}") as info:
        client.get_server(SERVER_ID)
    assert info.value.status is None
    assert sum(fake_time.sleeps) <= 5 + 1e-9


def _refused() -> requests.ConnectionError:
    # what requests raises when nothing listens: a MaxRetryError whose reason is a NewConnectionError
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(type("MaxRetryError", (), {"reason": reason})())


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (requests.ConnectTimeout("connect timed out"), True),
        (_refused(), True),
        ({"status": 503}, True),
        ({"status": 429}, True),
        (requests.ReadTimeout("read timed out"), False),
        (requests.ConnectionError("connection reset by peer"), False),
        ({"status": 500}, False),
        ({"status": 502}, False),
    ],
    ids=["connect-timeout", "refused", "503", "429", "read-timeout", "reset", "500", "502"],
)
def test_creates_are_retried_only_when_the_server_cannot_have_applied_them(
    client: InventoryClient, rsps: responses.RequestsMock, failure: Any, retried: bool
) -> None:
    url = f"{API}/server-component-types"
    if isinstance(failure, dict):
        rsps.post(url, status=failure["status"], json={"message": "unavailable"})
    else:
        rsps.post(url, body=failure)
    rsps.post(url, status=201, json=body("POST /server-component-types"))
    if retried:
        assert client.create_component_type("BMC", "bmc") == "bmc"
        assert len(rsps.calls) == 2
    else:
        with pytest.raises(UnavailableError, match="may have been applied"):
            client.create_component_type("BMC", "bmc")
        assert len(rsps.calls) == 1


def test_tls_failures_are_not_retried(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, body=requests.exceptions.SSLError("certificate verify failed"))
    with pytest.raises(UnavailableError, match=r"TLS failed .*inventory.ca_bundle"):
        client.get_server(SERVER_ID)
    assert len(rsps.calls) == 1


# -- attributes ----------------------------------------------------------------------------------------------


def test_attribute_writes_send_the_documented_bodies(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{SERVER_URL}/attributes", status=201, json=body("POST task attribute"))
    rsps.put(TASK_URL, json=body("PUT /servers/{uuid}/attributes/sh.hollow.flasher.task"))
    rsps.delete(TASK_URL, json=body("DELETE attribute"))
    stamp = datetime(2026, 11, 20, 23, 55, 46, tzinfo=UTC)
    assert client.create_attribute(SERVER_ID, TASK_NAMESPACE, {"status": ""}) == TASK_NAMESPACE
    client.replace_attribute(SERVER_ID, TASK_NAMESPACE, {"status": "queued", "updatedAt": stamp})
    client.delete_attribute(SERVER_ID, TASK_NAMESPACE)
    assert sent_json(rsps.calls[0]) == {"namespace": TASK_NAMESPACE, "data": {"status": ""}}
    assert sent_json(rsps.calls[1]) == {"data": {"status": "queued", "updatedAt": "2026-11-20T23:55:46Z"}}
    assert rsps.calls[2].request.method == "DELETE"


def test_upsert_replaces_an_existing_attribute_in_one_request(
    client: InventoryClient, rsps: responses.RequestsMock
) -> None:
    rsps.put(TASK_URL, json=body("PUT /servers/{uuid}/attributes/sh.hollow.flasher.task"))
    client.upsert_attribute(SERVER_ID, TASK_NAMESPACE, {"status": "queued"})
    assert [c.request.method for c in rsps.calls] == ["PUT"]
    assert sent_json(rsps.calls[0]) == {"data": {"status": "queued"}}


def test_upsert_creates_a_missing_attribute_without_counting_an_error(
    client: InventoryClient, rsps: responses.RequestsMock
) -> None:
    rsps.put(TASK_URL, status=404, json=body("GET missing attribute"))
    rsps.post(f"{SERVER_URL}/attributes", status=201, json=body("POST task attribute"))
    before = errors_counted("PUT /servers/{uuid}/attributes/{namespace}", "NotFoundError")
    client.upsert_attribute(SERVER_ID, TASK_NAMESPACE, {"status": "queued"})
    assert [c.request.method for c in rsps.calls] == ["PUT", "POST"]
    assert sent_json(rsps.calls[1]) == {"namespace": TASK_NAMESPACE, "data": {"status": "queued"}}
    assert errors_counted("PUT /servers/{uuid}/attributes/{namespace}", "NotFoundError") == before


def test_upsert_replaces_when_the_attribute_appeared_meanwhile(
    client: InventoryClient, rsps: responses.RequestsMock
) -> None:
    rsps.put(TASK_URL, status=404, json=NOT_FOUND)
    rsps.post(f"{SERVER_URL}/attributes", status=400, json=DUPLICATE)
    rsps.put(TASK_URL, json=body("PUT /servers/{uuid}/attributes/sh.hollow.flasher.task"))
    before = errors_counted("POST /servers/{uuid}/attributes", "ConflictError")
    client.upsert_attribute(SERVER_ID, TASK_NAMESPACE, {"status": "queued"})
    assert [c.request.method for c in rsps.calls] == ["PUT", "POST", "PUT"]
    assert errors_counted("POST /servers/{uuid}/attributes", "ConflictError") == before


def test_upsert_survives_a_post_that_landed_before_the_connection_broke(
    client: InventoryClient, rsps: responses.RequestsMock
) -> None:
    rsps.put(TASK_URL, status=404, json=NOT_FOUND)
    rsps.post(f"{SERVER_URL}/attributes", body=requests.ConnectionError("connection reset by peer"))
    rsps.post(f"{SERVER_URL}/attributes", status=400, json=DUPLICATE)  # the first one had been applied
    rsps.put(TASK_URL, json=body("PUT /servers/{uuid}/attributes/sh.hollow.flasher.task"))
    client.upsert_attribute(SERVER_ID, TASK_NAMESPACE, {"status": "active"})
    assert [c.request.method for c in rsps.calls] == ["PUT", "POST", "POST", "PUT"]


def test_upsert_on_a_missing_server_is_not_found(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.put(TASK_URL, status=404, json=NOT_FOUND)
    rsps.post(f"{SERVER_URL}/attributes", status=404, json=NOT_FOUND)
    with pytest.raises(NotFoundError) as info:
        client.upsert_attribute(SERVER_ID, TASK_NAMESPACE, {"status": "queued"})
    assert info.value.call == "POST /servers/{uuid}/attributes"


def test_versioned_attributes(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    url = f"{SERVER_URL}/versioned-attributes"
    version = {"namespace": "sh.hollow.x", "data": {"a": 1}, "tally": 2, "created_at": "2026-11-20T23:55:46Z"}
    rsps.get(url, json={"page": 1, "total_pages": 1, "records": [version, version | {"tally": 0}]})
    rsps.post(url, status=201, json={"message": "resource created", "slug": "sh.hollow.x"})
    assert [v.tally for v in client.list_versioned_attributes(SERVER_ID)] == [2, 0]  # not de-duplicated
    assert client.create_versioned_attribute(SERVER_ID, "sh.hollow.x", {"a": 1}) == "sh.hollow.x"
    assert sent_json(rsps.calls[1]) == {"namespace": "sh.hollow.x", "data": {"a": 1}}


# -- components ----------------------------------------------------------------------------------------------


def _bmc_component() -> Component:
    record = body("GET /servers/{uuid}/components", occurrence=1)["records"][0]
    record["versioned_attributes"][0]["data"]["firmware"]["vendor_id"] = "idrac9"
    record["versioned_attributes"][0]["data"]["status"] = {"health": "OK"}
    return Component.model_validate(record)


def test_set_installed_firmware_adds_a_versioned_attribute(
    client: InventoryClient, rsps: responses.RequestsMock
) -> None:
    rsps.put(f"{SERVER_URL}/components", json={"message": "resource updated"})
    component = _bmc_component()
    client.set_installed_firmware(SERVER_ID, component, "2.80.80.80")
    (item,) = sent_json(rsps.calls[0])
    assert item == {
        "uuid": "6025c07d-d67d-4ca7-9e47-efa5945dce03",
        "server_uuid": SERVER_ID,
        "name": "BMC",
        "vendor": "dell",
        "model": "r6515",
        "serial": "0",
        "component_type_id": "921b7e12-5c52-40c0-8d69-b18c7aed7f54",
        "component_type_name": "BMC",
        "component_type_slug": "bmc",
        "attributes": [],
        "versioned_attributes": [
            {
                "namespace": OUTOFBAND_STATUS_NAMESPACE,
                "data": {"firmware": {"installed": "2.80.80.80", "vendor_id": "idrac9"}, "status": {"health": "OK"}},
            }
        ],
    }
    # the caller's component is unchanged
    assert component.installed_firmware() == "2.75.75.75"


def test_set_installed_firmware_refuses_bad_input(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    component = _bmc_component()
    with pytest.raises(ValueError, match="firmware version '' is empty"):
        client.set_installed_firmware(SERVER_ID, component, "")
    with pytest.raises(ValueError, match="component_type_id is empty"):
        client.set_installed_firmware(SERVER_ID, component.model_copy(update={"component_type_id": ""}), "1")
    assert len(rsps.calls) == 0


def test_create_components_fills_the_server_uuid(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{SERVER_URL}/components", status=201, json=body("POST /servers/{uuid}/components", occurrence=1))
    new = {
        "uuid": "0ffe602c-baea-4bba-b7bf-601902345fd7",
        "name": "BIOS",
        "component_type_id": "b6258fd2-8e5f-4b08-8918-e4814eb305ae",
        "component_type_name": "BIOS",
        "component_type_slug": "bios",
    }
    client.create_components(SERVER_ID, [new])
    assert sent_json(rsps.calls[0]) == [new | {"server_uuid": SERVER_ID}]


def test_create_components_rejected_by_the_server(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{SERVER_URL}/components", status=400, json=body("POST /servers/{uuid}/components", occurrence=0))
    with pytest.raises(BadRequestError, match="ComponentTypeSlug"):
        client.create_components(SERVER_ID, [{"uuid": "0ffe602c-baea-4bba-b7bf-601902345fd7"}])


def test_component_types(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/server-component-types", json=body("GET /server-component-types"))
    rsps.post(f"{API}/server-component-types", status=201, json=body("POST /server-component-types", index=1))
    assert [t.slug for t in client.list_component_types()] == ["bmc", "bios"]
    assert client.create_component_type("BIOS", "bios") == "bios"
    assert sent_json(rsps.calls[1]) == {"name": "BIOS", "slug": "bios"}


# -- firmware ------------------------------------------------------------------------------------------------


def test_list_firmware_filters(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/server-component-firmwares", json=body("GET /server-component-firmwares?vendor=dell&model=r6515"))
    found = client.list_firmware(vendor="DELL", model="r6515", component="BMC", checksum="ABC")
    assert [fw.version for fw in found] == ["2.80.80.80"]  # bios filtered out here: no server-side filter
    assert query(rsps.calls[0]) == [
        ("vendor", "dell"),
        ("model", "r6515"),
        ("checksum", "abc"),
        ("page", "1"),
        ("limit", "100"),
    ]
    client.list_firmware(model=["r6515", "r7515"], version="2.7.3", filename="BIOS_2.7.3.bin")
    assert query(rsps.calls[1])[:4] == [
        ("model", "r6515"),
        ("model", "r7515"),
        ("version", "2.7.3"),
        ("filename", "BIOS_2.7.3.bin"),
    ]


def test_get_and_create_firmware(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    record = body("GET /server-component-firmwares?vendor=dell&model=r6515")["records"][1]
    rsps.get(f"{API}/server-component-firmwares/{record['uuid']}", json={"_links": {}, "record": record})
    rsps.post(f"{API}/server-component-firmwares", status=201, json=body("POST /server-component-firmwares"))
    assert client.get_firmware(record["uuid"]).version == "2.80.80.80"
    fw = FirmwareVersion(
        vendor="Dell",
        model=["r6515", "r7515"],
        filename="iDRAC.bin",
        version="2.80.80.80",
        component="BMC",
        checksum="4B2F",
        upstream_url="https://downloads.example/idrac-2.80.bin",
        repository_url="http://127.0.0.1:9000/firmware/dell/idrac-2.80.bin",
    )
    assert client.create_firmware(fw) == "4533a9b3-9dd7-4987-bc0a-84aa986410ef"
    assert sent_json(rsps.calls[1]) == {
        "vendor": "dell",
        "model": ["r6515", "r7515"],
        "filename": "iDRAC.bin",
        "version": "2.80.80.80",
        "component": "bmc",
        "checksum": "4b2f",
        "upstream_url": "https://downloads.example/idrac-2.80.bin",
        "repository_url": "http://127.0.0.1:9000/firmware/dell/idrac-2.80.bin",
    }


def test_a_create_answer_without_slug_is_malformed(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{API}/server-component-firmwares", status=201, json={"message": "resource created"})
    with pytest.raises(MalformedResponseError, match="no slug"):
        client.create_firmware({"vendor": "dell", "version": "1", "component": "bios"})


# -- firmware sets -------------------------------------------------------------------------------------------

SET_ID = "a6b9ec30-6efc-4870-996a-a48b60849415"
SETS_URL = f"{API}/server-component-firmware-sets"


def test_firmware_sets_by_labels(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(SETS_URL, json=body("GET /server-component-firmware-sets?attr=labels vendor+model"))
    (found,) = client.list_firmware_sets(labels={"vendor": "dell", "model": "r6515"})
    assert found.uuid == SET_ID
    assert query(rsps.calls[0])[:2] == [
        ("attr", "sh.hollow.firmware_set.labels~vendor~eq~dell"),
        ("attr", "sh.hollow.firmware_set.labels~model~eq~r6515"),
    ]


def test_get_firmware_set_by_uuid_or_name(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    record = body("GET /server-component-firmware-sets?name=dell-r6515")["records"][0]
    rsps.get(f"{SETS_URL}/{SET_ID}", json={"_links": {}, "record": record})
    rsps.get(SETS_URL, json=body("GET /server-component-firmware-sets?name=dell-r6515"))
    assert client.get_firmware_set(SET_ID).name == "dell-r6515"
    assert client.get_firmware_set("dell-r6515").uuid == SET_ID
    assert path(rsps.calls[0]) == f"/api/v1/server-component-firmware-sets/{SET_ID}"
    assert ("name", "dell-r6515") in query(rsps.calls[1])


def test_get_firmware_set_none_or_several(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    twins = body("GET /server-component-firmware-sets?name=dell-r6515")
    other = dict(twins["records"][0], uuid="11111111-2222-4333-8444-555555555555")
    twins["records"].append(other)
    rsps.get(SETS_URL, json={"page": 1, "_links": {}})
    rsps.get(SETS_URL, json=twins)
    with pytest.raises(NotFoundError, match="no firmware set has this name"):
        client.get_firmware_set("dell-r6515")
    with pytest.raises(ConflictError) as info:
        client.get_firmware_set("dell-r6515")
    assert SET_ID in str(info.value)
    assert "11111111-2222-4333-8444-555555555555" in str(info.value)


def test_create_firmware_set(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.post(SETS_URL, status=201, json=body("POST /server-component-firmware-sets"))
    firmware = ["35c8a01d-c51f-441b-8903-c85125bacd22", "4533a9b3-9dd7-4987-bc0a-84aa986410ef"]
    assert client.create_firmware_set("dell-r6515", firmware, {"vendor": "dell", "model": "r6515"}) == SET_ID
    assert sent_json(rsps.calls[0]) == {
        "name": "dell-r6515",
        "attributes": [{"namespace": "sh.hollow.firmware_set.labels", "data": {"vendor": "dell", "model": "r6515"}}],
        "component_firmware_uuids": firmware,
    }


# -- credentials and health ----------------------------------------------------------------------------------


def test_bmc_credentials_register_the_password(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    answer = body("GET credentials bmc")
    answer["record"]["password"] = "s3cret-bmc-pass"
    rsps.get(f"{SERVER_URL}/credentials/bmc", json=answer)
    try:
        creds = client.get_bmc_credentials(SERVER_ID)
        assert creds.username == "root"
        assert creds.password.get_secret_value() == "s3cret-bmc-pass"
        assert redact.scrub("login with s3cret-bmc-pass") == "login with ***"
    finally:
        redact.forget_all()


def test_malformed_credentials_never_show_the_body(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{SERVER_URL}/credentials/bmc", json={"record": {"password": "hunter2-secret"}})
    rsps.get(f"{SERVER_URL}/credentials/bmc", body="password=hunter2-secret", status=200)
    with pytest.raises(MalformedResponseError) as first:
        client.get_bmc_credentials(SERVER_ID)
    with pytest.raises(MalformedResponseError) as second:
        client.get_bmc_credentials(SERVER_ID)
    redact.forget_all()
    for error in (first.value, second.value):
        assert "hunter2" not in str(error)
        assert error.call == "GET /servers/{uuid}/credentials/{slug}"


def test_ready(client: InventoryClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{BASE}/healthz/readiness", json={"status": "ok"})
    assert client.ready() is True
    rsps.replace(responses.GET, f"{BASE}/healthz/readiness", status=404)
    rsps.get(f"{BASE}/healthz", json={"status": "ok"})
    assert client.ready() is True
    rsps.replace(responses.GET, f"{BASE}/healthz", status=503)
    assert client.ready() is False
    rsps.replace(responses.GET, f"{BASE}/healthz/readiness", body=requests.ConnectionError("refused"))
    assert client.ready() is False
