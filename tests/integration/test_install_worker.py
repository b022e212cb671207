"""The install worker end to end: admission, the worker pool, the install runner and engine, against the sandbox
inventory, Redis and simulated BMCs.

BMC 0 is Dell-like (SimpleUpdate from flasher's file server; BIOS applied only at a host reset), BMC 1
Supermicro-like (multipart push only). Installs take 0.5 s, a BMC restart 1 s, a power change 0.2 s.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

from flasher.bmc import BMC
from flasher.config import Settings
from flasher.constants import TASK_NAMESPACE
from flasher.install.runner import InstallRunner
from flasher.inventory import InventoryClient
from flasher.queue import AckAndClaim, Lease, TaskQueue
from flasher.queue.connection import client_from_settings
from flasher.service.admission import Action, Admission
from flasher.service.worker import WorkerPool
from flasher.store.store import FirmwareStore
from flasher.task.model import TaskKind, TaskStatus
from flasher.task.request import Verdict, submit
from flasher.task.run import Outcome, RunContext, RunResult
from flasher_sandbox.bmc.config import BmcSpec, FleetSpec, OtherSystemSpec
from flasher_sandbox.images import make_image
from flasher_sandbox.servers import ImageServer, InventoryServer
from tests.support.fixtures.bmcsim import BmcFleetPool
from tests.support.install_env import InstallWorld, build_pool, fast_settings, seed_for
from tests.support.queue_helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELL, SUPERMICRO = 0, 1
SM_PLATFORM = {"Firmware": {"bmc": {"version": "01.02.20"}, "bios": {"version": "1.5a"}}}
DELL_BIOS_AND_NICS = {"Firmware": {"bios": {"version": "2.12.0"}, "nic": {"version": "22.32.0"}}}


def _messages(data: dict[str, Any]) -> str:
    return "\n".join(data.get("messages", []))


def _power(world: InstallWorld, index: int) -> str:
    return str(world.fleet.state(index)["power"]["state"])


def _set_power(world: InstallWorld, index: int, action: str) -> None:
    with BMC(world.fleet.address(index), "root", "calvin", settings=world.settings.bmc) as bmc:
        bmc.set_power(action, timeout=10)


def _check_no_overlap(world: InstallWorld, index: int) -> list[dict[str, Any]]:
    audit = world.fleet.audit(index)
    assert audit["overlapping_installs"] == 0, audit
    installs: list[dict[str, Any]] = audit["installs"]
    return installs


# -- success in each install mode ------------------------------------------------------------------------------------
def test_explicit_firmware_installs_the_bmc_through_its_own_restart_and_the_bios(install_world: InstallWorld) -> None:
    w = install_world
    uuid, final = w.run(SUPERMICRO, SM_PLATFORM)

    assert final["status"] == "success", final
    assert (final["worker"], final["attempts"], final["mode"]) == ("worker-a", 1, "PredefinedFirmware")
    assert final["completedAt"] and final.get("error") is None
    for slug, version in (("bmc", "01.02.20"), ("bios", "1.5a")):
        spec = final["Firmware"][slug]
        assert (spec["status"], spec["installedVersion"]) == ("installed", version), spec
        assert spec["message"] == f"installed {version} (confirmed by the BMC)"
        assert spec["bmcTask"].startswith("/redfish/v1/TaskService/Tasks/")
    assert final["initialPowerState"] == "On"
    assert len(final["messages"]) <= 10 and final["messages"][-1].endswith("success: 2 installed")
    installs = _check_no_overlap(w, SUPERMICRO)
    assert [(i["component"], i["to_version"], i["outcome"]) for i in installs] == [
        ("bmc", "01.02.20", "success"),
        ("bios", "1.5a", "success"),
    ]
    audit = w.fleet.audit(SUPERMICRO)
    assert [r["reason"] for r in audit["bmc_resets"]] == ["firmware update"]  # it went offline and came back
    assert audit["power"] == []  # nothing asked for a power change
    versions = w.installed(uuid)
    assert versions["bmc:SM000001"] == "01.02.20" and versions["bios:SM000001"] == "1.5a"


@pytest.mark.parametrize("initial", ["On", "Off"])
def test_named_set_on_dell_resets_the_host_for_the_bios_and_restores_its_power(
    install_world: InstallWorld, initial: str
) -> None:
    w = install_world
    if initial == "Off":
        _set_power(w, DELL, "off")
    w.fleet.reset_audit(DELL)
    _, final = w.run(DELL, {"firmwareSet": "dell-r6515-platform"})

    assert final["status"] == "success", final
    assert final["mode"] == "PredefinedFirmwareSet" and final["initialPowerState"] == initial
    assert final["Firmware"]["bios"]["installedVersion"] == "2.12.0"
    assert final["Firmware"]["bmc"]["installedVersion"] == "6.10.90.00"
    assert "the BMC applies 2.12.0 at the next host reset: resetting the host" in _messages(final)
    installs = _check_no_overlap(w, DELL)
    assert [(i["method"], i["component"], i["apply_time"], i["outcome"]) for i in installs] == [
        ("SimpleUpdate", "bmc", "Immediate", "success"),
        ("SimpleUpdate", "bios", "OnReset", "success"),
    ]
    power = [(p["action"], p["to_state"]) for p in w.fleet.audit(DELL)["power"]]
    if initial == "On":
        assert power == [("ForceRestart", "On")]
    else:
        assert power == [("On", "On"), ("ForceOff", "Off")]  # booted to apply it, then off again
        assert "host power restored to Off" in _messages(final)
    assert _power(w, DELL) == initial


def test_resolved_set_installs_every_nic_and_drive_as_its_own_component(install_world: InstallWorld) -> None:
    w = install_world
    uuid, final = w.run(DELL, {})

    assert final["status"] == "success", final
    assert (final["mode"], final["firmwareSet"]) == ("ResolveFirmware", "dell-r6515")
    expected = {
        "nic": ("22.32.0", ["DL000000-NIC1", "DL000000-NIC2"]),
        "drive": ("XCV1DL69", ["DL000000-D0", "DL000000-D1"]),
    }
    for slug, (version, serials) in expected.items():
        spec = final["Firmware"][slug]
        assert spec["status"] == "installed" and spec["installedVersion"] == version
        assert sorted(i["serial"] for i in spec["instances"]) == serials
        assert all(i["status"] == "installed" and i["installedVersion"] == version for i in spec["instances"])
        assert all(i["bmcTask"] for i in spec["instances"])
    installs = _check_no_overlap(w, DELL)
    assert sorted((i["component"], len(i["targets"]), i["outcome"]) for i in installs) == [
        ("drive", 1, "success"),
        ("drive", 1, "success"),
        ("nic", 1, "success"),
        ("nic", 1, "success"),
    ]
    assert len({t for i in installs for t in i["targets"]}) == 4  # each device flashed once
    versions = w.installed(uuid)
    assert versions["nic:DL000000-NIC2"] == "22.32.0" and versions["drive:DL000000-D1"] == "XCV1DL69"


# -- nothing to do, dry run ------------------------------------------------------------------------------------------
def test_a_component_the_bmc_already_runs_is_skipped_even_when_the_inventory_is_stale(
    install_world: InstallWorld,
) -> None:
    w = install_world
    uuid = w.servers[SUPERMICRO]
    bios = next(c for c in w.inventory.list_components(uuid) if c.component_type_slug == "bios")
    w.inventory.set_installed_firmware(uuid, bios, "1.3a")  # the inventory thinks an upgrade is due
    data = make_image("bios", "supermicro", "1.4a", ["x12stw"])
    url = w.images.add("supermicro-bios-1.4a.bin", data)
    entry = {
        "version": "1.4a",
        "updateFileURL": url,
        "updateFileChecksum": "sha256:" + hashlib.sha256(data).hexdigest(),
    }
    _, final = w.run(SUPERMICRO, {"Firmware": {"bios": entry}})

    assert final["status"] == "success", final
    assert final["Firmware"]["bios"]["status"] == "skipped"
    assert final["Firmware"]["bios"]["message"] == "already at 1.4a"
    assert w.installs(SUPERMICRO) == []
    assert w.installed(uuid)["bios:SM000001"] == "1.4a"  # corrected from what the BMC reports


def test_dry_run_writes_the_plan_and_the_bmc_versions_and_changes_nothing(install_world: InstallWorld) -> None:
    w = install_world
    uuid, final = w.run(DELL, {"firmwareSet": "dell-r6515-platform", "dryRun": True})

    assert final["status"] == "success", final
    bios = final["Firmware"]["bios"]
    assert (bios["status"], bios["installedVersion"]) == ("pending", "2.11.4")
    assert bios["message"].startswith("dry run: would install")
    assert "dry run: would install bmc 6.10.80.00 → 6.10.90.00, bios 2.11.4 → 2.12.0" in _messages(final)
    audit = w.fleet.audit(DELL)
    assert audit["installs"] == [] and audit["power"] == [] and audit["bmc_resets"] == []
    assert w.installed(uuid)["bios:DL000000"] == "2.11.4"


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("missing", "HTTP 404"),  # the image's server does not have it
        ("localhost", "host 'localhost' is a loopback name, refused unless store.allowed_hosts names it"),
        ("elsewhere", "host 'images.example.com' is not in store.allowed_hosts (127.0.0.1)"),
    ],
)
def test_a_dry_run_fails_where_the_real_run_could_not_fetch_the_image(
    install_world: InstallWorld, where: str, reason: str
) -> None:
    # Issue 12, item 9: a dry run succeeds only where the real run would start.
    w = install_world
    data = make_image("bios", "supermicro", "1.5a", ["x12stw"])
    url = {
        "missing": w.images.url("not-there.bin"),
        "localhost": w.images.add("sm-bios.bin", data).replace("127.0.0.1", "localhost"),
        "elsewhere": "https://images.example.com/sm-bios.bin",
    }[where]
    entry = {
        "version": "1.5a",
        "updateFileURL": url,
        "updateFileChecksum": "sha256:" + hashlib.sha256(data).hexdigest(),
    }
    _, final = w.run(SUPERMICRO, {"Firmware": {"bios": entry}, "dryRun": True})

    assert final["status"] == "failed", final
    assert final["error"].startswith("dry run: the install could not start: bios: ")
    assert reason in final["error"]
    assert final["Firmware"]["bios"]["status"] == "failed"
    assert final["Firmware"]["bios"]["message"].startswith("dry run: the install could not start: ")
    audit = w.fleet.audit(SUPERMICRO)
    assert audit["installs"] == [] and audit["power"] == []


def test_a_dry_run_says_how_the_real_run_would_install(install_world: InstallWorld) -> None:
    w = install_world
    _, final = w.run(SUPERMICRO, {**SM_PLATFORM, "dryRun": True})
    assert final["status"] == "success", final
    bios = final["Firmware"]["bios"]["message"]
    assert bios.startswith("dry run: would install (") and "by multipart, apply time Immediate" in bios, bios
    assert w.fleet.audit(SUPERMICRO)["installs"] == []


NO_UPDATE_SERVICE = FleetSpec(
    install_seconds=0.5,
    offline_seconds=1.0,
    power_seconds=0.2,
    bmcs=[BmcSpec(vendor="supermicro", model="x12stw", serial="SM000000", update_service=False)],
)


def test_a_dry_run_task_against_a_bmc_without_an_update_service_fails(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> None:
    fleet = bmcsim_pool.get(config=NO_UPDATE_SERVICE, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    seed = seed_for(fleet, [0], firmware_server)
    seeded = clean_inventory.seed(seed)
    settings = fast_settings(clean_inventory.url, redis_url, tmp_path / "cache", bmc={"ca_bundle": fleet.ca_bundle})
    w = InstallWorld(fleet, clean_inventory, firmware_server, settings, {0: seeded["servers"]["srv-0"]})
    _, final = w.run(0, {"Firmware": {"bios": {"version": "1.5a"}}, "dryRun": True})

    assert final["status"] == "failed", final
    assert final["error"] == f"dry run: the install could not start: bios: BMC {fleet.url(0)} has no UpdateService"


# -- faults ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"task_exception": {"component": "bios"}}, "ended Exception"),
        ({"task_hang": {"component": "bios"}}, "has not ended after 2 s"),
        ({"completed_critical": {"component": "bios"}}, "ended Completed with health Critical"),
        ({"version_unchanged": {"component": "bios"}}, "reports 2.11.4 after 3 s, expected 2.12.0"),
        ({"image_rejected": {"component": "bios"}}, "was rejected"),
        ({"refuse_credentials": True}, "refused the credentials"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else "",
)
def test_a_bmc_fault_fails_the_component_and_stops_the_rest(
    install_world: InstallWorld, fault: dict[str, Any], error: str
) -> None:
    w = install_world
    w.fleet.set_faults(DELL, fault)
    settings = w.with_settings(steps={"install": {"timeout": 2}})
    _, final = w.run(DELL, DELL_BIOS_AND_NICS, settings)

    assert final["status"] == "failed", final
    assert error in final["error"], final["error"]
    installs = _check_no_overlap(w, DELL)
    assert all(i["component"] == "bios" for i in installs)  # the NICs were never attempted
    if "refuse_credentials" in fault:
        assert final["Firmware"]["bios"]["status"] == "pending" and installs == []
        return
    assert final["error"].startswith("bios: ")
    assert final["Firmware"]["bios"]["status"] == "failed"
    nic = final["Firmware"]["nic"]
    assert nic["status"] == "pending"
    assert all(i["message"] == "not attempted: the install stopped after bios failed" for i in nic["instances"])
    assert _power(w, DELL) == "On"


@pytest.mark.parametrize(
    "fault",
    [{"http_5xx_burst": {"component": "bios", "count": 4}}, {"slow_seconds": {"component": "bios", "seconds": 0.3}}],
    ids=["http_5xx_burst", "slow_seconds"],
)
def test_transient_bmc_trouble_is_ridden_out(install_world: InstallWorld, fault: dict[str, Any]) -> None:
    w = install_world
    w.fleet.set_faults(SUPERMICRO, fault)
    _, final = w.run(SUPERMICRO, {"Firmware": {"bios": {"version": "1.5a"}}})
    assert final["status"] == "success", final
    assert [i["outcome"] for i in _check_no_overlap(w, SUPERMICRO)] == ["success"]


def test_a_pushed_image_the_bmc_rejects_fails_with_its_message(install_world: InstallWorld) -> None:
    w = install_world
    w.fleet.set_faults(SUPERMICRO, {"image_rejected": {"component": "bios"}})
    _, final = w.run(SUPERMICRO, {"Firmware": {"bios": {"version": "1.5a"}}})
    assert final["status"] == "failed", final
    assert "the update package failed verification" in final["error"]
    assert [i["outcome"] for i in w.installs(SUPERMICRO)] == ["rejected"]


def test_a_checksum_mismatch_never_reaches_the_bmc(install_world: InstallWorld) -> None:
    w = install_world
    url = w.images.add("tampered-bios.bin", make_image("bios", "supermicro", "1.5a", ["x12stw"]) + b"extra")
    entry = {"version": "1.5a", "updateFileURL": url, "updateFileChecksum": "sha256:" + "ab" * 32}
    _, final = w.run(SUPERMICRO, {"Firmware": {"bios": entry}})
    assert final["status"] == "failed", final
    assert "checksum mismatch" in final["error"] and final["Firmware"]["bios"]["status"] == "failed"
    assert w.installs(SUPERMICRO) == []


# -- cancel, shutdown, a lost lease ----------------------------------------------------------------------------------
def test_cancel_stops_at_the_next_safe_point_and_restores_power(install_world: InstallWorld) -> None:
    w = install_world
    task = {"Firmware": {"bmc": {"version": "01.02.20", "preActions": ["powerOffHost"]}, "bios": {"version": "1.5a"}}}
    uuid = w.flag(SUPERMICRO, task)
    with w.pool():
        w.wait_for_task(uuid, "bmc")
        w.cancel(uuid)  # while the BMC flashes itself
        final = w.wait_final(uuid)

    assert final["status"] == "cancelled", final
    assert final["Firmware"]["bmc"]["status"] == "installed"  # the flash in progress was finished, not cut
    assert final["Firmware"]["bios"]["status"] == "pending"
    assert final["Firmware"]["bios"]["message"] == "not installed: the task was cancelled"
    assert "host power restored to On" in _messages(final)
    assert [(i["component"], i["outcome"]) for i in _check_no_overlap(w, SUPERMICRO)] == [("bmc", "success")]
    assert _power(w, SUPERMICRO) == "On"


def test_shutdown_releases_the_task_at_a_safe_point_and_another_worker_resumes_it(install_world: InstallWorld) -> None:
    w = install_world
    uuid = w.flag(SUPERMICRO, SM_PLATFORM)
    pool, fileserver = build_pool(w.settings, worker_id="worker-a")
    pool.start()
    try:
        w.wait_for_task(uuid, "bmc")
        assert pool.stop(grace=30)
    finally:
        pool.stop(10)
        fileserver.stop()
    released = w.attribute(uuid)
    assert released["status"] == "queued", released
    assert "released at shutdown" in _messages(released)
    assert released["Firmware"]["bmc"]["status"] == "installed"
    with w.pool(worker_id="worker-b"):
        final = w.wait_final(uuid)
    assert final["status"] == "success" and final["worker"] == "worker-b", final
    assert final["Firmware"]["bmc"]["message"].startswith("installed 01.02.20 by an earlier attempt")
    assert [i["component"] for i in _check_no_overlap(w, SUPERMICRO)] == ["bmc", "bios"]


def test_a_worker_that_lost_its_lease_stops_writing_at_once(install_world: InstallWorld) -> None:
    w = install_world
    uuid = w.flag(SUPERMICRO, SM_PLATFORM)
    with w.pool() as pool:
        w.wait_for_task(uuid, "bmc")
        assert w.queue.drop(uuid)  # an operator drops the task from Redis
        deadline = time.monotonic() + 10
        while pool.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pool.running() == []
        before = w.attribute(uuid)
        time.sleep(2.0)
        after = w.attribute(uuid)
    assert after == before and after["status"] == "active"
    assert after["Firmware"]["bios"]["status"] == "pending"
    assert [i["component"] for i in _check_no_overlap(w, SUPERMICRO)] == ["bmc"]  # nothing more was started


def test_a_new_request_written_over_a_running_task_is_left_alone(install_world: InstallWorld) -> None:
    w = install_world
    uuid = w.flag(SUPERMICRO, SM_PLATFORM)
    new = {"method": "out-of-band", "status": "", "requester": "bob", "Firmware": {"bios": {"version": "1.5a"}}}
    with w.pool() as pool:
        w.wait_for_task(uuid, "bmc")
        deadline, writes = time.monotonic() + 20, 0
        while pool.running() and time.monotonic() < deadline:
            if w.attribute(uuid) != new:  # written again when a status write raced it (one round trip wide)
                w.inventory.replace_attribute(uuid, TASK_NAMESPACE, new)
                writes += 1
            time.sleep(0.1)
        assert pool.running() == [] and writes <= 3
    assert w.attribute(uuid) == new  # the operator's words, untouched
    assert w.queue.entry(uuid) is None  # acked: admission queues the new request
    assert [(i["component"], i["outcome"]) for i in _check_no_overlap(w, SUPERMICRO)] == [("bmc", "success")]
    assert _power(w, SUPERMICRO) == "On"


def test_the_request_that_replaced_a_running_task_runs_next_and_says_how_that_task_ended(
    install_world: InstallWorld,
) -> None:
    """Issue 12, item 4: written as ``flasher task install --replace`` does (read back), acknowledged while the old
    task still flashes, run after it stopped at its safe point; its messages carry the old task's end."""
    w = install_world
    uuid = w.flag(SUPERMICRO, SM_PLATFORM)
    old = w.attribute(uuid)["taskID"]
    new = {"method": "out-of-band", "status": "", "requester": "bob", "Firmware": {"bios": {"version": "1.5a"}}}
    admission = Admission(w.inventory, w.queue, w.settings, worker_id="admission")
    with w.pool() as pool:
        w.wait_for_task(uuid, "bmc")
        submission = submit(w.inventory, uuid, TaskKind.INSTALL, new, confirm_for=1.0, interval=0.2)
        assert submission.verdict is not Verdict.SUPERSEDED, submission
        acknowledged = admission.reconcile(w.inventory.get_server(uuid), TaskKind.INSTALL)
        assert acknowledged.action is Action.WAITING, acknowledged  # the old task holds the server a while longer
        assert f"replaces install task {old} (running on worker-a)" in _messages(w.attribute(uuid))
        deadline = time.monotonic() + 30
        while w.queue.entry(uuid) is not None and w.queue.entry(uuid).task_id == old:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the old task did not stop"
            time.sleep(0.1)
        assert admission.reconcile(w.inventory.get_server(uuid), TaskKind.INSTALL).action is Action.QUEUED
        final = w.wait_final(uuid)
        assert pool.alive()

    assert final["status"] == "success" and final["taskID"] == submission.task_id, final
    assert f"install task {old} (replaced by this request): stopped at a safe point" in _messages(final)
    assert [(i["component"], i["outcome"]) for i in _check_no_overlap(w, SUPERMICRO)] == [
        ("bmc", "success"),
        ("bios", "success"),
    ]


