"""Pure helpers of the Lenovo XCC quirks: recognising an XCC from its ServiceRoot, the busy delay."""

from __future__ import annotations

import pytest

from flasher.bmc.quirks.lenovo import busy_delay, is_lenovo


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ({"Vendor": "Lenovo", "Product": "ThinkSystem SR650 V3"}, True),
        ({"Vendor": "Contoso", "Oem": {"Lenovo": {"HostMAC": "7c:d3:0a:12:34:56"}}}, True),
        ({"Vendor": "Dell"}, False),
        ({"Vendor": "Supermicro", "Oem": {"Supermicro": {}}}, False),
        ({"Product": "Lenovo"}, False),  # a product name is not the vendor
        ({"Oem": "Lenovo"}, False),
    ],
)
def test_an_xcc_is_recognised_from_its_service_root(root: dict[str, object], expected: bool) -> None:
    assert is_lenovo(root) is expected


def test_a_busy_bmc_is_looked_at_no_more_than_once_a_second() -> None:
    assert busy_delay(0.1) == 1.0
    assert busy_delay(5.0) == 5.0
