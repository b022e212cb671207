"""A warning, once per process, for each place TLS verification is turned off (issue 12, item 11)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from flasher.bmc.session import tls_verify
from flasher.config import BMCSettings, InventorySettings, StoreSettings
from flasher.inventory.client import InventoryClient
from flasher.logs import forget_warnings, warn_once
from flasher.store.store import FirmwareStore


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    forget_warnings()
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING", format="{message}")
    try:
        yield lines
    finally:
        logger.remove(sink)
        forget_warnings()


def test_inventory_without_tls_verification_warns_once(warnings: list[str]) -> None:
    settings = InventorySettings(url="https://inventory.test", verify_tls=False)
    for _ in range(3):
        InventoryClient(settings)
    assert len(warnings) == 1
    assert "TLS certificate verification is OFF for the inventory at https://inventory.test/" in warnings[0]
    assert "inventory.verify_tls" in warnings[0]


def test_store_without_tls_verification_warns_once(warnings: list[str], tmp_path: Path) -> None:
    for _ in range(3):
        FirmwareStore(StoreSettings(cache_dir=tmp_path, verify_tls=False))
    assert warnings == [
        "TLS certificate verification is OFF for firmware image downloads (store.verify_tls is false): the checksum"
        " still guards the image, but not the secrecy of pre-signed URLs"
    ]


def test_bmcs_without_tls_verification_warn_once(warnings: list[str]) -> None:
    insecure = BMCSettings(insecure=True)
    assert tls_verify(insecure, "https://10.0.0.1") is False
    assert tls_verify(insecure, "https://10.0.0.2") is False
    assert tls_verify(BMCSettings(verify_tls=False), "https://10.0.0.3") is False
    assert len(warnings) == 1 and "first for https://10.0.0.1" in warnings[0]


def test_verified_tls_says_nothing(warnings: list[str], tmp_path: Path) -> None:
    InventoryClient(InventorySettings(url="https://inventory.test"))
    FirmwareStore(StoreSettings(cache_dir=tmp_path))
    assert tls_verify(BMCSettings(), "https://10.0.0.1") is True
    assert warnings == []


def test_warn_once_fills_placeholders_and_says_whether_it_logged(warnings: list[str]) -> None:
    assert warn_once("k", "value {} of {}", 1, "x") is True
    assert warn_once("k", "value {} of {}", 2, "y") is False
    assert warnings == ["value 1 of x"]
