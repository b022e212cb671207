"""Install plans without servers: decisions, matching, ordering, write-back and re-checking.

The inventory is a small in-memory :class:`~flasher.install.modes.FirmwareCatalog`; the same modes and messages are
tested over real HTTP against the sandbox inventory in ``tests/integration/test_plan_inventory.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from flasher.constants import FIRMWARE_SET_LABELS_NAMESPACE, OUTOFBAND_STATUS_NAMESPACE, SERVER_VENDOR_NAMESPACE
from flasher.install.modes import build_plan, resolve_mode
from flasher.install.plan import Decision, InstallPlan, PlanError, decide, recheck
from flasher.inventory.errors import BadRequestError, ConflictError, NotFoundError
from flasher.inventory.models import Component, FirmwareSet, FirmwareVersion, Server
from flasher.task.model import ComponentStatus, InstallMode, TaskValidationError, parse_install_task

SERVER_UUID = "3f0c2a8e-1b7d-4c55-9a3e-0c1d2e3f4a01"


def _sha(n: int) -> str:
    return f"{n:064x}"


def server(vendor: str | None = "dell", model: str | None = "r6515") -> Server:
    data = {k: v for k, v in (("vendor", vendor), ("model", model)) if v is not None}
    return Server.model_validate(
        {"uuid": SERVER_UUID, "name": "r6515-a01", "attributes": [{"namespace": SERVER_VENDOR_NAMESPACE, "data": data}]}
    )


def component(
    slug: str, installed: str | None, *, vendor: str = "dell", model: str = "r6515", name: str = "", serial: str = ""
) -> Component:
    versioned = []
    if installed is not None:
        versioned = [{"namespace": OUTOFBAND_STATUS_NAMESPACE, "data": {"firmware": {"installed": installed}}}]
    return Component.model_validate(
        {
            "uuid": f"00000000-0000-4000-8000-{abs(hash((slug, name, serial))) % 10**12:012d}",
            "name": name or slug.upper(),
            "vendor": vendor,
            "model": model,
            "serial": serial,
            "component_type_slug": slug,
            "versioned_attributes": versioned,
        }
    )


def firmware(
    slug: str, version: str, *, vendor: str = "dell", models: Sequence[str] = ("r6515",), n: int = 1, filename: str = ""
) -> FirmwareVersion:
    return FirmwareVersion(
        uuid=f"11111111-0000-4000-8000-{n:012d}",
        vendor=vendor,
        model=list(models),
        filename=filename or f"{slug}-{version}.bin",
        version=version,
        component=slug,
        checksum=_sha(n),
        upstream_url="https://vendor.example.com/x",
        repository_url=f"https://fw.example.com/{slug}-{version}-{n}.bin",
    )


def firmware_set(
    name: str, items: list[FirmwareVersion], labels: Mapping[str, str] | None = None, n: int = 1
) -> FirmwareSet:
    attributes = [{"namespace": FIRMWARE_SET_LABELS_NAMESPACE, "data": dict(labels)}] if labels else []
    return FirmwareSet.model_validate(
        {
            "uuid": f"22222222-0000-4000-8000-{n:012d}",
            "name": name,
            "attributes": attributes,
            "component_firmware": items,
        }
    )


class Catalog:
    """An in-memory inventory with the server's filter semantics (vendor/version exact, model list contains)."""

    def __init__(self, firmware: Sequence[FirmwareVersion] = (), sets: Sequence[FirmwareSet] = ()) -> None:
        self.firmware = list(firmware)
        self.sets = list(sets)
        self.calls: list[str] = []

    def list_firmware(
        self,
        vendor: str | None = None,
        model: str | Sequence[str] | None = None,
        version: str | None = None,
        component: str | None = None,
    ) -> list[FirmwareVersion]:
        self.calls.append("list_firmware")
        models = [model] if isinstance(model, str) else list(model or [])
        return [
            fw
            for fw in self.firmware
            if (not vendor or fw.vendor == vendor)
            and all(m in fw.model for m in models)
            and (not version or fw.version == version)
            and (not component or fw.component == component)
        ]

    def get_firmware_set(self, uuid_or_name: str) -> FirmwareSet:
        found = [s for s in self.sets if uuid_or_name in (s.uuid, s.name)]
        if not found:
            raise NotFoundError("GET /server-component-firmware-sets", "no firmware set has this name")
        if len(found) > 1:
            raise ConflictError("GET /server-component-firmware-sets", f"{len(found)} firmware sets have this name")
        return found[0]

    def list_firmware_sets(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> list[FirmwareSet]:
        return [
            s
            for s in self.sets
            if (not name or s.name == name) and all(s.labels.get(k) == v for k, v in (labels or {}).items())
        ]


def plan_for(
    data: dict[str, Any], components: list[Component], catalog: Catalog, srv: Server | None = None
) -> InstallPlan:
    return build_plan(parse_install_task(data), srv or server(), components, catalog)


# --------------------------------------------------------------------------------------------------------------
# Decisions

DECISIONS: list[tuple[str | None, str, bool, Decision, str]] = [
    ("2.75.75.75", "2.80.80.80", False, Decision.INSTALL, "upgrade from 2.75.75.75 to 2.80.80.80"),
    ("2.75.75.75", "2.80.80.80", True, Decision.INSTALL, "upgrade from 2.75.75.75 to 2.80.80.80"),
    ("2.80.80.80", "2.80.80.80", False, Decision.SKIP, "already at 2.80.80.80"),
    ("2.80.80.80", "2.80.80.80", True, Decision.INSTALL, "already at 2.80.80.80; reinstalling because force is set"),
    ("GDC5602Q", "gdc5602q", False, Decision.SKIP, "already at GDC5602Q"),
    (
        None,
        "2.7.3",
        False,
        Decision.SKIP,
        "installed version unknown; not installing 2.7.3 (set force to install anyway)",
    ),
    (None, "2.7.3", True, Decision.INSTALL, "installed version unknown; installing 2.7.3 because force is set"),
    (
        "2.80.80.80",
        "2.75.75.75",
        False,
        Decision.REFUSE,
        "downgrade from 2.80.80.80 to 2.75.75.75 refused (set force to allow it)",
    ),
    (
        "2.80.80.80",
        "2.75.75.75",
        True,
        Decision.INSTALL,
        "downgrade from 2.80.80.80 to 2.75.75.75 because force is set",
    ),
    (
        "P79 v1.45",
        "U46 v1.46",
        False,
        Decision.REFUSE,
        "cannot compare 'P79 v1.45' with 'U46 v1.46': 'P79 v1.45' has family 'P79', 'U46 v1.46' has family 'U46'"
        " (set force to install anyway)",
    ),
    (
        "GDC5602Q",
        "GDC5902Q",
        True,
        Decision.INSTALL,
        "cannot compare 'GDC5602Q' with 'GDC5902Q': 'GDC5602Q' has no numeric version; installing GDC5902Q"
        " because force is set",
    ),
]


@pytest.mark.parametrize(("installed", "target", "force", "decision", "reason"), DECISIONS)
def test_decide(installed: str | None, target: str, force: bool, decision: Decision, reason: str) -> None:
    assert decide(installed, target, force=force) == (decision, reason)


@pytest.mark.parametrize("installed", ["N/A", "n/a", "Unknown", "unknown", "UNKNOWN", " - ", "-", "", "   "])
def test_a_version_that_says_it_is_unknown_is_unknown(installed: str) -> None:
    """BMCs and inventory collectors write ``N/A``, ``Unknown`` or ``-`` for a version they could not read: that is
    an unknown version (skip unless force), not one that cannot be compared (which refuses and fails the task)."""
    decision, reason = decide(installed, "2.7.3", force=False)
    assert decision is Decision.SKIP
    assert reason.startswith("installed version unknown")
    assert "set force to install anyway" in reason
    decision, reason = decide(installed, "2.7.3", force=True)
    assert decision is Decision.INSTALL
    assert reason.startswith("installed version unknown")


def test_a_component_reporting_na_is_skipped_not_refused() -> None:
    catalog = Catalog([firmware("bios", "2.7.3")])
    plan = plan_for({"Firmware": {"bios": {"version": "2.7.3"}}}, [component("bios", "N/A")], catalog)
    assert [(i.decision, i.installed_version) for i in plan.items] == [(Decision.SKIP, "N/A")]
    assert plan.refusal() is None
    rechecked = recheck(plan, {"bios": "Unknown"})
    assert [(i.decision, i.version_source) for i in rechecked.items] == [(Decision.SKIP, "bmc")]


@pytest.mark.parametrize("installed", ["NA-1", "unknown-2.7", "N/A 2.7"])
def test_a_version_that_only_contains_an_unknown_word_is_compared(installed: str) -> None:
    decision, reason = decide(installed, "2.7.3", force=False)
    assert decision is Decision.REFUSE
    assert reason.startswith("cannot compare")


# --------------------------------------------------------------------------------------------------------------
# Modes


@pytest.mark.parametrize(
    ("data", "mode"),
    [
        ({"Firmware": {"bmc": {"version": "1"}}, "firmwareSet": "x"}, InstallMode.PREDEFINED_FIRMWARE),
        ({"firmwareSet": "x"}, InstallMode.PREDEFINED_FIRMWARE_SET),
        ({}, InstallMode.RESOLVE_FIRMWARE),
        (
            {"mode": "ResolveFirmware", "firmwareSet": "x", "Firmware": {"bmc": {"version": "1"}}},
            InstallMode.RESOLVE_FIRMWARE,
        ),
    ],
)
def test_resolve_mode(data: dict[str, Any], mode: InstallMode) -> None:
    assert resolve_mode(parse_install_task(data)) is mode


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"firmwareSet": "x", "Firmware": {}}, "Firmware"),  # issue 12: was PredefinedFirmwareSet
        ({"firmwareSet": ""}, "firmwareSet"),  # issue 12: was ResolveFirmware, installing the whole set
    ],
)
def test_an_empty_firmware_or_firmware_set_is_no_mode_but_an_error(data: dict[str, Any], field: str) -> None:
    with pytest.raises(TaskValidationError) as caught:
        parse_install_task(data)
    assert caught.value.field == field and "is empty" in str(caught.value)


