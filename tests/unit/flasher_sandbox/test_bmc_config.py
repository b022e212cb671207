"""The simulated fleet's config model, fault book, audit log and Redfish shapes (no servers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flasher_sandbox.bmc.audit import AuditLog, InstallRecord
from flasher_sandbox.bmc.components import build_components
from flasher_sandbox.bmc.config import (
    BmcSpec,
    ComponentSpec,
    FleetSpec,
    ShapeName,
    default_bmc,
    default_fleet,
    load_fleet,
)
from flasher_sandbox.bmc.faults import FaultBook, parse_fault
from flasher_sandbox.bmc.shapes import DELL, SUPERMICRO
from flasher_sandbox.bmc.simulator import MAX_TASKS, SimulatedBmc, Timings
from flasher_sandbox.bmc.tasks import InstallTask

REQUIRED = {"bmc", "bios", "cpld", "nic", "drive", "storage-controller", "psu"}


# ---- config -------------------------------------------------------------------------------------------------


def test_the_default_fleet_alternates_dell_and_supermicro_with_full_component_sets() -> None:
    fleet = default_fleet(4, install_seconds=3.0)
    assert [b.shape for b in fleet.bmcs] == ["dell", "supermicro", "dell", "supermicro"]
    assert [(b.vendor, b.model) for b in fleet.bmcs[:2]] == [("dell", "r6515"), ("supermicro", "x12stw")]
    assert fleet.install_seconds == 3.0 and fleet.username == "root" and fleet.password == "calvin"
    for bmc in fleet.bmcs:
        slugs = [c.slug for c in bmc.component_specs]
        assert set(slugs) >= REQUIRED and slugs.count("nic") == 2 and slugs.count("drive") == 2
        assert all(c.serial.startswith(bmc.serial) for c in bmc.component_specs)
    assert len({b.serial for b in fleet.bmcs}) == 4
    assert fleet.bmcs[0].install_methods == ["SimpleUpdate", "HttpPush", "MultipartHttpPush"]
    assert fleet.bmcs[1].install_methods == ["MultipartHttpPush"]
    assert default_bmc(7, "dell").shape == "dell"


def test_a_bmc_spec_fills_shape_manufacturer_and_product_from_the_vendor() -> None:
    spec = BmcSpec(vendor="dell", model="r7515", serial="ABC")
    assert (spec.shape, spec.manufacturer, spec.product) == ("dell", "Dell Inc.", "PowerEdge R7515")
    other = BmcSpec(vendor="asrockrack", model="x570d4u", serial="X", shape="supermicro")
    assert other.manufacturer == "Supermicro" and other.product == "X570D4U"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vendor": "asrockrack"}, "has no default shape"),
        ({"vendor": "Dell"}, "lowercase slug"),
        ({"faults": {"explode": True}}, "unknown fault 'explode'"),
        ({"faults": {"task_hang": {"component": "toaster"}}}, "component 'toaster'"),
        ({"install_methods": []}, "at least one install method"),
        ({"install_methods": ["Telnet"]}, "Telnet"),
        ({"components": []}, "at least one component"),
        ({"install_seconds": 0}, "greater than 0"),
        ({"other_systems": [{"id": "2", "serial": "A"}, {"id": "2", "serial": "B"}]}, "other_systems ids must be"),
        ({"other_systems": [{"id": "a/b", "serial": "A"}]}, "should match pattern"),
    ],
)
def test_bad_bmc_specs_are_refused_naming_the_problem(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        BmcSpec.model_validate({"vendor": "dell", "model": "r6515", "serial": "S1", **fields})


def test_component_slugs_must_be_known_types() -> None:
    with pytest.raises(ValidationError, match="unknown component slug 'raid'"):
        ComponentSpec(slug="raid", name="x", manufacturer="x", model="x", serial="x", version="1")


def test_a_fleet_round_trips_through_yaml(tmp_path: Path) -> None:
    fleet = FleetSpec(
        install_seconds=2.5,
        bmcs=[
            default_bmc(0),
            BmcSpec(
                vendor="dell", model="r640", serial="X1", username="admin", password="pw", faults={"task_hang": True}
            ),
        ],
    )
    path = tmp_path / "fleet.yaml"
    fleet.dump_yaml(path)
    assert load_fleet(path) == fleet


def test_load_fleet_reports_each_bad_field_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("install_seconds: -1\nbmcs:\n  - {vendor: dell, model: r6515}\n")
    with pytest.raises(ValueError, match="invalid fleet config") as info:
        load_fleet(path)
    lines = str(info.value).splitlines()
    assert any(line.strip().startswith("install_seconds:") for line in lines)
    assert any(line.strip().startswith("bmcs.0.serial:") for line in lines)
    path.write_text("- just a list\n")
    with pytest.raises(ValueError, match="must be a mapping"):
        load_fleet(path)
    with pytest.raises(ValueError, match="cannot read"):
        load_fleet(tmp_path / "absent.yaml")


# ---- shapes and components ----------------------------------------------------------------------------------


def test_dell_ids_look_like_idrac_and_supermicro_ids_are_short() -> None:
    dell = {c.slug + str(c.ordinal): c for c in build_components(default_bmc(0).component_specs, DELL)}
    assert dell["bmc1"].id == "Installed-25227-6.10.80.00__iDRAC.Embedded.1-1"
    dell["bmc1"].version = "7.00.00.00"  # iDRAC's Id carries the running version
    assert (
        dell["bmc1"].uri == "/redfish/v1/UpdateService/FirmwareInventory/Installed-25227-7.00.00.00__iDRAC.Embedded.1-1"
    )
    assert dell["bmc1"].related.uri == "/redfish/v1/Managers/iDRAC.Embedded.1"
    assert dell["bios1"].related.uri == "/redfish/v1/Systems/System.Embedded.1"
    assert dell["nic2"].related.uri == "/redfish/v1/Chassis/System.Embedded.1/NetworkAdapters/NIC.Slot.2"
    assert dell["bmc1"].software_id == "25227"
    smc = {c.slug + str(c.ordinal): c for c in build_components(default_bmc(1).component_specs, SUPERMICRO)}
    assert (smc["bmc1"].id, smc["bios1"].id, smc["nic2"].id) == ("BMC", "BIOS", "NIC_2")
    assert smc["drive2"].related.uri == "/redfish/v1/Chassis/1/Drives/Disk.1"
    assert smc["psu1"].uri == "/redfish/v1/UpdateService/FirmwareInventory/PSU_1"
    assert DELL.task_id(1, 1_700_000_000).startswith("JID_") and len(DELL.task_id(1, 1_700_000_000)) == 16
    assert SUPERMICRO.task_id(3, 0) == "3"
    assert DELL.default_apply_time("bios") == "OnReset" and SUPERMICRO.default_apply_time("bios") == "Immediate"


def test_colliding_component_ids_are_refused() -> None:
    spec = ComponentSpec(slug="nic", name="n", manufacturer="m", model="x", serial="s", version="1", id="NIC")
    with pytest.raises(ValidationError, match="unique"):
        BmcSpec(vendor="dell", model="r", serial="s", components=[spec, spec])


# ---- faults -------------------------------------------------------------------------------------------------


def test_install_faults_are_one_shot_scoped_counted_or_sticky() -> None:
    book = FaultBook()
    book.update(
        {"task_exception": {"component": "bios"}, "version_unchanged": {"count": 2}, "task_hang": {"sticky": True}}
    )
    assert book.take_install_faults(["nic"]) == {"version_unchanged", "task_hang"}
    assert book.take_install_faults(["bios"]) == {"task_exception", "version_unchanged", "task_hang"}
    assert book.take_install_faults(["bios"]) == {"task_hang"}
    assert set(book.as_json()) == {"task_hang"}


def test_request_faults() -> None:
    book = FaultBook()
    book.update({"http_5xx_burst": 2, "slow_seconds": 0.5, "refuse_credentials": {"component": "bmc"}})
    effects = [book.request_effects([]) for _ in range(3)]
    assert [e.status for e in effects] == [500, 500, None]
    assert all(e.delay == 0.5 and not e.refuse_credentials for e in effects)
    assert book.request_effects(["bmc"]).refuse_credentials
    book.update({"http_5xx_burst": {"component": "bmc", "status": 503, "sticky": True}, "slow_seconds": None})
    assert book.request_effects(["nic"]).status is None
    assert [book.request_effects(["bmc"]).status for _ in range(3)] == [503] * 3
    assert book.request_effects([]).delay == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("task_exception", 3, "takes true, false or an object"),
        ("http_5xx_burst", {"status": 404}, "status must be one of"),
        ("http_5xx_burst", 0, "at least 1"),
        ("slow_seconds", 1000, "seconds must be in"),
        ("task_hang", {"colour": "red"}, "unknown option"),
        ("task_hang", {"sticky": "yes"}, "sticky must be true or false"),
        ("task_hang", "yes", "takes true, false, a number or an object"),
    ],
)
def test_bad_fault_values_are_refused(name: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_fault(name, value)


def test_a_bad_fault_update_changes_nothing() -> None:
    book = FaultBook()
    book.update({"task_hang": True})
    with pytest.raises(ValueError):
        book.update({"task_hang": None, "nonsense": True})
    assert set(book.as_json()) == {"task_hang"}


# ---- audit --------------------------------------------------------------------------------------------------


def _install(method: str = "SimpleUpdate") -> InstallRecord:
    return InstallRecord(
        method=method,
        component="bios",
        targets=["BIOS"],
        from_version="1",
        to_version="2",
        image=None,
        apply_time="Immediate",
    )


def test_audit_counts_installs_started_or_refused_while_another_runs() -> None:
    audit = AuditLog()
    first = audit.begin_install(_install())
    second = audit.begin_install(_install())
    audit.refuse_install(_install(), "refused", "busy")
    assert (audit.overlapping_installs, audit.max_concurrent_installs, audit.installs_in_progress) == (2, 2, 2)
    assert [r.overlapped for r in audit.installs] == [False, True, True]
    audit.finish_install(first, "success", "ok", "2")
    audit.finish_install(second, "exception", "failed", "1")
    third = audit.begin_install(_install())
    assert not third.overlapped and audit.overlapping_installs == 2
    audit.clear()
    assert audit.as_json()["installs"] == [] and audit.installs_in_progress == 1
    audit.begin_install(_install())
    assert audit.overlapping_installs == 1  # the install running across the reset still counts
    audit.clear(forget_in_progress=True)
    assert audit.as_json()["installs_in_progress"] == 0


# ---- task history -------------------------------------------------------------------------------------------


def test_a_bmc_forgets_its_oldest_ended_tasks_but_never_a_running_one() -> None:
    def no_client() -> Any:
        raise AssertionError("no downloads here")

    bmc = SimulatedBmc(
        default_bmc(1),
        index=0,
        host="127.0.0.1",
        port=1,
        timings=Timings(1, 1, 1),
        username="u",
        password="p",
        http=no_client,
    )
    for n in range(MAX_TASKS + 50):
        task = InstallTask(
            id=str(n),
            uri=f"/t/{n}",
            monitor_uri=f"/m/{n}",
            name="t",
            method="HttpPush",
            apply_time="Immediate",
            record=_install(),
            image_name="x",
        )
        if n > 0:
            task.end("Completed", "OK")
        bmc.remember(task)
    assert len(bmc.tasks) == MAX_TASKS and len(bmc.monitors) == MAX_TASKS
    assert "0" in bmc.tasks and "1" not in bmc.tasks and str(MAX_TASKS + 49) in bmc.tasks


@pytest.mark.parametrize(
    ("shape", "vendor", "model", "prefix", "methods"),
    [
        ("lenovo", "lenovo", "sr650v3", "LN", ["HttpPush"]),
        ("supermicro-x13", "supermicro", "x13sei", "SX", ["MultipartHttpPush"]),
    ],
)
def test_the_vendor_shapes_have_a_default_server_of_their_own(
    shape: ShapeName, vendor: str, model: str, prefix: str, methods: list[str]
) -> None:
    bmc = default_bmc(3, shape=shape)
    assert (bmc.shape, bmc.vendor, bmc.model, bmc.serial) == (shape, vendor, model, f"{prefix}000003")
    assert bmc.install_methods == methods and bmc.licensed and bmc.max_image_bytes is None
    slugs = [c.slug for c in bmc.component_specs]
    assert {"bmc", "bios", "nic", "drive"} <= set(slugs) and slugs.count("drive") == 2
    assert BmcSpec(vendor="lenovo", model="sr630", serial="J1").shape == "lenovo"  # the vendor's default shape


def test_the_unreachable_fault_drops_every_request_until_cleared() -> None:
    book = FaultBook()
    book.update({"unreachable": True})
    assert book.request_effects([]).unreachable and book.request_effects([]).unreachable  # sticky
    assert book.as_json() == {"unreachable": {"component": None, "sticky": True}}
    book.update({"unreachable": False})
    assert not book.request_effects([]).unreachable
