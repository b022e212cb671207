"""The BMC driver and ``flasher bmc`` against real Redfish peers: the DMTF mockup and sushy-tools' emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from flasher.bmc import (
    BMC,
    BMCComponent,
    BMCError,
    BMCNotSupportedError,
    BMCTaskFailedError,
    BMCUnreachableError,
    SeveralSystemsError,
    SystemIdentity,
)
from flasher.cli import app
from flasher.config import BMCSettings
from flasher_sandbox.procs import free_port
from tests.support.cli import invoke
from tests.support.fixtures.redfish_mockup import MockupServer
from tests.support.fixtures.sushy_emulator import TWO_SYSTEMS, SushyEmulator

pytestmark = pytest.mark.integration

SETTINGS = BMCSettings(scheme="http", retries=1, retry_delay=0.1, poll_interval=0.5, read_timeout=10)


# -- DMTF public rack-server mockup ----------------------------------------------------------------------------------
def test_mockup_inventory(redfish_mockup: MockupServer) -> None:
    with BMC(redfish_mockup.url, "root", "mockup-password", settings=SETTINGS) as bmc:
        components = {c.id: c for c in bmc.firmware_inventory()}
    assert set(components) == {"BMC", "BIOS", "SS"}
    bmc_fw, bios, storage = components["BMC"], components["BIOS"], components["SS"]
    assert (bmc_fw.slug, bmc_fw.version, bmc_fw.related_uri) == ("bmc", "1.45.455b66-rev4", "/redfish/v1/Managers/BMC")
    assert bmc_fw.model == "Joo Janta 200"  # from the Manager it runs on
    assert (bios.slug, bios.version, bios.manufacturer, bios.model, bios.serial) == (
        "bios",
        "P79 v1.45",
        "Contoso",
        "3500",
        "437XR1138R2",
    )
    assert (storage.slug, storage.version, storage.software_id) == ("storage-controller", "2.50", None)
    assert all(c.updateable for c in components.values())
    assert bios.uri == "/redfish/v1/UpdateService/FirmwareInventory/BIOS"


def test_mockup_update_capabilities_and_state(redfish_mockup: MockupServer) -> None:
    with BMC(redfish_mockup.url, "root", "mockup-password", settings=SETTINGS) as bmc:
        caps = bmc.update_capabilities()
        assert bmc.power_state() == "On"
        assert bmc.running_tasks() == []  # its one task (545) is Completed
    assert caps.simple_update is True
    assert caps.transfer_protocols == ("FTP", "SFTP", "HTTP", "HTTPS", "SCP", "TFTP")  # from its ActionInfo
    assert caps.http_push_uri == "/FWUpdate"
    assert caps.multipart_push_uri is None
    assert "OnReset" in caps.apply_times


def test_cli_inventory_json(redfish_mockup: MockupServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    password = tmp_path / "pw"
    password.write_text("mockup-password\n")
    monkeypatch.setenv("FLASHER_BMC__SCHEME", "http")
    result = invoke(
        app,
        ["bmc", "inventory", redfish_mockup.url.removeprefix("http://"), "--password-file", str(password), "--json"],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert {c["slug"] for c in out["components"]} == {"bmc", "bios", "storage-controller"}
    assert out["update_service"]["methods"] == ["simple_update", "http_push"]


def test_cli_power_and_missing_password(redfish_mockup: MockupServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASHER_BMC__PASSWORD", "mockup-password")
    result = invoke(app, ["bmc", "power", redfish_mockup.url])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "On"
    monkeypatch.delenv("FLASHER_BMC__PASSWORD")
    result = invoke(app, ["bmc", "power", redfish_mockup.url])
    assert result.exit_code == 2
    assert "no BMC password" in result.output


# -- sushy-tools emulator --------------------------------------------------------------------------------------------
def test_emulator_inventory_falls_back_to_the_manager(sushy_emulator: SushyEmulator) -> None:
    with BMC(sushy_emulator.url, "root", "emulator-password", settings=SETTINGS) as bmc:
        components = bmc.firmware_inventory()  # no FirmwareInventory (404), no BiosVersion
        caps = bmc.update_capabilities()
        assert bmc.running_tasks() == []  # no TaskService
    assert [(c.slug, c.version, c.id.split(":")[0]) for c in components] == [("bmc", "1.00", "Manager")]
    assert caps.simple_update and caps.transfer_protocols == ("HTTP", "HTTPS")


def test_emulator_power_off_and_on(sushy_emulator: SushyEmulator) -> None:
    # The emulator applies a power change 1-11 s after the request: this waits for it, twice.
    with BMC(sushy_emulator.url, "root", "emulator-password", settings=SETTINGS) as bmc:
        assert bmc.set_power("off", timeout=60) == "Off"
        assert bmc.power_state() == "Off"
        assert bmc.set_power("off", timeout=60) == "Off"  # already off: nothing sent
        assert bmc.set_power("cycle", timeout=60) == "On"  # a cycle of an Off host powers it on
        assert bmc.power_state() == "On"


def test_emulator_boot_override(sushy_emulator: SushyEmulator) -> None:
    with BMC(sushy_emulator.url, "root", "emulator-password", settings=SETTINGS) as bmc:
        bmc.set_boot_device("pxe", persistent=False, uefi=True)
        bmc.set_boot_device("disk", persistent=True, uefi=False)
        with pytest.raises(BMCNotSupportedError, match="Usb"):
            bmc.set_boot_device("usb")  # not among its BootSourceOverrideTarget@Redfish.AllowableValues
        with pytest.raises(ValueError, match="boot device 'tape'"):
            bmc.set_boot_device("tape")


def test_emulator_manager_has_no_reset(sushy_emulator: SushyEmulator) -> None:
    with BMC(sushy_emulator.url, "root", "emulator-password", settings=SETTINGS) as bmc:
        with pytest.raises(BMCNotSupportedError, match="no actions"):
            bmc.reset_bmc()
        with pytest.raises(ValueError, match="power action 'hibernate'"):
            bmc.set_power("hibernate")


def _system_bios(emulator: SushyEmulator) -> BMCComponent:
    """The emulator's System as a ``bios`` target (it reports no BiosVersion, so the driver finds none)."""
    members = requests.get(f"{emulator.url}/redfish/v1/Systems", timeout=5).json()["Members"]
    uri = members[0]["@odata.id"]
    return BMCComponent(
        id="System:1",
        uri=uri,
        slug="bios",
        name="BIOS",
        version="1.0.0",
        updateable=True,
        software_id=None,
        manufacturer=None,
        model=None,
        serial=None,
        related_uri=uri,
    )


