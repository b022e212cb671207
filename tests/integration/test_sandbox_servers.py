"""The sandbox's starters (``flasher_sandbox/servers``) where their own logic lies: the BMC fleet moves to other
ports when one was taken meanwhile, Redis restarts empty on its port, the stack's processes get none of the
caller's ``FLASHER_*`` variables, a fleet split across simulator processes is one fleet."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import flasher_sandbox.servers.bmcs as bmcs_module
from flasher_sandbox.procs import free_port_range
from flasher_sandbox.servers import BmcFleet, InventoryServer, RedisServer
from flasher_sandbox.servers.bmcs import split
from flasher_sandbox.up.scenario import build
from flasher_sandbox.up.stack import Stack

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


def test_the_inventory_starts_on_another_port_when_its_own_was_taken_meanwhile(tmp_path: Path, taken_port: int) -> None:
    inventory = InventoryServer(tmp_path)
    inventory.port = taken_port  # as if something bound its port after it was chosen
    inventory.db_path, inventory.log_path = tmp_path / f"inventory-{taken_port}.db", tmp_path / "first.log"
    try:
        inventory.start()
        assert inventory.port != taken_port
        assert requests.get(f"{inventory.url}/healthz/readiness", timeout=5).status_code == 200
    finally:
        inventory.stop()


def test_an_inventory_given_its_own_database_is_not_moved(tmp_path: Path, taken_port: int) -> None:
    inventory = InventoryServer(tmp_path, db_path=tmp_path / "mine.db")
    inventory.port = taken_port
    with pytest.raises(RuntimeError, match="Address already in use"):
        inventory.start(timeout=20)
    inventory.stop()


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


def test_a_fleet_sharded_across_simulator_processes_is_one_fleet_to_the_stack(tmp_path: Path) -> None:
    """Five BMCs in two ``flasher-sandbox bmc`` processes (3 + 2): each BMC answers on base port + index as its
    seed entry says, and the stack's processes, the fleet listing and the fleet audit see both processes."""
    scenario = build(5, install_seconds=0.5, offline_seconds=0.5, power_seconds=0.1, special=False)
    extra = {"name": "no-bmc-000", "uuid": "00000000-0000-4000-8000-000000000001", "facility": "sandbox"}
    with Stack(tmp_path / "stack", scenario, bmc_processes=2, more_servers=[extra]).running() as stack:
        fleet = stack.bmcs
        assert [(shard.first, shard.count) for shard in fleet.shards] == [(0, 3), (3, 2)]
        assert {"bmcs-0", "bmcs-1"} <= set(stack.processes())
        assert all(process.alive() for process in fleet.named_processes().values())
        listed = fleet.fleet()
        assert [bmc["index"] for bmc in listed] == [0, 1, 2, 3, 4]
        assert [bmc["serial"] for bmc in listed] == [bmc.serial for bmc in scenario.fleet.bmcs]
        for index, entry in enumerate(stack.server_entries()):
            assert entry["bmc"]["address"] == f"127.0.0.1:{fleet.base_port + index}"
            with fleet.session(index) as http:
                assert http.get(fleet.redfish(index), timeout=10).status_code == 200
        assert len(stack.server_entries()) == 5
        servers = stack.http.get(f"{stack.inventory_url}/api/v1/servers", params={"limit": 100}, timeout=10).json()
        assert {record["name"] for record in servers["records"]} == {*scenario.names, "no-bmc-000"}

        # A refused login on BMC 4 (the second process's) shows in its own audit and in the fleet's, nowhere else.
        refused = requests.get(fleet.redfish(4, "/Systems"), auth=("root", "wrong"), verify=fleet.verify, timeout=10)
        assert refused.status_code == 401
        audit = fleet.fleet_audit()
        assert [bmc["failed_logins"] for bmc in audit["bmcs"]] == [0, 0, 0, 0, 1]
        assert audit["overlapping_installs"] == 0
        fleet.set_faults(4, {"refuse_credentials": True})
        assert fleet.faults(4) and not fleet.faults(0)
        fleet.reset_audit()
        assert [bmc["failed_logins"] for bmc in fleet.fleet_audit()["bmcs"]] == [0] * 5


def test_fleet_processes_split_the_bmcs_in_consecutive_blocks() -> None:
    assert [(s.first, s.count) for s in split(7, 3)] == [(0, 3), (3, 2), (5, 2)]
    assert [(s.first, s.count) for s in split(2, 1)] == [(0, 2)]
    with pytest.raises(ValueError, match="between 1 and the 2 BMCs"):
        split(2, 3)
