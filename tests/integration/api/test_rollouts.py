"""Rollouts through ``flasher api`` on the sandbox (real inventory, Redis, simulated BMCs): plan writes nothing;
create, status, list; pause, resume, abort with the CLI's refusals (409); bad bodies 400 naming the field; an
unknown rollout 404; a rollout run to success by a replica; scopes (a read token writes nothing)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from flasher.constants import TASK_NAMESPACE
from flasher.rollout.store import RolloutStore
from flasher_sandbox.servers import ImageServer, InventoryServer
from tests.support.api import APIStack, api_stack
from tests.support.fixtures.bmcsim import BmcFleetPool
from tests.support.sse import SSEClient, SSEvent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

#: Fast controller ticks for the stacks that run a rollout.
ROLLOUT = {"tick_interval": 0.3, "min_tick_gap": 0.1}


def closed_window() -> str:
    """A daily window that opens in two hours: nothing of a rollout in it starts during the test."""
    now = datetime.now(UTC)
    return f"{now + timedelta(hours=2):%H:%M}-{now + timedelta(hours=3):%H:%M} UTC"


def body(name: str = "fw", **changes: Any) -> dict[str, Any]:
    return {"name": name, "select": ["all"], "resolve": True, "waves": "1,100%", **changes}


@pytest.fixture
def quiet(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> Iterator[APIStack]:
    """The API without a replica: rollouts are written but nothing moves them."""
    fleet = bmcsim_pool.get(count=2, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    with api_stack(clean_inventory, fleet, firmware_server, redis_url, tmp_path, replica=False) as stack:
        yield stack


def no_attributes(stack: APIStack) -> bool:
    return all(stack.attribute(uuid, TASK_NAMESPACE) is None for uuid in stack.servers.values())


def test_plan_is_read_only_and_speaks_the_clis_json(quiet: APIStack) -> None:
    answer = quiet.post("/api/v1/rollouts/plan", json={"select": ["all"], "resolve": True})
    by_model = quiet.post(
        "/api/v1/rollouts/plan", json={"select": ["model=x12stw"], "firmware-set": "supermicro-x12stw-platform"}
    )
    no_baseline = quiet.post("/api/v1/rollouts/plan", json={"select": ["all"]})
    bad_selector = quiet.post("/api/v1/rollouts/plan", json={"select": ["rack=r1"], "resolve": True})
    not_a_list = quiet.post("/api/v1/rollouts/plan", json={"select": "all", "resolve": True})
    secret = Path(quiet.settings.store.cache_dir).parent / "not-uuids.txt"
    secret.write_text("hunter2-secret-line\n")
    a_file = quiet.post("/api/v1/rollouts/plan", json={"select": [f"uuids-file={secret}"], "resolve": True})
    a_file_create = quiet.post("/api/v1/rollouts", json=body(select=[f"uuids-file={secret}"]))

    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["counts"]["servers"] == 2 and plan["counts"]["outcome"] == {"install": 2}
    assert {s["name"] for s in plan["servers"]} == {"srv-0", "srv-1"}
    assert all(s["install"] and s["outcome"] == "install" for s in plan["servers"])
    assert by_model.status_code == 200 and [s["name"] for s in by_model.json()["servers"]] == ["srv-1"]
    assert no_baseline.status_code == 400 and no_baseline.json()["errors"][0]["field"] == "firmware-set"
    assert bad_selector.status_code == 400
    assert bad_selector.json()["errors"][0]["field"] == "select" and "rack=r1" in bad_selector.json()["message"]
    assert not_a_list.status_code == 400 and not_a_list.json()["errors"][0]["field"] == "select"
    for answer in (a_file, a_file_create):  # the API never reads a file on its host for a client
        assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "select", answer.text
        assert "hunter2" not in answer.text and "uuid=U" in answer.text
    assert no_attributes(quiet)
    assert quiet.get("/api/v1/rollouts").json() == {"rollouts": [], "problems": []}


def test_create_status_list_pause_resume_abort(quiet: APIStack) -> None:
    events = SSEClient(quiet.url + "/api/v1/events?rollout=fw").start()
    created = quiet.post(
        "/api/v1/rollouts",
        json={**body(), "max-active": 1, "max-failures": 2, "window": [closed_window()], "requester": "mallory"},
    )

    assert created.status_code == 201, created.text
    made = created.json()
    assert made["state"] == "running" and made["wave_sizes"] == [1, 1]
    assert set(made["members"]) == set(quiet.servers.values()) and sorted(made["members"].values()) == [1, 2]
    assert made["record"]["requester"] == "anonymous"  # the caller's subject, never the body's
    for uuid in quiet.servers.values():
        attribute = quiet.attribute(uuid, TASK_NAMESPACE)
        assert attribute is not None and attribute["rollout"]["name"] == "fw" and attribute["requester"] == "anonymous"

    again = quiet.post("/api/v1/rollouts", json=body())
    assert again.status_code == 409 and "exists already" in again.json()["message"]

    status = quiet.get("/api/v1/rollouts/fw").json()
    assert status["state"] == "running" and status["counts"] == {"new": 2}
    assert [(w["wave"], w["size"], len(w["members"])) for w in status["waves"]] == [(1, 1, 1), (2, 1, 1)]
    assert status["caps"] == {"max_active": 1, "holding": 0, "max_active_per": [], "max_reboots_per": []}
    assert status["breaker"]["budget"] == "2 failures per firmware" and status["breaker"]["tripped"] is False
    assert sorted(status["members_by_state"]["new"]) == sorted(quiet.servers.values())
    assert status["waiting"] == {"window": 1, "wave": 1}
    listed = quiet.get("/api/v1/rollouts").json()["rollouts"]
    assert [(r["name"], r["state"], r["members"]) for r in listed] == [("fw", "running", 2)]

    assert quiet.post("/api/v1/rollouts/fw/pause").json()["state"] == "paused"
    twice = quiet.post("/api/v1/rollouts/fw/pause")
    assert twice.status_code == 409 and "paused already (by anonymous)" in twice.json()["message"]
    assert quiet.post("/api/v1/rollouts/fw/resume").json()["state"] == "running"
    running = quiet.post("/api/v1/rollouts/fw/resume")
    assert running.status_code == 409 and "is running (not paused)" in running.json()["message"]
    nothing = quiet.post("/api/v1/rollouts/fw/retry-failed")
    assert nothing.status_code == 409 and "nothing to retry" in nothing.json()["message"]

    aborted = quiet.post("/api/v1/rollouts/fw/abort")
    assert aborted.status_code == 200 and aborted.json()["state"] == "aborted"
    assert sorted(aborted.json()["changed"]) == sorted(quiet.servers.values())
    for uuid in quiet.servers.values():
        assert quiet.attribute(uuid, TASK_NAMESPACE)["status"] == "cancelled"  # type: ignore[index]

    members = set(quiet.servers.values())

    def tasks(seen: list[SSEvent]) -> list[SSEvent]:
        return [e for e in seen if e.event == "task"]

    def both(wanted: str) -> Any:
        return lambda seen: {e.data["server"] for e in tasks(seen) if e.data["status"] == wanted} == members

    events.wait_for(both("requested"), "the members' requests as events")
    seen = events.wait_for(both("cancelled"), "the members' cancellations as events")
    events.close()
    assert all(e.data["rollout"] == "fw" and e.data["source"] == "api" for e in tasks(seen))
    for action in ("abort", "pause", "resume"):
        refused = quiet.post(f"/api/v1/rollouts/fw/{action}")
        assert refused.status_code == 409 and "aborted" in refused.json()["message"], action
    assert quiet.get("/api/v1/rollouts?active=true").json()["rollouts"][0]["state"] == "aborted"
    history = RolloutStore(quiet.inventory).get("fw").record.history
    assert [line.split(" ", 1)[1] for line in history][-4:] == [
        "2 members written",
        "paused by anonymous",
        "resumed by anonymous",
        "aborted by anonymous",
    ]


def test_unknown_rollouts_are_404_and_bad_names_400(quiet: APIStack) -> None:
    assert quiet.get("/api/v1/rollouts/nope").status_code == 404
    for action in ("pause", "resume", "abort", "retry-failed"):
        answer = quiet.post(f"/api/v1/rollouts/nope/{action}")
        assert answer.status_code == 404 and "no rollout named 'nope'" in answer.json()["message"], action
    bad = quiet.get("/api/v1/rollouts/Not_Valid!")
    assert bad.status_code == 400 and bad.json()["errors"][0] == {
        "field": "name",
        "value": "Not_Valid!",
        "reason": "is not a rollout name: 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
    }
    assert quiet.post("/api/v1/rollouts/Not_Valid!/abort").status_code == 400


@pytest.mark.parametrize(
    ("changes", "field", "value"),
    [
        ({"max-active": 0}, "max-active", 0),
        ({"max-active": "3"}, "max-active", "3"),
        ({"waves": "bogus"}, "waves", None),
        ({"window": ["Sun 25:00-26:00 UTC"]}, "window", None),
        ({"max-active-per": ["rack=x"]}, "max-active-per", None),
        ({"max-active-per": ["pdu=2"]}, "max-active-per", None),
        ({"select": []}, "select", None),
        ({"colour": "red"}, "colour", None),
        ({"name": "Bad Name"}, "name", "Bad Name"),
        ({"firmware-set": "dell-r6515"}, "firmware-set", None),
        ({"max-failure-rate": "200%"}, "max-failure-rate", "200%"),
        ({"priority": 9}, "priority", 9),
        ({"soak": "soon"}, "soak", "soon"),
    ],
)
def test_bad_create_bodies_are_400_naming_the_field_and_write_nothing(
    quiet: APIStack, changes: dict[str, Any], field: str, value: Any
) -> None:
    answer = quiet.post("/api/v1/rollouts", json=body(**changes))

    assert answer.status_code == 400, answer.text
    errors = answer.json()["errors"]
    assert errors[0]["field"] == field, errors
    if value is not None:
        assert errors[0]["value"] == value, errors
    assert field in answer.json()["message"]
    assert quiet.get("/api/v1/rollouts").json()["rollouts"] == []
    assert no_attributes(quiet)


def test_a_replica_runs_a_rollout_created_through_the_api_to_success(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> None:
    fleet = bmcsim_pool.get(count=2, install_seconds=0.3, offline_seconds=0.5, power_seconds=0.1)
    with api_stack(clean_inventory, fleet, firmware_server, redis_url, tmp_path, rollout=ROLLOUT) as stack:
        created = stack.post("/api/v1/rollouts", json={**body("run"), "max-active": 1})
        assert created.status_code == 201, created.text

        def done() -> dict[str, Any] | None:
            view = stack.get("/api/v1/rollouts/run").json()
            return view if view["record"]["phase"] == "closed" else None

        view = stack.wait(done, "the rollout to close", timeout=150)
        tasks = stack.get("/api/v1/tasks?rollout=run").json()["tasks"]

    assert view["state"] == "completed" and view["counts"] == {"success": 2}, view["counts"]
    assert [w["counts"] for w in view["waves"]] == [{"success": 1}, {"success": 1}]
    assert sorted(view["members_by_state"]["success"]) == sorted(stack.servers.values())
    assert all(m["status"] == "success" for m in view["members"])
    assert view["caps"]["holding"] == 0 and view["breaker"]["halts"] == []
    assert sorted(t["server"] for t in tasks) == sorted(stack.servers.values())


def test_scopes_a_read_token_cannot_create_pause_or_abort(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "tokens.yaml"
    digest = {name: hashlib.sha256(f"{name}-token".encode()).hexdigest() for name in ("ops", "writer", "viewer")}
    tokens.write_text(
        f"- {{subject: ops-bot, scopes: [read, write, power], sha256: {digest['ops']}}}\n"
        f"- {{subject: scheduler, scopes: [read, write], sha256: {digest['writer']}}}\n"
        f"- {{subject: viewer, scopes: [read], sha256: {digest['viewer']}}}\n"
    )
    ops, writer, viewer = ({"Authorization": f"Bearer {name}-token"} for name in ("ops", "writer", "viewer"))
    fleet = bmcsim_pool.get(count=2, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    api = {"auth": "tokens", "tokens_file": str(tokens)}
    with api_stack(clean_inventory, fleet, firmware_server, redis_url, tmp_path, replica=False, api=api) as stack:
        anonymous = stack.post("/api/v1/rollouts", json=body(window=[closed_window()]))
        read_create = stack.post("/api/v1/rollouts", json=body(window=[closed_window()]), headers=viewer)
        write_create = stack.post("/api/v1/rollouts", json=body(window=[closed_window()]), headers=writer)
        assert no_attributes(stack) and stack.get("/api/v1/rollouts", headers=viewer).json()["rollouts"] == []
        created = stack.post("/api/v1/rollouts", json=body(window=[closed_window()]), headers=ops)
        record = RolloutStore(stack.inventory).get("fw").record
        refused = {
            action: stack.post(f"/api/v1/rollouts/fw/{action}", headers=viewer)
            for action in ("pause", "resume", "abort", "retry-failed")
        }
        reads = [
            stack.get("/api/v1/rollouts", headers=viewer),
            stack.get("/api/v1/rollouts/fw", headers=viewer),
            stack.post("/api/v1/rollouts/plan", json={"select": ["all"], "resolve": True}, headers=viewer),
        ]
        unchanged = RolloutStore(stack.inventory).get("fw").record
        members = [stack.attribute(uuid, TASK_NAMESPACE) for uuid in stack.servers.values()]
        pages = {}
        for who, secret in (("viewer", "viewer-token"), ("ops", "ops-token")):
            login = requests.post(stack.url + "/ui/login", data={"token": secret}, allow_redirects=False, timeout=10)
            pages[who] = stack.get("/ui/rollouts/fw", cookies=login.cookies)
        paused = stack.post("/api/v1/rollouts/fw/pause", headers=writer)
        resume_without_power = stack.post("/api/v1/rollouts/fw/resume", headers=writer)
        resumed = stack.post("/api/v1/rollouts/fw/resume", headers=ops)
        aborted = stack.post("/api/v1/rollouts/fw/abort", headers=writer)

    assert anonymous.status_code == 401
    assert read_create.status_code == 403 and 'error="insufficient_scope"' in read_create.headers["WWW-Authenticate"]
    assert write_create.status_code == 403 and "flasher:power" in write_create.json()["message"]
    assert created.status_code == 201 and created.json()["record"]["requester"] == "ops-bot"
    for action, answer in refused.items():
        assert answer.status_code == 403, (action, answer.text)
    assert all(r.status_code == 200 for r in reads), [r.text for r in reads]
    assert unchanged == record  # nothing written by the refused requests
    assert all(m is not None and m["status"] == "requested" for m in members)
    assert pages["viewer"].status_code == 200 and "Rollout fw" in pages["viewer"].text
    assert 'id="rollout-pause"' not in pages["viewer"].text  # a read-only session gets no buttons
    assert 'id="rollout-pause"' in pages["ops"].text and 'id="rollout-abort"' in pages["ops"].text
    assert paused.status_code == 200 and paused.json()["record"]["updatedBy"] == "scheduler"
    assert resume_without_power.status_code == 403
    assert resumed.status_code == 200
    assert aborted.status_code == 200 and aborted.json()["state"] == "aborted"


def test_the_endpoints_and_models_are_in_the_openapi_document_and_the_pages_use_no_cdn(quiet: APIStack) -> None:
    openapi = quiet.get("/openapi.json").json()
    assert quiet.post("/api/v1/rollouts", json=body(window=[closed_window()])).status_code == 201
    pages = [quiet.get("/ui/rollouts"), quiet.get("/ui/rollouts/fw"), quiet.get("/ui?rollout=fw")]
    missing = quiet.get("/ui/rollouts/nope")

    paths = openapi["paths"]
    assert set(paths["/api/v1/rollouts"]) == {"get", "post"}
    assert set(paths["/api/v1/rollouts/plan"]) == {"post"} and set(paths["/api/v1/rollouts/{name}"]) == {"get"}
    for action in ("pause", "resume", "abort", "retry-failed"):
        assert set(paths[f"/api/v1/rollouts/{{name}}/{action}"]) == {"post"}, action
    schemas = openapi["components"]["schemas"]
    assert {"max-active", "max-active-per", "firmware-set", "window", "waves"} <= set(
        schemas["CreateBody"]["properties"]
    )
    assert {"caps", "breaker", "members_by_state", "waves"} <= set(schemas["RolloutStatusView"]["properties"])
    for page in pages:
        assert page.status_code == 200
        assert "https://" not in page.text and "http://" not in page.text  # every file is flasher's own
    assert 'href="/ui/rollouts"' in pages[2].text and 'href="/ui/rollouts/fw"' in pages[2].text  # from the fleet
    assert 'id="wave-1"' in pages[1].text and 'id="rollout-breaker"' in pages[1].text
    assert missing.status_code == 404 and "no rollout named &#39;nope&#39;" in missing.text
