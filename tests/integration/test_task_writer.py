"""The status writer against the sandbox inventory: fenced, owned, never blocking the work."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests

from flasher.config import InventorySettings
from flasher.constants import TASK_NAMESPACE
from flasher.inventory import InventoryClient
from flasher.queue import LeaseFence
from flasher.service.heartbeat import Heartbeat
from flasher.task.fence import LeaseLostError
from flasher.task.model import InstallTask, TaskKind, TaskStatus, parse_install_task
from flasher.task.writer import StatusWriter, TaskReplacedError
from flasher_sandbox.servers import InventoryServer
from tests.support.control_helpers import TestFence as FakeFence
from tests.support.queue_helpers import make_queue

pytestmark = pytest.mark.integration


def client(server: InventoryServer, deadline: float = 0.3) -> InventoryClient:
    return InventoryClient(InventorySettings(url=server.url, retry_deadline=deadline, retry_max_wait=0.05))


def running_task(inventory: InventoryClient, **extra: Any) -> tuple[str, dict[str, Any]]:
    uuid = inventory.create_server("writer-test", facility="sandbox")
    data = {
        "method": "out-of-band",
        "status": "active",
        "priority": 2,
        "requester": "alice",
        "firmwareSet": "dell-r6515",
        "taskID": "task-1",
        "worker": "flasher-0",
        "ticket": "OPS-42",  # a key flasher does not know: kept
        **extra,
    }
    inventory.create_attribute(uuid, TASK_NAMESPACE, data)
    return uuid, data


def writer_for(
    inventory: InventoryClient, uuid: str, data: dict[str, Any], fence: FakeFence, **kw: Any
) -> StatusWriter[InstallTask]:
    return StatusWriter(inventory, uuid, TaskKind.INSTALL, parse_install_task(data), fence, **kw)


def stored(inventory: InventoryClient, uuid: str) -> dict[str, Any]:
    data = inventory.get_attribute(uuid, TASK_NAMESPACE).data
    assert isinstance(data, dict)
    return data


def test_update_writes_messages_and_heartbeat_keeping_unknown_keys(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence())

    writer.update(message="installing 2.7.3: Running 40%", component="bios")
    writer.update(message="installing 2.7.3: Running 60%", component="bios", replace_last=True)
    first_beat = stored(inventory, uuid)["updatedAt"]
    time.sleep(1.1)
    writer.heartbeat()

    after = stored(inventory, uuid)
    assert after["ticket"] == "OPS-42"
    assert len(after["messages"]) == 1 and after["messages"][0].endswith("[bios] installing 2.7.3: Running 60%")
    assert after["updatedAt"] > first_beat
    assert not writer.pending


def test_operator_cancel_written_during_the_run_is_kept_and_seen(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence())
    writer.update(message="connected")

    inventory.replace_attribute(uuid, TASK_NAMESPACE, {**stored(inventory, uuid), "cancel": True})
    writer.update(message="reading versions")

    assert writer.cancel_requested
    assert stored(inventory, uuid)["cancel"] is True


def test_cancel_through_the_lease_is_reported(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    fence = FakeFence()
    writer = writer_for(inventory, uuid, data, fence)
    fence.cancel = True
    assert writer.check().cancel_requested
    assert writer.cancel_requested


@pytest.mark.parametrize(
    "operator_data",
    [
        {"status": "", "firmwareSet": "dell-r6515-v2"},  # a new request over the running one
        {"status": "active", "taskID": "task-2"},  # another task
        {"priority": 9},  # garbage that does not parse
        {"status": "failed", "error": "stopped by hand"},  # the operator ended it: flasher never moves it back
        {"status": "cancelled"},
    ],
)
def test_a_replaced_attribute_is_never_overwritten(
    clean_inventory: InventoryServer, operator_data: dict[str, Any]
) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence())
    replacement = {**data, **operator_data}
    inventory.replace_attribute(uuid, TASK_NAMESPACE, replacement)

    with pytest.raises(TaskReplacedError):
        writer.update(message="installing")
    with pytest.raises(TaskReplacedError):
        writer.check()  # stays replaced without another read
    assert stored(inventory, uuid) == replacement


def test_a_deleted_attribute_counts_as_replaced(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence())
    inventory.delete_attribute(uuid, TASK_NAMESPACE)
    with pytest.raises(TaskReplacedError, match="deleted"):
        writer.update(message="installing")


def test_a_lost_lease_writes_nothing(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    fence = FakeFence()
    writer = writer_for(inventory, uuid, data, fence)
    fence.lost = True
    with pytest.raises(LeaseLostError):
        writer.update(message="should not appear")
    assert stored(inventory, uuid) == data


def test_progress_waits_out_an_unavailable_inventory(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence())
    with clean_inventory.faults(every=1, status=503):
        writer.update(message="installing while the inventory is down")  # does not raise
        assert writer.pending
    writer.update(message="inventory back")
    assert not writer.pending
    messages = stored(inventory, uuid)["messages"]
    assert [m.split(" ", 1)[1] for m in messages] == ["installing while the inventory is down", "inventory back"]


def test_finish_insists_until_the_inventory_answers(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence(), write_timeout=30, retry_interval=0.1)
    clean_inventory.set_faults(every=1, status=503)
    threading.Timer(1.0, clean_inventory.clear_faults).start()

    assert writer.finish(TaskStatus.SUCCESS, message="all components installed")

    after = stored(inventory, uuid)
    assert after["status"] == "success" and after["completedAt"]
    assert "error" not in after  # no "error": null
    assert after["messages"][-1].endswith("all components installed")


def test_finish_gives_up_after_its_timeout(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence(), write_timeout=0.5, retry_interval=0.1)
    with clean_inventory.faults(every=1, status=503):
        assert not writer.finish(TaskStatus.FAILED, error="BMC said no")
    assert writer.final_attribute()["status"] == "failed"
    assert writer.final_attribute()["error"] == "BMC said no"
    assert stored(inventory, uuid)["status"] == "active"


def test_a_final_status_written_once_may_be_written_again(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence())
    assert writer.finish(TaskStatus.SUCCESS, message="done")
    writer.heartbeat()  # a beat racing the end of the run: its own final status is not someone else's
    assert stored(inventory, uuid)["status"] == "success"


def test_the_heartbeat_keeps_the_lease_while_finish_waits_for_the_inventory(
    clean_inventory: InventoryServer, redis_url: str
) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    queue = make_queue(redis_url, lease_seconds=2)
    queue.drop(uuid)
    queue.enqueue(uuid, kind="install", task_id="task-1", priority=2)
    lease = queue.claim("flasher-0")
    assert lease is not None and lease.server_id == uuid
    writer = writer_for(inventory, uuid, data, LeaseFence(queue, lease), write_timeout=60, retry_interval=0.1)  # type: ignore[arg-type]
    heartbeat = Heartbeat(queue, lease, writer, interval=0.2).start()
    clean_inventory.set_faults(every=1, status=503)
    back = threading.Timer(5.0, clean_inventory.clear_faults)  # down for longer than the lease
    back.start()
    try:
        assert writer.finish(TaskStatus.SUCCESS, message="all components installed")
    finally:
        back.cancel()
        heartbeat.stop()
        clean_inventory.clear_faults()

    assert stored(inventory, uuid)["status"] == "success"
    assert not heartbeat.lost
    queue.ack(lease)  # still held


def test_the_heartbeat_keeps_the_lease_while_status_writes_wait_on_a_slow_inventory(
    clean_inventory: InventoryServer, redis_url: str
) -> None:
    """Issue 12, item 5: every inventory call takes longer than the lease; the runner's writes queue behind each
    other, the lease does not."""
    inventory = InventoryClient(InventorySettings(url=clean_inventory.url, read_timeout=30, retry_deadline=0.3))
    uuid, data = running_task(inventory)
    queue = make_queue(redis_url, lease_seconds=1.5)
    queue.drop(uuid)
    queue.enqueue(uuid, kind="install", task_id="task-1", priority=2)
    lease = queue.claim("flasher-0")
    assert lease is not None and lease.server_id == uuid
    writer = writer_for(inventory, uuid, data, LeaseFence(queue, lease))  # type: ignore[arg-type]
    heartbeat = Heartbeat(queue, lease, writer, interval=0.2).start()
    try:
        with clean_inventory.faults(every=1, status=None, delay=1.0):  # a write (GET + PUT) takes 2 s
            runner = threading.Thread(target=lambda: [writer.update(message=f"step {n}") for n in range(2)])
            runner.start()
            runner.join(30)
            assert not runner.is_alive()
        queue.check(lease)  # still held after 4 s of writes with a 1.5 s lease
    finally:
        heartbeat.stop()
    assert not heartbeat.lost
    assert [m.split(" ", 1)[1] for m in stored(inventory, uuid)["messages"]] == ["step 0", "step 1"]
    queue.ack(lease)


def test_progress_is_coalesced_and_the_heartbeat_writes_what_is_left(clean_inventory: InventoryServer) -> None:
    """With ``min_interval`` (the service's heartbeat interval) a burst of progress is one write, not one each:
    every write is a window in which an operator's write can be overwritten."""
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence(), min_interval=30.0)
    start = len(clean_inventory.journal(server=uuid))

    for percent in (10, 20, 30, 40):
        writer.update(message=f"installing 2.7.3: Running {percent}%", component="bios", replace_last=True)

    assert len(clean_inventory.journal(server=uuid)) == start + 1  # the first went out, the rest wait
    assert writer.pending
    writer.heartbeat()
    assert not writer.pending
    assert stored(inventory, uuid)["messages"][-1].endswith("[bios] installing 2.7.3: Running 40%")
    assert len(clean_inventory.journal(server=uuid)) == start + 2