def test_in_band_cannot_be_planned() -> None:
    with pytest.raises(PlanError, match="install method 'in-band' is known but not supported yet"):
        plan_for({"method": "in-band", "firmwareSet": "x"}, [], Catalog())


def test_predefined_uses_the_entrys_image_without_asking_the_inventory() -> None:
    catalog = Catalog()
    spec = {
        "version": "2.80.80.80",
        "updateFileURL": "https://fw.example.com/idrac.exe",
        "updateFileChecksum": _sha(9).upper(),
        "preActions": ["resetBMC"],
        "postActions": ["resetHost"],
    }
    plan = plan_for({"Firmware": {"bmc": spec}}, [component("bmc", "2.75.75.75")], catalog)
    assert catalog.calls == []
    (item,) = plan.items
    assert (item.image_url, item.checksum, item.filename) == (
        "https://fw.example.com/idrac.exe",
        f"sha256:{_sha(9)}",
        "idrac.exe",
    )
    assert [a.value for a in item.pre_actions] == ["resetBMC"] and [a.value for a in item.post_actions] == ["resetHost"]
    assert item.decision is Decision.INSTALL and item.firmware_uuid is None


def test_predefined_url_without_checksum_is_refused() -> None:
    with pytest.raises(PlanError, match="updateFileURL is given without updateFileChecksum"):
        plan_for(
            {"Firmware": {"bmc": {"version": "2", "updateFileURL": "https://h/x"}}}, [component("bmc", "1")], Catalog()
        )


