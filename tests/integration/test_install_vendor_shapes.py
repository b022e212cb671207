"""The HPE iLO-like and OpenBMC-like shapes end to end: the demo's install kinds (BIOS, BMC self-update, NIC,
drive) through admission, the worker and the install engine, each shape's quirks included, plus the driver's
handling of each quirk on its own.

BMC 0 is HPE iLO-like (SimpleUpdate; System ROM staged until the host boots; FIFO install queue; POST; no
NetworkAdapters before the OS), BMC 1 OpenBMC-like (HttpPushUri only; BIOS only with the host off; tasks forgotten
at a BMC reboot; no percent). Installs take 0.5 s, a BMC restart 1 s, a power change 0.2 s.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from flasher.bmc import BMC
from flasher_sandbox.bmc.config import FleetSpec, default_bmc
from flasher_sandbox.procs import ManagedProcess
from flasher_sandbox.servers import ImageServer, InventoryServer
from tests.support.fixtures.bmcsim import BmcFleetPool
from tests.support.install_env import InstallWorld, fast_settings, seed_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HPE, OPENBMC = 0, 1
PLATFORM = {
    HPE: {"Firmware": {"bmc": {"version": "2.81"}, "bios": {"version": "U46 v2.72"}}},
    OPENBMC: {"Firmware": {"bmc": {"version": "2.15.0"}, "bios": {"version": "1.11.0"}}},
}
DEVICES = {
    HPE: {"nic": ("1.8.5", "HP000000-NIC1"), "drive": ("3.12", "HP000000-D0")},
    OPENBMC: {"nic": ("4.30", "OB000001-NIC1"), "drive": ("2.1.0", "OB000001-D0")},
}


@pytest.fixture
def world(
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> InstallWorld:
    config = FleetSpec(bmcs=[default_bmc(HPE, shape="hpe"), default_bmc(OPENBMC, shape="openbmc")])
    fleet = bmcsim_pool.get(config=config, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    seeded = clean_inventory.seed(seed_for(fleet, [HPE, OPENBMC], firmware_server))
    settings = fast_settings(clean_inventory.url, redis_url, tmp_path / "cache", bmc={"ca_bundle": fleet.ca_bundle})
    servers = {i: seeded["servers"][f"srv-{i}"] for i in (HPE, OPENBMC)}
    return InstallWorld(fleet, clean_inventory, firmware_server, settings, servers)


def _messages(data: dict[str, object]) -> str:
    return "\n".join(str(m) for m in data.get("messages", []))  # type: ignore[attr-defined]


def _bmc(world: InstallWorld, index: int) -> BMC:
    return BMC(world.fleet.address(index), "root", "calvin", settings=world.settings.bmc)


# -- the demo's install kinds on each shape --------------------------------------------------------------------------
@pytest.mark.parametrize("index", [HPE, OPENBMC], ids=["hpe", "openbmc"])
def test_bios_bmc_nic_and_drive_install_end_to_end(world: InstallWorld, index: int) -> None:
    w = world
    uuid, final = w.run(index, PLATFORM[index])
    assert final["status"] == "success", final
    for slug, spec in PLATFORM[index]["Firmware"].items():
        assert final["Firmware"][slug]["installedVersion"] == spec["version"], final["Firmware"][slug]
    _, devices = w.run(index, {})
    assert devices["status"] == "success", devices
    for slug, (version, serial) in DEVICES[index].items():
        spec = devices["Firmware"][slug]
        assert spec["status"] == "installed", spec
        assert w.installed(uuid)[f"{slug}:{serial}"] == version
    audit = w.fleet.audit(index)
    assert audit["overlapping_installs"] == 0
    assert {i["component"] for i in audit["installs"]} >= {"bmc", "bios", "nic", "drive"}
    assert all(i["outcome"] == "success" for i in audit["installs"]), audit["installs"]
    assert w.fleet.state(index)["power"]["state"] == "On"  # as it was
    text = _messages(final)
    if index == HPE:
        # The System ROM task said Completed with the old version still running: flasher reset the host.
        assert "the BMC staged U46 v2.72 (it still runs U46 v2.68)" in text and "resetting the host" in text
        assert [p["action"] for p in audit["power"]] == ["ForceRestart"]
        assert [i["method"] for i in audit["installs"]] == ["SimpleUpdate"] * len(audit["installs"])
    else:
        # Host firmware only with the host off: powered off first, restored to On at the end.
        assert "host powered off for the install (power Off)" in text
        assert [p["action"] for p in audit["power"]] == ["GracefulShutdown", "On"]
        assert [i["apply_time"] for i in audit["installs"]] == ["Immediate"] * len(audit["installs"])
        assert "%" not in text  # the tasks give no percent
        assert [r["reason"] for r in audit["bmc_resets"]] == ["firmware update"]


# -- HPE -------------------------------------------------------------------------------------------------------------
def test_hpe_staged_system_rom_waits_for_a_reboot_by_someone_else_when_so_configured(world: InstallWorld) -> None:
    w = world
    settings = w.with_settings(bmc={"staged_firmware": "wait"}, steps={"install": {"timeout": 20}})
    bios_only = {"Firmware": {"bios": {"version": "U46 v2.72"}}}
    uuid = w.flag(HPE, bios_only)
    with w.pool(settings):
        w.wait_until(uuid, lambda d: "waiting for one (bmc.staged_firmware: wait)" in _messages(d), "the wait")
        assert w.fleet.state(HPE)["staged"], "the BMC holds the staged image"
        assert w.fleet.audit(HPE)["power"] == []  # flasher did not touch the host
        with _bmc(w, HPE) as bmc:
            bmc.set_power("reset", timeout=10)  # the operator reboots it
        final = w.wait_final(uuid)
    assert final["status"] == "success", final
    assert final["Firmware"]["bios"]["installedVersion"] == "U46 v2.72"


def test_hpe_staged_system_rom_fails_when_nobody_reboots_within_the_install_timeout(world: InstallWorld) -> None:
    w = world
    settings = w.with_settings(bmc={"staged_firmware": "wait"}, steps={"install": {"timeout": 2}})
    _, final = w.run(HPE, {"Firmware": {"bios": {"version": "U46 v2.72"}}}, settings)
    assert final["status"] == "failed", final
    assert "U46 v2.72 is staged but not active" in final["Firmware"]["bios"]["message"]
    assert w.fleet.audit(HPE)["power"] == []
    bios = next(c for c in w.fleet.state(HPE)["components"] if c["slug"] == "bios")
    assert bios["version"] == "U46 v2.68"  # still staged


def test_hpe_staged_system_rom_is_activated_not_flashed_again_after_a_crash_before_the_reset(
    world: InstallWorld, tmp_path: Path
) -> None:
    # A replica (a process of its own) stops dead right after saying it resets the host for the staged ROM, and is
    # killed: the task completed (the image is staged), the old ROM still runs. The replica that takes the task over
    # follows the recorded task, sees the old version, and activates the staged image with a host reset.
    w = world
    settings = w.with_settings(queue={"lease_seconds": 2}, service={"worker_id": "worker-a"})
    pause = "it activates at the next host reset: resetting the host"
    argv = [sys.executable, "-m", "tests.support.install_worker", json.dumps(settings.model_dump(mode="json")), pause]
    uuid = w.flag(HPE, {"Firmware": {"bios": {"version": "U46 v2.72"}}})
    worker = ManagedProcess(argv, tmp_path / "worker-a.log", cwd=Path(__file__).resolve().parents[2]).start()
    try:
        w.wait_until(uuid, lambda d: pause in _messages(d), "the staged ROM and the reset about to be done")
        worker.kill()  # SIGKILL between the staging and the reset
    finally:
        worker.stop()
    assert w.fleet.state(HPE)["staged"], "the BMC holds the staged image"
    assert w.fleet.audit(HPE)["power"] == []  # the reset was never sent

    with w.pool(w.with_settings(queue={"lease_seconds": 2}), worker_id="worker-b"):
        final = w.wait_final(uuid, timeout=60)

    assert final["status"] == "success", final
    assert (final["worker"], final["attempts"]) == ("worker-b", 2)
    audit = w.fleet.audit(HPE)
    assert Counter(i["component"] for i in audit["installs"]) == {"bios": 1}, audit["installs"]  # one install only
    assert [p["action"] for p in audit["power"]] == ["ForceRestart"]
    spec = final["Firmware"]["bios"]
    assert (spec["status"], spec["installedVersion"]) == ("installed", "U46 v2.72"), spec
    assert spec["message"] == "installed U46 v2.72 by the earlier attempt's BMC task (confirmed by the BMC)", spec


def test_hpe_boot_device_change_during_post_is_retried_until_post_ends(world: InstallWorld) -> None:
    w = world
    with _bmc(w, HPE) as bmc:
        bmc.set_power("off", timeout=10)
        bmc.set_power("on", timeout=10)  # the host boots: POST lasts 1 s
        bmc.set_boot_device("pxe")
    state = w.fleet.state(HPE)
    assert state["quirks"]["post_refusals"] >= 1  # it was refused first
    assert state["boot"]["target"] == "Pxe"


def test_hpe_network_adapters_unreadable_before_the_os_are_skipped(world: InstallWorld) -> None:
    w = world
    with _bmc(w, HPE) as bmc:
        bmc.set_power("off", timeout=10)
        components = bmc.firmware_inventory()
        snapshot = bmc.read_hardware()
    nics = [c for c in components if c.slug == "nic"]
    assert len(nics) == 2 and all(c.version for c in nics)
    assert w.fleet.state(HPE)["quirks"]["network_adapter_refusals"] >= 2
    assert any("NetworkAdapters" in note for note in snapshot.notes)


def test_hpe_install_queue_is_first_in_first_out_behind_a_staged_item(world: InstallWorld) -> None:
    """The simulator's FIFO queue on its own: a NIC install sent after a staged System ROM waits (New) until the
    host boots."""
    w = world
    url = w.fleet.url(HPE)
    auth = ("root", "calvin")
    verify = str(w.fleet.ca_bundle)
    image = w.images.image("bios", "hpe", "U46 v2.72", ["dl360g10p"])
    nic = w.images.image("nic", "hpe", "1.8.5", ["640sfp28"])
    post = f"{url}/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"
    first = requests.post(post, json={"ImageURI": image}, auth=auth, verify=verify, timeout=5)
    assert first.status_code == 202, first.text
    deadline = time.monotonic() + 10
    while not w.fleet.state(HPE)["staged"]:
        assert time.monotonic() < deadline, w.fleet.state(HPE)
        time.sleep(0.05)
    second = requests.post(post, json={"ImageURI": nic}, auth=auth, verify=verify, timeout=5)
    assert second.status_code == 202, second.text
    time.sleep(1.5)  # three install times
    tasks = w.fleet.state(HPE)["tasks"]
    assert [t["state"] for t in tasks] == ["Completed", "New"]
    with _bmc(w, HPE) as bmc:
        bmc.set_power("reset", timeout=10)
    deadline = time.monotonic() + 10
    while w.fleet.state(HPE)["tasks"][1]["state"] != "Completed":
        assert time.monotonic() < deadline, w.fleet.state(HPE)["tasks"]
        time.sleep(0.05)


# -- OpenBMC ---------------------------------------------------------------------------------------------------------
def test_openbmc_push_apply_time_left_by_another_client_is_set_back_to_immediate(world: InstallWorld) -> None:
    w = world
    url = w.fleet.url(OPENBMC)
    left = requests.patch(
        f"{url}/redfish/v1/UpdateService",
        json={"HttpPushUriOptions": {"HttpPushUriApplyTime": {"ApplyTime": "OnReset"}}},
        auth=("root", "calvin"),
        verify=str(w.fleet.ca_bundle),
        timeout=5,
    )
    assert left.status_code == 200, left.text
    _, final = w.run(OPENBMC, {"Firmware": {"bmc": {"version": "2.15.0"}}})
    assert final["status"] == "success", final
    audit = w.fleet.audit(OPENBMC)
    assert [(i["component"], i["apply_time"]) for i in audit["installs"]] == [("bmc", "Immediate")]
    assert audit["power"] == []  # nothing staged, so no host reset


def test_openbmc_bmc_task_is_forgotten_at_its_reboot_and_the_version_confirms(world: InstallWorld) -> None:
    w = world
    _, final = w.run(OPENBMC, {"Firmware": {"bmc": {"version": "2.15.0"}}})
    assert final["status"] == "success", final
    assert w.fleet.state(OPENBMC)["tasks"] == []  # the BMC forgot the task when it rebooted
    assert final["Firmware"]["bmc"]["message"] == "installed 2.15.0 (confirmed by the BMC)"