# -- the pool itself -------------------------------------------------------------------------------------------------
def _pool(queue: TaskQueue, inventory: InventoryClient, settings: Settings, runner: Any, **options: Any) -> WorkerPool:
    """A pool of worker ``worker-a`` running ``runner`` for install tasks, opening the fleet's BMCs with
    ``settings.bmc``; ``options``: more of :class:`WorkerPool`'s keywords."""
    return WorkerPool(
        queue,
        inventory,
        settings,
        {TaskKind.INSTALL: runner},
        lambda a, u, p: BMC(a, u, p, settings=settings.bmc),
        worker_id="worker-a",
        idle_wait=0.1,
        **options,
    )


def test_an_exception_escaping_a_runner_fails_that_task_not_the_pool(
    install_world: InstallWorld, tmp_path: Any
) -> None:
    w = install_world
    real = InstallRunner(FirmwareStore(w.settings.store), None)
    broken = w.servers[DELL]

    def runner(ctx: RunContext[Any]) -> RunResult:
        if str(ctx.server.uuid) == broken:
            raise RuntimeError("boom")
        return real(ctx)

    pool = _pool(w.queue, w.inventory, w.settings, runner)
    first = w.flag(DELL, {"Firmware": {"bios": {"version": "2.12.0"}}})
    second = w.flag(SUPERMICRO, {"Firmware": {"bios": {"version": "1.5a"}}})
    pool.start()
    try:
        failed, succeeded = w.wait_final(first), w.wait_final(second)
    finally:
        pool.stop(10)
    assert failed["status"] == "failed" and failed["error"] == "internal error: RuntimeError: boom", failed
    assert succeeded["status"] == "success", succeeded


