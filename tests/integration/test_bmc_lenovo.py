"""The BMC driver against the Lenovo XCC-like shape: the claimed UpdateService, the Task followed instead of the
task monitor that deletes it, 503 waited out, 413 failing the install saying so.

Each quirk's test fails without the driver's handling (:mod:`flasher.bmc.quirks.lenovo`): a push without a claim
is refused; a task monitor read after the task ended deletes the task, so a failed install would read as
"Completed" and its reason lost; a 503 would fail the install at once; a 413 would be a bare HTTP error.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from flasher.bmc import BMC, BMCComponent, BMCTaskFailedError, BMCTimeoutError
from flasher.config import BMCSettings
from flasher_sandbox.bmc.config import FleetSpec, default_bmc
from flasher_sandbox.images import make_image
from flasher_sandbox.servers import BmcFleet
from tests.support.fixtures.bmcsim import BmcFleetPool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SETTINGS = BMCSettings(retries=1, retry_delay=0.05, poll_interval=0.1, offline_grace=30, read_timeout=5)


@pytest.fixture
def xcc(bmcsim_pool: BmcFleetPool) -> BmcFleet:
    """One Lenovo XCC-like BMC (installs 1 s)."""
    spec = default_bmc(0, shape="lenovo").model_copy(update={"max_image_bytes": 256 * 1024})
    return bmcsim_pool.get(config=FleetSpec(bmcs=[spec]), install_seconds=1.0, offline_seconds=1.0)


def _connect(fleet: BmcFleet, **settings: Any) -> BMC:
    trusted = SETTINGS.model_copy(update={"ca_bundle": fleet.ca_bundle, **settings})
    return BMC(fleet.address(0), fleet.username, fleet.password, settings=trusted)


def _component(bmc: BMC, slug: str) -> BMCComponent:
    return next(c for c in bmc.firmware_inventory() if c.slug == slug)


def _image(tmp_path: Path, slug: str, version: str, size: int | None = None) -> Path:
    path = tmp_path / f"lenovo-{slug}-{version}.bin"
    path.write_bytes(make_image(slug, "lenovo", version, [], **({"size": size} if size else {})))
    return path


def _claims(fleet: BmcFleet) -> list[bool]:
    return [e["busy"] for e in fleet.audit(0)["vendor"] if e["event"] == "claim"]


def test_a_push_claims_the_update_service_releases_it_and_follows_the_task(xcc: BmcFleet, tmp_path: Path) -> None:
    with _connect(xcc) as bmc:
        bios = _component(bmc, "bios")
        assert bios.id == "UEFI"
        handle = bmc.install(bios, image_path=_image(tmp_path, "bios", "ESE1A4D-3.20"))
        assert handle.method == "http_push"
        assert handle.uri.startswith("/redfish/v1/TaskService/Tasks/")  # the Task, not the monitor's Location
        assert bmc.wait_for_task(handle, timeout=30).state == "Completed"
        assert bmc.wait_for_version(bios, "ESE1A4D-3.20", timeout=10).version == "ESE1A4D-3.20"
    assert _claims(xcc) == [True, False]
    assert xcc.state(0)["http_push"] == {"busy": False, "targets": []}
    (install,) = xcc.audit(0)["installs"]
    assert (install["method"], install["targets"], install["outcome"]) == ("HttpPush", ["UEFI"], "success")
    # the monitor was never read: the Task is still there
    assert xcc.session(0).get(xcc.url(0) + handle.uri, timeout=5).status_code == 200
    assert [e for e in xcc.audit(0)["vendor"] if e["event"] == "monitor-deleted-task"] == []


def test_a_failed_install_is_reported_with_the_bmcs_reason(xcc: BmcFleet, tmp_path: Path) -> None:
    xcc.set_faults(0, {"task_exception": True})
    with _connect(xcc) as bmc:
        nic = _component(bmc, "nic")
        handle = bmc.install(nic, image_path=_image(tmp_path, "nic", "26.38.1002"))
        with pytest.raises(BMCTaskFailedError, match=r"ended Exception.*Installation of image .* failed"):
            bmc.wait_for_task(handle, timeout=30)
    assert xcc.state(0)["http_push"]["busy"] is False


def test_an_image_over_the_size_limit_fails_saying_so_and_releases_the_service(xcc: BmcFleet, tmp_path: Path) -> None:
    with _connect(xcc) as bmc:
        bios = _component(bmc, "bios")
        with pytest.raises(BMCTaskFailedError, match=r"too large \(HTTP 413\): 1048576 bytes"):
            bmc.install(bios, image_path=_image(tmp_path, "bios", "ESE1A4D-3.20", size=1024 * 1024))
    assert _claims(xcc) == [True, False]
    assert xcc.audit(0)["installs"] == []
    assert xcc.version(0, "bios") == "ESE1A2B-3.10"


def test_a_push_while_another_update_runs_waits_for_it(xcc: BmcFleet, tmp_path: Path) -> None:
    first_started = threading.Event()
    errors: list[BaseException] = []

    def other_client() -> None:
        try:
            with _connect(xcc) as other:
                nic = _component(other, "nic")
                handle = other.install(nic, image_path=_image(tmp_path, "nic", "26.38.1002"))
                first_started.set()
                other.wait_for_task(handle, timeout=30)
        except BaseException as exc:  # the assertion below reports it
            errors.append(exc)
            first_started.set()

    thread = threading.Thread(target=other_client)
    thread.start()
    assert first_started.wait(30)
    with _connect(xcc) as bmc:
        bios = _component(bmc, "bios")
        handle = bmc.install(bios, image_path=_image(tmp_path, "bios", "ESE1A4D-3.20"))
        assert bmc.wait_for_task(handle, timeout=30).succeeded
    thread.join(30)
    assert errors == []
    outcomes = [(i["component"], i["outcome"]) for i in xcc.audit(0)["installs"]]
    assert outcomes[0] == ("nic", "success") and outcomes[-1] == ("bios", "success")
    assert ("bios", "refused") in outcomes  # the 503 it waited out
    assert xcc.audit(0)["overlapping_installs"] == outcomes.count(("bios", "refused"))


def test_push_targets_held_by_another_client_are_waited_for_bounded(xcc: BmcFleet, tmp_path: Path) -> None:
    service = xcc.redfish(0, "/UpdateService")
    assert xcc.session(0).patch(service, json={"HttpPushUriTargetsBusy": True}, timeout=5).ok
    with _connect(xcc, busy_wait=1.5) as bmc:
        bios = _component(bmc, "bios")
        with pytest.raises(BMCTimeoutError, match=r"HttpPushUriTargetsBusy\) for 2 s \(bmc.busy_wait\)"):
            bmc.install(bios, image_path=_image(tmp_path, "bios", "ESE1A4D-3.20"))
    assert xcc.audit(0)["installs"] == []
