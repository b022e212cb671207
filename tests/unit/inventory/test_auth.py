"""Inventory auth modes: none, static bearer token, OAuth2 client credentials with renewal before expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import responses
from authlib.oauth2.rfc6749 import wrappers

from flasher import redact
from flasher.inventory import (
    InventoryClient,
    InventoryError,
    MalformedResponseError,
    UnauthorizedError,
    UnavailableError,
)
from tests.support.inventory_helpers import (
    API,
    SERVER_ID,
    FakeTime,
    errors_counted,
    fake_time,
    make_client,
    rsps,
)
from tests.support.serverservice_transcript import body

FIXTURES = (fake_time, rsps)  # pytest finds these fixtures by name in this module
TOKEN_URL = "https://issuer.test/oauth2/token"
SERVER_URL = f"{API}/servers/{SERVER_ID}"
CLIENT_SECRET = "client-secret-value-42"


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    redact.forget_all()


def oauth2_client(fake_time: FakeTime, **oauth2: Any) -> InventoryClient:
    settings = {"token_url": TOKEN_URL, "client_id": "flasher", "client_secret": CLIENT_SECRET} | oauth2
    return make_client(fake_time, auth="oauth2", oauth2=settings)


def token_answer(token: str, expires_in: int | None = 3600) -> dict[str, Any]:
    answer: dict[str, Any] = {"access_token": token, "token_type": "Bearer"}
    if expires_in is not None:
        answer["expires_in"] = expires_in
    return answer


def api_calls(rsps: responses.RequestsMock) -> list[Any]:
    return [c for c in rsps.calls if str(c.request.url).startswith(API)]


def token_calls(rsps: responses.RequestsMock) -> list[Any]:
    return [c for c in rsps.calls if c.request.url == TOKEN_URL]


def test_no_auth_sends_no_header(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    make_client(fake_time).get_server(SERVER_ID)
    assert "Authorization" not in rsps.calls[0].request.headers


def test_static_token(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    make_client(fake_time, auth="token", token="static-token-123").get_server(SERVER_ID)
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer static-token-123"
    assert redact.scrub("static-token-123") == "***"


def test_static_token_from_a_file(fake_time: FakeTime, rsps: responses.RequestsMock, tmp_path: Any) -> None:
    secret = tmp_path / "token"
    secret.write_text("file-token-456\n")
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    make_client(fake_time, auth="token", token_file=str(secret)).get_server(SERVER_ID)
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer file-token-456"


def test_a_refused_token_never_shows_in_errors_or_logs(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_URL, status=401, json={"message": "invalid auth token", "error": "token static-token-789"})
    with pytest.raises(UnauthorizedError) as info:
        make_client(fake_time, auth="token", token="static-token-789").get_server(SERVER_ID)
    assert "static-token-789" not in str(info.value)
    assert len(rsps.calls) == 1  # a static token cannot be renewed: no second try


def test_oauth2_fetches_once_and_reuses_the_token(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.post(TOKEN_URL, json=token_answer("access-token-aaa"))
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    client = oauth2_client(fake_time, audience="https://serverservice.test")
    client.get_server(SERVER_ID)
    client.get_server(SERVER_ID)
    assert len(token_calls(rsps)) == 1
    assert [c.request.headers["Authorization"] for c in api_calls(rsps)] == ["Bearer access-token-aaa"] * 2
    token_request = token_calls(rsps)[0].request
    form = dict(parse_qsl(token_request.body))
    assert form["grant_type"] == "client_credentials"
    assert form["scope"].split() == [
        "read:server",
        "update:server",
        "read:server:credentials",
        "read:server-component-firmwares",
        "read:server-component-firmware-sets",
    ]
    assert form["audience"] == "https://serverservice.test"
    assert token_request.headers["Authorization"].startswith("Basic ")  # client_secret_basic
    assert CLIENT_SECRET not in token_request.body
    assert redact.scrub("Bearer access-token-aaa") == "Bearer ***"


def test_oauth2_renews_the_token_before_it_expires(
    fake_time: FakeTime, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    rsps.post(TOKEN_URL, json=token_answer("access-token-one", expires_in=300))
    rsps.post(TOKEN_URL, json=token_answer("access-token-two", expires_in=300))
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    client = oauth2_client(fake_time, refresh_leeway=60)
    client.get_server(SERVER_ID)
    now = time.time()
    # 230 s later the token has 70 s left: still used
    monkeypatch.setattr(wrappers, "time", type("Clock", (), {"time": staticmethod(lambda: now + 230)}))
    client.get_server(SERVER_ID)
    # 250 s later it has 50 s left, inside the 60 s leeway: renewed before it expires
    monkeypatch.setattr(wrappers, "time", type("Clock", (), {"time": staticmethod(lambda: now + 250)}))
    client.get_server(SERVER_ID)
    assert [c.request.headers["Authorization"] for c in api_calls(rsps)] == [
        "Bearer access-token-one",
        "Bearer access-token-one",
        "Bearer access-token-two",
    ]
    assert len(token_calls(rsps)) == 2


def test_oauth2_renews_once_after_a_401(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.post(TOKEN_URL, json=token_answer("revoked-token-1", expires_in=None))
    rsps.post(TOKEN_URL, json=token_answer("fresh-token-2", expires_in=None))
    rsps.get(SERVER_URL, status=401, json={"message": "invalid auth token", "error": "token is revoked"})
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    oauth2_client(fake_time).get_server(SERVER_ID)
    assert [c.request.headers["Authorization"] for c in api_calls(rsps)] == [
        "Bearer revoked-token-1",
        "Bearer fresh-token-2",
    ]


def test_oauth2_gives_up_after_a_second_401(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.post(TOKEN_URL, json=token_answer("some-token-xyz"))
    rsps.get(SERVER_URL, status=401, json={"message": "invalid auth token", "error": "audience"})
    with pytest.raises(UnauthorizedError):
        oauth2_client(fake_time).get_server(SERVER_ID)
    assert len(api_calls(rsps)) == 2
    assert len(token_calls(rsps)) == 2


def test_oauth2_refused_client_is_unauthorised(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.post(TOKEN_URL, status=401, json={"error": "invalid_client", "error_description": "bad secret"})
    before = errors_counted("GET /servers/{uuid}", "UnauthorizedError")
    with pytest.raises(UnauthorizedError, match="invalid_client") as info:
        oauth2_client(fake_time).get_server(SERVER_ID)
    assert CLIENT_SECRET not in str(info.value)
    assert info.value.call == "GET /servers/{uuid}"
    assert len(token_calls(rsps)) == 1  # not retried
    assert api_calls(rsps) == []
    assert errors_counted("GET /servers/{uuid}", "UnauthorizedError") == before + 1


def test_oauth2_issuer_down_is_retried(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.post(TOKEN_URL, status=503, body="<html>down</html>", content_type="text/html")
    rsps.post(TOKEN_URL, json=token_answer("late-token-777"))
    rsps.get(SERVER_URL, json=body("GET /servers/{uuid}"))
    oauth2_client(fake_time).get_server(SERVER_ID)
    assert len(token_calls(rsps)) == 2
    assert len(fake_time.sleeps) == 1


def test_oauth2_issuer_down_past_the_deadline(fake_time: FakeTime, rsps: responses.RequestsMock) -> None:
    rsps.post(TOKEN_URL, status=502, body="bad gateway", content_type="text/plain")
    with pytest.raises(UnavailableError, match="token endpoint answered HTTP 502"):
        oauth2_client(fake_time).get_server(SERVER_ID)
    assert sum(fake_time.sleeps) <= 30 + 1e-9


@pytest.mark.parametrize(
    "answer", [{"body": "<html>login</html>", "content_type": "text/html"}, {"json": {"token_type": "Bearer"}}]
)
def test_oauth2_answer_that_is_not_a_token(
    fake_time: FakeTime, rsps: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    rsps.post(TOKEN_URL, **answer)
    with pytest.raises(MalformedResponseError, match="token endpoint"):
        oauth2_client(fake_time).get_server(SERVER_ID)


@pytest.mark.parametrize(
    ("failure", "error", "retried"),
    [
        # cut off in transit: transient, retried until the deadline
        (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"), UnavailableError, True),
        (requests.exceptions.ContentDecodingError("failed to decode gzip"), UnavailableError, True),
        (requests.exceptions.RetryError("Max retries exceeded"), UnavailableError, True),
        # cannot succeed as configured: a refusal, not retried
        (requests.exceptions.TooManyRedirects("Exceeded 30 redirects."), UnauthorizedError, False),
        (requests.exceptions.InvalidHeader("Invalid leading whitespace in header value"), UnauthorizedError, False),
        (requests.exceptions.InvalidURL("Failed to parse the redirect target"), UnauthorizedError, False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_oauth2_every_requests_failure_is_an_inventory_error(
    fake_time: FakeTime,
    rsps: responses.RequestsMock,
    failure: requests.RequestException,
    error: type[InventoryError],
    retried: bool,
) -> None:
    rsps.post(TOKEN_URL, body=failure)
    with pytest.raises(error, match=type(failure).__name__) as info:
        oauth2_client(fake_time).get_server(SERVER_ID)
    assert info.value.call == "GET /servers/{uuid}"
    assert CLIENT_SECRET not in str(info.value)
    assert (len(token_calls(rsps)) > 1) is retried
    assert api_calls(rsps) == []
