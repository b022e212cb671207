"""The BMC driver against the Supermicro X13-like shape: multipart with ``OnStartUpdateRequest``, StartUpdate once
the "Verify" task reads Pending, the "Update" task followed, ``Preserve*`` options per model, and the licence.

Each quirk's test fails without the driver's handling (:mod:`flasher.bmc.quirks.supermicro`): a StartUpdate sent
right after the upload finds nothing verified (400); the Verify task's Pending would read as a wait for a host
reset; options left out reset the BIOS's or BMC's settings, and an H13 refuses ``PreserveME``; a 403 would not name
the licence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flasher.bmc import BMC, BMCComponent, BMCInterruptedError, BMCTaskFailedError, TaskHandle
from flasher.config import BMCSettings
from flasher_sandbox.bmc.config import BmcSpec, FleetSpec, default_bmc
from flasher_sandbox.images import make_image
from flasher_sandbox.servers import BmcFleet
from tests.support.fixtures.bmcsim import BmcFleetPool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SETTINGS = BMCSettings(retries=1, retry_delay=0.05, poll_interval=0.1, offline_grace=30, read_timeout=5)
X13, H13, UNLICENSED = 0, 1, 2


@pytest.fixture
def x13(bmcsim_pool: BmcFleetPool) -> BmcFleet:
    """BMC 0: an X13SEI; 1: an H13SSL-N (AMD: no ME); 2: an X13SEI without the licence. Installs 1 s."""
    specs: list[BmcSpec] = [
        default_bmc(0, shape="supermicro-x13"),
        default_bmc(1, shape="supermicro-x13").model_copy(update={"model": "h13ssln", "product": "H13SSLN"}),
        default_bmc(2, shape="supermicro-x13").model_copy(update={"licensed": False}),
    ]
    return bmcsim_pool.get(config=FleetSpec(bmcs=specs), install_seconds=1.0, offline_seconds=1.0)


def _connect(fleet: BmcFleet, i: int) -> BMC:
    settings = SETTINGS.model_copy(update={"ca_bundle": fleet.ca_bundle})
    return BMC(fleet.address(i), fleet.username, fleet.password, settings=settings)


def _component(bmc: BMC, slug: str) -> BMCComponent:
    return next(c for c in bmc.firmware_inventory() if c.slug == slug)


def _image(tmp_path: Path, slug: str, version: str) -> Path:
    path = tmp_path / f"supermicro-{slug}-{version}.bin"
    path.write_bytes(make_image(slug, "supermicro", version, []))
    return path


def _events(fleet: BmcFleet, i: int, event: str) -> list[dict[str, Any]]:
    return [e for e in fleet.audit(i)["vendor"] if e["event"] == event]


def _install(fleet: BmcFleet, i: int, slug: str, version: str, tmp_path: Path) -> str:
    with _connect(fleet, i) as bmc:
        component = _component(bmc, slug)
        handle = bmc.install(component, image_path=_image(tmp_path, slug, version))
        result = bmc.wait_for_task(handle, timeout=30)
        assert result.succeeded and not result.awaiting_reset, result
        assert bmc.wait_for_version(component, version, timeout=20).version == version
        return handle.uri


def test_a_bios_update_is_started_once_verified_and_keeps_the_settings(x13: BmcFleet, tmp_path: Path) -> None:
    uri = _install(x13, X13, "bios", "2.2", tmp_path)
    tasks = {t["id"]: t for t in x13.state(X13)["tasks"]}
    (start,) = _events(x13, X13, "start-update")
    assert uri.endswith(f"/{start['update_task']}")  # the Update task was followed, not the Verify task
    assert tasks[start["verify_task"]]["state"] == "Completed"
    names = [x13.session(X13).get(x13.redfish(X13, f"/TaskService/Tasks/{t}"), timeout=5).json()["Name"] for t in tasks]
    assert names == ["BIOS Verify", "BIOS Update"]
    (preserve,) = _events(x13, X13, "preserve")
    kept = {"PreserveME": True, "PreserveNVRAM": True, "PreserveSMBIOS": True, "BackupBIOS": False}
    assert preserve["options"] == kept
    assert preserve["settings_kept"] is True
    assert x13.audit(X13)["power"] == []  # the Verify task's Pending was not taken for a wait for a host reset
    (install,) = x13.audit(X13)["installs"]
    assert (install["method"], install["outcome"]) == ("MultipartHttpPush", "success")
    assert install["apply_time"] == "OnStartUpdateRequest"


def test_a_bmc_update_keeps_its_configuration_through_its_own_restart(x13: BmcFleet, tmp_path: Path) -> None:
    _install(x13, X13, "bmc", "01.02.05", tmp_path)
    (preserve,) = _events(x13, X13, "preserve")
    assert preserve["component"] == "bmc" and preserve["settings_kept"] is True
    assert preserve["options"] == {"PreserveCfg": True, "PreserveSdr": True, "PreserveSsl": True, "BackupBMC": False}
    assert [r["reason"] for r in x13.audit(X13)["bmc_resets"]] == ["firmware update"]


def test_an_amd_board_gets_no_me_option(x13: BmcFleet, tmp_path: Path) -> None:
    _install(x13, H13, "bios", "2.2", tmp_path)  # PreserveME would be refused with 400 on an H13
    (preserve,) = _events(x13, H13, "preserve")
    assert preserve["options"] == {"PreserveNVRAM": True, "PreserveSMBIOS": True, "BackupBIOS": False}


def test_a_nic_update_carries_no_options(x13: BmcFleet, tmp_path: Path) -> None:
    uri = _install(x13, X13, "nic", "4.30", tmp_path)
    assert x13.session(X13).get(x13.url(X13) + uri, timeout=5).json()["Name"] == "NIC Update"
    assert _events(x13, X13, "preserve") == []


def test_a_bios_update_without_the_licence_fails_naming_it(x13: BmcFleet, tmp_path: Path) -> None:
    with _connect(x13, UNLICENSED) as bmc:
        bios = _component(bmc, "bios")
        with pytest.raises(BMCTaskFailedError, match=r"needs the licence SFT-DCMS-SINGLE for this update \(HTTP 403\)"):
            bmc.install(bios, image_path=_image(tmp_path, "bios", "2.2"))
    assert x13.audit(UNLICENSED)["installs"] == []
    assert x13.version(UNLICENSED, "bios") == "2.1"


def test_an_upload_staged_by_a_worker_that_died_is_started_when_its_task_is_followed(
    x13: BmcFleet, tmp_path: Path
) -> None:
    image = _image(tmp_path, "bios", "2.2")
    parameters = {"Targets": [], "@Redfish.OperationApplyTime": "OnStartUpdateRequest"}
    files: dict[str, tuple[str | None, bytes, str]] = {
        "UpdateParameters": (None, json.dumps(parameters).encode(), "application/json"),
        "UpdateFile": (image.name, image.read_bytes(), "application/octet-stream"),
    }
    with x13.session(X13) as http:  # the upload of a worker that died before StartUpdate
        answer = http.post(x13.redfish(X13, "/UpdateService/upload"), files=files, timeout=10)
    assert answer.status_code == 202, answer.text
    verify = answer.json()["@odata.id"]
    x13.wait_for(X13, lambda s: any(t["state"] == "Pending" for t in s["tasks"]), 10)
    with _connect(x13, X13) as bmc:  # the worker that resumes follows the task it recorded
        result = bmc.wait_for_task(TaskHandle(uri=verify, method="multipart"), timeout=30)
        assert result.succeeded and not result.awaiting_reset, result
        assert bmc.wait_for_version(_component(bmc, "bios"), "2.2", timeout=20).version == "2.2"
    (start,) = _events(x13, X13, "start-update")
    assert verify.endswith(f"/{start['verify_task']}")
    assert x13.audit(X13)["power"] == []  # no host reset for the Verify task's Pending


def test_a_lease_lost_while_the_upload_is_verified_never_sends_start_update(x13: BmcFleet, tmp_path: Path) -> None:
    # The caller's fence (keep_going) holds until the Verify task reads Pending: then the lease is gone, as for a
    # replica that stalled during the verification. StartUpdate must not follow.
    def lease_held() -> bool:
        return not any(t["state"] == "Pending" for t in x13.state(X13)["tasks"])

    with _connect(x13, X13) as bmc:
        bios = _component(bmc, "bios")
        with pytest.raises(BMCInterruptedError, match="StartUpdate was not sent"):
            bmc.install(bios, image_path=_image(tmp_path, "bios", "2.2"), keep_going=lease_held)
    assert _events(x13, X13, "start-update") == []
    assert [t["state"] for t in x13.state(X13)["tasks"]] == ["Pending"]  # verified, staged for the next owner
    assert x13.version(X13, "bios") == "2.1"
