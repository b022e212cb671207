"""The writer's read-back (:mod:`flasher.task.request`): a request is written again exactly when a status write of
the task it replaced landed over it, taken up only when flasher admitted it, superseded only by someone else.

The property test plays the inventory against :func:`submit`: between any two of its reads, flasher's status writes
of the replaced task (the window between flasher's re-read and its write), flasher's admissions of whatever new
request the attribute holds, other operators' requests and deletions happen in any order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flasher.constants import TASK_NAMESPACE
from flasher.inventory.errors import NotFoundError
from flasher.task.model import TaskKind
from flasher.task.request import MAX_RESTORES, Verdict, keep_cancel, request_task_id, submit

SERVER = "6f1b7f1e-5b0c-4a4e-9d7a-0c6f1a5e2b10"
RUNNING = {
    "status": "active",
    "taskID": "t-running",
    "firmwareSet": "dell-r6515",
    "createdAt": "2026-01-01T00:00:00Z",
    "worker": "flasher-0",
}
REQUEST = {"status": "", "firmwareSet": "dell-r6515", "requester": "alice", "force": True}
MINE = request_task_id(SERVER, TaskKind.INSTALL, REQUEST)


@dataclass
class _Attribute:
    data: Any


@dataclass
class Inventory:
    """One task attribute, and what happened to it (``log``: ``(who, data)``)."""

    data: dict[str, Any] | None
    events: list[str] = field(default_factory=list)
    log: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)
    now: float = 0.0
    admissions: int = 0
    #: What a "stale" event writes: a status write of the task the request replaced, made from an earlier re-read.
    stale: dict[str, Any] = field(default_factory=lambda: dict(RUNNING))

    def get_attribute(self, uuid: str, namespace: str) -> _Attribute:
        assert (uuid, namespace) == (SERVER, TASK_NAMESPACE)
        if self.data is None:
            raise NotFoundError("GET /servers/{uuid}/attributes/{namespace}", "not found", status=404)
        return _Attribute(dict(self.data))

    def upsert_attribute(self, uuid: str, namespace: str, data: Any) -> None:
        self._put("writer", dict(data))

    def replace_attribute(self, uuid: str, namespace: str, data: Any) -> None:
        if self.data is None:
            raise NotFoundError("PUT /servers/{uuid}/attributes/{namespace}", "not found", status=404)
        self._put("writer", dict(data))

    def _put(self, who: str, data: dict[str, Any] | None) -> None:
        self.data = data
        self.log.append((who, data))

    def sleep(self, seconds: float) -> None:
        """Between two reads of the writer: the next event happens."""
        self.now += seconds
        if self.events:
            self.happen(self.events.pop(0))

    def happen(self, event: str) -> None:
        current = self.data
        if event == "stale":  # a status write of the running task that re-read the attribute before the request
            self._put("flasher-stale", {**self.stale, "messages": [f"progress {len(self.log)}"]})
        elif event == "admit" and current is not None and current.get("status") in ("", "requested"):
            self.admissions += 1
            task_id = request_task_id(SERVER, TaskKind.INSTALL, current)
            acknowledged = {
                **current,
                "status": "queued",
                "taskID": task_id,
                "createdAt": f"2026-01-02T00:00:{self.admissions:02d}Z",
            }
            self._put("flasher-admit", acknowledged)
        elif event == "operator":
            self._put("operator", {"status": "", "firmwareSet": "dell-r6515", "requester": f"bob-{len(self.log)}"})
        elif event == "delete":
            self._put("operator", None)


events = st.lists(st.sampled_from(["nothing", "stale", "admit", "operator", "delete"]), max_size=25)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events, open_before=st.booleans())
def test_the_read_back_restores_exactly_what_flasher_overwrote(events: list[str], open_before: bool) -> None:
    before = dict(RUNNING) if open_before else {**RUNNING, "status": "success"}
    inventory = Inventory(data=before, events=list(events))

    result = submit(
        inventory,
        SERVER,
        TaskKind.INSTALL,
        REQUEST,
        confirm_for=10.0,
        quiet_for=1.0,
        interval=0.5,
        clock=lambda: inventory.now,
        sleep=inventory.sleep,
    )

    writes = [data for who, data in inventory.log if who == "writer"]
    assert all(data == REQUEST for data in writes)  # only ever the request as given
    assert result.restored == len(writes) - 1
    others = [who for who, _ in inventory.log if who == "operator"]
    if result.verdict is Verdict.ACCEPTED:  # flasher admitted this very request
        assert inventory.data is not None and inventory.data["taskID"] == MINE and inventory.data["status"] == "queued"
        assert inventory.log[-1][0] == "flasher-admit"
    elif result.verdict is Verdict.SUPERSEDED:  # only another operator's request (or deletion) supersedes it
        assert others
        assert inventory.log[-1][0] != "flasher-stale"
    else:  # still there as written, or the writer gave up after MAX_RESTORES
        assert inventory.data == REQUEST or result.restored == MAX_RESTORES
    if not others:  # without another operator, the request is never left overwritten by flasher
        assert result.verdict is not Verdict.SUPERSEDED
        assert inventory.data is not None and inventory.data.get("requester") == "alice"
        assert inventory.log[-1][0] in ("writer", "flasher-admit") or result.restored == MAX_RESTORES


def test_a_request_taken_up_at_once_is_accepted() -> None:
    inventory = Inventory(data=dict(RUNNING), events=["admit"])
    result = submit(inventory, SERVER, TaskKind.INSTALL, REQUEST, clock=lambda: inventory.now, sleep=inventory.sleep)
    assert (result.verdict, result.task_id, result.restored) == (Verdict.ACCEPTED, MINE, 0)
    assert "queued" in result.detail


def test_a_status_write_over_the_request_makes_the_writer_write_it_again() -> None:
    inventory = Inventory(data=dict(RUNNING), events=["stale", "nothing", "admit"])
    result = submit(inventory, SERVER, TaskKind.INSTALL, REQUEST, clock=lambda: inventory.now, sleep=inventory.sleep)
    assert (result.verdict, result.restored) == (Verdict.ACCEPTED, 1)
    assert [who for who, _ in inventory.log] == ["writer", "flasher-stale", "writer", "flasher-admit"]


@pytest.mark.parametrize("event", ["operator", "delete"])
def test_another_writer_supersedes_the_request(event: str) -> None:
    inventory = Inventory(data=dict(RUNNING), events=[event])
    result = submit(inventory, SERVER, TaskKind.INSTALL, REQUEST, clock=lambda: inventory.now, sleep=inventory.sleep)
    assert result.verdict is Verdict.SUPERSEDED and result.restored == 0
    assert ("deleted" in result.detail) == (event == "delete")


def test_an_admission_of_the_request_it_replaced_landing_over_it_is_flashers_doing() -> None:
    """The attribute held a new request not admitted yet; its admission re-read it just before ours landed."""
    earlier = {"status": "", "firmwareSet": "dell-r6515", "requester": "carol"}
    acknowledged = {**earlier, "status": "queued", "taskID": request_task_id(SERVER, TaskKind.INSTALL, earlier)}
    inventory = Inventory(data=dict(earlier), events=["stale", "nothing", "admit"], stale=acknowledged)
    result = submit(inventory, SERVER, TaskKind.INSTALL, REQUEST, clock=lambda: inventory.now, sleep=inventory.sleep)
    assert (result.verdict, result.restored) == (Verdict.ACCEPTED, 1)


def test_the_same_request_as_the_running_task_is_taken_up_only_when_admitted_anew() -> None:
    running_same = {**REQUEST, "status": "active", "taskID": MINE, "createdAt": "2026-01-01T00:00:00Z"}
    inventory = Inventory(data=dict(running_same), events=["stale", "nothing", "admit"], stale=running_same)
    result = submit(inventory, SERVER, TaskKind.INSTALL, REQUEST, clock=lambda: inventory.now, sleep=inventory.sleep)
    assert (result.verdict, result.restored) == (Verdict.ACCEPTED, 1)  # the old run's write was not taken for it
    assert inventory.data is not None and inventory.data["createdAt"] != running_same["createdAt"]


def test_a_request_over_an_ended_task_needs_only_a_quiet_second() -> None:
    inventory = Inventory(data={**RUNNING, "status": "success"})
    result = submit(
        inventory,
        SERVER,
        TaskKind.INSTALL,
        REQUEST,
        confirm_for=30,
        quiet_for=1.0,
        interval=0.5,
        clock=lambda: inventory.now,
        sleep=inventory.sleep,
    )
    assert result.verdict is Verdict.WAITING and inventory.now == pytest.approx(1.0)


def test_a_request_over_a_running_task_is_read_back_until_confirmed() -> None:
    inventory = Inventory(data=dict(RUNNING))
    result = submit(
        inventory,
        SERVER,
        TaskKind.INSTALL,
        REQUEST,
        confirm_for=5,
        interval=0.5,
        clock=lambda: inventory.now,
        sleep=inventory.sleep,
    )
    assert result.verdict is Verdict.WAITING and inventory.now == pytest.approx(5.0)


def test_a_cancel_overwritten_by_a_status_write_is_written_again() -> None:
    inventory = Inventory(data=dict(RUNNING))
    inventory.replace_attribute(SERVER, TASK_NAMESPACE, {**RUNNING, "cancel": True})
    inventory.events = ["stale", "nothing", "nothing"]
    again = keep_cancel(
        inventory,
        SERVER,
        TaskKind.INSTALL,
        RUNNING,
        confirm_for=1.5,
        clock=lambda: inventory.now,
        sleep=inventory.sleep,
    )
    assert again == 1
    assert inventory.data is not None and inventory.data["cancel"] is True


def test_a_cancel_of_a_task_that_ended_or_was_replaced_is_left_alone() -> None:
    inventory = Inventory(data={**RUNNING, "status": "success"})
    again = keep_cancel(
        inventory, SERVER, TaskKind.INSTALL, RUNNING, clock=lambda: inventory.now, sleep=inventory.sleep
    )
    assert again == 0 and inventory.log == []
