"""Shared pieces of the inventory client's unit tests: settings, a fake clock, request inspection."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses
from loguru import logger
from prometheus_client import REGISTRY

from flasher.config import InventorySettings
from flasher.inventory.client import InventoryClient

BASE = "http://inventory.test"
API = BASE + "/api/v1"
SERVER_ID = "3f0c2a8e-1b7d-4c55-9a3e-0c1d2e3f4a01"


class FakeTime:
    """A monotonic clock that only sleep() advances: retry bounds are checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def settings(**overrides: Any) -> InventorySettings:
    values: dict[str, Any] = {"url": BASE, "retry_deadline": 30.0, "retry_max_wait": 4.0}
    values.update(overrides)
    return InventorySettings(**values)


def make_client(fake_time: FakeTime, **overrides: Any) -> InventoryClient:
    return InventoryClient(settings(**overrides), clock=fake_time.clock, sleep=fake_time.sleep)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(fake_time: FakeTime) -> InventoryClient:
    return make_client(fake_time)


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """Loguru WARNING+ messages emitted during the test."""
    lines: list[str] = []
    handler = logger.add(lambda message: lines.append(str(message)), level="WARNING", format="{message}")
    yield lines
    logger.remove(handler)


def query(call: Any) -> list[tuple[str, str]]:
    """The query parameters of a recorded request, in order."""
    return parse_qsl(urlsplit(call.request.url).query, keep_blank_values=True)


def path(call: Any) -> str:
    return str(urlsplit(call.request.url).path)


def sent_json(call: Any) -> Any:
    return json.loads(call.request.body)


def errors_counted(call: str, error: str) -> float:
    """The current value of flasher_inventory_errors_total{call, error}."""
    value = REGISTRY.get_sample_value("flasher_inventory_errors_total", {"call": call, "error": error})
    return value or 0.0