class _CountingQueue(TaskQueue):
    """The queue, counting the worker pool's claims and acks by the call that made them."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            client_from_settings(settings.redis), settings=settings.queue, key_prefix=settings.redis.key_prefix
        )
        self.calls: Counter[str] = Counter()

    def claim(self, worker: str, *, kinds: Collection[str] | None = None) -> Lease | None:
        self.calls["claim"] += 1
        return super().claim(worker, kinds=kinds)

    def ack(self, lease: Lease) -> None:
        self.calls["ack"] += 1
        super().ack(lease)

    def ack_and_claim(self, lease: Lease, worker: str, *, kinds: Collection[str] | None = None) -> AckAndClaim:
        self.calls["ack_and_claim"] += 1
        return super().ack_and_claim(lease, worker, kinds=kinds)


def _counting_pool(w: InstallWorld, runner: Any) -> tuple[WorkerPool, _CountingQueue]:
    settings = w.with_settings(service={"concurrency": 1})
    queue = _CountingQueue(settings)
    return _pool(queue, w.inventory, settings, runner), queue


def _succeed(ctx: RunContext[Any]) -> RunResult:
    ctx.writer.finish(TaskStatus.SUCCESS, message="success: done")
    return RunResult(Outcome.SUCCESS, "done")


def test_the_pool_acks_a_task_with_its_next_claim_in_one_round_trip(install_world: InstallWorld) -> None:
    """Issue 17: a thread that ends a task and goes on to the next acks and claims in one script. Two tasks queued
    before the pool starts: one claim, then an ack-and-claim that takes the second, then one that takes none."""
    w = install_world
    pool, queue = _counting_pool(w, _succeed)
    uuids = [
        w.flag(DELL, {"Firmware": {"bios": {"version": "2.12.0"}}}),
        w.flag(SUPERMICRO, {"Firmware": {"bios": {"version": "1.5a"}}}),
    ]
    pool.start()
    try:
        finals = [w.wait_final(uuid) for uuid in uuids]
        wait_for(lambda: all(queue.entry(uuid) is None for uuid in uuids))  # both acked
    finally:
        pool.stop(10)
    assert [final["status"] for final in finals] == ["success", "success"]
    assert queue.calls["ack_and_claim"] == 2 and queue.calls["ack"] == 0
    assert queue.depth() == {"queued": 0, "delayed": 0, "inflight": 0, "dead": 0}


def test_a_pool_that_stops_acks_its_last_task_on_its_own(install_world: InstallWorld) -> None:
    w = install_world
    started = threading.Event()

    def runner(ctx: RunContext[Any]) -> RunResult:
        started.set()
        ctx.stopping.wait(20)  # the pool stops while it runs: it ends anyway
        return _succeed(ctx)

    pool, queue = _counting_pool(w, runner)
    uuid = w.flag(SUPERMICRO, {"Firmware": {"bios": {"version": "1.5a"}}})
    pool.start()
    try:
        assert started.wait(20)
    finally:
        assert pool.stop(10)
    assert w.attribute(uuid)["status"] == "success"
    assert queue.calls["ack"] == 1 and queue.calls["ack_and_claim"] == 0  # no claim after a stop
    assert queue.entry(uuid) is None  # acked before stop returned, not left to expire


def test_a_final_status_the_inventory_refuses_is_written_when_it_is_back(install_world: InstallWorld) -> None:
    w = install_world
    settings = w.with_settings(steps={"inventory_write": {"timeout": 0.5}})
    done = threading.Event()

    def runner(ctx: RunContext[Any]) -> RunResult:
        ctx.writer.update(message="working")
        w.inventory_server.set_faults(every=1, methods=["PUT"], path_regex="attributes")
        written = ctx.writer.finish(TaskStatus.SUCCESS, message="success: done")
        done.set()
        return RunResult(Outcome.SUCCESS, "done" if written else "not written")

    pool = _pool(w.queue, w.inventory, settings, runner, pending_flush_every=0.2)
    uuid = w.flag(SUPERMICRO, {"Firmware": {"bios": {"version": "1.5a"}}})
    pool.start()
    try:
        assert done.wait(20)
        deadline = time.monotonic() + 5
        while not (len(pool.pending) and w.queue.entry(uuid) is None) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(pool.pending) == 1 and w.queue.entry(uuid) is None  # acked, kept for later
        assert w.attribute(uuid)["status"] == "active"
        w.inventory_server.clear_faults()
        final = w.wait_final(uuid, timeout=10)
    finally:
        w.inventory_server.clear_faults()
        pool.stop(10)
    assert final["status"] == "success" and final["messages"][-1].endswith("success: done")
    assert len(pool.pending) == 0


def test_the_lease_is_kept_while_a_final_status_waits_out_an_inventory_outage(install_world: InstallWorld) -> None:
    """The pool writes the final status of a cancelled task itself; an inventory outage longer than the lease
    must not lose the lease meanwhile (the heartbeat goes on until the lease is settled)."""
    w = install_world
    settings = w.with_settings(
        queue={"lease_seconds": 1.5},
        steps={"inventory_write": {"timeout": 30}},
        inventory={"retry_deadline": 0.2, "retry_max_wait": 0.05},  # the writer retries, checking its lease each time
    )
    inventory = InventoryClient(settings.inventory)
    queue = TaskQueue.from_settings(settings)  # leases of 1.5 s
    outage_started = threading.Event()

    def runner(ctx: RunContext[Any]) -> RunResult:
        ctx.writer.update(lambda t: setattr(t, "cancel", True), message="working")
        w.inventory_server.set_faults(every=1, methods=["GET", "PUT"], path_regex="attributes")
        outage_started.set()
        return RunResult(Outcome.RETRY, "the BMC was unreachable")  # a cancel was asked: the pool cancels it

    pool = _pool(queue, inventory, settings, runner)
    uuid = w.flag(SUPERMICRO, {"Firmware": {"bios": {"version": "1.5a"}}})
    pool.start()
    try:
        assert outage_started.wait(20)
        time.sleep(4)  # more than twice the lease
        w.inventory_server.clear_faults()
        final = w.wait_final(uuid, timeout=20)
    finally:
        w.inventory_server.clear_faults()
        pool.stop(10)
    assert final["status"] == "cancelled", final
    assert w.queue.entry(uuid) is None


# -- a BMC with several Systems (issue 12, item 15) ------------------------------------------------------------------
NODES = FleetSpec(
    install_seconds=0.5,
    offline_seconds=1.0,
    power_seconds=0.2,
    bmcs=[
        BmcSpec(
            vendor="dell",
            model="r6515",
            serial="DL000000",
            power_state="Off",
            # listed before the server's System, powered on: the first System is the wrong one
            other_systems=[OtherSystemSpec(id="System.Embedded.2", serial="DL000099", power_state="On")],
        )
    ],
)


def _nodes_world(
    pool: BmcFleetPool, inventory: InventoryServer, redis_url: str, images: ImageServer, cache: Path, serial: str
) -> InstallWorld:
    fleet = pool.get(config=NODES, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    seed = seed_for(fleet, [0], images)
    seed["servers"][0]["serial"] = serial
    seeded = inventory.seed(seed)
    settings = fast_settings(inventory.url, redis_url, cache, bmc={"ca_bundle": fleet.ca_bundle})
    return InstallWorld(fleet, inventory, images, settings, {0: seeded["servers"]["srv-0"]})


def test_a_bmc_with_several_systems_installs_on_the_servers_and_restores_its_power(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> None:
    w = _nodes_world(bmcsim_pool, clean_inventory, redis_url, firmware_server, tmp_path / "cache", "DL000000")
    _, final = w.run(0, {"firmwareSet": "dell-r6515-platform"})

    assert final["status"] == "success", final
    assert final["initialPowerState"] == "Off"  # the server's System, not the first one listed (On)
    power = [(p["action"], p["to_state"]) for p in w.fleet.audit(0)["power"]]
    assert power == [("On", "On"), ("ForceOff", "Off")]  # booted to apply the BIOS, then off again
    assert _power(w, 0) == "Off"


def test_a_bmc_with_several_systems_none_of_them_the_server_does_nothing(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> None:
    w = _nodes_world(bmcsim_pool, clean_inventory, redis_url, firmware_server, tmp_path / "cache", "NOT-LISTED")
    _, final = w.run(0, {"firmwareSet": "dell-r6515-platform"})

    assert final["status"] == "failed", final
    assert final["error"].startswith(f"cannot read the installed firmware: BMC {w.fleet.url(0)} has 2 Systems (")
    assert "found by its serial 'NOT-LISTED' or UUID" in final["error"] and "none matches" in final["error"]
    audit = w.fleet.audit(0)
    assert audit["installs"] == [] and audit["power"] == []
