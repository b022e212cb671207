"""The simulated BMC fleet (``flasher-sandbox bmc``) against plain ``requests`` and against sushy itself.

BMC 0 of the ``bmcsim`` fixture is Dell-like, BMC 1 Supermicro-like; installs take 1 s, a BMC reboot 1 s, a
power transition 0.5 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
import sushy
from sushy.taskmonitor import TaskMonitor

from flasher_sandbox.bmc.config import BmcSpec, ComponentSpec, FleetSpec
from flasher_sandbox.images import make_image
from flasher_sandbox.servers import BmcFleet, ImageServer
from tests.support.fixtures.bmcsim import BmcFleetPool

pytestmark = pytest.mark.integration

DELL, SMC = 0, 1
TERMINAL = {"Completed", "Exception", "Killed", "Cancelled", "Interrupted"}
REQUIRED_SLUGS = {"bmc", "bios", "cpld", "nic", "drive", "storage-controller", "psu"}


@pytest.fixture
def slow_bmcsim(bmcsim_pool: BmcFleetPool) -> BmcFleet:
    """Longer timings (install 3 s, reboot 2 s, power 2 s) for tests that watch states change, so that they see
    every state even on a loaded machine."""
    return bmcsim_pool.get(install_seconds=3.0, offline_seconds=2.0, power_seconds=2.0)


# ---- helpers ------------------------------------------------------------------------------------------------


def rf(fleet: BmcFleet, i: int) -> requests.Session:
    return fleet.session(i)


def poll_task(session: requests.Session, url: str, timeout: float = 20.0) -> list[tuple[int, dict[str, Any]]]:
    """GET ``url`` until the task is terminal; every (status, body) seen."""
    seen: list[tuple[int, dict[str, Any]]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = session.get(url, timeout=5)
        seen.append((response.status_code, response.json()))
        if seen[-1][1].get("TaskState") in TERMINAL:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"task {url} not terminal after {timeout} s; last: {seen[-1] if seen else None}")


def simple_update(fleet: BmcFleet, i: int, image_uri: str, **extra: Any) -> requests.Response:
    with rf(fleet, i) as s:
        body = {"ImageURI": image_uri, "TransferProtocol": "HTTP", **extra}
        return s.post(fleet.redfish(i, "/UpdateService/Actions/UpdateService.SimpleUpdate"), json=body, timeout=10)


def multipart(fleet: BmcFleet, i: int, data: bytes, parameters: dict[str, Any]) -> requests.Response:
    with rf(fleet, i) as s:
        path = s.get(fleet.redfish(i, "/UpdateService"), timeout=5).json()["MultipartHttpPushUri"]
        files: dict[str, tuple[str | None, str | bytes, str]] = {
            "UpdateParameters": (None, json.dumps(parameters), "application/json"),
            "UpdateFile": ("firmware.bin", data, "application/octet-stream"),
        }
        return s.post(fleet.url(i) + path, files=files, timeout=30)


def inventory_uri(fleet: BmcFleet, i: int, slug: str, nth: int = 0) -> str:
    return f"/redfish/v1/UpdateService/FirmwareInventory/{fleet.component_id(i, slug, nth)}"


def run_to_end(fleet: BmcFleet, i: int, response: requests.Response) -> list[tuple[int, dict[str, Any]]]:
    assert response.status_code == 202, response.text
    with rf(fleet, i) as s:
        return poll_task(s, fleet.url(i) + response.headers["Location"])


def reset_host(fleet: BmcFleet, i: int, reset_type: str) -> requests.Response:
    with rf(fleet, i) as s:
        system = s.get(fleet.redfish(i, "/Systems"), timeout=5).json()["Members"][0]["@odata.id"]
        return s.post(
            fleet.url(i) + system + "/Actions/ComputerSystem.Reset", json={"ResetType": reset_type}, timeout=5
        )


def refused(url: str, verify: bool | str = True) -> bool:
    try:
        requests.get(url, timeout=1, verify=verify)
    except requests.ConnectionError:
        return True
    return False


# ---- service root, authentication, sessions -----------------------------------------------------------------


@pytest.mark.parametrize("i", [DELL, SMC])
def test_service_root_is_public_and_the_rest_needs_credentials(bmcsim: BmcFleet, i: int) -> None:
    root = requests.get(bmcsim.redfish(i, "/"), verify=bmcsim.verify, timeout=5)
    assert root.status_code == 200
    assert root.json()["Links"]["Sessions"]["@odata.id"] == "/redfish/v1/SessionService/Sessions"
    anonymous = requests.get(bmcsim.redfish(i, "/Systems"), verify=bmcsim.verify, timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert anonymous.json()["error"]["@Message.ExtendedInfo"][0]["MessageId"].endswith("NoValidSession")
    assert (
        requests.get(bmcsim.redfish(i, "/Systems"), auth=("root", "wrong"), verify=bmcsim.verify, timeout=5).status_code
        == 401
    )
    assert (
        requests.get(
            bmcsim.redfish(i, "/Systems"), auth=("root", "calvin"), verify=bmcsim.verify, timeout=5
        ).status_code
        == 200
    )


def test_sessions_log_in_work_and_log_out(bmcsim: BmcFleet) -> None:
    url = bmcsim.redfish(DELL, "/SessionService/Sessions")
    bad = requests.post(url, json={"UserName": "root", "Password": "nope"}, verify=bmcsim.verify, timeout=5)
    assert bad.status_code == 401
    login = requests.post(url, json={"UserName": "root", "Password": "calvin"}, verify=bmcsim.verify, timeout=5)
    assert login.status_code == 201
    token, location = login.headers["X-Auth-Token"], login.headers["Location"]
    assert location.startswith("/redfish/v1/SessionService/Sessions/")
    headers = {"X-Auth-Token": token}
    assert (
        requests.get(bmcsim.redfish(DELL, "/Managers"), headers=headers, verify=bmcsim.verify, timeout=5).status_code
        == 200
    )
    assert [s["username"] for s in bmcsim.state(DELL)["sessions"]] == ["root"]
    assert (
        requests.delete(bmcsim.url(DELL) + location, headers=headers, verify=bmcsim.verify, timeout=5).status_code
        == 204
    )
    assert (
        requests.get(bmcsim.redfish(DELL, "/Managers"), headers=headers, verify=bmcsim.verify, timeout=5).status_code
        == 401
    )
    assert bmcsim.state(DELL)["sessions"] == []


@pytest.mark.parametrize("i", [DELL, SMC])
def test_sushy_reads_system_manager_and_firmware_inventory(bmcsim: BmcFleet, i: int) -> None:
    root = sushy.Sushy(
        bmcsim.redfish(i), username="root", password="calvin", verify=bmcsim.verify, server_side_retries=1
    )
    assert root._auth.get_session_key()  # sushy logged in with a session, not Basic
    system, manager = root.get_system(), root.get_manager()
    state = bmcsim.state(i)
    versions = {c["slug"]: c["version"] for c in state["components"]}
    assert system.identity == ("System.Embedded.1" if i == DELL else "1")
    assert manager.identity == ("iDRAC.Embedded.1" if i == DELL else "1")
    assert system.power_state == sushy.PowerState.ON
    assert system.bios_version == versions["bios"]
    assert manager.firmware_version == versions["bmc"]
    assert sushy.ResetType.FORCE_OFF in system.get_allowed_reset_system_values()
    assert sushy.BootSource.PXE in system.get_allowed_system_boot_source_values()
    members = root.get_update_service().firmware_inventory.get_members()
    assert len(members) == len(state["components"])
    for member, component in zip(
        sorted(members, key=lambda m: m.identity), sorted(state["components"], key=lambda c: c["id"]), strict=True
    ):
        assert (member.identity, member.version, member.manufacturer) == (
            component["id"],
            component["version"],
            component["manufacturer"],
        )
        assert member.updateable is True and member.software_id and member.related_item
        assert member.status.health == sushy.Health.OK


@pytest.mark.parametrize("i", [DELL, SMC])
def test_firmware_inventory_members_point_at_resources_with_serials(bmcsim: BmcFleet, i: int) -> None:
    components = {c["id"]: c for c in bmcsim.state(i)["components"]}
    assert {c["slug"] for c in components.values()} >= REQUIRED_SLUGS
    assert sum(c["slug"] == "nic" for c in components.values()) == 2
    assert sum(c["slug"] == "drive" for c in components.values()) == 2
    with rf(bmcsim, i) as s:
        listing = s.get(bmcsim.redfish(i, "/UpdateService/FirmwareInventory"), timeout=5).json()
        assert listing["Members@odata.count"] == len(components)
        for ref in listing["Members"]:
            member = s.get(bmcsim.url(i) + ref["@odata.id"], timeout=5).json()
            expected = components[member["Id"]]
            assert {
                "Id",
                "Name",
                "Version",
                "Updateable",
                "SoftwareId",
                "Manufacturer",
                "RelatedItem",
                "Status",
            } <= set(member)
            related = s.get(bmcsim.url(i) + member["RelatedItem"][0]["@odata.id"], timeout=5)
            assert related.status_code == 200
            if expected["slug"] in ("nic", "drive", "psu", "storage-controller"):
                doc = related.json()
                assert (doc["Manufacturer"], doc["Model"], doc["SerialNumber"]) == (
                    expected["manufacturer"],
                    expected["model"],
                    expected["serial"],
                )
        chassis = s.get(bmcsim.redfish(i, "/Chassis"), timeout=5).json()["Members"][0]["@odata.id"]
        links = s.get(bmcsim.url(i) + chassis, timeout=5).json()
        assert {"NetworkAdapters", "Drives", "PowerSubsystem"} <= set(links)


def test_update_service_offers_each_shapes_install_methods(bmcsim: BmcFleet) -> None:
    with rf(bmcsim, DELL) as s:
        dell = s.get(bmcsim.redfish(DELL, "/UpdateService"), timeout=5).json()
    action = dell["Actions"]["#UpdateService.SimpleUpdate"]
    assert action["target"] == "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"
    assert set(action["TransferProtocol@Redfish.AllowableValues"]) == {"HTTP", "HTTPS"}
    assert dell["MultipartHttpPushUri"] == "/redfish/v1/UpdateService/MultipartUpload"
    assert dell["HttpPushUri"] == "/redfish/v1/UpdateService/FirmwareInventory"
    with rf(bmcsim, SMC) as s:
        smc = s.get(bmcsim.redfish(SMC, "/UpdateService"), timeout=5).json()
        assert "#UpdateService.SimpleUpdate" not in smc["Actions"] and "HttpPushUri" not in smc
        assert smc["MultipartHttpPushUri"] == "/redfish/v1/UpdateService/upload"
        missing = s.post(bmcsim.redfish(SMC, "/UpdateService/Actions/UpdateService.SimpleUpdate"), json={}, timeout=5)
        assert missing.status_code == 404


# ---- installs -----------------------------------------------------------------------------------------------


def test_simple_update_with_targets_changes_only_the_target_and_only_at_completion(
    slow_bmcsim: BmcFleet, firmware_server: ImageServer
) -> None:
    bmcsim = slow_bmcsim
    url = firmware_server.image("nic", "broadcom", "23.10.1", ["bcm5720"])
    target = inventory_uri(bmcsim, DELL, "nic", 1)
    before = _versions_by_device(bmcsim)
    response = simple_update(bmcsim, DELL, url, Targets=[target])
    assert response.status_code == 202 and response.content == b""  # iDRAC: Location only
    assert response.headers["Location"].startswith("/redfish/v1/TaskService/Tasks/JID_")
    with rf(bmcsim, DELL) as s:
        seen: list[tuple[int, dict[str, Any]]] = []
        versions_while_running = []
        while not seen or seen[-1][1]["TaskState"] not in TERMINAL:
            # The version is read before the task: when the task is still not Completed after that read, the
            # version read must be the old one (reading it after the task would race with the completion).
            version = bmcsim.version(DELL, "nic", 1)
            r = s.get(bmcsim.url(DELL) + response.headers["Location"], timeout=5)
            seen.append((r.status_code, r.json()))
            if r.json()["TaskState"] != "Completed":
                versions_while_running.append(version)
            time.sleep(0.05)
    states = [doc["TaskState"] for _, doc in seen]
    assert states[0] == "New" and "Running" in states and states[-1] == "Completed"
    assert all(code == 200 for code, _ in seen)  # Dell-like: 200 even while Running (the sushy pitfall)
    percents = [doc["PercentComplete"] for _, doc in seen]
    assert percents == sorted(percents) and len(set(percents)) > 3 and percents[-1] == 100
    assert seen[-1][1]["TaskStatus"] == "OK"
    assert seen[-1][1]["Oem"]["Dell"]["JobState"] == "Completed"
    assert set(versions_while_running) == {before[("nic", 1)]}
    after = _versions_by_device(bmcsim)
    changed = {k for k in after if after[k] != before[k]}
    assert changed == {("nic", 1)} and after[("nic", 1)] == "23.10.1"
    # iDRAC's Id carries the version: the target's Id changed with it
    assert bmcsim.component_id(DELL, "nic", 1) == "Installed-104483-23.10.1__NIC.Slot.2" != target.rsplit("/", 1)[1]
    (install,) = bmcsim.audit(DELL)["installs"]
    assert install["method"] == "SimpleUpdate" and install["outcome"] == "success"
    assert (install["component"], install["from_version"], install["to_version"]) == ("nic", "22.31.6", "23.10.1")
    assert install["start"] < install["end"]


def _versions_by_device(bmcsim: BmcFleet) -> dict[tuple[str, int], str]:
    """The Dell-like BMC's versions by (type, nth of the type): FirmwareInventory Ids change with the version."""
    return {
        (slug, n): bmcsim.version(DELL, slug, n)
        for slug, count in (("nic", 2), ("drive", 2), ("bios", 1), ("bmc", 1))
        for n in range(count)
    }


