"""The demo's install kinds (BMC self-update, BIOS, NIC, drive) end to end on each vendor shape added for issue 16:
admission, the worker pool, the install runner and engine, against the sandbox inventory, Redis and one simulated
BMC of the shape, its quirks included (the Dell-like and Supermicro-like shapes run these in
``test_install_worker.py``).

Per shape, what the BMC's audit must show besides the installs: Lenovo XCC-like, a claim and a release of the
UpdateService around every push and no task deleted by a read of its monitor; Supermicro X13-like, a StartUpdate
after each upload, the BIOS's and the BMC's settings kept, and no host reset taken for the Verify task's Pending.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flasher_sandbox.bmc.config import FleetSpec, ShapeName, default_bmc
from flasher_sandbox.servers import ImageServer, InventoryServer
from tests.support.fixtures.bmcsim import BmcFleetPool
from tests.support.install_env import UPGRADES, InstallWorld, fast_settings, seed_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NEW_SHAPES: tuple[ShapeName, ...] = ("lenovo", "supermicro-x13")


def _world(
    shape: ShapeName,
    pool: BmcFleetPool,
    inventory: InventoryServer,
    redis_url: str,
    images: ImageServer,
    tmp_path: Path,
) -> InstallWorld:
    config = FleetSpec(bmcs=[default_bmc(0, shape=shape)])
    fleet = pool.get(config=config, install_seconds=0.5, offline_seconds=1.0, power_seconds=0.2)
    seeded = inventory.seed(seed_for(fleet, [0], images))
    settings = fast_settings(inventory.url, redis_url, tmp_path / "cache", bmc={"ca_bundle": fleet.ca_bundle})
    return InstallWorld(fleet, inventory, images, settings, {0: seeded["servers"]["srv-0"]})


def _check_quirks(shape: ShapeName, world: InstallWorld, pushes: int) -> None:
    vendor: list[dict[str, Any]] = world.fleet.audit(0)["vendor"]
    if shape == "lenovo":
        claims = [e["busy"] for e in vendor if e["event"] == "claim"]
        assert claims == [True, False] * pushes, vendor
        assert not [e for e in vendor if e["event"] == "monitor-deleted-task"]
        assert world.fleet.state(0)["http_push"]["busy"] is False
    if shape == "supermicro-x13":
        assert len([e for e in vendor if e["event"] == "start-update"]) == pushes
        preserved = {e["component"]: e["settings_kept"] for e in vendor if e["event"] == "preserve"}
        assert preserved == {"bmc": True, "bios": True}
        assert world.fleet.audit(0)["power"] == []


@pytest.mark.parametrize("shape", NEW_SHAPES)
def test_the_bmc_and_the_bios_then_every_nic_and_drive(
    shape: ShapeName,
    bmcsim_pool: BmcFleetPool,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> None:
    w = _world(shape, bmcsim_pool, clean_inventory, redis_url, firmware_server, tmp_path)
    described = w.fleet.fleet()[0]
    vendor, model = described["vendor"], described["model"]
    before = {c["id"]: (c["slug"], c["version"]) for c in described["components"]}

    uuid, final = w.run(0, {"firmwareSet": f"{vendor}-{model}-platform"})
    assert final["status"] == "success", final
    for slug in ("bmc", "bios"):
        spec = final["Firmware"][slug]
        version = UPGRADES[next(v for s, v in before.values() if s == slug)]
        assert (spec["status"], spec["installedVersion"]) == ("installed", version), spec
        assert spec["message"] == f"installed {version} (confirmed by the BMC)"
    assert [r["reason"] for r in w.fleet.audit(0)["bmc_resets"]] == ["firmware update"]  # the BMC's self-update

    _, devices = w.run(0, {})
    assert devices["status"] == "success", devices
    assert devices["mode"] == "ResolveFirmware"
    for slug in ("nic", "drive"):
        spec = devices["Firmware"][slug]
        assert spec["status"] == "installed", spec
        for instance in spec.get("instances") or [spec]:
            assert instance["status"] == "installed", instance

    installs = w.fleet.audit(0)["installs"]
    assert w.fleet.audit(0)["overlapping_installs"] == 0
    assert all(i["outcome"] == "success" for i in installs), installs
    flashed = {t for i in installs for t in i["targets"]}
    kinds = ("bmc", "bios", "nic", "drive")
    expected = {cid for cid, (slug, version) in before.items() if slug in kinds and version in UPGRADES}
    assert flashed == expected
    for cid in expected:
        assert w.fleet.state(0)["versions"][cid] == UPGRADES[before[cid][1]]
    _check_quirks(shape, w, pushes=len(installs))
    installed = w.installed(uuid)
    assert all(installed[key] for key in installed)
