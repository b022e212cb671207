"""Redis loses its data while a worker flashes a BMC: no second install is ever sent to that BMC (issue 12).

Real components: the sandbox inventory, Redis, simulated BMCs, admission and worker pools in this process. The
first worker ("worker-a") is played by the test, step by step, so that each interleaving is forced rather than
waited for: it holds the lease, its ``active`` is in the attribute, and its BIOS install is on the Dell-like BMC
(applied at the next host reset, so it stays in progress until something resets the host). Then Redis loses its
data (``FLUSHALL``), and another replica acts on what it knows.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import redis

from flasher.bmc import BMC
from flasher.constants import TASK_NAMESPACE
from flasher.install.state import SENDING
from flasher.service.admission import Action, Admission
from flasher.task.model import TaskKind, rfc3339, utc_now
from tests.support.install_env import InstallWorld

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELL = 0
BIOS = {"Firmware": {"bios": {"version": "2.12.0"}}}


def _worker_a_is_flashing(w: InstallWorld, uuid: str) -> dict[str, Any]:
    """Play worker-a: claim the task, write ``active`` (attempt 1, fresh heartbeat, the BIOS active with its
    write-ahead, ``bmcTask`` ``sending``), start the BIOS install on the BMC, which then waits for a host reset, and
    record its BMC task. Returns the attribute."""
    lease = w.queue.claim("worker-a")
    assert lease is not None and lease.server_id == uuid
    data = w.attribute(uuid)
    bios = data["Firmware"]["bios"]
    now = rfc3339(utc_now())
    running = {
        **data,
        "status": "active",
        "worker": "worker-a",
        "attempts": 1,
        "updatedAt": now,
        "Firmware": {"bios": {**bios, "status": "active", "bmcTask": SENDING}},
    }
    w.inventory.replace_attribute(uuid, TASK_NAMESPACE, running)  # the write-ahead, landed before the install
    with BMC(w.fleet.address(DELL), "root", "calvin", settings=w.settings.bmc) as bmc:
        component = next(c for c in bmc.firmware_inventory() if c.slug == "bios")
        handle = bmc.install(component, image_url=bios["updateFileURL"])
        staged = bmc.wait_for_task(handle, timeout=30)
    assert staged.awaiting_reset
    running["Firmware"]["bios"]["bmcTask"] = handle.uri
    w.inventory.replace_attribute(uuid, TASK_NAMESPACE, running)
    assert w.fleet.audit(DELL)["installs_in_progress"] == 1
    return running


def _flushall(w: InstallWorld) -> None:
    redis.Redis.from_url(w.settings.redis.url).flushall()


def test_a_listing_older_than_the_workers_active_does_not_queue_the_task_again(install_world: InstallWorld) -> None:
    w = install_world
    uuid = w.flag(DELL, BIOS)
    listing = w.inventory.get_server(uuid)  # replica B's poll lists the task while it is still queued
    _worker_a_is_flashing(w, uuid)
    _flushall(w)

    result = Admission(w.inventory, w.queue, w.settings, worker_id="flasher-b").reconcile(listing, TaskKind.INSTALL)

    assert result.action is Action.SKIPPED, result  # the attribute says active now: nothing to enqueue
    assert w.queue.entry(uuid) is None
    assert (
        Admission(w.inventory, w.queue, w.settings, worker_id="flasher-b")
        .reconcile(w.inventory.get_server(uuid), TaskKind.INSTALL)
        .action
        is Action.NONE
    )  # a fresh listing: active, its heartbeat young, so it is left alone


def test_a_claim_redis_gave_out_beside_a_live_run_never_reaches_the_bmc(install_world: InstallWorld) -> None:
    w = install_world
    uuid = w.flag(DELL, BIOS)
    running = _worker_a_is_flashing(w, uuid)
    _flushall(w)
    # The task is in the queue again all the same: a replica re-read `queued` just before worker-a's `active` landed.
    w.queue.enqueue(uuid, kind="install", task_id=running["taskID"], priority=running.get("priority", 2))

    with w.pool(worker_id="worker-b"):
        deadline = time.monotonic() + 20
        while w.queue.entry(uuid) is not None:  # claimed, then dropped
            assert time.monotonic() < deadline, w.queue.entry(uuid)
            time.sleep(0.05)
        time.sleep(0.5)  # had it started, worker-b would be connecting to the BMC by now

    assert w.attribute(uuid) == running  # worker-b wrote nothing: worker-a's run stands
    audit = w.fleet.audit(DELL)
    assert audit["overlapping_installs"] == 0, audit
    assert [i["component"] for i in audit["installs"]] == ["bios"]


def test_an_install_the_attribute_never_recorded_is_applied_not_sent_a_second_time(install_world: InstallWorld) -> None:
    w = install_world
    uuid = w.flag(DELL, BIOS)
    running = _worker_a_is_flashing(w, uuid)
    # worker-a's write after the install (the BIOS's BMC task) never landed: its lease was lost first. Its
    # write-ahead did (it is written before the install is sent, and nothing is sent without it). Its last heartbeat
    # is long gone, so admission reclaims the task after Redis lost its data.
    bios = running["Firmware"]["bios"]
    stale = rfc3339(utc_now() - timedelta(seconds=w.settings.service.stale_after + 60))
    forgotten = {**running, "updatedAt": stale, "Firmware": {"bios": {**bios, "bmcTask": SENDING}}}
    w.inventory.replace_attribute(uuid, TASK_NAMESPACE, forgotten)
    _flushall(w)
    admission = Admission(w.inventory, w.queue, w.settings, worker_id="flasher-b")
    assert admission.reconcile(w.inventory.get_server(uuid), TaskKind.INSTALL).action is Action.QUEUED

    with w.pool(worker_id="worker-b"):
        final = w.wait_final(uuid)

    audit = w.fleet.audit(DELL)
    assert audit["overlapping_installs"] == 0, audit
    assert [(i["component"], i["outcome"]) for i in audit["installs"]] == [("bios", "success")]
    assert [p["action"] for p in audit["power"]] == ["ForceRestart"]  # worker-b applied its own install
    assert final["status"] == "success", final
    spec = final["Firmware"]["bios"]
    assert spec["message"] == "installed 2.12.0 by the earlier attempt's BMC task (confirmed by the BMC)", spec


def test_a_pending_install_flasher_did_not_send_is_not_applied_by_a_host_reset(install_world: InstallWorld) -> None:
    # An operator staged a BIOS on the BMC outside flasher (applied at the next host reset), then asked flasher
    # for the same BIOS: no write-ahead of flasher's says the pending install is its own. Before the write-ahead,
    # flasher reset the host for it, applying the operator's image.
    w = install_world
    uuid = w.flag(DELL, BIOS)
    bios = w.attribute(uuid)["Firmware"]["bios"]
    with BMC(w.fleet.address(DELL), "root", "calvin", settings=w.settings.bmc) as bmc:
        component = next(c for c in bmc.firmware_inventory() if c.slug == "bios")
        handle = bmc.install(component, image_url=bios["updateFileURL"])
        assert bmc.wait_for_task(handle, timeout=30).awaiting_reset

    with w.pool(worker_id="worker-b"):
        final = w.wait_final(uuid)

    assert final["status"] == "failed", final
    assert "firmware install that flasher did not send waiting to be applied" in final["error"], final
    assert "reset the host" in final["error"], final
    audit = w.fleet.audit(DELL)
    assert audit["power"] == [], audit["power"]  # the host was never reset for it
    assert [i["component"] for i in audit["installs"]] == ["bios"]  # nor a second install sent beside it
    assert audit["installs_in_progress"] == 1  # the operator's, still waiting for their reset