def test_emulator_simple_update_gets_the_targets_it_requires(sushy_emulator: SushyEmulator) -> None:
    # Issue 12, items 13 and 16. sushy-tools requires Targets in SimpleUpdate without advertising them: without
    # them it answers 400 "Missing ImageURI and/or Targets." (ExtendedInfo holds only Base.1.0.GeneralError).
    # With the System as target it gets as far as its fake driver, which cannot report BIOS versions (500).
    with BMC(sushy_emulator.url, "root", "emulator-password", settings=SETTINGS) as bmc:
        with pytest.raises(BMCError) as system_target:
            bmc.install(_system_bios(sushy_emulator), image_url="http://127.0.0.1:9/bios.bin")
        manager = next(c for c in bmc.firmware_inventory() if c.slug == "bmc")
        with pytest.raises(BMCTaskFailedError) as manager_target:
            bmc.install(manager, image_url="http://127.0.0.1:9/bmc.bin")
    assert system_target.value.bmc_messages == ("Failed fetching BIOS information",)
    assert manager_target.value.bmc_messages == ("Manager is not currently a supported Target.",)
    for error in (system_target.value, manager_target.value):
        assert "Missing ImageURI and/or Targets" not in str(error)
        assert "GeneralError" not in str(error)


def test_emulator_404_names_the_resource(sushy_emulator: SushyEmulator) -> None:
    with (
        BMC(sushy_emulator.url, "root", "emulator-password", settings=SETTINGS) as bmc,
        pytest.raises(BMCNotSupportedError) as caught,
    ):
        bmc._conn.get_json("/redfish/v1/UpdateService/FirmwareInventory", action="read the FirmwareInventory")
    assert str(caught.value).startswith(
        "read the FirmwareInventory: the BMC has no resource /redfish/v1/UpdateService/FirmwareInventory (HTTP 404)"
    )


