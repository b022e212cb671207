"""A power cycle of a server whose BMC does not answer goes through its Redfish PDU outlet, end to end: the sandbox
inventory (naming the outlet in ``sh.hollow.flasher.pdu_outlet``), Redis, admission, the worker pool and the
server-control runner, a simulated BMC made unreachable by the simulator's fault ``unreachable``, and the simulated
PDU (DMTF's rack-PDU mockup served live by ``flasher-sandbox bmc --pdu-port``).

With ``pdu.fallback`` the outlet is power-cycled (its PowerState goes Off, then On) and the task succeeds saying so;
without it the task fails saying the BMC did not answer, and the outlet is never touched.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flasher.constants import PDU_OUTLET_NAMESPACE, SERVER_CONTROL_NAMESPACE
from flasher.inventory import InventoryClient
from flasher.queue import TaskQueue
from flasher.service.admission import Admission
from flasher.task.model import TaskKind, is_terminal
from flasher_sandbox.bmc.config import FleetSpec, default_bmc
from flasher_sandbox.servers import BmcFleet, ImageServer, InventoryServer
from tests.support.install_env import build_pool, fast_settings, seed_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

OUTLET = "A1"


def _run_power_cycle(
    fleet: BmcFleet,
    inventory_server: InventoryServer,
    redis_url: str,
    images: ImageServer,
    tmp_path: Path,
    *,
    fallback: bool,
) -> dict[str, Any]:
    seeded = inventory_server.seed(seed_for(fleet, [0], images))
    uuid = seeded["servers"]["srv-0"]
    pdu = {"fallback": fallback, "username": fleet.username, "password": fleet.password, "ca_bundle": fleet.ca_bundle}
    settings = fast_settings(
        inventory_server.url, redis_url, tmp_path / "cache", bmc={"ca_bundle": fleet.ca_bundle}, pdu=pdu
    )
    inventory = InventoryClient(settings.inventory)
    inventory.upsert_attribute(uuid, PDU_OUTLET_NAMESPACE, {"outlet": fleet.pdu_outlet(OUTLET)})
    fleet.set_faults(0, {"unreachable": True})
    request = {"status": "", "action": "set_power_state", "action_parameter": "cycle", "requester": "alice"}
    inventory.upsert_attribute(uuid, SERVER_CONTROL_NAMESPACE, request)
    queue = TaskQueue.from_settings(settings)
    result = Admission(inventory, queue, settings, worker_id="admission").reconcile(
        inventory.get_server(uuid), TaskKind.SERVER_CONTROL
    )
    assert result.action.value == "queued", result
    pool, fileserver = build_pool(settings, server_control=True)
    pool.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            data = inventory.get_attribute(uuid, SERVER_CONTROL_NAMESPACE).data
            assert isinstance(data, dict)
            if is_terminal(str(data.get("status"))):
                return data
            assert time.monotonic() < deadline, data
            time.sleep(0.05)
    finally:
        pool.stop(10)
        fileserver.stop()


@pytest.fixture
def fleet_with_pdu(bmcsim_factory: Callable[..., BmcFleet]) -> BmcFleet:
    """One Dell-like BMC and a Redfish PDU (power transitions 0.3 s: a PowerCycle's Off lasts that long)."""
    return bmcsim_factory(config=FleetSpec(bmcs=[default_bmc(0)]), pdu=True, power_seconds=0.3)


@pytest.fixture
def power_cycle(
    fleet_with_pdu: BmcFleet,
    clean_inventory: InventoryServer,
    redis_url: str,
    firmware_server: ImageServer,
    tmp_path: Path,
) -> Callable[..., dict[str, Any]]:
    """:func:`_run_power_cycle` on ``fleet_with_pdu`` and the clean inventory: call it with ``fallback=``."""
    return functools.partial(_run_power_cycle, fleet_with_pdu, clean_inventory, redis_url, firmware_server, tmp_path)


def test_a_power_cycle_goes_through_the_pdu_outlet_when_the_bmc_does_not_answer(
    fleet_with_pdu: BmcFleet, power_cycle: Callable[..., dict[str, Any]]
) -> None:
    fleet = fleet_with_pdu
    outlet = fleet.pdu_outlet(OUTLET).removeprefix(fleet.pdu_url)
    assert fleet.pdu_state()["outlets"][outlet] == "On"

    final = power_cycle(fallback=True)

    assert final["status"] == "success", final
    assert (
        f"power cycle done through PDU outlet {fleet.pdu_outlet(OUTLET)} (the BMC did not answer); outlet On"
        in (final["messages"][-1])
    )
    pdu = fleet.pdu_state()
    assert [(r["outlet"], r["action"], r["from_state"]) for r in pdu["log"]] == [(outlet, "PowerCycle", "On")]
    assert pdu["cycles"][outlet] == 1 and pdu["outlets"][outlet] == "On"  # it went Off and came back On
    assert fleet.audit(0)["power"] == []  # nothing reached the BMC
    # The last resort: the BMC was retried first, the outlet used on the last attempt only (queue.max_attempts 3).
    assert final["attempts"] == 3, final
    assert any("will retry" in m for m in final["messages"]), final["messages"]


def test_without_the_setting_the_task_fails_saying_the_bmc_did_not_answer(
    fleet_with_pdu: BmcFleet, power_cycle: Callable[..., dict[str, Any]]
) -> None:
    fleet = fleet_with_pdu
    final = power_cycle(fallback=False)

    assert final["status"] == "failed", final
    assert "did not answer" in final["error"], final
    assert fleet.pdu_state()["log"] == []  # the outlet was never touched


def test_an_inventory_that_cannot_name_the_outlet_is_a_retry_and_the_outlet_is_never_touched(
    fleet_with_pdu: BmcFleet, clean_inventory: InventoryServer, power_cycle: Callable[..., dict[str, Any]]
) -> None:
    # Every read of the outlet attribute answers 503 (the inventory down just then): the run changed nothing, so it
    # is the retryable outcome; on the last attempt, where the fallback runs, that ends the task failed with why.
    fleet = fleet_with_pdu
    with clean_inventory.faults(
        every=1, status=503, methods=["GET"], path_regex=PDU_OUTLET_NAMESPACE.replace(".", r"\.")
    ):
        final = power_cycle(fallback=True)

    assert final["status"] == "failed", final
    assert "the PDU outlet could not be read from the inventory" in final["error"], final
    assert final["attempts"] == 3, final
    assert fleet.pdu_state()["log"] == []  # the outlet was never touched
    assert fleet.audit(0)["power"] == []