def test_predefined_matches_model_agnostic_types_without_the_components_model() -> None:
    catalog = Catalog([firmware("bios", "2.7.3", models=["r6525", "R6515"])])  # the server's model, any case
    plan = plan_for({"Firmware": {"bios": {"version": "2.7.3"}}}, [component("bios", "2.6.0", model="")], catalog)
    assert plan.items[0].decision is Decision.INSTALL
    assert plan.items[0].image_url == "https://fw.example.com/bios-2.7.3-1.bin"


@pytest.mark.parametrize(
    ("models", "srv"),
    [([], server()), (["r6525"], server(model=None))],
    ids=["firmware-lists-no-model", "server-model-unknown"],
)
def test_predefined_model_agnostic_firmware_fits_when_no_model_rules_it_out(models: list[str], srv: Server) -> None:
    catalog = Catalog([firmware("bios", "2.7.3", models=models)])
    plan = plan_for({"Firmware": {"bios": {"version": "2.7.3"}}}, [component("bios", "2.6.0", model="")], catalog, srv)
    assert plan.items[0].image_url == "https://fw.example.com/bios-2.7.3-1.bin"


def test_predefined_model_agnostic_firmware_for_another_server_model_does_not_fit() -> None:
    """A BIOS (BMC, CPLD...) image is built for server models: the firmware's model list must hold the server's."""
    other = firmware("bios", "2.7.3", models=["r6525"], n=1, filename="r6525.bin")
    with pytest.raises(PlanError) as caught:
        plan_for({"Firmware": {"bios": {"version": "2.7.3"}}}, [component("bios", "2.6.0")], Catalog([other]))
    assert str(caught.value) == (
        "Firmware.bios: no firmware in the inventory matches vendor 'dell', server model 'r6515',"
        " component 'bios', version '2.7.3'"
    )
    own = firmware("bios", "2.7.3", models=["r6515"], n=2, filename="r6515.bin")
    plan = plan_for({"Firmware": {"bios": {"version": "2.7.3"}}}, [component("bios", "2.6.0")], Catalog([other, own]))
    assert [i.filename for i in plan.items] == ["r6515.bin"]  # not "2 firmware match"


