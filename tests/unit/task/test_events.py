"""Task events: what one attribute write tells listeners, and the store that publishes writes."""

from __future__ import annotations

from typing import Any

from flasher.inventory.models import Attributes
from flasher.task.events import PublishingStore, TaskEvent, rollout_of, task_event
from flasher.task.model import TaskKind

SERVER = "7a89f298-e066-435c-8637-d95dc9ceb5a7"


class Recorder:
    def __init__(self) -> None:
        self.events: list[TaskEvent] = []

    def publish(self, event: TaskEvent) -> None:
        self.events.append(event)


class Store:
    def __init__(self) -> None:
        self.data: dict[tuple[str, str], dict[str, Any]] = {}

    def get_attribute(self, uuid: str, namespace: str) -> Attributes:
        return Attributes(namespace=namespace, data=self.data[(uuid, namespace)])

    def replace_attribute(self, uuid: str, namespace: str, data: dict[str, Any], *, once: bool = False) -> None:
        self.data[(uuid, namespace)] = data


def test_an_event_carries_status_newest_message_and_rollout() -> None:
    data = {
        "status": "active",
        "taskID": "t-1",
        "worker": "flasher-0",
        "messages": ["2026-01-01T00:00:00Z queued", "2026-01-01T00:00:01Z [bios] installing 2.7.3"],
        "updatedAt": "2026-01-01T00:00:01Z",
        "rollout": {"name": "bios-q4", "wave": 2},
    }

    event = task_event(SERVER, TaskKind.INSTALL, data, source="worker")

    assert event == TaskEvent(
        SERVER,
        "install",
        "t-1",
        "active",
        "2026-01-01T00:00:01Z [bios] installing 2.7.3",
        "2026-01-01T00:00:01Z",
        "flasher-0",
        False,
        "bios-q4",
        "worker",
    )
    assert TaskEvent.from_json(event.to_json()) == event


def test_odd_content_still_makes_an_event() -> None:
    assert task_event(SERVER, TaskKind.INSTALL, {"status": ""}, source="api").status == "requested"
    assert task_event(SERVER, TaskKind.INSTALL, {"status": 7, "messages": "x"}, source="api").status == "invalid"
    assert task_event(SERVER, TaskKind.SERVER_CONTROL, None, source="api").status == "deleted"
    assert rollout_of({"rollout": "plain-name"}) == "plain-name"
    assert rollout_of({"rollout": True}) is None
    assert rollout_of({"rollout": {"wave": 1}}) is None


def test_the_publishing_store_publishes_changes_not_heartbeats() -> None:
    sink, store = Recorder(), Store()
    publishing = PublishingStore(store, sink, source="worker")
    namespace = TaskKind.INSTALL.namespace
    base = {"status": "active", "taskID": "t-1", "messages": ["2026-01-01T00:00:00Z claimed"]}

    publishing.replace_attribute(SERVER, namespace, {**base, "updatedAt": "2026-01-01T00:00:00Z"})
    publishing.replace_attribute(SERVER, namespace, {**base, "updatedAt": "2026-01-01T00:00:10Z"})  # heartbeat
    publishing.replace_attribute(SERVER, namespace, {**base, "status": "success"})
    publishing.replace_attribute(SERVER, "sh.hollow.other", {"status": "x"})  # not a task namespace

    assert [e.status for e in sink.events] == ["active", "success"]
    assert store.data[(SERVER, namespace)]["status"] == "success"  # every write reached the inventory
    assert publishing.get_attribute(SERVER, namespace).as_object()["status"] == "success"


def test_a_sink_that_fails_does_not_fail_the_write() -> None:
    class Broken:
        def publish(self, event: TaskEvent) -> None:
            raise RuntimeError("redis is down")

    store = Store()
    PublishingStore(store, Broken()).replace_attribute(SERVER, TaskKind.INSTALL.namespace, {"status": "queued"})

    assert store.data[(SERVER, TaskKind.INSTALL.namespace)] == {"status": "queued"}


def test_coalesced_lines_make_one_event_each_and_the_status_changes_once() -> None:
    sink, store = Recorder(), Store()
    publishing = PublishingStore(store, sink, source="worker")
    namespace = TaskKind.INSTALL.namespace
    first = {"status": "active", "taskID": "t-1", "messages": ["t0 claimed"]}
    publishing.replace_attribute(SERVER, namespace, first)
    publishing.replace_attribute(
        SERVER, namespace, {**first, "status": "success", "messages": ["t0 claimed", "t1 bios 40%", "t2 success"]}
    )

    assert [(e.message, e.status) for e in sink.events] == [
        ("t0 claimed", "active"),  # the first write a store sees: only its own event, no replay of older lines
        ("t1 bios 40%", "active"),
        ("t2 success", "success"),
    ]
