"""The BMC driver against the simulated BMC fleet: every install path, every fault, power, boot, BMC reset.

BMC 0 is Dell-like (SimpleUpdate, HttpPushUri and multipart; tasks answer 200 while running; BIOS installs wait
for a host reset; Dell jobs), BMC 1 Supermicro-like (multipart push only; tasks answer 202 while running).
Installs take 1 s, a BMC reboot 1 s, a power change 0.5 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flasher.bmc import (
    BMC,
    BMCAuthError,
    BMCComponent,
    BMCTaskFailedError,
    BMCTimeoutError,
    BMCUnreachableError,
    TaskProgress,
)
from flasher.config import BMCSettings
from flasher_sandbox.images import make_image
from flasher_sandbox.servers import BmcFleet, ImageServer
from tests.support.fixtures.bmcsim import BmcFleetPool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELL, SUPERMICRO = 0, 1
SETTINGS = BMCSettings(
    scheme="http", retries=1, retry_delay=0.05, poll_interval=0.1, offline_grace=30, read_timeout=5, connect_timeout=2
)


def _connect(fleet: BmcFleet, i: int, settings: BMCSettings = SETTINGS) -> BMC:
    """flasher's driver on BMC ``i``, trusting the sandbox CA (the address carries the scheme, https)."""
    trusted = settings.model_copy(update={"ca_bundle": fleet.ca_bundle})
    return BMC(fleet.address(i), fleet.username, fleet.password, settings=trusted)


def _component(bmc: BMC, slug: str) -> BMCComponent:
    return next(c for c in bmc.firmware_inventory() if c.slug == slug)


def _image_file(tmp_path: Path, component: str, vendor: str, version: str) -> Path:
    path = tmp_path / f"{vendor}-{component}-{version}.bin"
    path.write_bytes(make_image(component, vendor, version, []))
    return path


def _install_and_confirm(bmc: BMC, component: BMCComponent, version: str, **install: object) -> list[TaskProgress]:
    seen: list[TaskProgress] = []
    handle = bmc.install(component, **install)  # type: ignore[arg-type]
    result = bmc.wait_for_task(handle, timeout=30, on_progress=seen.append)
    assert result.terminal and result.succeeded, result
    assert bmc.wait_for_version(component, version, timeout=20).version == version
    return seen


# -- inventory -------------------------------------------------------------------------------------------------------
def test_inventory_of_both_shapes_matches_the_simulator(bmcsim: BmcFleet) -> None:
    for i in (DELL, SUPERMICRO):
        with _connect(bmcsim, i) as bmc:
            components = bmc.firmware_inventory()
        expected = {c["id"]: (c["slug"], c["version"]) for c in bmcsim.state(i)["components"]}
        assert {c.id: (c.slug, c.version) for c in components} == expected
        assert {"bmc", "bios", "cpld", "nic", "drive", "storage-controller", "psu"} <= {c.slug for c in components}
        assert all(c.model for c in components)


def test_update_capabilities_of_both_shapes(bmcsim: BmcFleet) -> None:
    with _connect(bmcsim, DELL) as bmc:
        dell = bmc.update_capabilities()
    with _connect(bmcsim, SUPERMICRO) as bmc:
        supermicro = bmc.update_capabilities()
    assert dell.methods == ("simple_update", "multipart", "http_push")
    assert {"HTTP", "HTTPS"} <= set(dell.transfer_protocols)
    assert supermicro.methods == ("multipart",)


# -- install paths ---------------------------------------------------------------------------------------------------
def test_simple_update_with_targets_on_a_bmc_answering_200_while_running(
    bmcsim: BmcFleet, firmware_server: ImageServer
) -> None:
    with _connect(bmcsim, DELL) as bmc:
        nic = _component(bmc, "nic")
        handle = bmc.install(nic, image_url=firmware_server.image("nic", "dell", "23.1.0"))
        # The pitfall: the task answers HTTP 200 while it runs; its TaskState says it is not done.
        with bmcsim.session(DELL) as http:
            raw = http.get(bmcsim.url(DELL) + handle.uri, timeout=5)
        assert raw.status_code == 200 and raw.json()["TaskState"] in ("New", "Running")
        first = bmc.task_progress(handle)
        assert not first.terminal
        seen: list[TaskProgress] = []
        assert bmc.wait_for_task(handle, timeout=30, on_progress=seen.append).succeeded
        assert bmc.wait_for_version(nic, "23.1.0", timeout=20).version == "23.1.0"
    assert any(p.state == "Running" and p.percent is not None and 0 < p.percent < 100 for p in seen)
    (record,) = bmcsim.audit(DELL)["installs"]
    assert (record["method"], record["targets"], record["outcome"]) == ("SimpleUpdate", [nic.id], "success")


