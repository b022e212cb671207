"""Server-control tasks run end to end against the simulated BMCs and the sandbox inventory: every action and
parameter on both BMC shapes, faults, fencing, replaced attributes, cancel and shutdown."""

from __future__ import annotations

from typing import Any

import pytest

from flasher.control.messages import CANCELLED_BEFORE_START
from flasher.task.model import BOOT_DEVICES
from flasher.task.run import Outcome
from flasher_sandbox.procs import free_port
from flasher_sandbox.servers import BmcFleet, InventoryServer
from tests.support.control_helpers import claimed_task, control_settings, messages_of
from tests.support.fixtures.bmcsim import BmcFleetPool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELL, SUPERMICRO = 0, 1
SHAPES = {DELL: "dell", SUPERMICRO: "supermicro"}
#: The Redfish boot targets each simulated shape allows (flasher_sandbox/bmc/shapes.py).
SHAPE_TARGETS = {
    DELL: {"None", "Pxe", "Floppy", "Cd", "Hdd", "BiosSetup", "Utilities", "UefiTarget", "SDCard", "UefiHttp"},
    SUPERMICRO: {"None", "Pxe", "Hdd", "Cd", "Usb", "BiosSetup", "UsbCd", "UefiBootNext", "UefiHttp"},
}
REDFISH_TARGET = {
    "pxe": "Pxe",
    "disk": "Hdd",
    "cdrom": "Cd",
    "bios": "BiosSetup",
    "usb": "Usb",
    "diag": "Diags",
    "floppy": "Floppy",
    "none": "None",
    "remote_drive": "RemoteDrive",
    "sd_card": "SDCard",
    "utilities": "Utilities",
}


def _set_power(fleet: BmcFleet, i: int, state: str) -> None:
    """Put BMC ``i``'s host in ``state`` through Redfish (as an operator's own tool would)."""
    if fleet.state(i)["power"]["state"] == state:
        return
    with fleet.session(i) as http:
        system = http.get(fleet.redfish(i, "/Systems")).json()["Members"][0]["@odata.id"]
        reset = "On" if state == "On" else "ForceOff"
        answer = http.post(f"{fleet.url(i)}{system}/Actions/ComputerSystem.Reset", json={"ResetType": reset})
        assert answer.status_code < 300, answer.text
    fleet.wait_for(i, lambda s: s["power"]["state"] == state and not s["power"].get("in_transition"), 10)


def _power_records(fleet: BmcFleet, i: int) -> list[tuple[str, str]]:
    return [(r["action"], r["to_state"]) for r in fleet.audit(i)["power"]]


def _final(data: dict[str, Any], status: str) -> list[str]:
    assert data["status"] == status, data
    assert data["completedAt"] and data["updatedAt"]
    return messages_of(data)


# -- power ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("i", [DELL, SUPERMICRO], ids=SHAPES.get)
@pytest.mark.parametrize(
    ("start", "parameter", "end"),
    [
        ("On", "off", "Off"),
        ("Off", "on", "On"),
        ("On", "soft", "Off"),
        ("On", "cycle", "On"),
        ("On", "reset", "On"),
    ],
)
def test_set_power_state(
    clean_inventory: InventoryServer, bmcsim: BmcFleet, i: int, start: str, parameter: str, end: str
) -> None:
    _set_power(bmcsim, i, start)
    bmcsim.reset_audit(i)
    case = claimed_task(
        clean_inventory, bmcsim.address(i), "set_power_state", parameter, vendor=SHAPES[i], ca_bundle=bmcsim.ca_bundle
    )

    result = case.run()

    assert result.outcome is Outcome.SUCCESS, result
    data = case.attribute()
    assert _final(data, "success") == [
        f"running condition action: set_power_state {parameter}",
        f"identified current power state: {start.lower()}",
        f"server power state set successful: {parameter}",
    ]
    assert data.get("error") is None
    state = bmcsim.state(i)["power"]
    assert state["state"] == end and not state.get("in_transition")  # waited until the BMC reported it
    (record,) = bmcsim.audit(i)["power"]
    assert record["outcome"] == "done" and record["to_state"] == end
    assert data["requester"] == "alice" and data["taskID"] == "t-control-1"  # the operator's keys are kept


