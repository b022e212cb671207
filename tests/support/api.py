"""``flasher api`` on the sandbox for tests: a seeded inventory, simulated BMCs, Redis, an in-process replica
(:class:`flasher.service.app.Service`: poller, admission, workers) and the API served by uvicorn on loopback."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from flasher.api.app import create_app
from flasher.asgiserver import BackgroundASGIServer
from flasher.config import Settings
from flasher.inventory import InventoryClient
from flasher.service.app import Service
from flasher_sandbox.servers import BmcFleet, ImageServer, InventoryServer
from tests.support.install_env import fast_settings, seed_for

#: The replica's settings for API tests: quick polls, a short shutdown.
SERVICE = {"poll_interval": 0.3, "poll_jitter": 0.0, "http_port": 0, "shutdown_grace": 5.0, "concurrency": 4}


@dataclass
class APIStack:
    """The running stack: ``url`` of the API, ``servers`` (BMC index → uuid), clients for checks."""

    settings: Settings
    fleet: BmcFleet
    servers: dict[int, str]
    api: BackgroundASGIServer
    service: Service | None
    inventory: InventoryClient

    @property
    def url(self) -> str:
        return self.api.url

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.put(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def session_delete(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.delete(self.url + path, timeout=kwargs.pop("timeout", 10), **kwargs)

    def attribute(self, uuid: str, namespace: str) -> dict[str, Any] | None:
        server = self.inventory.get_server(uuid)
        attribute = server.attribute(namespace)
        return attribute.as_object() if attribute is not None else None

    def wait(self, check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)


@contextmanager
def api_stack(
    inventory: InventoryServer,
    fleet: BmcFleet,
    images: ImageServer,
    redis_url: str,
    tmp_path: Path,
    *,
    replica: bool = True,
    **sections: Any,
) -> Iterator[APIStack]:
    """Seed ``inventory`` for every BMC of ``fleet``, start a replica (unless ``replica`` is false) and the API;
    ``sections`` override settings (``api={"auth": "oidc", ...}``)."""
    indexes = list(range(len(fleet.fleet())))
    seeded = inventory.seed(seed_for(fleet, indexes, images))
    service_overrides = {**SERVICE, **sections.pop("service", {})}
    sections["bmc"] = {"ca_bundle": fleet.ca_bundle, **sections.get("bmc", {})}  # trust the BMCs' sandbox CA
    settings = fast_settings(inventory.url, redis_url, tmp_path / "cache", service=service_overrides, **sections)
    servers = {i: seeded["servers"][f"srv-{i}"] for i in indexes}
    service = Service(settings) if replica else None
    api = BackgroundASGIServer(create_app(settings), "127.0.0.1", 0, name="flasher-api-test")
    if service is not None:
        service.start()
    api.start()
    try:
        yield APIStack(settings, fleet, servers, api, service, InventoryClient(settings.inventory))
    finally:
        api.stop()
        if service is not None:
            service.stop()
