"""``GET /api/v1/events`` end to end: every change of a 20-server run, in order per server, resumed after a
dropped connection; a reset after Redis lost its data."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import redis

from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from flasher.events import EventKeys
from flasher_sandbox.servers import ImageServer, InventoryServer
from tests.support.api import APIStack, api_stack
from tests.support.fixtures.bmcsim import BmcFleetPool
from tests.support.sse import SSEClient, SSEvent

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

SERVERS = 20
ORDER = {"requested": 0, "queued": 1, "active": 2, "success": 3, "failed": 3, "cancelled": 3}


def stream_entries(stack: APIStack) -> list[tuple[str, dict[str, Any]]]:
    """The Redis stream as the replicas wrote it: (entry id, event), oldest first (the ground truth)."""
    client = redis.Redis.from_url(stack.settings.redis.url)
    rows: Any = client.xrange(EventKeys(stack.settings.redis.key_prefix).stream)
    return [(i.decode(), json.loads(f[b"d"])) for i, f in rows]


def task_events(events: list[SSEvent]) -> list[SSEvent]:
    return [e for e in events if e.event == "task"]


def key_of(event: SSEvent) -> tuple[str, str]:
    return event.data["server"], event.data["kind"]


@pytest.fixture
def stack20(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> Any:
    fleet = bmcsim_pool.get(count=SERVERS, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    with api_stack(clean_inventory, fleet, firmware_server, redis_url, tmp_path, service={"concurrency": 8}) as stack:
        yield stack


def test_every_change_of_a_20_server_run_in_order_and_resumed_after_a_drop(stack20: APIStack) -> None:
    stack = stack20
    url = stack.url + "/api/v1/events"
    watcher = SSEClient(url).start()
    dropper = SSEClient(url).start()
    for index, server in stack.servers.items():  # installs on half, power cycles on the other half
        if index % 2:
            answer = stack.put(
                f"/api/v1/servers/{server}/tasks/server_control",
                json={"action": "set_power_state", "action_parameter": "cycle"},
            )
        else:
            answer = stack.put(f"/api/v1/servers/{server}/tasks/install", json={"dryRun": False})
        assert answer.status_code == 201, answer.text

    # The dropping client goes away after a few events and comes back with the last id it saw.
    seen = dropper.wait_for(lambda evs: len(task_events(evs)) >= 15, "some events")
    dropper.close()
    last_id = seen[-1].id
    resumed = SSEClient(url, last_event_id=last_id).start()

    def all_ended() -> bool:
        for index, server in stack.servers.items():
            namespace = SERVER_CONTROL_NAMESPACE if index % 2 else TASK_NAMESPACE
            if (stack.attribute(server, namespace) or {}).get("status") not in ("success", "failed", "cancelled"):
                return False
        return True

    stack.wait(all_ended, "every task to end", timeout=150)
    truth = stream_entries(stack)
    final_ids = {i for i, _ in truth}
    watcher.wait_for(lambda evs: {e.id.split(":")[1] for e in task_events(evs) if e.id} >= final_ids, "every event")
    resumed.wait_for(lambda evs: evs and evs[-1].id and evs[-1].id.split(":")[1] == truth[-1][0], "the last event")
    watcher.close()
    resumed.close()

    got = task_events(watcher.snapshot())
    # Every entry the replicas and the API published reached the listener, once each, in the stream's order.
    assert [e.id.split(":")[1] for e in got if e.id] == [i for i, _ in truth]
    assert [e.data["status"] for e in got] == [d["status"] for _, d in truth]
    # Per server: statuses only move forward, from the request to the end, and each ends in success.
    by_server: dict[tuple[str, str], list[str]] = defaultdict(list)
    for e in got:
        by_server[key_of(e)].append(e.data["status"])
    assert len(by_server) == SERVERS
    for key, statuses in by_server.items():
        ranks = [ORDER[s] for s in statuses]
        assert ranks == sorted(ranks), (key, statuses)
        assert statuses[0] == "requested" and statuses[-1] == "success", (key, statuses)
        assert {"queued", "active"} <= set(statuses), (key, statuses)
    # Every message line the task attribute still holds came as an event, in the same order.
    for index, server in stack.servers.items():
        namespace = SERVER_CONTROL_NAMESPACE if index % 2 else TASK_NAMESPACE
        kind = "server_control" if index % 2 else "install"
        messages = (stack.attribute(server, namespace) or {})["messages"]
        streamed = [e.data["message"] for e in got if key_of(e) == (server, kind)]
        streamed = [m for m, _ in itertools.groupby(streamed)]
        positions = [streamed.index(m) for m in messages]
        assert positions == sorted(positions), (server, messages, streamed)
    # The dropped client missed nothing and saw nothing twice: before the drop, then from its last id on.
    before = [e.id for e in task_events(seen)]
    after = [e.id for e in task_events(resumed.snapshot())]
    assert [i.split(":")[1] for i in before + after if i] == [i for i, _ in truth]
    assert not [e for e in resumed.snapshot() if e.event == "reset"]


def test_a_client_resuming_after_redis_lost_its_data_gets_a_reset(api: APIStack) -> None:
    url = api.url + "/api/v1/events"
    client = SSEClient(url).start()
    server = api.servers[0]
    assert (
        api.put(f"/api/v1/servers/{server}/tasks/server_control", json={"action": "get_power_state"}).status_code == 201
    )
    events = client.wait_for(lambda evs: any(e.data.get("status") == "success" for e in evs), "the task to end")
    client.close()
    redis.Redis.from_url(api.settings.redis.url).flushall()

    again = SSEClient(url, last_event_id=events[-1].id).start()
    got = again.wait_for(lambda evs: len(evs) >= 1, "a reset")
    bogus = SSEClient(url, last_event_id="not-an-id").start()
    bogus_got = bogus.wait_for(lambda evs: len(evs) >= 1, "a reset")
    filtered = SSEClient(url + f"?server={api.servers[1]}&status=success").start()
    assert (
        api.put(
            f"/api/v1/servers/{server}/tasks/server_control?replace=true", json={"action": "get_power_state"}
        ).status_code
        == 201
    )
    assert (
        api.put(
            f"/api/v1/servers/{api.servers[1]}/tasks/server_control", json={"action": "get_power_state"}
        ).status_code
        == 201
    )
    # (a reset may come first: the hub notices the flush at its next read, whoever is connected then)
    only = task_events(filtered.wait_for(lambda evs: len(task_events(evs)) >= 1, "the other server's success"))
    for c in (again, bogus, filtered):
        c.close()

    assert got[0].event == "reset" and "re-read" in got[0].data["reason"]
    assert bogus_got[0].event == "reset"
    assert [(e.data["server"], e.data["status"]) for e in only] == [(api.servers[1], "success")]
    assert api.get("/api/v1/events?status=bogus").status_code == 400
