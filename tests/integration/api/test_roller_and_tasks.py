"""roller's job API and flasher's own task resources on ``flasher api``, against a replica on the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from tests.support.api import APIStack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_roller_job_post_then_get_until_complete(api: APIStack) -> None:
    server = api.servers[0]

    created = api.post(f"/api/v1/jobs?task_name=reboot&server={server}")

    assert created.status_code == 201, created.text
    job = created.json()
    assert set(job) == {"task_name", "tc_worker_id", "task_id", "server"}
    assert job["task_name"] == "reboot" and job["tc_worker_id"] is None and job["server"] == server
    first = api.get(f"/api/v1/jobs/{job['task_id']}").json()
    assert first["status"] in ("PENDING", "RUNNING", "COMPLETE")  # found before and after admission

    done = api.wait(
        lambda: (j := api.get(f"/api/v1/jobs/{job['task_id']}").json())["status"] in ("COMPLETE", "FAILED") and j,
        "the job to finish",
    )
    assert done["status"] == "COMPLETE", done
    assert done["flasher_status"] == "success"
    assert done["message"] == "server power state set successful: cycle"
    assert done["task_name"] == "reboot"
    attribute = api.attribute(server, SERVER_CONTROL_NAMESPACE)
    assert attribute is not None and attribute["taskID"] == job["task_id"]
    assert attribute["action"] == "set_power_state" and attribute["action_parameter"] == "cycle"
    assert attribute["request"]["via"] == "roller"


def test_roller_resolves_tc_worker_id_through_the_inventory(api: APIStack) -> None:
    server = api.servers[1]
    namespace = api.settings.api.worker_ids_namespace
    api.inventory.upsert_attribute(server, namespace, {"tc_worker_id": "tc-worker-1"})

    created = api.post("/api/v1/jobs?tc_worker_id=tc-worker-1&task_name=ping")
    unknown = api.post("/api/v1/jobs?tc_worker_id=tc-worker-9&task_name=ping")
    bad_name = api.post(f"/api/v1/jobs?server={server}&task_name=reimage")

    assert created.status_code == 201, created.text
    assert created.json()["server"] == server and created.json()["tc_worker_id"] == "tc-worker-1"
    assert unknown.status_code == 404 and "tc-worker-9" in unknown.json()["message"]
    assert bad_name.status_code == 400
    assert bad_name.json()["errors"][0]["field"] == "task_name" and bad_name.json()["errors"][0]["value"] == "reimage"
    job = api.get(f"/api/v1/jobs/{created.json()['task_id']}").json()
    assert job["tc_worker_id"] == "tc-worker-1"
    assert api.get("/api/v1/jobs/t-000000000000000000000000").status_code == 404


def test_put_get_cancel_and_delete_a_task(api: APIStack) -> None:
    server = api.servers[0]
    request = {"firmwareSet": "no-such-set", "dryRun": True, "requester": "mallory", "priority": 2}

    put = api.put(f"/api/v1/servers/{server}/tasks/install", json=request)

    assert put.status_code == 201, put.text
    record = put.json()
    assert record["status"] == "requested" and record["kind"] == "install"
    attribute = api.attribute(server, TASK_NAMESPACE)
    assert attribute is not None
    assert attribute["requester"] == "anonymous"  # never the client's value
    assert attribute["priority"] == 2
    ended = api.wait(
        lambda: (api.attribute(server, TASK_NAMESPACE) or {}).get("status") in ("failed", "success"),
        "the plan to fail",
    )
    assert ended
    task = api.get(f"/api/v1/servers/{server}/tasks/install").json()
    assert task["status"] == "failed" and "no-such-set" in (task["error"] or "")
    assert task["taskID"] == record["taskID"]
    assert api.post(f"/api/v1/servers/{server}/tasks/install/cancel").status_code == 409  # it ended

    deleted = api.session_delete(f"/api/v1/servers/{server}/tasks/install")
    assert deleted.status_code == 204
    assert api.attribute(server, TASK_NAMESPACE) is None
    assert api.get(f"/api/v1/servers/{server}/tasks/install").status_code == 404


def test_a_put_that_does_not_validate_is_400_and_writes_nothing(api: APIStack) -> None:
    server = api.servers[1]
    answers = [
        api.put(f"/api/v1/servers/{server}/tasks/install", json={"priority": 7}),
        api.put(f"/api/v1/servers/{server}/tasks/install", json={"Firmware": {"bmc": {}}}),
        api.put(f"/api/v1/servers/{server}/tasks/server_control", json={"action": "reboot"}),
        api.put(f"/api/v1/servers/{server}/tasks/install", json=[1, 2]),
        api.put(f"/api/v1/servers/{server}/tasks/laundry", json={}),
        api.put("/api/v1/servers/not-a-uuid/tasks/install", json={}),
    ]
    fields = [a.json()["errors"][0]["field"] for a in answers]

    assert [a.status_code for a in answers] == [400] * 6
    assert fields == ["priority", "Firmware.bmc.version", "action", "body", "kind", "server_id"]
    assert "value 7 is outside 0..3" in answers[0].json()["message"]
    assert api.attribute(server, TASK_NAMESPACE) is None
    assert api.attribute(server, SERVER_CONTROL_NAMESPACE) is None


def test_list_tasks_filters_and_pages(api: APIStack) -> None:
    for index in (0, 1):
        answer = api.put(
            f"/api/v1/servers/{api.servers[index]}/tasks/server_control", json={"action": "get_power_state"}
        )
        assert answer.status_code == 201
    api.wait(
        lambda: all(
            (api.attribute(api.servers[i], SERVER_CONTROL_NAMESPACE) or {}).get("status") == "success" for i in (0, 1)
        ),
        "both tasks to succeed",
    )

    everything = api.get("/api/v1/tasks").json()
    succeeded = api.get("/api/v1/tasks?status=success&kind=server_control").json()
    installs = api.get("/api/v1/tasks?kind=install").json()
    dell = api.get("/api/v1/tasks?vendor=dell").json()
    first = api.get("/api/v1/tasks?per_page=1").json()
    second: dict[str, Any] = api.get(first["next"].removeprefix(api.url)).json()

    assert {t["server"] for t in everything["tasks"]} == set(api.servers.values())
    assert len(succeeded["tasks"]) == 2 and all(t["status"] == "success" for t in succeeded["tasks"])
    assert installs["tasks"] == []
    assert [t["vendor"] for t in dell["tasks"]] == ["dell"]
    assert len(first["tasks"]) == 1 and first["next"] is not None
    assert len(second["tasks"]) == 1 and second["next"] is None
    assert first["tasks"][0]["server"] != second["tasks"][0]["server"]
    assert api.get("/api/v1/tasks?status=bogus").status_code == 400
    assert api.get("/api/v1/tasks?page=99999999999999999999").status_code == 400  # found by schemathesis: was 500


def test_a_body_that_is_not_json_is_400(api: APIStack) -> None:
    # Found by schemathesis (a 500 before): the body's bytes could not be put in the error answer.
    server = api.servers[0]
    answer = api.put(f"/api/v1/servers/{server}/tasks/install", data=b"{}", headers={"Content-Type": "text/plain"})

    assert answer.status_code == 400, answer.text
    assert "application/json" in answer.json()["errors"][0]["reason"]
    assert api.attribute(server, TASK_NAMESPACE) is None


def test_queue_and_probes(api: APIStack) -> None:
    queue = api.get("/api/v1/queue")
    ready = api.get("/readyz")
    openapi = api.get("/openapi.json").json()

    assert queue.status_code == 200 and set(queue.json()) == {"now", "queued", "delayed", "inflight", "dead"}
    assert ready.status_code == 200 and ready.json()["status"] == "ok"
    assert api.get("/healthz").status_code == 200
    assert "flasher_api_requests_total" in api.get("/metrics").text
    paths = set(openapi["paths"])
    for path in (
        "/api/v1/servers/{server_id}/condition/serverControl",
        "/api/v1/servers/{server_id}/condition/firmwareInstall",
        "/api/v1/servers/{server_id}/status",
        "/api/v1/jobs",
        "/api/v1/jobs/{task_id}",
        "/api/v1/tasks",
        "/api/v1/servers/{server_id}/tasks/{kind}",
        "/api/v1/servers/{server_id}/tasks/{kind}/cancel",
        "/api/v1/queue",
        "/api/v1/events",
    ):
        assert path in paths, path


def test_docs_are_served_without_a_cdn(api: APIStack) -> None:
    page = api.get("/docs").text
    assets = [
        api.get(path) for path in ("/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css")
    ]

    assert "cdn" not in page.lower() and "https://" not in page.split("<body>")[1].split("SwaggerUIBundle")[0]
    assert "/static/swagger-ui/swagger-ui-bundle.js" in page
    assert all(a.status_code == 200 and len(a.content) > 100_000 for a in assets)
