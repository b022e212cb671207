"""Dell iDRAC quirks the Dell-like shape models, and the driver's handling of each, against the simulator:
FirmwareInventory Ids that carry the version (so they change after an update), one component per install
request, TaskState ``New`` right after SimpleUpdate, a finished task that disappears while its ``JID_`` job
stays, and a BIOS job waiting for a reboot (``awaiting_reset``)."""

from __future__ import annotations

import pytest
import requests

from flasher.bmc import BMC
from flasher.config import BMCSettings
from flasher_sandbox.servers import BmcFleet, ImageServer
from tests.support.fixtures.bmcsim import BmcFleetPool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELL = 0


def _settings(fleet: BmcFleet) -> BMCSettings:
    return BMCSettings(ca_bundle=fleet.ca_bundle, poll_interval=0.1, offline_grace=20, retries=1, retry_delay=0.05)


def test_the_firmware_inventory_id_changes_with_the_version_and_the_driver_finds_the_device_again(
    bmcsim_pool: BmcFleetPool, firmware_server: ImageServer
) -> None:
    bmcsim = bmcsim_pool.get(install_seconds=3.0)  # New for the first 0.3 s
    url = firmware_server.image("nic", "broadcom", "22.32.0", ["bcm57414"])
    with BMC(bmcsim.address(DELL), "root", "calvin", settings=_settings(bmcsim)) as bmc:
        nic = next(c for c in bmc.firmware_inventory() if c.slug == "nic" and c.model == "bcm57414")
        assert nic.id == "Installed-104483-22.31.6__NIC.Slot.1"
        handle = bmc.install(nic, image_url=url)
        first = bmc.task_progress(handle)
        assert first.state == "New" and not first.terminal  # iDRAC: New right after SimpleUpdate
        bmc.wait_for_task(handle, timeout=20)
        fresh = bmc.wait_for_version(nic, "22.32.0", timeout=10)  # found again by FQDD, not by the old URI
        assert fresh.id == "Installed-104483-22.32.0__NIC.Slot.1" and fresh.uri != nic.uri
    old = requests.get(f"{bmcsim.url(DELL)}{nic.uri}", auth=("root", "calvin"), verify=str(bmcsim.ca_bundle), timeout=5)
    assert old.status_code == 404  # the Id with the old version is gone


def test_an_install_request_naming_two_components_is_refused(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    url = firmware_server.image("nic", "broadcom", "22.32.0", ["bcm57414", "bcm5720"])
    with BMC(bmcsim.address(DELL), "root", "calvin", settings=_settings(bmcsim)) as bmc:
        nics = [c.uri for c in bmc.firmware_inventory() if c.slug == "nic"]
    assert len(nics) == 2
    answer = requests.post(
        f"{bmcsim.url(DELL)}/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
        json={"ImageURI": url, "Targets": nics},
        auth=("root", "calvin"),
        verify=str(bmcsim.ca_bundle),
        timeout=5,
    )
    assert answer.status_code == 400
    assert "one component per request" in answer.json()["error"]["@Message.ExtendedInfo"][0]["Message"]


def test_a_bios_job_waits_for_a_reboot_and_a_purged_task_is_read_from_its_job(
    bmcsim: BmcFleet, firmware_server: ImageServer
) -> None:
    url = firmware_server.image("bios", "dell", "2.12.0", ["r6515"])
    bmcsim.set_faults(DELL, {"task_purged": True})
    with BMC(bmcsim.address(DELL), "root", "calvin", settings=_settings(bmcsim)) as bmc:
        bios = next(c for c in bmc.firmware_inventory() if c.slug == "bios")
        handle = bmc.install(bios, image_url=url)
        assert "/JID_" in handle.uri
        waiting = bmc.wait_for_task(handle, timeout=20)
        assert waiting.awaiting_reset and not waiting.terminal  # the Dell job is Scheduled
        bmc.set_power("reset", timeout=10)
        done = bmc.wait_for_task(handle, timeout=20, return_on_awaiting_reset=False)
        assert done.succeeded and done.state == "Completed"  # read from the JID_ job: the task is gone
        task = requests.get(
            f"{bmcsim.url(DELL)}{handle.uri}", auth=("root", "calvin"), verify=str(bmcsim.ca_bundle), timeout=5
        )
        assert task.status_code == 404
        assert bmc.wait_for_version(bios, "2.12.0", timeout=10).version == "2.12.0"
