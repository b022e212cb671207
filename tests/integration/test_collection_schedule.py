"""``service.inventory_interval``: every server re-collected once per interval, at its own point, a few at a time
(sandbox inventory, a controlled clock)."""

from __future__ import annotations

from typing import Any

import pytest

from flasher.config import InventorySettings, ServiceSettings, Settings
from flasher.constants import INVENTORY_NAMESPACE
from flasher.inventory.client import InventoryClient
from flasher.service.collections import CollectionSchedule, due_point, offset
from flasher_sandbox.servers import InventoryServer

pytestmark = pytest.mark.integration

INTERVAL = 3600.0
T0 = 1_800_000_000.0  # a multiple of nothing in particular


def _finish(client: InventoryClient, uuid: str, at: float) -> None:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(at, UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    data: dict[str, Any] = client.get_attribute(uuid, INVENTORY_NAMESPACE).as_object()
    client.replace_attribute(
        uuid, INVENTORY_NAMESPACE, {**data, "status": "success", "taskID": "t-x", "completedAt": stamp}
    )


def test_points_spread_over_the_interval() -> None:
    offsets = [offset(f"00000000-0000-0000-0000-{i:012d}", INTERVAL) for i in range(400)]
    assert all(0 <= o < INTERVAL for o in offsets)
    quarters = [sum(1 for o in offsets if q * INTERVAL / 4 <= o < (q + 1) * INTERVAL / 4) for q in range(4)]
    assert min(quarters) > 60  # about 100 each
    uuid = "3f0c2a8e-0000-4000-8000-000000000001"
    point = due_point(uuid, INTERVAL, T0)
    assert T0 - INTERVAL < point <= T0 and due_point(uuid, INTERVAL, point) == point


def test_due_servers_get_requests_within_the_concurrency(clean_inventory: InventoryServer) -> None:
    seeded = clean_inventory.seed(
        {
            "servers": [
                {"name": f"s{i}", "bmc": {"address": f"127.0.0.1:{9000 + i}", "username": "u", "password": "p"}}
                for i in range(5)
            ]
            + [{"name": "no-bmc"}]
        }
    )
    servers = [seeded["servers"][f"s{i}"] for i in range(5)]
    client = InventoryClient(InventorySettings(url=clean_inventory.url, retry_deadline=2.0, retry_max_wait=0.1))
    now = [T0]
    settings = Settings(
        inventory=InventorySettings(url=clean_inventory.url),
        service=ServiceSettings(inventory_interval=INTERVAL, inventory_concurrency=2),
    )
    schedule = CollectionSchedule(client, settings, clock=lambda: now[0])

    first = schedule.tick()  # never collected: all due, two at a time
    assert len(first.written) == 2 and first.open == 0
    assert schedule.tick().written == []  # two open already
    for uuid in first.written:
        data = client.get_attribute(uuid, INVENTORY_NAMESPACE).as_object()
        assert data["status"] == "requested" and data["requester"] == "flasher (service.inventory_interval)"
        _finish(client, uuid, now[0])
    written = set(first.written)
    while len(written) < 5:
        report = schedule.tick()
        assert report.written and len(report.written) <= 2
        for uuid in report.written:
            _finish(client, uuid, now[0])
        written |= set(report.written)
    assert written == set(servers)
    assert schedule.tick().written == []  # all collected since their points

    # One interval later, each server is due at its own point: step through the interval.
    requested_at: dict[str, float] = {}
    for step in range(1, 61):
        now[0] = T0 + step * INTERVAL / 60
        for uuid in schedule.tick().written:
            requested_at[uuid] = now[0]
            _finish(client, uuid, now[0])
    assert set(requested_at) == set(servers)
    for uuid, at in requested_at.items():
        point = due_point(uuid, INTERVAL, at)
        assert point > T0 and at - point <= INTERVAL / 60 + 1  # requested at the first tick after its point