def test_simple_update_without_targets_picks_components_from_the_image_header(
    bmcsim: BmcFleet, firmware_server: ImageServer
) -> None:
    run_to_end(
        bmcsim, DELL, simple_update(bmcsim, DELL, firmware_server.image("nic", "broadcom", "24.0.0", ["bcm57414"]))
    )
    assert (bmcsim.version(DELL, "nic", 0), bmcsim.version(DELL, "nic", 1)) == ("24.0.0", "22.31.6")
    drives = [bmcsim.component_id(DELL, "drive", n) for n in (0, 1)]  # the Ids before: they carry the version
    run_to_end(bmcsim, DELL, simple_update(bmcsim, DELL, firmware_server.image("drive", "intel", "XCV1DL99", [])))
    assert bmcsim.version(DELL, "drive", 0) == bmcsim.version(DELL, "drive", 1) == "XCV1DL99"
    assert bmcsim.audit(DELL)["installs"][-1]["targets"] == drives
    seen = run_to_end(bmcsim, DELL, simple_update(bmcsim, DELL, firmware_server.image("psu", "acme", "9.9", [])))
    final = seen[-1][1]
    assert final["TaskState"] == "Exception" and final["TaskStatus"] == "Critical"
    assert final["Messages"][-1]["MessageId"] == "Update.1.0.NoTargetsDetermined"