@pytest.mark.parametrize("i", [DELL, SUPERMICRO], ids=SHAPES.get)
def test_cycle_of_a_host_that_is_off_powers_it_on(clean_inventory: InventoryServer, bmcsim: BmcFleet, i: int) -> None:
    _set_power(bmcsim, i, "Off")
    bmcsim.reset_audit(i)
    case = claimed_task(clean_inventory, bmcsim.address(i), "set_power_state", "cycle", ca_bundle=bmcsim.ca_bundle)
    assert case.run().outcome is Outcome.SUCCESS
    assert _final(case.attribute(), "success")[1:] == [
        "identified current power state: off",
        "server was powered off, powering on",
        "server powered on successfully",
    ]
    assert _power_records(bmcsim, i) == [("On", "On")]


def test_get_power_state(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    _set_power(bmcsim, SUPERMICRO, "Off")
    bmcsim.reset_audit(SUPERMICRO)
    case = claimed_task(clean_inventory, bmcsim.address(SUPERMICRO), "get_power_state", ca_bundle=bmcsim.ca_bundle)
    result = case.run()
    assert (result.outcome, result.reason) == (Outcome.SUCCESS, "identified current power state: off")
    assert _final(case.attribute(), "success")[-1] == "identified current power state: off"
    assert bmcsim.audit(SUPERMICRO)["power"] == []


@pytest.mark.parametrize("i", [DELL, SUPERMICRO], ids=SHAPES.get)
def test_power_cycle_bmc_waits_until_the_bmc_is_back(
    clean_inventory: InventoryServer, bmcsim: BmcFleet, i: int
) -> None:
    case = claimed_task(clean_inventory, bmcsim.address(i), "power_cycle_bmc", ca_bundle=bmcsim.ca_bundle)
    assert case.run().outcome is Outcome.SUCCESS
    assert _final(case.attribute(), "success")[-1] == "BMC power cycled successfully"
    assert len(bmcsim.audit(i)["bmc_resets"]) == 1
    assert bmcsim.state(i)["online"]


# -- boot device ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("i", [DELL, SUPERMICRO], ids=SHAPES.get)
@pytest.mark.parametrize("device", BOOT_DEVICES)
def test_set_next_boot_device_every_device(
    clean_inventory: InventoryServer, bmcsim: BmcFleet, i: int, device: str
) -> None:
    case = claimed_task(
        clean_inventory,
        bmcsim.address(i),
        "set_next_boot_device",
        device,
        set_next_boot_device_persistent=device != "pxe",
        set_next_boot_device_efi=device in ("pxe", "disk"),
        ca_bundle=bmcsim.ca_bundle,
    )
    result = case.run()
    data = case.attribute()
    target = REDFISH_TARGET[device]
    if target in SHAPE_TARGETS[i]:
        assert result.outcome is Outcome.SUCCESS, result
        assert _final(data, "success")[-1] == f"next boot device set successfully: {device}"
        boot = bmcsim.state(i)["boot"]
        if (i, device) == (SUPERMICRO, "cdrom"):
            target = "UsbCd"  # sushy's Supermicro rule: virtual media boots from UsbCd
        enabled = "Continuous" if device != "pxe" else "Once"
        mode = "UEFI" if device in ("pxe", "disk") else "Legacy"
        assert (boot["target"], boot["enabled"], boot["mode"]) == (target, enabled, mode)
    else:  # the BMC does not offer it: failed with the BMC's (or sushy's) words naming the target
        assert result.outcome is Outcome.FAILED, result
        last = _final(data, "failed")[-1]
        assert last.startswith("error setting next boot device: ") and target in last
        assert data["error"] == last
        assert bmcsim.state(i)["boot"]["target"] == "None"


def test_pxe_boot_persistent_sets_pxe_then_powers_on(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    _set_power(bmcsim, DELL, "Off")
    case = claimed_task(clean_inventory, bmcsim.address(DELL), "pxe_boot_persistent", ca_bundle=bmcsim.ca_bundle)
    assert case.run().outcome is Outcome.SUCCESS
    assert _final(case.attribute(), "success")[1:] == [
        "setting next boot device to: pxe (persistent, EFI)",
        "next boot device set successfully: pxe",
        "identified current power state: off",
        "server power state set successful: on",
    ]
    state = bmcsim.state(DELL)
    assert state["power"]["state"] == "On"
    assert (state["boot"]["target"], state["boot"]["enabled"], state["boot"]["mode"]) == ("Pxe", "Continuous", "UEFI")


# -- faults -----------------------------------------------------------------------------------------------------------
def test_refused_credentials_fail_with_the_bmcs_answer(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    bmcsim.set_faults(DELL, {"refuse_credentials": True})
    case = claimed_task(clean_inventory, bmcsim.address(DELL), "set_power_state", "off", ca_bundle=bmcsim.ca_bundle)
    result = case.run()
    assert result.outcome is Outcome.FAILED
    data = case.attribute()
    assert data["status"] == "failed"
    assert data["error"].startswith("error connecting to the BMC: ") and "credentials" in data["error"]
    assert "calvin" not in str(data)
    assert bmcsim.audit(DELL)["power"] == []


def test_a_5xx_burst_during_the_action_is_ridden_out(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    _set_power(bmcsim, SUPERMICRO, "On")
    case = claimed_task(
        clean_inventory, bmcsim.address(SUPERMICRO), "set_power_state", "off", ca_bundle=bmcsim.ca_bundle
    )
    # More 503s in a row than sushy retries: reads wait them out, the idempotent request is sent again.
    case.on_open = lambda: bmcsim.set_faults(SUPERMICRO, {"http_5xx_burst": {"count": 6, "status": 503}})
    result = case.run()
    assert result.outcome is Outcome.SUCCESS, result
    assert "http_5xx_burst" not in bmcsim.faults(SUPERMICRO)  # the burst was used up on the way
    assert bmcsim.state(SUPERMICRO)["power"]["state"] == "Off"


def test_a_5xx_burst_at_connect_is_retried_later(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    bmcsim.reset_audit(DELL)
    bmcsim.set_faults(DELL, {"http_5xx_burst": {"count": 20, "status": 503}})
    case = claimed_task(clean_inventory, bmcsim.address(DELL), "set_power_state", "off", ca_bundle=bmcsim.ca_bundle)
    result = case.run()
    assert result.outcome is Outcome.RETRY
    assert "HTTP 503" in result.reason and "Retry in 1 seconds" in result.reason  # the BMC's own words
    assert case.attribute()["status"] == "active"
    assert bmcsim.audit(DELL)["power"] == []


def test_slow_answers_still_end(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    _set_power(bmcsim, DELL, "Off")
    bmcsim.set_faults(DELL, {"slow_seconds": 0.2})
    case = claimed_task(clean_inventory, bmcsim.address(DELL), "set_power_state", "on", ca_bundle=bmcsim.ca_bundle)
    assert case.run().outcome is Outcome.SUCCESS
    assert bmcsim.state(DELL)["power"]["state"] == "On"


def test_a_power_change_that_never_lands_times_out_with_a_clear_message(
    clean_inventory: InventoryServer, bmcsim_pool: BmcFleetPool
) -> None:
    fleet = bmcsim_pool.get(power_seconds=60.0)  # the BMC accepts the request; the host takes a minute
    settings = control_settings(clean_inventory, power_timeout=1.0, ca_bundle=fleet.ca_bundle)
    case = claimed_task(clean_inventory, fleet.address(DELL), "set_power_state", "off", settings=settings)
    result = case.run()
    assert result.outcome is Outcome.FAILED
    data = case.attribute()
    expected = "error setting power state off: the BMC reports power state On after 1 s, expected Off"
    assert data["error"] == expected and messages_of(data)[-1] == expected


def test_an_unreachable_bmc_at_connect_is_retried_later(clean_inventory: InventoryServer) -> None:
    case = claimed_task(clean_inventory, f"http://127.0.0.1:{free_port()}", "set_power_state", "on")
    result = case.run()
    assert result.outcome is Outcome.RETRY
    assert "error connecting to the BMC" in result.reason and "connection refused" in result.reason
    data = case.attribute()
    assert data["status"] == "active" and "completedAt" not in data  # nothing final: the service requeues it
    assert messages_of(data)[-1].endswith("(will retry)")


# -- ownership --------------------------------------------------------------------------------------------------------
def test_a_lost_lease_writes_nothing_and_touches_no_bmc(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    _set_power(bmcsim, DELL, "On")
    bmcsim.reset_audit(DELL)
    case = claimed_task(clean_inventory, bmcsim.address(DELL), "set_power_state", "off", ca_bundle=bmcsim.ca_bundle)
    before = case.attribute()
    case.fence.lost = True
    assert case.run().outcome is Outcome.LOST
    assert case.attribute() == before
    assert bmcsim.audit(DELL)["power"] == []


def test_a_lease_lost_during_the_action_stops_before_the_bmc_write(
    clean_inventory: InventoryServer, bmcsim: BmcFleet
) -> None:
    _set_power(bmcsim, DELL, "On")
    bmcsim.reset_audit(DELL)
    case = claimed_task(clean_inventory, bmcsim.address(DELL), "set_power_state", "off", ca_bundle=bmcsim.ca_bundle)
    ctx = case.context()
    writes = 0
    original = ctx.writer.update

    def update(*args: Any, **kwargs: Any) -> Any:  # the lease goes after the second status write
        nonlocal writes
        state = original(*args, **kwargs)
        writes += 1
        if writes == 2:
            case.fence.lost = True
        return state

    ctx.writer.update = update  # type: ignore[method-assign]
    from flasher.control import run_server_control

    assert run_server_control(ctx).outcome is Outcome.LOST
    assert messages_of(case.attribute())[-1] == "identified current power state: on"
    assert bmcsim.audit(DELL)["power"] == []  # the fence check before the write stopped it


def test_a_replaced_attribute_is_left_alone(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    bmcsim.reset_audit(DELL)
    case = claimed_task(clean_inventory, bmcsim.address(DELL), "set_power_state", "off", ca_bundle=bmcsim.ca_bundle)
    ctx = case.context()
    replacement = {"action": "get_power_state", "status": "", "requester": "bob"}
    case.write(replacement)  # the operator writes a new request after the claim
    from flasher.control import run_server_control

    assert run_server_control(ctx).outcome is Outcome.REPLACED
    assert case.attribute() == replacement
    assert bmcsim.audit(DELL)["power"] == []


def test_cancel_before_the_action_starts(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    bmcsim.reset_audit(DELL)
    case = claimed_task(
        clean_inventory, bmcsim.address(DELL), "set_power_state", "cycle", cancel=True, ca_bundle=bmcsim.ca_bundle
    )
    result = case.run()
    assert result.outcome is Outcome.CANCELLED
    assert _final(case.attribute(), "cancelled") == [CANCELLED_BEFORE_START]
    assert bmcsim.audit(DELL)["power"] == []


def test_cancel_through_the_lease_before_the_write(clean_inventory: InventoryServer, bmcsim: BmcFleet) -> None:
    bmcsim.reset_audit(DELL)
    case = claimed_task(
        clean_inventory, bmcsim.address(DELL), "set_next_boot_device", "pxe", ca_bundle=bmcsim.ca_bundle
    )
    case.fence.cancel = True
    assert case.run().outcome is Outcome.CANCELLED
    assert case.attribute()["status"] == "cancelled"
    assert bmcsim.state(DELL)["boot"]["target"] == "None"


def test_a_stopping_replica_releases_a_task_that_has_not_started(
    clean_inventory: InventoryServer, bmcsim: BmcFleet
) -> None:
    case = claimed_task(clean_inventory, bmcsim.address(DELL), "power_cycle_bmc", ca_bundle=bmcsim.ca_bundle)
    before = case.attribute()
    case.stopping.set()
    assert case.run().outcome is Outcome.RELEASED
    assert case.attribute() == before
    assert bmcsim.audit(DELL)["bmc_resets"] == []
