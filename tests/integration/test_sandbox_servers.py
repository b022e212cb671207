"""The sandbox's starters (``flasher_sandbox/servers``) where their own logic lies: the BMC fleet moves to other
ports when one was taken meanwhile, Redis restarts empty on its port, the stack's processes get none of the
caller's ``FLASHER_*`` variables."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import flasher_sandbox.servers.bmcs as bmcs_module
from flasher_sandbox.procs import free_port_range
from flasher_sandbox.servers import BmcFleet, InventoryServer, RedisServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_the_bmc_fleet_starts_on_other_ports_when_its_first_choice_is_taken(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    choices = [taken_port]

    def first_the_taken_one(count: int) -> int:
        return choices.pop(0) if choices else free_port_range(count)

    monkeypatch.setattr(bmcs_module, "free_port_range", first_the_taken_one)
    fleet = BmcFleet(tmp_path, count=2).start(timeout=30)
    try:
        assert fleet.base_port != taken_port
        with fleet.session(1) as http:
            assert http.get(fleet.redfish(1), timeout=10).status_code == 200
        assert "cannot listen" in (tmp_path / f"bmcsim-{taken_port}.log").read_text()
    finally:
        fleet.stop()


def test_a_bmc_fleet_that_fails_for_another_reason_is_not_retried(tmp_path: Path) -> None:
    fleet = BmcFleet(tmp_path, count=2, install_seconds=-1)  # refused by the command's own validation
    with pytest.raises(RuntimeError, match="simulated BMCs did not start"):
        fleet.start(timeout=30)
    assert fleet.process is None
    assert len(list(tmp_path.glob("bmcsim-*.log"))) == 1


def test_redis_restarts_on_its_port_and_empty(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    try:
        client = server.client()
        client.set("k", "v")
        port = server.port
        server.restart()
        assert server.port == port
        assert server.client().get("k") is None
        client.close()
    finally:
        server.stop()


def test_a_stray_sandbox_token_in_the_environment_does_not_turn_auth_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASHER_SANDBOX_TOKEN", "from-another-shell")
    server = InventoryServer(tmp_path).start()
    try:
        assert requests.get(f"{server.api}/servers", timeout=10).status_code == 200
    finally:
        server.stop()