def test_a_set_for_another_server_model_plans_nothing_for_model_agnostic_types() -> None:
    """A wrongly named set (another model's) must not put that model's BIOS or BMC firmware on this server."""
    items = [firmware("bmc", "2.80.80.80", models=["r6525"], n=1), firmware("bios", "2.7.3", models=["r6525"], n=2)]
    catalog = Catalog(sets=[firmware_set("dell-r6525", items, {"vendor": "dell", "model": "r6525"})])
    components = [component("bmc", "2.75.75.75"), component("bios", "2.6.0")]
    with pytest.raises(PlanError, match="firmware set 'dell-r6525' has no firmware for any component"):
        plan_for({"firmwareSet": "dell-r6525"}, components, catalog)
    items.append(firmware("bios", "2.7.4", models=["R6515"], n=3))
    catalog = Catalog(sets=[firmware_set("dell-mixed", items)])
    plan = plan_for({"firmwareSet": "dell-mixed"}, components, catalog)
    assert [(i.component, i.version) for i in plan.items] == [("bios", "2.7.4")]
    assert plan.unmatched == ("bmc dell [r6525] 2.80.80.80", "bios dell [r6525] 2.7.3")


def test_predefined_url_for_components_of_several_models_is_refused() -> None:
    """One operator image for every NIC would put one model's firmware on another."""
    nics = [
        component("nic", "22.31.6", vendor="mellanox", model="cx5", name="NIC 0"),
        component("nic", "22.31.6", vendor="mellanox", model="CX6", name="NIC 1"),
    ]
    spec = {"version": "22.36.1010", "updateFileURL": "https://fw.example.com/nic.bin", "updateFileChecksum": _sha(3)}
    with pytest.raises(PlanError) as caught:
        plan_for({"Firmware": {"nic": spec}}, nics, Catalog())
    message = str(caught.value)
    assert message.startswith("Firmware.nic: updateFileURL gives one image to every nic component")
    assert "mellanox cx5" in message and "mellanox CX6" in message
    assert "through the inventory" in message
    same = [nics[0], component("nic", "22.31.6", vendor="Mellanox", model="CX5", name="NIC 1")]
    plan = plan_for({"Firmware": {"nic": spec}}, same, Catalog())  # one model, any case: one image fits both
    assert [i.image_url for i in plan.items] == ["https://fw.example.com/nic.bin"] * 2


def test_predefined_needs_the_model_for_other_types() -> None:
    catalog = Catalog([firmware("nic", "22.36.1010", vendor="mellanox", models=["cx5"])])
    with pytest.raises(PlanError) as caught:
        plan_for(
            {"Firmware": {"nic": {"version": "22.36.1010"}}},
            [component("nic", "22.31.6", vendor="mellanox", model="CX6")],
            catalog,
        )
    assert str(caught.value) == (
        "Firmware.nic: no firmware in the inventory matches vendor 'mellanox', model 'CX6', component 'nic',"
        " version '22.36.1010'"
    )


def test_predefined_checksum_narrows_several_candidates() -> None:
    catalog = Catalog(
        [firmware("bios", "2.7.3", n=1, filename="a.bin"), firmware("bios", "2.7.3", n=2, filename="b.exe")]
    )
    components = [component("bios", "2.6.0")]
    with pytest.raises(PlanError) as caught:
        plan_for({"Firmware": {"bios": {"version": "2.7.3"}}}, components, catalog)
    message = str(caught.value)
    assert message.startswith(
        "Firmware.bios: 2 firmware in the inventory match vendor 'dell', server model 'r6515', component 'bios',"
        " version '2.7.3': "
    )
    assert (
        "11111111-0000-4000-8000-000000000001 (a.bin" in message
        and "11111111-0000-4000-8000-000000000002 (b.exe" in message
    )
    plan = plan_for({"Firmware": {"bios": {"version": "2.7.3", "updateFileChecksum": _sha(2)}}}, components, catalog)
    assert plan.items[0].filename == "b.exe"


def test_predefined_for_a_type_the_server_lacks() -> None:
    with pytest.raises(PlanError) as caught:
        plan_for({"Firmware": {"gpu": {"version": "1"}}}, [component("bmc", "1"), component("bios", "2")], Catalog())
    assert str(caught.value) == (
        f"Firmware.gpu: server {SERVER_UUID} has no gpu component (its components: bios dell r6515, bmc dell r6515)"
    )


