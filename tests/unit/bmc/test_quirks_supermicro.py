"""Pure helpers of the Supermicro quirks: recognising the BMC, the options that keep settings per board, the
licence a 403 names."""

from __future__ import annotations

import pytest

from flasher.bmc.quirks.supermicro import LICENCE, is_supermicro, licence_named, update_options


def test_a_supermicro_bmc_is_recognised_from_its_service_root() -> None:
    assert is_supermicro({"Vendor": "Supermicro"})
    assert is_supermicro({"Oem": {"Supermicro": {}}})
    assert not is_supermicro({"Vendor": "Lenovo"})
    assert not is_supermicro({"Product": "Supermicro"})


@pytest.mark.parametrize(
    ("slug", "board", "expected"),
    [
        ("bios", "X13SEI", {"BIOS": {"PreserveME": True, "PreserveNVRAM": True, "PreserveSMBIOS": True}}),
        ("bios", "H13SSLN", {"BIOS": {"PreserveNVRAM": True, "PreserveSMBIOS": True}}),  # AMD: no ME
        ("bios", None, {"BIOS": {"PreserveME": True, "PreserveNVRAM": True, "PreserveSMBIOS": True}}),
        ("bmc", "H13SSLN", {"BMC": {"PreserveCfg": True, "PreserveSdr": True, "PreserveSsl": True}}),
        ("nic", "X13SEI", None),
        ("drive", "X13SEI", None),
    ],
)
def test_updates_keep_the_settings_the_board_has(slug: str, board: str | None, expected: object) -> None:
    assert update_options(slug, board) == expected


def test_the_licence_is_the_one_the_bmc_names_else_the_oob_licence() -> None:
    assert licence_named(("A license is required for this operation: SFT-OOB-LIC.",)) == "SFT-OOB-LIC"
    assert licence_named(("Please check license",)) == LICENCE == "SFT-DCMS-SINGLE"