def test_refresh_sees_a_replacing_request_without_writing(clean_inventory: InventoryServer) -> None:
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence())
    writer.refresh()  # still this task: nothing happens
    request = {"status": "", "firmwareSet": "dell-r6515-v2", "requester": "bob"}
    inventory.replace_attribute(uuid, TASK_NAMESPACE, request)
    writes = len(clean_inventory.journal(server=uuid))

    with pytest.raises(TaskReplacedError):
        writer.refresh()

    assert len(clean_inventory.journal(server=uuid)) == writes and stored(inventory, uuid) == request


def test_a_status_write_is_never_resent_later_than_its_re_read(clean_inventory: InventoryServer) -> None:
    """A PUT that failed is not retried on its own (it would land after whatever was written since the re-read):
    the status stays pending and the next write re-reads first."""
    inventory = InventoryClient(InventorySettings(url=clean_inventory.url, retry_deadline=5, retry_max_wait=0.05))
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence())
    with clean_inventory.faults(every=1, status=503, methods=["PUT"]):
        writer.update(message="one try only")
        assert writer.pending
        assert clean_inventory.fault_state()["matched"] == 1  # sent once, though the client retries for 5 s
    request = {"status": "", "firmwareSet": "dell-r6515-v2", "requester": "bob"}
    inventory.replace_attribute(uuid, TASK_NAMESPACE, request)  # an operator's request, written meanwhile
    with pytest.raises(TaskReplacedError):
        writer.update(message="next")
    assert stored(inventory, uuid) == request