def test_every_drive_is_its_own_install_in_install_order() -> None:
    drives = [
        component("drive", "GDC5602Q", vendor="samsung", model="MZ7LH480", name=f"Disk {i}", serial=f"S{i}")
        for i in (2, 0, 1)
    ]
    components = [
        component("nic", "22.31.6", vendor="mellanox", model="cx5"),
        *drives,
        component("bios", "2.6.0"),
        component("bmc", "2.75.75.75"),
        component("cpu", "0x1a", vendor="amd", model="epyc"),
    ]
    catalog = Catalog(
        [
            firmware("drive", "GDC5902Q", vendor="samsung", models=["MZ7LH480"], n=1),
            firmware("nic", "22.36.1010", vendor="mellanox", models=["cx5"], n=2),
            firmware("bmc", "2.80.80.80", n=3),
            firmware("bios", "2.7.3", n=4),
            firmware("cpu", "0x1b", vendor="amd", models=[], n=5),
        ]
    )
    data = {
        "Firmware": {
            "nic": {"version": "22.36.1010"},
            "drive": {"version": "GDC5902Q", "force": True},
            "cpu": {"version": "0x1b"},
            "bios": {"version": "2.7.3"},
            "bmc": {"version": "2.80.80.80"},
        }
    }
    plan = plan_for(data, components, catalog)
    assert [(i.component, i.component_name) for i in plan.items] == [
        ("bmc", "BMC"),
        ("bios", "BIOS"),
        ("drive", "Disk 0"),
        ("drive", "Disk 1"),
        ("drive", "Disk 2"),
        ("nic", "NIC"),
        ("cpu", "CPU"),
    ]
    assert all(i.decision is Decision.INSTALL for i in plan.items)
    assert plan.summary() == "7 to install, 0 skipped, 0 refused"
    assert catalog.calls.count("list_firmware") == 5  # one lookup for the three identical drives


def _set_catalog() -> tuple[Catalog, list[Component]]:
    items = [
        firmware("bmc", "2.80.80.80", n=1),
        firmware("bios", "2.7.3", n=2),
        firmware("drive", "GDC5902Q", vendor="samsung", models=["MZ7LH480"], n=3),
        firmware("drive", "D3MU001", vendor="micron", models=["MTFDDAV480"], n=4),
        firmware("nic", "22.36.1010", vendor="mellanox", models=["cx6"], n=5),  # no such NIC here
    ]
    sets = [
        firmware_set("dell-r6515", items, {"vendor": "dell", "model": "r6515"}, n=1),
        firmware_set("dell-r6515-old", items[:1], {"vendor": "dell", "model": "r6515", "channel": "old"}, n=2),
        firmware_set("dell-r6525", items[:2], {"vendor": "dell", "model": "r6525"}, n=3),
    ]
    components = [
        component("bmc", "2.80.80.80"),
        component("bios", "2.7.4"),
        component("drive", "GDC5602Q", vendor="samsung", model="MZ7LH480", name="Disk 0", serial="S0"),
        component("drive", "D3MU000", vendor="micron", model="MTFDDAV480", name="Disk 1", serial="M1"),
        component("nic", "22.31.6", vendor="mellanox", model="cx5"),
    ]
    return Catalog(sets=sets), components


def test_predefined_set_matches_and_decides() -> None:
    catalog, components = _set_catalog()
    plan = plan_for({"firmwareSet": "dell-r6515", "force": False}, components, catalog)
    assert plan.mode is InstallMode.PREDEFINED_FIRMWARE_SET
    assert (plan.firmware_set_name, plan.firmware_set_uuid) == ("dell-r6515", "22222222-0000-4000-8000-000000000001")
    decisions = [(i.component, i.component_serial, i.decision.value, i.reason) for i in plan.items]
    assert decisions == [
        ("bmc", "", "skip", "already at 2.80.80.80"),
        ("bios", "", "refuse", "downgrade from 2.7.4 to 2.7.3 refused (set force to allow it)"),
        (
            "drive",
            "S0",
            "refuse",
            "cannot compare 'GDC5602Q' with 'GDC5902Q': 'GDC5602Q' has no numeric version"
            " (set force to install anyway)",
        ),
        (
            "drive",
            "M1",
            "refuse",
            "cannot compare 'D3MU000' with 'D3MU001': 'D3MU000' has no numeric version (set force to install anyway)",
        ),
    ]
    assert plan.unmatched == ("nic mellanox [cx6] 22.36.1010",)
    assert plan.refusal() is not None and plan.refusal().startswith("refused: bios BIOS: downgrade")  # type: ignore[union-attr]
    forced = plan_for({"firmwareSet": "22222222-0000-4000-8000-000000000001", "force": True}, components, catalog)
    assert [i.decision.value for i in forced.items] == ["install"] * 4
    assert forced.refusal() is None