# -- sushy-tools with two Systems (issue 12, item 15) ----------------------------------------------------------------
def _power_of(emulator: SushyEmulator, uuid: str) -> str:
    return str(requests.get(f"{emulator.url}/redfish/v1/Systems/{uuid}", timeout=5).json()["PowerState"])


def test_several_systems_are_refused_everywhere_with_one_message(sushy_emulator_two_systems: SushyEmulator) -> None:
    emulator = sushy_emulator_two_systems
    with BMC(emulator.url, "root", "emulator-password", settings=SETTINGS) as bmc:
        operations: dict[str, Callable[[], object]] = {
            "firmware_inventory": bmc.firmware_inventory,
            "power_state": bmc.power_state,
            "set_power": lambda: bmc.set_power("off", timeout=30),
            "set_boot_device": lambda: bmc.set_boot_device("pxe"),
            "system_uri": bmc.system_uri,
        }
        messages = set()
        for name, operation in operations.items():
            with pytest.raises(SeveralSystemsError) as caught:
                operation()
            messages.add(str(caught.value))
            assert isinstance(caught.value, BMCNotSupportedError), name
    (message,) = messages  # one message, whatever was asked
    assert message.startswith(f"BMC {emulator.url} has 2 Systems (")
    assert all(uuid in message for _, uuid, _ in TWO_SYSTEMS)
    assert message.endswith(
        "found by its serial or UUID: flasher was given no serial or UUID of the server; nothing was done"
    )
    assert [_power_of(emulator, uuid) for _, uuid, _ in TWO_SYSTEMS] == ["On", "On"]


def test_the_servers_system_is_picked_by_its_uuid(sushy_emulator_two_systems: SushyEmulator) -> None:
    emulator = sushy_emulator_two_systems
    (_, node_a, _), (_, node_b, _) = TWO_SYSTEMS
    # any case, hyphens or none: the inventory and the BMC need not write a UUID the same way
    identity = SystemIdentity(serial="not-listed", uuid=node_b.upper().replace("-", ""))
    with BMC(emulator.url, "root", "emulator-password", settings=SETTINGS, system=identity) as bmc:
        assert bmc.system_uri() == f"/redfish/v1/Systems/{node_b}"
        try:
            assert bmc.set_power("off", timeout=60) == "Off"
            assert (_power_of(emulator, node_a), _power_of(emulator, node_b)) == ("On", "Off")
        finally:
            bmc.set_power("on", timeout=60)
    with pytest.raises(SeveralSystemsError, match="found by its serial 'x' or UUID 'y': none matches"):
        BMC(emulator.url, "root", "p", settings=SETTINGS, system=SystemIdentity("x", "y")).power_state()


def test_cli_needs_the_system_of_a_bmc_with_several(
    sushy_emulator_two_systems: SushyEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = sushy_emulator_two_systems
    monkeypatch.setenv("FLASHER_BMC__PASSWORD", "emulator-password")
    for command in ("power", "inventory"):
        refused = invoke(app, ["bmc", command, emulator.url])
        assert refused.exit_code == 1
        assert refused.stderr.count("\n") == 1 and "has 2 Systems" in refused.stderr, refused.stderr
    picked = invoke(app, ["bmc", "power", emulator.url, "--system", TWO_SYSTEMS[0][1]])
    assert picked.exit_code == 0, picked.output
    assert picked.stdout.strip() == "On"


# -- a dead BMC ------------------------------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_dead_bmc_fails_fast_with_default_settings() -> None:
    # Default retries (2 attempts, 1 s apart): fails in about a second (figure in docs/bmc.md, "Session").
    with pytest.raises(BMCUnreachableError, match="connection refused"):
        BMC(f"127.0.0.1:{free_port()}", "root", "whatever-password", settings=BMCSettings(scheme="http"))