def _counting_client(server: InventoryServer) -> tuple[InventoryClient, Counter[str]]:
    counts: Counter[str] = Counter()
    session = requests.Session()
    session.hooks["response"].append(lambda r, *a, **k: counts.update([r.request.method or ""]))
    settings = InventorySettings(url=server.url, retry_deadline=0.3, retry_max_wait=0.05)
    return InventoryClient(settings, session=session), counts


def test_the_first_write_checks_the_attribute_its_caller_just_read_instead_of_reading_it_again(
    clean_inventory: InventoryServer,
) -> None:
    inventory, counts = _counting_client(clean_inventory)
    uuid, data = running_task(inventory)
    counts.clear()
    writer = writer_for(
        inventory, uuid, data, FakeFence(), just_read=stored(inventory, uuid), just_read_at=time.monotonic()
    )
    counts.clear()

    writer.update(message="claimed", force=True)
    assert counts == {"PUT": 1}  # no second read of what the claim had just read
    writer.update(message="next", force=True)
    assert counts == {"PUT": 2, "GET": 1}  # later writes re-read as ever
    assert stored(inventory, uuid)["messages"][-1].endswith("next")


def test_a_stale_or_foreign_just_read_is_not_trusted(clean_inventory: InventoryServer) -> None:
    inventory, counts = _counting_client(clean_inventory)
    uuid, data = running_task(inventory)
    now = [100.0]
    writer = writer_for(
        inventory, uuid, data, FakeFence(), just_read=dict(data), just_read_at=now[0], clock=lambda: now[0]
    )
    now[0] += 1.5  # older than JUST_READ_FOR: read again
    counts.clear()
    writer.update(message="claimed", force=True)
    assert counts == {"GET": 1, "PUT": 1}

    # What the caller read no longer holds the task: replaced, nothing written.
    other = {**data, "taskID": "task-2"}
    replaced = writer_for(inventory, uuid, data, FakeFence(), just_read=other, just_read_at=time.monotonic())
    counts.clear()
    with pytest.raises(TaskReplacedError):
        replaced.update(message="claimed", force=True)
    assert counts == {}