def test_missing_set() -> None:
    catalog, components = _set_catalog()
    with pytest.raises(PlanError, match=r"^firmwareSet: no firmware set has the name or uuid 'nope'$"):
        plan_for({"firmwareSet": "nope"}, components, catalog)


def test_ambiguous_set_name() -> None:
    catalog, components = _set_catalog()
    catalog.sets.append(firmware_set("dell-r6515", [], n=9))
    with pytest.raises(
        PlanError, match=r"^firmwareSet: the name 'dell-r6515' is ambiguous: 2 firmware sets have this name$"
    ):
        plan_for({"firmwareSet": "dell-r6515"}, components, catalog)


def test_set_with_two_firmware_for_one_component() -> None:
    catalog, components = _set_catalog()
    catalog.sets.append(firmware_set("two-bios", [firmware("bios", "2.7.3", n=2), firmware("bios", "2.8.0", n=6)]))
    with pytest.raises(PlanError) as caught:
        plan_for({"firmwareSet": "two-bios"}, components, catalog)
    assert str(caught.value).startswith(
        "firmware set 'two-bios' has 2 firmware for bios BIOS (vendor 'dell', model 'r6515'): "
    )


def test_set_with_nothing_for_this_server() -> None:
    catalog, _ = _set_catalog()
    with pytest.raises(PlanError) as caught:
        plan_for({"firmwareSet": "dell-r6515"}, [component("gpu", "1", vendor="nvidia", model="a100")], catalog)
    assert str(caught.value) == (
        f"firmware set 'dell-r6515' has no firmware for any component of server {SERVER_UUID} (the set has:"
        " bmc dell [r6515] 2.80.80.80; bios dell [r6515] 2.7.3; drive samsung [MZ7LH480] GDC5902Q;"
        " drive micron [MTFDDAV480] D3MU001; nic mellanox [cx6] 22.36.1010; the server has: gpu nvidia a100)"
    )


def test_resolve_firmware_zero_one_several_sets() -> None:
    catalog, components = _set_catalog()
    with pytest.raises(PlanError) as caught:
        plan_for({}, components, catalog)
    message = str(caught.value)
    assert message.startswith("2 firmware sets are labelled vendor=dell, model=r6515; give firmwareSet to choose: ")
    assert "dell-r6515 (22222222-0000-4000-8000-000000000001, labels model=r6515, vendor=dell)" in message
    assert (
        "dell-r6515-old (22222222-0000-4000-8000-000000000002, labels channel=old, model=r6515, vendor=dell)" in message
    )

    catalog.sets = [s for s in catalog.sets if s.name != "dell-r6515-old"]
    plan = plan_for({}, components, catalog)
    assert plan.mode is InstallMode.RESOLVE_FIRMWARE and plan.firmware_set_name == "dell-r6515"

    with pytest.raises(PlanError) as caught:
        plan_for({}, components, catalog, srv=server(model="r7525"))
    assert str(caught.value) == (
        "no firmware set is labelled vendor=dell, model=r7525; sets for vendor dell:"
        " dell-r6515 (22222222-0000-4000-8000-000000000001, labels model=r6515, vendor=dell);"
        " dell-r6525 (22222222-0000-4000-8000-000000000003, labels model=r6525, vendor=dell)"
    )
    with pytest.raises(
        PlanError, match="no firmware set is labelled vendor=hpe, model=dl360; sets for vendor hpe: none"
    ):
        plan_for({}, components, catalog, srv=server(vendor="hpe", model="dl360"))


def test_resolve_firmware_needs_vendor_and_model() -> None:
    catalog, components = _set_catalog()
    with pytest.raises(PlanError) as caught:
        plan_for({}, components, catalog, srv=server(model=None))
    assert str(caught.value) == (
        f"server {SERVER_UUID} has no vendor and model in sh.hollow.alloy.server_vendor_attributes"
        " (vendor 'dell', model None); give firmwareSet or Firmware"
    )