def test_sushy_task_monitor_returns_early_on_dell_and_waits_on_supermicro(
    bmcsim: BmcFleet, firmware_server: ImageServer
) -> None:
    bmcsim.set_faults(DELL, {"task_hang": True})  # the task stays Running for as long as this test looks
    dell = sushy.Sushy(
        bmcsim.redfish(DELL), username="root", password="calvin", verify=bmcsim.verify, server_side_retries=1
    )
    monitor = dell.get_update_service().simple_update(firmware_server.image("cpld", "dell", "1.0.9", ["r6515"]))
    monitor.wait(30)
    assert not monitor.is_processing  # the pitfall: sushy thinks it is done...
    assert monitor.get_task().task_state in (sushy.TaskState.NEW, sushy.TaskState.RUNNING)  # ...while it runs
    with rf(bmcsim, DELL) as s:
        assert s.delete(bmcsim.url(DELL) + monitor.task_monitor_uri, timeout=5).status_code == 204

    smc = sushy.Sushy(
        bmcsim.redfish(SMC), username="root", password="calvin", verify=bmcsim.verify, server_side_retries=1
    )
    connector = smc._conn
    files = {
        "UpdateParameters": (None, json.dumps({"Targets": []}), "application/json"),
        "UpdateFile": (
            "cpld.bin",
            make_image("cpld", "supermicro", "f1.03.00", ["x12stw"]),
            "application/octet-stream",
        ),
    }
    path = smc.get_update_service().json["MultipartHttpPushUri"]
    response = connector._session.post(bmcsim.url(SMC) + path, files=files, verify=bmcsim.verify, timeout=30)
    assert response.status_code == 202
    assert response.headers["Location"].startswith("/redfish/v1/TaskMonitor/")
    monitor = TaskMonitor.from_response(connector, response, path)
    assert monitor.is_processing
    monitor.wait(30)
    assert monitor.get_task().task_state == sushy.TaskState.COMPLETED
    assert bmcsim.version(SMC, "cpld") == "f1.03.00"


def test_multipart_push_on_supermicro_answers_202_until_done(bmcsim: BmcFleet) -> None:
    response = multipart(
        bmcsim,
        SMC,
        make_image("bios", "supermicro", "1.5", ["x12stw"]),
        {"Targets": [inventory_uri(bmcsim, SMC, "bios")], "@Redfish.OperationApplyTime": "Immediate"},
    )
    assert response.status_code == 202
    assert response.json()["TaskState"] == "New"
    task_uri = response.json()["@odata.id"]
    with rf(bmcsim, SMC) as s:
        seen = poll_task(s, bmcsim.url(SMC) + response.headers["Location"])
        assert {code for code, doc in seen if doc["TaskState"] != "Completed"} == {202}
        assert seen[-1][0] == 200 and seen[-1][1]["TaskStatus"] == "OK"
        assert s.get(bmcsim.url(SMC) + task_uri, timeout=5).status_code == 200
    assert bmcsim.version(SMC, "bios") == "1.5"
    assert bmcsim.audit(SMC)["installs"][-1]["method"] == "MultipartHttpPush"


def test_http_push_on_dell_uses_the_update_services_targets(bmcsim: BmcFleet) -> None:
    target = inventory_uri(bmcsim, DELL, "storage-controller")
    with rf(bmcsim, DELL) as s:
        patch = s.patch(bmcsim.redfish(DELL, "/UpdateService"), json={"HttpPushUriTargets": [target]}, timeout=5)
        assert patch.status_code == 200
        assert s.get(bmcsim.redfish(DELL, "/UpdateService"), timeout=5).json()["HttpPushUriTargets"] == [target]
        image = make_image("storage-controller", "dell", "51.20.0-5000", ["perc-h745"])
        response = s.post(
            bmcsim.redfish(DELL, "/UpdateService/FirmwareInventory"),
            data=image,
            headers={"Content-Type": "application/octet-stream"},
            timeout=30,
        )
    run_to_end(bmcsim, DELL, response)
    assert bmcsim.version(DELL, "storage-controller") == "51.20.0-5000"
    assert bmcsim.audit(DELL)["installs"][-1]["method"] == "HttpPush"


@pytest.mark.parametrize(
    ("image", "target_slug", "reason"),
    [
        (b"MZ\x90\x00 not a sandbox image" * 10, None, "not a sandbox firmware image"),
        (make_image("bios", "hpe", "3.0", []), None, "NoTargetsDetermined"),
        (make_image("bios", "supermicro", "3.0", []), "cpld", "component type 'bios'"),
        (make_image("bios", "supermicro", "3.0", ["x13dei"]), "bios", "models"),
    ],
)
def test_pushed_images_that_do_not_fit_are_refused_with_400(
    bmcsim: BmcFleet, image: bytes, target_slug: str | None, reason: str
) -> None:
    targets = [inventory_uri(bmcsim, SMC, target_slug)] if target_slug else []
    response = multipart(bmcsim, SMC, image, {"Targets": targets})
    assert response.status_code == 400
    error = response.json()["error"]
    assert reason in error["code"] + error["message"]
    (install,) = bmcsim.audit(SMC)["installs"]
    assert install["outcome"] == "rejected" and install["task"] is None
    assert bmcsim.version(SMC, "bios") == "1.4a"