def test_multipart_push_on_the_supermicro_shape(bmcsim: BmcFleet, tmp_path: Path) -> None:
    with _connect(bmcsim, SUPERMICRO) as bmc:
        bios = _component(bmc, "bios")
        seen = _install_and_confirm(bmc, bios, "1.9", image_path=_image_file(tmp_path, "bios", "supermicro", "1.9"))
    assert seen[-1].state == "Completed"
    (record,) = bmcsim.audit(SUPERMICRO)["installs"]
    assert record["targets"] == [bios.id] and record["outcome"] == "success"


def test_multipart_and_http_push_on_the_dell_shape(bmcsim: BmcFleet, tmp_path: Path) -> None:
    with _connect(bmcsim, DELL) as bmc:
        cpld = _component(bmc, "cpld")
        _install_and_confirm(
            bmc, cpld, "1.0.9", image_path=_image_file(tmp_path, "cpld", "dell", "1.0.9"), method="multipart"
        )
        psu = _component(bmc, "psu")
        _install_and_confirm(
            bmc, psu, "00.1E.00", image_path=_image_file(tmp_path, "psu", "dell", "00.1E.00"), method="http_push"
        )
    methods = [(r["method"], r["targets"], r["outcome"]) for r in bmcsim.audit(DELL)["installs"]]
    assert [m[1:] for m in methods] == [([cpld.id], "success"), ([psu.id], "success")]
    assert bmcsim.audit(DELL)["overlapping_installs"] == 0


def test_bios_waits_for_a_host_reset(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    with _connect(bmcsim, DELL) as bmc:
        bios = _component(bmc, "bios")
        handle = bmc.install(bios, image_url=firmware_server.image("bios", "dell", "2.13.0"))
        staged = bmc.wait_for_task(handle, timeout=30)
        assert (staged.state, staged.awaiting_reset, staged.terminal) == ("Pending", True, False)
        assert bmc.firmware_inventory() and _component(bmc, "bios").version == bios.version  # not applied yet
        assert bmc.set_power("reset", timeout=30) == "On"
        done = bmc.wait_for_task(handle, timeout=30, return_on_awaiting_reset=False)
        assert done.succeeded and not done.awaiting_reset
        assert bmc.wait_for_version(bios, "2.13.0", timeout=20).version == "2.13.0"


def test_bmc_self_update_goes_offline_and_comes_back_with_the_new_version(
    bmcsim_pool: BmcFleetPool, firmware_server: ImageServer
) -> None:
    fleet = bmcsim_pool.get(offline_seconds=2.0)
    with _connect(fleet, DELL) as bmc:
        component = _component(bmc, "bmc")
        handle = bmc.install(component, image_url=firmware_server.image("bmc", "dell", "7.10.00.00"))
        seen: list[TaskProgress] = []
        result = bmc.wait_for_task(handle, timeout=60, on_progress=seen.append)
        assert result.succeeded
        assert any(p.state == "Offline" for p in seen), [p.state for p in seen]
        assert bmc.wait_for_version(component, "7.10.00.00", timeout=30).version == "7.10.00.00"
        assert bmc.power_state() == "On"  # the new session works
    assert len(fleet.audit(DELL)["bmc_resets"]) == 1


# -- faults ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "message"),
    [("task_exception", "Exception"), ("completed_critical", "Completed with health Critical")],
)
def test_failed_tasks_raise_with_the_bmc_message(
    bmcsim: BmcFleet, firmware_server: ImageServer, fault: str, message: str
) -> None:
    bmcsim.set_faults(DELL, {fault: True})
    with _connect(bmcsim, DELL) as bmc:
        nic = _component(bmc, "nic")
        handle = bmc.install(nic, image_url=firmware_server.image("nic", "dell", "23.2.0"))
        with pytest.raises(BMCTaskFailedError, match=message) as caught:
            bmc.wait_for_task(handle, timeout=30)
    assert caught.value.bmc_messages  # the BMC's own words are carried
    assert _version_now(bmcsim, DELL, nic.id) == nic.version