@pytest.mark.parametrize(("vendor", "model"), [("dell", "r6515~eq~x"), ("de~ll", "r6515")])
def test_resolve_firmware_with_a_vendor_or_model_no_label_filter_can_carry(vendor: str, model: str) -> None:
    """The inventory client cannot put a '~' into a label filter (FilterError, before any request): the task
    fails with a plan error naming the value, not with an exception the caller does not expect."""
    from flasher.config import InventorySettings
    from flasher.inventory.client import InventoryClient

    client = InventoryClient(InventorySettings(url="http://127.0.0.1:9", retry_deadline=0))
    with pytest.raises(PlanError) as caught:
        build_plan(parse_install_task({}), server(vendor=vendor, model=model), [], client)
    assert str(caught.value).startswith(
        f"server {SERVER_UUID}: cannot look up firmware sets labelled vendor={vendor}, model={model}: "
    )


# --------------------------------------------------------------------------------------------------------------
# Write-back, idempotence, recheck


def test_apply_to_in_a_set_mode_writes_the_report_with_instances() -> None:
    catalog, components = _set_catalog()
    catalog.sets = [s for s in catalog.sets if s.name != "dell-r6515-old"]
    task = parse_install_task({"requester": "alice", "force": True, "x-ticket": "OPS-1"})
    plan = build_plan(task, server(), components, catalog)
    written = plan.apply_to(task).to_attribute()
    assert task.to_attribute() == {"requester": "alice", "force": True, "x-ticket": "OPS-1"}  # the input is untouched
    assert written["mode"] == "ResolveFirmware" and written["firmwareSet"] == "dell-r6515"
    assert written["Firmware"]["bmc"] == {
        "version": "2.80.80.80",
        "updateFileURL": "https://fw.example.com/bmc-2.80.80.80-1.bin",
        "updateFileChecksum": f"sha256:{_sha(1)}",
        "status": "pending",
        "installedVersion": "2.80.80.80",
        "message": "already at 2.80.80.80; reinstalling because force is set",
    }
    drive = written["Firmware"]["drive"]
    assert drive["version"] == "D3MU001, GDC5902Q" and "updateFileURL" not in drive
    assert drive["status"] == "pending" and drive["message"] == "2 to install"
    assert [(i["name"], i["serial"], i["version"], i["installedVersion"], i["status"]) for i in drive["instances"]] == [
        ("Disk 0", "S0", "GDC5902Q", "GDC5602Q", "pending"),
        ("Disk 1", "M1", "D3MU001", "D3MU000", "pending"),
    ]
    again = parse_install_task(written)
    assert again == plan.apply_to(task)
    assert build_plan(again, server(), components, catalog) == plan  # idempotent: the report is not input


def test_apply_to_in_predefined_mode_keeps_the_operators_entries() -> None:
    catalog = Catalog([firmware("bios", "2.7.3", n=4)])
    data = {
        "Firmware": {
            "bios": {"version": "2.7.3", "postActions": ["resetHost"], "note": "ticket OPS-2"},
            "bmc": {"version": "2.80.80.80", "updateFileURL": "https://h/idrac.exe", "updateFileChecksum": _sha(7)},
        }
    }
    task = parse_install_task(data)
    plan = build_plan(task, server(), [component("bios", "2.7.3"), component("bmc", "2.80.80.81")], catalog)
    written = plan.apply_to(task).to_attribute()
    assert written["mode"] == "PredefinedFirmware" and "firmwareSet" not in written
    assert written["Firmware"]["bios"] == {
        "version": "2.7.3",
        "postActions": ["resetHost"],
        "note": "ticket OPS-2",
        "updateFileURL": "https://fw.example.com/bios-2.7.3-4.bin",
        "updateFileChecksum": f"sha256:{_sha(4)}",
        "status": "skipped",
        "installedVersion": "2.7.3",
        "message": "already at 2.7.3",
    }
    assert written["Firmware"]["bmc"]["updateFileChecksum"] == _sha(7)  # as the operator wrote it
    assert written["Firmware"]["bmc"]["status"] == "failed"
    assert (
        written["Firmware"]["bmc"]["message"]
        == "downgrade from 2.80.80.81 to 2.80.80.80 refused (set force to allow it)"
    )
    # Planned again, the written-back image is the entry's own: the same image and decisions.
    again = build_plan(
        parse_install_task(written), server(), [component("bios", "2.7.3"), component("bmc", "2.80.80.81")], catalog
    )

    def essentials(p: InstallPlan) -> list[tuple[str, str, str, str, Decision, str]]:
        return [(i.component, i.version, i.image_url, i.checksum, i.decision, i.reason) for i in p.items]

    assert essentials(again) == essentials(plan) and again.mode is plan.mode
    # An earlier report does not linger: the BIOS version is now unknown, so no installedVersion is written.
    unknown = build_plan(
        parse_install_task(written), server(), [component("bios", None), component("bmc", "2.80.80.81")], catalog
    )
    rewritten = unknown.apply_to(parse_install_task(written)).to_attribute()["Firmware"]["bios"]
    assert "installedVersion" not in rewritten and rewritten["status"] == "skipped"
    assert rewritten["note"] == "ticket OPS-2"