def test_simple_update_checks_the_image_in_the_task(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    bad = run_to_end(bmcsim, DELL, simple_update(bmcsim, DELL, firmware_server.add("junk.bin", b"garbage\n" * 100)))
    assert bad[-1][1]["TaskState"] == "Exception"
    assert bad[-1][1]["Messages"][-1]["MessageId"] == "Update.1.0.VerificationFailed"
    missing = run_to_end(bmcsim, DELL, simple_update(bmcsim, DELL, firmware_server.url("absent.bin")))
    assert missing[-1][1]["Messages"][-1]["MessageId"] == "Update.1.0.TransferFailed"
    assert "404" in missing[-1][1]["Messages"][-1]["Message"]
    wrong = run_to_end(
        bmcsim,
        DELL,
        simple_update(
            bmcsim,
            DELL,
            firmware_server.image("bios", "dell", "2.20", ["r6515"]),
            Targets=[inventory_uri(bmcsim, DELL, "cpld")],
        ),
    )
    assert "component type 'bios'" in wrong[-1][1]["Messages"][-1]["Message"]
    assert [i["outcome"] for i in bmcsim.audit(DELL)["installs"]] == ["exception"] * 3


def test_simple_update_validates_its_request(bmcsim: BmcFleet) -> None:
    assert simple_update(bmcsim, DELL, "ftp://example/x.bin").status_code == 400
    assert simple_update(bmcsim, DELL, "http://127.0.0.1:1/x.bin", TransferProtocol="TFTP").status_code == 400
    unknown = simple_update(
        bmcsim, DELL, "http://127.0.0.1:1/x.bin", Targets=["/redfish/v1/UpdateService/FirmwareInventory/nope"]
    )
    assert unknown.status_code == 400 and "ResourceMissingAtURI" in unknown.json()["error"]["code"]
    with rf(bmcsim, DELL) as s:
        no_uri = s.post(bmcsim.redfish(DELL, "/UpdateService/Actions/UpdateService.SimpleUpdate"), json={}, timeout=5)
        assert no_uri.status_code == 400 and "ActionParameterMissing" in no_uri.json()["error"]["code"]
    assert bmcsim.audit(DELL)["installs"] == []


def test_dell_bios_install_waits_for_a_host_reset(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    response = simple_update(bmcsim, DELL, firmware_server.image("bios", "dell", "2.12.0", ["r6515"]))
    assert response.status_code == 202
    task_url = bmcsim.url(DELL) + response.headers["Location"]
    bmcsim.wait_for(DELL, lambda st: st["tasks"][-1]["state"] == "Pending", 10, "BIOS task pending")
    time.sleep(bmcsim.install_seconds * 1.5)  # longer than a whole install: still waiting
    with rf(bmcsim, DELL) as s:
        task = s.get(task_url, timeout=5).json()
        assert task["TaskState"] == "Pending"
        assert task["Oem"]["Dell"]["JobState"] == "Scheduled"
        assert task["Oem"]["Dell"]["Message"] == "Task successfully scheduled."
        assert bmcsim.version(DELL, "bios") == "2.11.4"
        assert reset_host(bmcsim, DELL, "ForceRestart").status_code == 204
        seen = poll_task(s, task_url)
    assert "Running" in [doc["TaskState"] for _, doc in seen] and seen[-1][1]["TaskState"] == "Completed"
    assert bmcsim.version(DELL, "bios") == "2.12.0"
    install = bmcsim.audit(DELL)["installs"][-1]
    restart = bmcsim.audit(DELL)["power"][-1]
    assert install["apply_time"] == "OnReset" and restart["action"] == "ForceRestart"
    assert restart["end"] < install["end"]


def test_on_reset_install_starts_when_the_host_powers_on(bmcsim: BmcFleet) -> None:
    assert reset_host(bmcsim, SMC, "ForceOff").json()["@Message.ExtendedInfo"][0]["MessageId"].endswith("Success")
    bmcsim.wait_for(SMC, lambda st: st["power"]["state"] == "Off", 10)
    response = multipart(
        bmcsim,
        SMC,
        make_image("nic", "intel", "4.40", ["x710"]),
        {"Targets": [], "@Redfish.OperationApplyTime": "OnReset"},
    )
    bmcsim.wait_for(SMC, lambda st: st["tasks"][-1]["state"] == "Pending", 10)
    reset_host(bmcsim, SMC, "On")
    assert run_to_end(bmcsim, SMC, response)[-1][1]["TaskState"] == "Completed"
    assert bmcsim.version(SMC, "nic", 1) == "4.40"


def test_dell_bios_install_with_immediate_apply_time_does_not_wait(bmcsim: BmcFleet) -> None:
    response = multipart(
        bmcsim, DELL, make_image("bios", "dell", "2.13.1", ["r6515"]), {"@Redfish.OperationApplyTime": "Immediate"}
    )
    assert run_to_end(bmcsim, DELL, response)[-1][1]["TaskState"] == "Completed"
    assert bmcsim.version(DELL, "bios") == "2.13.1"


@pytest.mark.parametrize("i", [DELL, SMC])
def test_bmc_self_update_takes_the_bmc_offline_then_reports_the_new_version(
    slow_bmcsim: BmcFleet, firmware_server: ImageServer, i: int
) -> None:
    bmcsim = slow_bmcsim
    vendor = "dell" if i == DELL else "supermicro"
    login = requests.post(
        bmcsim.redfish(i, "/SessionService/Sessions"),
        json={"UserName": "root", "Password": "calvin"},
        verify=bmcsim.verify,
        timeout=5,
    )
    token = {"X-Auth-Token": login.headers["X-Auth-Token"]}
    image = make_image("bmc", vendor, "9.99.99", [])
    if i == DELL:
        response = simple_update(bmcsim, i, firmware_server.add("bmc.bin", image))
    else:
        response = multipart(bmcsim, i, image, {"Targets": [inventory_uri(bmcsim, i, "bmc")]})
    assert response.status_code == 202
    start = time.monotonic()
    while not refused(bmcsim.redfish(i), bmcsim.verify):
        assert time.monotonic() - start < 20, "the BMC never went offline"
        time.sleep(0.02)
    assert not bmcsim.state(i)["online"] and bmcsim.version(i, "bmc") != "9.99.99"
    bmcsim.wait_online(i)
    assert (
        requests.get(bmcsim.redfish(i, "/Managers"), headers=token, verify=bmcsim.verify, timeout=5).status_code == 401
    )
    with rf(bmcsim, i) as s:
        final = s.get(bmcsim.url(i) + response.headers["Location"], timeout=5)
        assert final.status_code == 200 and final.json()["TaskState"] == "Completed"
        manager = s.get(bmcsim.redfish(i, "/Managers"), timeout=5).json()["Members"][0]["@odata.id"]
        assert s.get(bmcsim.url(i) + manager, timeout=5).json()["FirmwareVersion"] == "9.99.99"
    (reset,) = bmcsim.audit(i)["bmc_resets"]
    assert reset["reason"] == "firmware update" and reset["end"] is not None


def test_manager_reset_reboots_the_bmc_and_sushy_logs_in_again(bmcsim: BmcFleet) -> None:
    root = sushy.Sushy(
        bmcsim.redfish(SMC), username="root", password="calvin", verify=bmcsim.verify, server_side_retries=1
    )
    old_token = root._auth.get_session_key()
    version = root.get_manager().firmware_version
    root.get_manager().reset_manager(sushy.ResetType.GRACEFUL_RESTART)
    bmcsim.wait_for(SMC, lambda st: not st["online"], 10, "offline")
    assert refused(bmcsim.redfish(SMC), bmcsim.verify)
    bmcsim.wait_online(SMC)
    assert (
        requests.get(
            bmcsim.redfish(SMC, "/Systems"), headers={"X-Auth-Token": old_token}, verify=bmcsim.verify, timeout=5
        ).status_code
        == 401
    )
    assert root.get_manager().firmware_version == version  # sushy got a 401 and opened a new session
    assert root._auth.get_session_key() != old_token
    (reset,) = bmcsim.audit(SMC)["bmc_resets"]
    assert reset["reason"] == "Manager.Reset"
    with rf(bmcsim, DELL) as s:
        bad = s.post(
            bmcsim.redfish(DELL, "/Managers/iDRAC.Embedded.1/Actions/Manager.Reset"),
            json={"ResetType": "ForceRestart"},
            timeout=5,
        )
        assert bad.status_code == 400  # iDRAC offers GracefulRestart only


# ---- power and boot -----------------------------------------------------------------------------------------


def test_power_transitions_take_time_and_are_audited(slow_bmcsim: BmcFleet) -> None:
    bmcsim = slow_bmcsim
    root = sushy.Sushy(
        bmcsim.redfish(DELL), username="root", password="calvin", verify=bmcsim.verify, server_side_retries=1
    )
    system = root.get_system()
    system.reset_system(sushy.ResetType.FORCE_OFF)
    system.refresh()
    assert system.power_state == sushy.PowerState.ON  # still the old state
    busy = reset_host(bmcsim, DELL, "On")
    assert busy.status_code == 409 and "ResourceInUse" in busy.json()["error"]["code"]
    bmcsim.wait_for(DELL, lambda st: st["power"]["state"] == "Off", 10)
    system.refresh()
    assert system.power_state == sushy.PowerState.OFF
    again = reset_host(bmcsim, DELL, "ForceOff")
    assert again.status_code == 409 and again.json()["error"]["message"] == "Server is already powered OFF."
    assert reset_host(bmcsim, DELL, "ForceRestart").status_code == 409  # standby
    system.reset_system(sushy.ResetType.ON)
    bmcsim.wait_for(DELL, lambda st: st["power"]["state"] == "On", 10)
    (off, on) = bmcsim.audit(DELL)["power"]
    assert (off["action"], off["from_state"], off["to_state"]) == ("ForceOff", "On", "Off")
    assert off["start"] < off["end"] <= on["start"] < on["end"]
    assert bmcsim.state(DELL)["power"]["boots"] == 1


def test_power_cycle_reads_off_then_on_and_supermicro_ignores_repeated_requests(slow_bmcsim: BmcFleet) -> None:
    bmcsim = slow_bmcsim
    assert reset_host(bmcsim, SMC, "On").status_code == 200  # already on: a no-op on Supermicro-like
    assert reset_host(bmcsim, SMC, "PowerCycle").status_code == 200
    states = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        state = bmcsim.state(SMC)["power"]
        states.append(state["state"])
        if state["boots"] == 1:
            break
        time.sleep(0.02)
    assert "Off" in states and states[-1] == "On"
    assert [p["action"] for p in bmcsim.audit(SMC)["power"]] == ["On", "PowerCycle"]


def test_boot_override_target_once_continuous_and_mode(bmcsim: BmcFleet) -> None:
    root = sushy.Sushy(
        bmcsim.redfish(DELL), username="root", password="calvin", verify=bmcsim.verify, server_side_retries=1
    )
    system = root.get_system()
    system.set_system_boot_options(
        target=sushy.BootSource.PXE,
        enabled=sushy.BootSourceOverrideEnabled.ONCE,
        mode=sushy.BootSourceOverrideMode.UEFI,
    )
    system.refresh()
    assert (system.boot.target, system.boot.enabled, system.boot.mode) == (
        sushy.BootSource.PXE,
        sushy.BootSourceOverrideEnabled.ONCE,
        sushy.BootSourceOverrideMode.UEFI,
    )
    reset_host(bmcsim, DELL, "GracefulRestart")
    after = bmcsim.wait_for(DELL, lambda st: st["power"]["boots"] == 1, 10)
    assert after["boot"] == {"target": "None", "enabled": "Disabled", "mode": "UEFI"}  # a Once override is used up
    system.set_system_boot_options(
        target=sushy.BootSource.HDD,
        enabled=sushy.BootSourceOverrideEnabled.CONTINUOUS,
        mode=sushy.BootSourceOverrideMode.LEGACY,
    )
    reset_host(bmcsim, DELL, "ForceRestart")
    after = bmcsim.wait_for(DELL, lambda st: st["power"]["boots"] == 2, 10)
    assert after["boot"] == {"target": "Hdd", "enabled": "Continuous", "mode": "Legacy"}
    with rf(bmcsim, DELL) as s:
        system_uri = bmcsim.redfish(DELL, "/Systems/System.Embedded.1")
        bad = s.patch(system_uri, json={"Boot": {"BootSourceOverrideTarget": "Floppy2"}}, timeout=5)
        assert bad.status_code == 400 and "PropertyValueNotInList" in bad.json()["error"]["code"]
        stale = s.patch(
            system_uri, json={"Boot": {"BootSourceOverrideTarget": "Cd"}}, headers={"If-Match": 'W/"0"'}, timeout=5
        )
        assert stale.status_code == 412
        assert s.patch(system_uri, json={"PowerState": "Off"}, timeout=5).status_code == 400


@pytest.mark.parametrize(("i", "status"), [(DELL, 204), (SMC, 200)])
def test_power_cycle_of_a_host_that_is_off_powers_it_on(bmcsim: BmcFleet, i: int, status: int) -> None:
    # DSP8010 Resource.ResetType PowerCycle: "If currently in the power off state, the resource will transition
    # to a power on state." A restart of a host that is off is refused instead (409 ResourceInStandby).
    assert reset_host(bmcsim, i, "ForceOff").status_code in (200, 204)
    bmcsim.wait_for(i, lambda st: st["power"]["state"] == "Off" and not st["power"]["in_transition"], 10)
    refused = reset_host(bmcsim, i, "ForceRestart")
    assert refused.status_code == 409 and refused.json()["error"]["code"].endswith("ResourceInStandby")
    assert reset_host(bmcsim, i, "PowerCycle").status_code == status
    after = bmcsim.wait_for(i, lambda st: st["power"]["state"] == "On" and not st["power"]["in_transition"], 10)
    assert after["power"]["boots"] == 1
    cycle = bmcsim.audit(i)["power"][-1]
    assert (cycle["action"], cycle["from_state"], cycle["to_state"], cycle["outcome"]) == (
        "PowerCycle",
        "Off",
        "On",
        "done",
    )


def _patch_boot(fleet: BmcFleet, i: int, boot: dict[str, Any]) -> requests.Response:
    with rf(fleet, i) as s:
        system = s.get(fleet.redfish(i, "/Systems"), timeout=5).json()["Members"][0]["@odata.id"]
        return s.patch(fleet.url(i) + system, json={"Boot": boot}, timeout=5)


def _boot(fleet: BmcFleet, i: int) -> dict[str, Any]:
    with rf(fleet, i) as s:
        system = s.get(fleet.redfish(i, "/Systems"), timeout=5).json()["Members"][0]["@odata.id"]
        return dict(s.get(fleet.url(i) + system, timeout=5).json()["Boot"])


def _refused(answer: requests.Response, message_id: str, *named: str) -> None:
    assert answer.status_code == 400, answer.text
    info = answer.json()["error"]["@Message.ExtendedInfo"][0]
    assert info["MessageId"].endswith(f".{message_id}"), info
    for text in named:
        assert text in info["Message"], info


def test_boot_override_uefi_target_only_with_the_uefi_target(bmcsim: BmcFleet) -> None:
    boot = _boot(bmcsim, DELL)
    paths = boot["UefiTargetBootSourceOverride@Redfish.AllowableValues"]
    assert boot["UefiTargetBootSourceOverride"] is None and len(paths) == 2
    assert boot["BootSourceOverrideEnabled@Redfish.AllowableValues"] == ["Disabled", "Once", "Continuous"]
    assert "UefiTarget" in boot["BootSourceOverrideTarget@Redfish.AllowableValues"]
    assert "BootNext" not in boot  # the Dell-like shape has no UefiBootNext target

    # The device path alone, with another target, or a target UefiTarget without one: refused, naming both.
    _refused(_patch_boot(bmcsim, DELL, {"UefiTargetBootSourceOverride": paths[0]}), "PropertyValueConflict", "'None'")
    conflict = {"BootSourceOverrideTarget": "Pxe", "UefiTargetBootSourceOverride": paths[0]}
    _refused(_patch_boot(bmcsim, DELL, conflict), "PropertyValueConflict", "UefiTargetBootSourceOverride", "'Pxe'")
    missing = _patch_boot(bmcsim, DELL, {"BootSourceOverrideTarget": "UefiTarget"})
    _refused(missing, "PropertyMissing", "UefiTargetBootSourceOverride", paths[0])
    unknown = {"BootSourceOverrideTarget": "UefiTarget", "UefiTargetBootSourceOverride": "PciRoot(0x9)"}
    _refused(_patch_boot(bmcsim, DELL, unknown), "PropertyValueNotInList", "'PciRoot(0x9)'")
    _refused(_patch_boot(bmcsim, DELL, {"BootNext": "Boot0001"}), "PropertyUnknown", "BootNext")
    assert bmcsim.state(DELL)["boot"] == {"target": "None", "enabled": "Disabled", "mode": "UEFI"}

    good = {"BootSourceOverrideTarget": "UefiTarget", "UefiTargetBootSourceOverride": paths[1]}
    assert _patch_boot(bmcsim, DELL, good).status_code == 200
    boot = _boot(bmcsim, DELL)
    assert (boot["BootSourceOverrideTarget"], boot["UefiTargetBootSourceOverride"]) == ("UefiTarget", paths[1])
    assert boot["BootSourceOverrideEnabled"] == "Once"
    # With the target already UefiTarget, the device path may change alone.
    assert _patch_boot(bmcsim, DELL, {"UefiTargetBootSourceOverride": paths[0]}).status_code == 200
    assert bmcsim.state(DELL)["boot"]["uefi_target"] == paths[0]


def test_boot_override_boot_next_only_with_uefi_boot_next_and_once(bmcsim: BmcFleet) -> None:
    boot = _boot(bmcsim, SMC)
    order = boot["BootOrder"]
    assert boot["BootNext@Redfish.AllowableValues"] == order and boot["BootNext"] is None
    assert "UefiTargetBootSourceOverride" not in boot

    _refused(_patch_boot(bmcsim, SMC, {"BootNext": order[1]}), "PropertyValueConflict", "BootNext", "UefiBootNext")
    _refused(_patch_boot(bmcsim, SMC, {"BootSourceOverrideTarget": "UefiBootNext"}), "PropertyMissing", "BootNext")
    _refused(
        _patch_boot(bmcsim, SMC, {"BootSourceOverrideTarget": "UefiBootNext", "BootNext": "Boot00FF"}),
        "PropertyValueNotInList",
        "Boot00FF",
    )
    continuous = {
        "BootSourceOverrideTarget": "UefiBootNext",
        "BootNext": order[1],
        "BootSourceOverrideEnabled": "Continuous",
    }
    _refused(_patch_boot(bmcsim, SMC, continuous), "PropertyValueConflict", "Continuous")
    _refused(
        _patch_boot(bmcsim, SMC, {"UefiTargetBootSourceOverride": "x"}),
        "PropertyUnknown",
        "UefiTargetBootSourceOverride",
    )

    assert (
        _patch_boot(bmcsim, SMC, {"BootSourceOverrideTarget": "UefiBootNext", "BootNext": order[2]}).status_code == 200
    )
    assert bmcsim.state(SMC)["boot"] == {
        "target": "UefiBootNext",
        "enabled": "Once",
        "mode": "UEFI",
        "boot_next": order[2],
    }
    reset_host(bmcsim, SMC, "ForceRestart")
    after = bmcsim.wait_for(SMC, lambda st: st["power"]["boots"] == 1, 10)
    assert after["boot"] == {"target": "None", "enabled": "Disabled", "mode": "UEFI"}  # BootNext is used up with it


# ---- faults -------------------------------------------------------------------------------------------------


def test_task_exception_scoped_to_a_component_is_one_shot(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    bmcsim.set_faults(DELL, {"task_exception": {"component": "cpld"}})
    nic = run_to_end(
        bmcsim, DELL, simple_update(bmcsim, DELL, firmware_server.image("nic", "broadcom", "25.0", ["bcm5720"]))
    )
    assert nic[-1][1]["TaskState"] == "Completed"  # another component: unaffected
    cpld_url = firmware_server.image("cpld", "dell", "1.1.0", ["r6515"])
    failed = run_to_end(bmcsim, DELL, simple_update(bmcsim, DELL, cpld_url))
    assert (failed[-1][1]["TaskState"], failed[-1][1]["TaskStatus"]) == ("Exception", "Critical")
    assert failed[-1][1]["Messages"][-1]["MessageId"] == "Update.1.0.ApplyFailed"
    assert failed[-1][1]["Oem"]["Dell"]["JobState"] == "Failed"
    assert bmcsim.version(DELL, "cpld") == "1.0.6" and bmcsim.faults(DELL) == {}
    assert run_to_end(bmcsim, DELL, simple_update(bmcsim, DELL, cpld_url))[-1][1]["TaskState"] == "Completed"
    assert [i["outcome"] for i in bmcsim.audit(DELL)["installs"]] == ["success", "exception", "success"]


def test_task_hang_never_ends_until_killed(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(SMC, {"task_hang": True})
    response = multipart(bmcsim, SMC, make_image("psu", "supermicro", "1.4", []), {"Targets": []})
    assert response.status_code == 202
    time.sleep(bmcsim.install_seconds * 2)
    with rf(bmcsim, SMC) as s:
        monitor = bmcsim.url(SMC) + response.headers["Location"]
        hung = s.get(monitor, timeout=5)
        assert hung.status_code == 202 and hung.json()["TaskState"] == "Running"
        assert s.delete(monitor, timeout=5).status_code == 204
        assert s.get(monitor, timeout=5).json()["TaskState"] == "Killed"
    assert bmcsim.version(SMC, "psu") == "1.3"
    assert bmcsim.audit(SMC)["installs"][-1]["outcome"] == "killed"


def test_a_hung_task_is_interrupted_by_a_bmc_reset(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(DELL, {"task_hang": {"component": "psu"}})
    response = multipart(bmcsim, DELL, make_image("psu", "dell", "00.2A.00", []), {})
    bmcsim.wait_for(DELL, lambda st: st["tasks"][-1]["state"] == "Running", 10)
    with rf(bmcsim, DELL) as s:
        s.post(
            bmcsim.redfish(DELL, "/Managers/iDRAC.Embedded.1/Actions/Manager.Reset"),
            json={"ResetType": "GracefulRestart"},
            timeout=5,
        )
    bmcsim.wait_for(DELL, lambda st: not st["online"], 10)
    bmcsim.wait_online(DELL)
    with rf(bmcsim, DELL) as s:
        assert s.get(bmcsim.url(DELL) + response.headers["Location"], timeout=5).json()["TaskState"] == "Interrupted"
    assert bmcsim.audit(DELL)["installs"][-1]["outcome"] == "interrupted"


def test_completed_with_critical_health_keeps_the_old_version(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(SMC, {"completed_critical": True})
    final = run_to_end(bmcsim, SMC, multipart(bmcsim, SMC, make_image("cpld", "supermicro", "f2", []), {"Targets": []}))
    assert (final[-1][1]["TaskState"], final[-1][1]["TaskStatus"]) == ("Completed", "Critical")
    assert bmcsim.version(SMC, "cpld") == "f1.02.1f"
    assert bmcsim.audit(SMC)["installs"][-1]["outcome"] == "critical"


def test_version_unchanged_after_a_task_that_completed_ok(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(SMC, {"version_unchanged": {"component": "bios", "sticky": True}})
    for _ in range(2):
        final = run_to_end(
            bmcsim, SMC, multipart(bmcsim, SMC, make_image("bios", "supermicro", "2.0", []), {"Targets": []})
        )
        assert (final[-1][1]["TaskState"], final[-1][1]["TaskStatus"]) == ("Completed", "OK")
    assert bmcsim.version(SMC, "bios") == "1.4a"
    assert bmcsim.faults(SMC)["version_unchanged"]["sticky"] is True
    assert [i["outcome"] for i in bmcsim.audit(SMC)["installs"]] == ["version-unchanged"] * 2


def test_image_rejected_fault_on_push_and_on_pull(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    bmcsim.set_faults(DELL, {"image_rejected": {"count": 2}})
    pushed = multipart(bmcsim, DELL, make_image("cpld", "dell", "1.2", []), {})
    assert pushed.status_code == 400 and "VerificationFailed" in pushed.json()["error"]["code"]
    pulled = run_to_end(bmcsim, DELL, simple_update(bmcsim, DELL, firmware_server.image("cpld", "dell", "1.2", [])))
    assert pulled[-1][1]["TaskState"] == "Exception"
    assert [i["outcome"] for i in bmcsim.audit(DELL)["installs"]] == ["rejected", "exception"]
    assert bmcsim.faults(DELL) == {}


def test_http_5xx_burst_then_normal_answers(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(DELL, {"http_5xx_burst": 3})
    with rf(bmcsim, DELL) as s:
        codes = [s.get(bmcsim.redfish(DELL, "/Systems"), timeout=5).status_code for _ in range(5)]
    assert codes == [500, 500, 500, 200, 200]
    bmcsim.set_faults(DELL, {"http_5xx_burst": {"count": 1, "status": 503}})
    assert requests.get(bmcsim.redfish(DELL), verify=bmcsim.verify, timeout=5).status_code == 503
    root = sushy.Sushy(
        bmcsim.redfish(SMC),
        username="root",
        password="calvin",
        verify=bmcsim.verify,
        server_side_retries=3,
        server_side_retries_delay=0,
    )
    bmcsim.set_faults(SMC, {"http_5xx_burst": 2})
    assert root.get_system().identity == "1"  # sushy retries GETs on 5xx


def test_5xx_scoped_to_a_component_only_during_its_install(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(SMC, {"http_5xx_burst": {"component": "bmc", "sticky": True}, "task_hang": {"sticky": True}})
    with rf(bmcsim, SMC) as s:
        assert s.get(bmcsim.redfish(SMC, "/Systems"), timeout=5).status_code == 200
        nic = multipart(bmcsim, SMC, make_image("nic", "intel", "5.0", ["x710"]), {"Targets": []})
        assert s.get(bmcsim.url(SMC) + nic.headers["Location"], timeout=5).status_code == 202  # a NIC install: no 5xx
        refused_bmc = multipart(bmcsim, SMC, make_image("bmc", "supermicro", "02.00.00", []), {"Targets": []})
        assert refused_bmc.status_code == 503  # the NIC install still runs: Supermicro-like refuses a second one
        assert s.delete(bmcsim.url(SMC) + nic.headers["Location"], timeout=5).status_code == 204
        response = multipart(bmcsim, SMC, make_image("bmc", "supermicro", "02.00.00", []), {"Targets": []})
        assert response.status_code == 202
        assert s.get(bmcsim.redfish(SMC, "/Systems"), timeout=5).status_code == 500  # while the BMC installs


def test_slow_answers(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(DELL, {"slow_seconds": 0.4})
    started = time.monotonic()
    assert requests.get(bmcsim.redfish(DELL), verify=bmcsim.verify, timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.4
    bmcsim.clear_faults(DELL)
    bmcsim.set_faults(DELL, {"slow_seconds": 3})
    with pytest.raises(requests.ReadTimeout):
        requests.get(bmcsim.redfish(DELL), verify=bmcsim.verify, timeout=0.5)


def test_refused_credentials_until_cleared(bmcsim: BmcFleet) -> None:
    login = requests.post(
        bmcsim.redfish(SMC, "/SessionService/Sessions"),
        json={"UserName": "root", "Password": "calvin"},
        verify=bmcsim.verify,
        timeout=5,
    )
    token = {"X-Auth-Token": login.headers["X-Auth-Token"]}
    bmcsim.set_faults(SMC, {"refuse_credentials": True})
    assert (
        requests.get(
            bmcsim.redfish(SMC, "/Systems"), auth=("root", "calvin"), verify=bmcsim.verify, timeout=5
        ).status_code
        == 401
    )
    assert (
        requests.get(bmcsim.redfish(SMC, "/Systems"), headers=token, verify=bmcsim.verify, timeout=5).status_code == 401
    )
    with pytest.raises(sushy.exceptions.AccessError):
        sushy.Sushy(
            bmcsim.redfish(SMC), username="root", password="calvin", verify=bmcsim.verify, server_side_retries=1
        ).get_system()
    assert (
        requests.get(bmcsim.redfish(SMC), verify=bmcsim.verify, timeout=5).status_code == 200
    )  # the service root stays public
    bmcsim.clear_faults(SMC)
    assert (
        requests.get(bmcsim.redfish(SMC, "/Systems"), headers=token, verify=bmcsim.verify, timeout=5).status_code == 200
    )


def test_task_purged_leaves_the_dell_job(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(DELL, {"task_purged": True})
    response = multipart(bmcsim, DELL, make_image("psu", "dell", "00.3B.00", []), {})
    task_id = response.headers["Location"].rsplit("/", 1)[1]
    bmcsim.wait_for(DELL, lambda st: st["tasks"][-1]["purged"], 10, "task purged")
    with rf(bmcsim, DELL) as s:
        assert s.get(bmcsim.url(DELL) + response.headers["Location"], timeout=5).status_code == 404
        job = s.get(bmcsim.redfish(DELL, f"/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/{task_id}"), timeout=5)
        assert job.status_code == 200
        assert (job.json()["JobState"], job.json()["Message"]) == ("Completed", "Job completed successfully.")
    assert bmcsim.version(DELL, "psu") == "00.3B.00"


def test_sim_faults_api_on_the_bmcs_own_port(bmcsim: BmcFleet) -> None:
    base = bmcsim.url(SMC) + "/sim"
    assert requests.get(f"{base}/faults", verify=bmcsim.verify, timeout=5).json() == {}
    put = requests.put(
        f"{base}/faults",
        json={"slow_seconds": 0.01, "task_exception": {"component": "bios"}},
        verify=bmcsim.verify,
        timeout=5,
    )
    assert put.status_code == 200
    assert put.json()["task_exception"] == {"component": "bios", "sticky": False, "count": 1}
    assert requests.put(
        f"{base}/faults", json={"slow_seconds": None}, verify=bmcsim.verify, timeout=5
    ).json().keys() == {"task_exception"}
    bad = requests.put(f"{base}/faults", json={"explode": True}, verify=bmcsim.verify, timeout=5)
    assert bad.status_code == 400 and "unknown fault 'explode'" in bad.json()["error"]
    assert (
        requests.put(
            f"{base}/faults", json={"task_hang": {"component": "toaster"}}, verify=bmcsim.verify, timeout=5
        ).status_code
        == 400
    )
    assert requests.delete(f"{base}/faults", verify=bmcsim.verify, timeout=5).json() == {}
    state = requests.get(f"{base}/state", verify=bmcsim.verify, timeout=5).json()
    assert state["power"]["state"] == "On" and state["shape"] == "supermicro" and state["online"] is True
    assert requests.get(f"{base}/audit", verify=bmcsim.verify, timeout=5).json()["overlapping_installs"] == 0
    assert requests.post(f"{base}/reset-audit", verify=bmcsim.verify, timeout=5).status_code == 200


# ---- audit --------------------------------------------------------------------------------------------------


def test_concurrent_installs_are_counted_as_overlaps(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    bmcsim.set_faults(DELL, {"task_hang": {"component": "cpld"}})  # the first install runs until killed
    bmcsim.set_faults(SMC, {"task_hang": {"component": "cpld"}})
    first = simple_update(bmcsim, DELL, firmware_server.image("cpld", "dell", "1.3", []))
    second = simple_update(bmcsim, DELL, firmware_server.image("psu", "dell", "00.4C.00", []))
    assert first.status_code == second.status_code == 202  # iDRAC queues jobs: accepted, but recorded
    run_to_end(bmcsim, DELL, second)
    with rf(bmcsim, DELL) as s:
        s.delete(bmcsim.url(DELL) + first.headers["Location"], timeout=5)
    dell = bmcsim.audit(DELL)
    assert dell["overlapping_installs"] == 1 and dell["max_concurrent_installs"] == 2
    assert [i["overlapped"] for i in dell["installs"]] == [False, True]

    accepted = multipart(bmcsim, SMC, make_image("cpld", "supermicro", "f3", []), {"Targets": []})
    busy = multipart(bmcsim, SMC, make_image("psu", "supermicro", "1.9", []), {"Targets": []})
    assert accepted.status_code == 202
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "30"
    assert "ServiceTemporarilyUnavailable" in busy.json()["error"]["code"]
    smc = bmcsim.audit(SMC)
    assert smc["overlapping_installs"] == 1 and [i["outcome"] for i in smc["installs"]][1] == "refused"
    with rf(bmcsim, SMC) as s:
        s.delete(bmcsim.url(SMC) + accepted.headers["Location"], timeout=5)
    assert bmcsim.fleet_audit()["overlapping_installs"] == 2
    bmcsim.reset_audit()
    assert bmcsim.fleet_audit()["overlapping_installs"] == 0


def test_sequential_installs_never_overlap(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    for version in ("1.4", "1.5"):
        run_to_end(bmcsim, DELL, simple_update(bmcsim, DELL, firmware_server.image("cpld", "dell", version, [])))
    audit = bmcsim.audit(DELL)
    assert audit["overlapping_installs"] == 0 and audit["max_concurrent_installs"] == 1
    first, second = audit["installs"]
    assert first["end"] <= second["start"]


# ---- fleet control and configuration ------------------------------------------------------------------------


def test_fleet_control_lists_bmcs_and_sets_faults_by_port(bmcsim: BmcFleet) -> None:
    fleet = bmcsim.fleet()
    assert [(b["port"], b["shape"], b["vendor"], b["model"]) for b in fleet] == [
        (bmcsim.port(DELL), "dell", "dell", "r6515"),
        (bmcsim.port(SMC), "supermicro", "supermicro", "x12stw"),
    ]
    assert all(c["serial"] for b in fleet for c in b["components"])
    control = f"http://127.0.0.1:{bmcsim.control_port}"
    put = requests.put(f"{control}/fleet/faults/{bmcsim.port(SMC)}", json={"refuse_credentials": True}, timeout=5)
    assert put.status_code == 200
    assert (
        requests.get(
            bmcsim.redfish(SMC, "/Systems"), auth=("root", "calvin"), verify=bmcsim.verify, timeout=5
        ).status_code
        == 401
    )
    assert requests.get(f"{control}/fleet/faults/1", timeout=5).status_code == 404


def test_a_configured_fleet_has_its_vendor_model_credentials_components_and_faults(
    bmcsim_pool: BmcFleetPool, firmware_server: ImageServer
) -> None:
    components = [
        ComponentSpec(slug="bmc", name="BMC", manufacturer="Acme", model="a1", serial="S-1", version="1.0"),
        ComponentSpec(
            slug="bios", name="BIOS", manufacturer="Acme", model="a1", serial="S-1", version="0.9", id="SystemBIOS"
        ),
        ComponentSpec(
            slug="gpu", name="Accelerator", manufacturer="Nvidia", model="h100", serial="G-1", version="96.00"
        ),
    ]
    spec = FleetSpec(
        bmcs=[
            BmcSpec(
                vendor="acme",
                model="a1",
                serial="ACME01",
                shape="supermicro",
                username="admin",
                password="s3cret",
                components=components,
                install_methods=["SimpleUpdate", "MultipartHttpPush"],
                faults={"task_exception": {"component": "gpu", "sticky": True}},
            )
        ]
    )
    fleet = bmcsim_pool.get(config=spec)
    assert (
        requests.get(fleet.redfish(0, "/Systems"), auth=("root", "calvin"), verify=fleet.verify, timeout=5).status_code
        == 401
    )
    with requests.Session() as s:
        s.auth = ("admin", "s3cret")
        s.verify, s.trust_env = fleet.verify, False
        inventory = s.get(fleet.redfish(0, "/UpdateService/FirmwareInventory"), timeout=5).json()
        ids = sorted(m["@odata.id"].rsplit("/", 1)[1] for m in inventory["Members"])
        assert ids == ["BMC", "GPU_1", "SystemBIOS"]
        service = s.get(fleet.redfish(0, "/UpdateService"), timeout=5).json()
        assert "#UpdateService.SimpleUpdate" in service["Actions"] and "MultipartHttpPushUri" in service
        body = {"ImageURI": firmware_server.image("gpu", "nvidia", "97.00", ["h100"])}
        response = s.post(fleet.redfish(0, "/UpdateService/Actions/UpdateService.SimpleUpdate"), json=body, timeout=5)
        assert response.status_code == 202
        assert poll_task(s, fleet.url(0) + response.headers["Location"])[-1][1]["TaskState"] == "Exception"
    assert fleet.faults(0)["task_exception"]["component"] == "gpu"


# ---- scale --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_few_hundred_bmcs_from_one_process(bmcsim_factory: Callable[..., BmcFleet], record_property: Any) -> None:
    count = 300
    started = time.monotonic()
    fleet = bmcsim_factory(count=count)
    startup = time.monotonic() - started
    started = time.monotonic()
    with requests.Session() as s:
        s.auth = ("root", "calvin")
        s.verify, s.trust_env = fleet.verify, False
        for i in range(count):
            response = s.get(fleet.redfish(i, "/Managers"), timeout=10)
            assert response.status_code == 200
            assert response.json()["Members@odata.count"] == 1
    queried = time.monotonic() - started
    record_property("bmcsim_startup_seconds", round(startup, 2))
    record_property("bmcsim_query_ms_per_bmc", round(1000 * queried / count, 2))
    print(f"\n{count} simulated BMCs: ready in {startup:.1f} s, one authenticated GET each in {queried:.2f} s")
    assert len(fleet.fleet()) == count
