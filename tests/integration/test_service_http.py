"""The service's /healthz, /readyz and /metrics, as wired by :class:`flasher.service.app.Service`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from flasher.config import Settings
from flasher.service.app import Service
from flasher_sandbox.procs import free_port
from flasher_sandbox.servers import InventoryServer

pytestmark = pytest.mark.integration


def service(tmp_path: Path, inventory_url: str, redis_url: str) -> Service:
    settings = Settings(
        inventory={"url": inventory_url, "retry_deadline": 0.5, "retry_max_wait": 0.05},
        redis={"url": redis_url, "retry_deadline": 0.5},
        store={"cache_dir": str(tmp_path / "cache")},
        fileserver={"enabled": False},
        service={"worker_id": "flasher-http-test", "http_port": 0},
    )
    return Service(settings)


@pytest.fixture
def http_of(tmp_path: Path) -> Iterator[list[Service]]:
    started: list[Service] = []
    yield started
    for svc in started:
        svc.http.stop()


def test_readyz_says_what_is_not_reachable(
    tmp_path: Path, clean_inventory: InventoryServer, redis_url: str, http_of: list[Service]
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    good, bad = (
        service(tmp_path, clean_inventory.url, redis_url),
        service(tmp_path, dead, f"redis://127.0.0.1:{free_port()}/0"),
    )
    for svc in (good, bad):
        svc.http.start()
        http_of.append(svc)

    ready = requests.get(f"{good.http.url}/readyz", timeout=30)
    not_ready = requests.get(f"{bad.http.url}/readyz", timeout=30)

    assert ready.status_code == 200 and ready.json() == {"status": "ok", "failing": {}}
    assert not_ready.status_code == 503
    assert set(not_ready.json()["failing"]) == {"redis", "inventory"}


def test_healthz_fails_before_the_poller_and_workers_run_and_metrics_are_prometheus_text(
    tmp_path: Path, clean_inventory: InventoryServer, redis_url: str, http_of: list[Service]
) -> None:
    svc = service(tmp_path, clean_inventory.url, redis_url)
    svc.http.start()
    http_of.append(svc)

    health = requests.get(f"{svc.http.url}/healthz", timeout=30)
    metrics = requests.get(f"{svc.http.url}/metrics", timeout=30)

    assert health.status_code == 503 and set(health.json()["failing"]) == {"workers", "poller"}
    assert metrics.status_code == 200 and metrics.headers["Content-Type"].startswith("text/plain")
    assert "flasher_poll_duration_seconds_bucket" in metrics.text