def test_the_just_read_window_counts_from_the_read_not_from_the_writers_creation(
    clean_inventory: InventoryServer,
) -> None:
    # The claim read the server 1.5 s before it made the writer (a slow answer, Redis calls in between): however
    # fresh the writer, what it was handed is older than JUST_READ_FOR, so the first write reads again.
    inventory, counts = _counting_client(clean_inventory)
    uuid, data = running_task(inventory)
    now = [100.0]
    read_at = now[0]
    now[0] += 1.5
    writer = writer_for(
        inventory, uuid, data, FakeFence(), just_read=dict(data), just_read_at=read_at, clock=lambda: now[0]
    )
    counts.clear()
    writer.update(message="claimed", force=True)
    assert counts == {"GET": 1, "PUT": 1}

    with pytest.raises(ValueError, match="just_read needs just_read_at"):
        writer_for(inventory, uuid, data, FakeFence(), just_read=dict(data))


def test_update_now_returns_once_the_write_landed_and_false_when_the_inventory_stays_down(
    clean_inventory: InventoryServer,
) -> None:
    # The write-ahead of an install: the caller sends nothing to the BMC until this returns True.
    inventory = client(clean_inventory)
    uuid, data = running_task(inventory)
    writer = writer_for(inventory, uuid, data, FakeFence(), write_timeout=10, retry_interval=0.05, min_interval=60)
    writer.update(message="coalesced", force=True)
    with clean_inventory.faults(every=1, status=503, methods=["PUT"], times=2):  # two writes fail, the third lands
        assert writer.update_now(lambda t: setattr(t, "initial_power_state", "On")) is True
    assert stored(inventory, uuid)["initialPowerState"] == "On"
    assert not writer.pending

    down = writer_for(inventory, uuid, stored(inventory, uuid), FakeFence(), write_timeout=0.3, retry_interval=0.05)
    with clean_inventory.faults(every=1, status=503, methods=["PUT"]):
        assert down.update_now(lambda t: None) is False
    assert down.pending
