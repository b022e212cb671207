"""Auth on ``flasher api``: OIDC JWTs checked against a JWKS file (an RSA key made by the test), static tokens,
scopes; whatever is refused writes nothing, and a task's requester is the token's subject."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from flasher_sandbox.servers import ImageServer, InventoryServer
from tests.support.api import APIStack, api_stack
from tests.support.fixtures.bmcsim import BmcFleetPool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ISSUER = "https://issuer.test"
AUDIENCE = "flasher"
ALL = "flasher:read flasher:write flasher:power"


@pytest.fixture(scope="module")
def keys() -> tuple[RSAKey, RSAKey]:
    """The issuer's key and another (a forger's)."""
    return RSAKey.generate_key(2048, parameters={"kid": "issuer-1"}), RSAKey.generate_key(
        2048, parameters={"kid": "issuer-1"}
    )


def token(key: RSAKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300, "scope": ALL, **claims}
    return jwt.encode({"alg": "RS256", "kid": "issuer-1"}, {k: v for k, v in body.items() if v is not None}, key)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def oidc_api(
    keys: tuple[RSAKey, RSAKey],
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> Iterator[APIStack]:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(KeySet([RSAKey.import_key(keys[0].as_dict(private=False))]).as_dict()))
    fleet = bmcsim_pool.get(count=2, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    api = {"auth": "oidc", "oidc": {"issuer": ISSUER, "audience": AUDIENCE, "jwks_file": str(jwks)}}
    with api_stack(clean_inventory, fleet, firmware_server, redis_url, tmp_path, replica=False, api=api) as stack:
        yield stack


def power_on(stack: APIStack, headers: dict[str, str], state: str = "on") -> requests.Response:
    server = stack.servers[0]
    body = {"parameters": {"asset_id": server, "action": "set_power_state", "action_parameter": state}}
    return stack.post(f"/api/v1/servers/{server}/condition/serverControl", json=body, headers=headers)


def test_refused_tokens_are_401_or_403_and_write_nothing(oidc_api: APIStack, keys: tuple[RSAKey, RSAKey]) -> None:
    issuer, forger = keys
    cases = {
        "no token": ({}, 401, "invalid_token"),
        "not a JWT": (bearer("garbage"), 401, "invalid_token"),
        "bad signature": (bearer(token(forger)), 401, "invalid_token"),
        "wrong audience": (bearer(token(issuer, aud="someone-else")), 401, "invalid_token"),
        "wrong issuer": (bearer(token(issuer, iss="https://evil.test")), 401, "invalid_token"),
        "expired": (bearer(token(issuer, exp=int(time.time()) - 3600)), 401, "invalid_token"),
        "no expiry": (bearer(token(issuer, exp=None)), 401, "invalid_token"),
        "read scope that writes": (bearer(token(issuer, scope="flasher:read")), 403, "insufficient_scope"),
        "write scope, a power cycle": (
            bearer(token(issuer, scope="flasher:read flasher:write")),
            403,
            "insufficient_scope",
        ),
    }
    for name, (headers, status, error) in cases.items():
        answer = power_on(oidc_api, headers, "cycle")
        assert answer.status_code == status, (name, answer.text)
        assert f'error="{error}"' in answer.headers["WWW-Authenticate"], name
        given = headers.get("Authorization", "").removeprefix("Bearer ")
        assert not given or given not in answer.text, name  # the token never comes back
        jobs = oidc_api.post(f"/api/v1/jobs?task_name=reboot&server={oidc_api.servers[0]}", headers=headers)
        assert jobs.status_code in (401, 403), (name, jobs.text)
    assert oidc_api.attribute(oidc_api.servers[0], SERVER_CONTROL_NAMESPACE) is None
    assert oidc_api.get("/api/v1/tasks").status_code == 401
    assert oidc_api.get("/api/v1/events").status_code == 401
    assert oidc_api.get("/api/v1/tasks", headers=bearer(token(issuer, scope="flasher:write"))).status_code == 403


def test_a_valid_token_writes_a_task_whose_requester_is_its_subject(
    oidc_api: APIStack, keys: tuple[RSAKey, RSAKey]
) -> None:
    issuer, _ = keys
    answer = power_on(oidc_api, bearer(token(issuer, sub="alice@example.com")))
    read_only = oidc_api.get("/api/v1/tasks", headers=bearer(token(issuer, scope="flasher:read", sub="bob")))
    writer = bearer(token(issuer, scope="flasher:read flasher:write", sub="carol"))
    status_read = oidc_api.put(
        f"/api/v1/servers/{oidc_api.servers[1]}/tasks/server_control",
        json={"action": "get_power_state", "requester": "mallory"},
        headers=writer,
    )
    dry_run = oidc_api.put(
        f"/api/v1/servers/{oidc_api.servers[1]}/tasks/install", json={"dryRun": True}, headers=writer
    )
    real = oidc_api.put(f"/api/v1/servers/{oidc_api.servers[0]}/tasks/install", json={}, headers=writer)

    assert answer.status_code == 200, answer.text
    assert answer.json()["records"]["conditions"][0]["client"] == "alice@example.com"
    attribute = oidc_api.attribute(oidc_api.servers[0], SERVER_CONTROL_NAMESPACE)
    assert attribute is not None and attribute["requester"] == "alice@example.com"
    assert read_only.status_code == 200 and [t["requester"] for t in read_only.json()["tasks"]] == ["alice@example.com"]
    assert status_read.status_code == 201  # reading the power state restarts nothing: write is enough
    assert oidc_api.attribute(oidc_api.servers[1], SERVER_CONTROL_NAMESPACE)["requester"] == "carol"  # type: ignore[index]
    assert dry_run.status_code == 201  # a dry run restarts nothing
    assert real.status_code == 403 and "flasher:power" in real.json()["message"]
    assert oidc_api.attribute(oidc_api.servers[0], TASK_NAMESPACE) is None


def test_static_tokens_from_a_file(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> None:
    secret = tmp_path / "ops-token"
    secret.write_text("s3cr3t-ops-token\n")
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        "- {subject: ops-bot, scopes: [read, write, power], token_file: " + str(secret) + "}\n"
        "- {subject: viewer, scopes: [read], sha256: " + hashlib.sha256(b"viewer-token").hexdigest() + "}\n"
    )
    fleet = bmcsim_pool.get(count=2, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    api = {"auth": "tokens", "tokens_file": str(tokens)}
    with api_stack(clean_inventory, fleet, firmware_server, redis_url, tmp_path, replica=False, api=api) as stack:
        ops = power_on(stack, bearer("s3cr3t-ops-token"))
        viewer_reads = stack.get("/api/v1/tasks", headers=bearer("viewer-token"))
        viewer_writes = power_on(stack, bearer("viewer-token"))
        unknown = power_on(stack, bearer("s3cr3t-ops-tokem"))
        login = requests.post(
            stack.url + "/ui/login", data={"token": "viewer-token"}, allow_redirects=False, timeout=10
        )
        page = stack.get("/ui", cookies=login.cookies)
        no_cookie = stack.get("/ui", allow_redirects=False)

    assert ops.status_code == 200
    assert stack.attribute(stack.servers[0], SERVER_CONTROL_NAMESPACE)["requester"] == "ops-bot"  # type: ignore[index]
    assert viewer_reads.status_code == 200
    assert viewer_writes.status_code == 403
    assert unknown.status_code == 401 and "s3cr3t" not in unknown.text
    assert login.status_code == 303 and "httponly" in login.headers["Set-Cookie"].lower()
    assert page.status_code == 200 and "Tasks" in page.text
    assert no_cookie.status_code == 303 and no_cookie.headers["Location"] == "/ui/login"