def _version_now(fleet: BmcFleet, i: int, component_id: str) -> str:
    return next(str(c["version"]) for c in fleet.state(i)["components"] if c["id"] == component_id)


def test_hanging_task_times_out_and_stays_listed(bmcsim: BmcFleet, tmp_path: Path) -> None:
    bmcsim.set_faults(SUPERMICRO, {"task_hang": True})
    with _connect(bmcsim, SUPERMICRO) as bmc:
        nic = _component(bmc, "nic")
        handle = bmc.install(nic, image_path=_image_file(tmp_path, "nic", "supermicro", "4.30"))
        with pytest.raises(BMCTimeoutError, match="has not ended after 2 s"):
            bmc.wait_for_task(handle, timeout=2)
    with _connect(bmcsim, SUPERMICRO) as bmc:  # a new session, as a worker that took over after a crash
        assert [t.uri for t in bmc.running_tasks()] == [handle.uri]


def test_5xx_burst_and_slow_answers_are_ridden_out(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    with _connect(bmcsim, DELL) as bmc:
        nic = _component(bmc, "nic")
        handle = bmc.install(nic, image_url=firmware_server.image("nic", "dell", "23.3.0"))
        bmcsim.set_faults(DELL, {"http_5xx_burst": {"count": 4, "status": 503}, "slow_seconds": 0.3})
        seen: list[TaskProgress] = []
        assert bmc.wait_for_task(handle, timeout=30, on_progress=seen.append).succeeded
        bmcsim.clear_faults(DELL)
        assert bmc.wait_for_version(nic, "23.3.0", timeout=20).version == "23.3.0"
    assert any(p.state == "Offline" for p in seen)


def test_answers_slower_than_the_read_timeout_are_unreachable(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(SUPERMICRO, {"slow_seconds": 2})
    with pytest.raises(BMCUnreachableError, match="read timeout"):
        _connect(bmcsim, SUPERMICRO, SETTINGS.model_copy(update={"read_timeout": 0.5}))


def test_refused_credentials(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(DELL, {"refuse_credentials": True})
    with pytest.raises(BMCAuthError, match="refused the credentials") as caught:
        _connect(bmcsim, DELL)
    assert bmcsim.password not in str(caught.value)


REFUSED = "the BMC refused the credentials (HTTP 401) (BMC says: There is no valid session established with the"


@pytest.mark.parametrize("shape", [DELL, SUPERMICRO])
def test_a_wrong_password_is_one_failed_login(bmcsim: BmcFleet, shape: int) -> None:
    # Issue 12, item 12: BMCs lock accounts after a few failures; sushy alone tries Basic after a refused session.
    with pytest.raises(BMCAuthError) as caught:
        trusted = SETTINGS.model_copy(update={"ca_bundle": bmcsim.ca_bundle})
        BMC(bmcsim.address(shape), bmcsim.username, "not-the-password", settings=trusted)
    assert str(caught.value).startswith(f"log in to the BMC at {bmcsim.url(shape)} as 'root': {REFUSED}")
    assert bmcsim.audit(shape)["failed_logins"] == 1


def test_refused_credentials_are_one_failed_login_per_connect(bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(SUPERMICRO, {"refuse_credentials": True})
    for _ in range(3):
        with pytest.raises(BMCAuthError):
            _connect(bmcsim, SUPERMICRO)
    assert bmcsim.audit(SUPERMICRO)["failed_logins"] == 3


def test_a_wrong_password_prints_one_line(bmcsim: BmcFleet, tmp_path: Path) -> None:
    # The operator's view, in a process of its own: one error line, none of sushy's warnings.
    password = tmp_path / "pw"
    password.write_text("not-the-password\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASHER_")}
    flasher = str(Path(sys.executable).parent / "flasher")
    done = subprocess.run(
        [flasher, "bmc", "inventory", bmcsim.address(DELL), "--password-file", str(password)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "60", "FLASHER_BMC__CA_BUNDLE": str(bmcsim.ca_bundle)},
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: log in to the BMC at {bmcsim.url(DELL)} as 'root': {REFUSED}")
    assert bmcsim.audit(DELL)["failed_logins"] == 1


def test_unchanged_version_after_completed_is_caught(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    bmcsim.set_faults(DELL, {"version_unchanged": True})
    with _connect(bmcsim, DELL) as bmc:
        drive = _component(bmc, "drive")
        handle = bmc.install(drive, image_url=firmware_server.image("drive", "dell", "XCV1DL99"))
        assert bmc.wait_for_task(handle, timeout=30).succeeded  # the task says all is well...
        with pytest.raises(BMCTimeoutError, match=f"reports {drive.version} after 1 s, expected XCV1DL99"):
            bmc.wait_for_version(drive, "XCV1DL99", timeout=1)  # ...the version says otherwise


@pytest.mark.parametrize("shape", [DELL, SUPERMICRO])
def test_rejected_image(bmcsim: BmcFleet, tmp_path: Path, shape: int) -> None:
    bmcsim.set_faults(shape, {"image_rejected": True})
    vendor = "dell" if shape == DELL else "supermicro"
    with _connect(bmcsim, shape) as bmc:
        bios = _component(bmc, "bios")
        with pytest.raises(BMCTaskFailedError, match=r"rejected|failed verification"):
            bmc.install(bios, image_path=_image_file(tmp_path, "bios", vendor, "9.9"), method="multipart")
    assert [r["outcome"] for r in bmcsim.audit(shape)["installs"]] == ["rejected"]


def test_purged_dell_task_is_read_from_its_job(bmcsim: BmcFleet, firmware_server: ImageServer) -> None:
    bmcsim.set_faults(DELL, {"task_purged": True})
    with _connect(bmcsim, DELL) as bmc:
        nic = _component(bmc, "nic")
        handle = bmc.install(nic, image_url=firmware_server.image("nic", "dell", "23.4.0"))
        result = bmc.wait_for_task(handle, timeout=30)
        assert (result.state, result.succeeded) == ("Completed", True)  # Dell JobState, from Oem/Dell/Jobs
        assert result.messages == ("Job completed successfully.",)
        assert bmc.wait_for_version(nic, "23.4.0", timeout=20).version == "23.4.0"


# -- power, boot, BMC reset ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [DELL, SUPERMICRO])
def test_power_actions(bmcsim: BmcFleet, shape: int) -> None:
    with _connect(bmcsim, shape) as bmc:
        assert bmc.power_state() == "On"
        assert bmc.set_power("on") == "On"  # already on: nothing sent (Dell-like answers 409 otherwise)
        assert bmc.set_power("soft", timeout=30) == "Off"
        assert bmc.set_power("cycle", timeout=30) == "On"
        assert bmc.set_power("off", timeout=30) == "Off"
        assert bmc.set_power("on", timeout=30) == "On"
    actions = [r["action"] for r in bmcsim.audit(shape)["power"]]
    assert actions == ["GracefulShutdown", "On", "ForceOff", "On"]
    assert bmcsim.state(shape)["power"]["state"] == "On"


def test_boot_override(bmcsim: BmcFleet) -> None:
    for shape in (DELL, SUPERMICRO):
        with _connect(bmcsim, shape) as bmc:
            bmc.set_boot_device("pxe", persistent=False, uefi=True)
            boot = bmcsim.state(shape)["boot"]
            assert (boot["target"], boot["enabled"], boot["mode"]) == ("Pxe", "Once", "UEFI")
            bmc.set_boot_device("bios", persistent=True, uefi=False)
            boot = bmcsim.state(shape)["boot"]
            assert (boot["target"], boot["enabled"], boot["mode"]) == ("BiosSetup", "Continuous", "Legacy")


@pytest.mark.parametrize("shape", [DELL, SUPERMICRO])
def test_bmc_reset_waits_for_it_to_come_back(bmcsim: BmcFleet, shape: int) -> None:
    with _connect(bmcsim, shape) as bmc:
        before = bmc.firmware_inventory()
        bmc.reset_bmc(timeout=60)
        assert bmc.firmware_inventory() == before  # answers, with a new session
    (reset,) = bmcsim.audit(shape)["bmc_resets"]
    assert reset["end"] is not None