def test_plan_is_json() -> None:
    catalog, components = _set_catalog()
    plan = plan_for({"firmwareSet": "dell-r6515"}, components, catalog)
    data = plan.model_dump(mode="json")
    assert data["mode"] == "PredefinedFirmwareSet"
    assert data["items"][0]["decision"] == "skip"
    assert InstallPlan.model_validate_json(plan.model_dump_json()) == plan


def test_recheck_redecides_with_the_bmcs_versions() -> None:
    catalog, components = _set_catalog()
    plan = plan_for({"firmwareSet": "dell-r6515"}, components, catalog)
    rechecked = recheck(plan, {"bmc": "2.75.75.75", "bios": "2.7.3", "drive:S0": "GDC5902Q", "drive": "ignored"})
    by = {(i.component, i.component_serial): i for i in rechecked.items}
    assert by["bmc", ""].decision is Decision.INSTALL and by["bmc", ""].version_source == "bmc"
    assert by["bios", ""].decision is Decision.SKIP and by["bios", ""].installed_version == "2.7.3"
    assert by["drive", "S0"].decision is Decision.SKIP
    # Not reported (and "drive" alone is ambiguous with two drives): the inventory's decision stands.
    assert by["drive", "M1"] == next(i for i in plan.items if i.component_serial == "M1")
    by_uuid = recheck(plan, {plan.items[0].component_uuid: None})
    assert by_uuid.items[0].decision is Decision.SKIP and by_uuid.items[0].installed_version is None
    assert by_uuid.items[0].reason.startswith("installed version unknown")


def test_record_results_after_apply() -> None:
    catalog, components = _set_catalog()
    catalog.sets = [s for s in catalog.sets if s.name != "dell-r6515-old"]
    task = plan_for({"force": True}, components, catalog).apply_to(parse_install_task({"force": True}))
    assert task.firmware is not None
    drive = task.firmware["drive"]
    drive.record_instance("Disk 0", "S0", ComponentStatus.INSTALLED, installed_version="GDC5902Q")
    assert drive.status is ComponentStatus.ACTIVE
    drive.record_instance("Disk 1", "M1", ComponentStatus.INSTALLED, installed_version="D3MU001")
    assert drive.status is ComponentStatus.INSTALLED  # type: ignore[comparison-overlap]  # record_instance changed it
    assert parse_install_task(task.to_attribute()) == task


def test_recheck_keeps_a_refusal_for_a_bad_image() -> None:
    bad = firmware("bios", "2.7.3", n=4).model_copy(update={"checksum": "not-a-checksum"})
    plan = plan_for({"Firmware": {"bios": {"version": "2.7.3"}}}, [component("bios", "2.6.0")], Catalog([bad]))
    (item,) = plan.items
    assert item.decision is Decision.REFUSE and "has an unusable checksum" in item.reason
    assert recheck(plan, {"bios": "2.6.0"}) == plan


class RefusingCatalog(Catalog):
    """A catalog whose inventory refuses every lookup as a bad request (HTTP 431: the value is too long)."""

    def _refuse(self, call: str) -> BadRequestError:
        return BadRequestError(call, "the inventory refused the request", status=431)

    def list_firmware(self, *args: Any, **kwargs: Any) -> list[FirmwareVersion]:
        raise self._refuse("GET /server-component-firmwares")

    def get_firmware_set(self, uuid_or_name: str) -> FirmwareSet:
        raise self._refuse("GET /server-component-firmware-sets/{uuid}")

    def list_firmware_sets(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> list[FirmwareSet]:
        raise self._refuse("GET /server-component-firmware-sets")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"Firmware": {"bmc": {"version": "2.80.80.80"}}}, "Firmware.bmc.version: "),
        ({"firmwareSet": "00000000-0000-0000-0000-000000000000"}, "firmwareSet: "),
        ({}, f"server {SERVER_UUID}: cannot look up firmware sets"),
    ],
)
def test_a_lookup_the_inventory_refuses_is_a_plan_error_naming_the_field(data: dict[str, Any], field: str) -> None:
    # issue 12, item 6: asking again would be refused again, so the task fails instead of waiting forever
    with pytest.raises(PlanError) as caught:
        plan_for(data, [component("bmc", "2.75.75.75")], RefusingCatalog())
    assert str(caught.value).startswith(field) and "HTTP 431" in str(caught.value)
