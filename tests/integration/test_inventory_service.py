"""Inventory tasks (``sh.hollow.flasher.inventory``) through the service's parts: admission, the Redis queue and
the worker pool, beside install tasks on the same server (sandbox inventory, Redis, simulated BMCs)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flasher.constants import INVENTORY_NAMESPACE, OUTOFBAND_STATUS_NAMESPACE
from flasher.service.admission import Action, Admission
from flasher.task.model import TaskKind, is_terminal
from tests.support.control_helpers import messages_of
from tests.support.install_env import InstallWorld

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SUPERMICRO = 1
PLATFORM = {"Firmware": {"bmc": {"version": "01.02.20"}, "bios": {"version": "1.5a"}}}


def _attribute(world: InstallWorld, uuid: str) -> dict[str, Any]:
    data: dict[str, Any] = world.inventory.get_attribute(uuid, INVENTORY_NAMESPACE).as_object()
    return data


def _poll_until_ended(world: InstallWorld, uuid: str, admission: Admission, timeout: float = 60) -> list[Action]:
    actions: list[Action] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = world.inventory.get_server(uuid)
        attribute = server.attribute(INVENTORY_NAMESPACE)
        assert attribute is not None
        if is_terminal(str(attribute.as_object().get("status"))):
            return actions
        actions.append(admission.reconcile(server, TaskKind.INVENTORY).action)
        time.sleep(0.1)
    raise AssertionError(f"inventory task did not end: {_attribute(world, uuid)}")


def test_a_collection_waits_for_the_install_and_then_records_what_the_bmc_reports(
    install_world: InstallWorld,
) -> None:
    w = install_world
    admission = Admission(w.inventory, w.queue, w.settings, worker_id="admission")
    uuid = w.flag(SUPERMICRO, PLATFORM)
    with w.pool(worker_id="worker-a", inventory=True):
        w.wait_until(uuid, lambda d: d.get("status") == "active", "the install running")
        w.inventory.upsert_attribute(uuid, INVENTORY_NAMESPACE, {"status": "", "requester": "carol"})
        actions = _poll_until_ended(w, uuid, admission)
        install = w.wait_final(uuid)
    collection = _attribute(w, uuid)
    assert install["status"] == "success", install
    assert collection["status"] == "success", collection
    assert Action.WAITING in actions  # one task per server, whatever the kinds
    messages = messages_of(collection)
    assert any(m.startswith("waiting: install task") for m in messages)
    assert messages[-1].startswith("collected supermicro x12stw SM000001: "), messages[-1]
    assert " 0 removed" in messages[-1] and "1 added" in messages[-1], messages[-1]  # the chassis is new
    claimed = next(line.split(" ", 1)[0] for line in collection["messages"] if "claimed by" in line)
    assert claimed >= install["completedAt"]
    # The versions in the inventory are the BMC's, after the install and after the collection alike.
    state = w.fleet.state(SUPERMICRO)
    components = w.inventory.list_components(uuid)
    by_slug = {c.component_type_slug: c for c in components}
    assert by_slug["bmc"].installed_firmware() == "01.02.20"
    assert by_slug["bios"].installed_firmware() == "1.5a"
    installed = {c["slug"]: c["version"] for c in state["components"] if c["slug"] in ("bmc", "bios")}
    assert installed == {"bmc": "01.02.20", "bios": "1.5a"}
    # The seeded components were matched, not re-created: the BMC's history of versions is kept.
    bmc_versions = [v for v in by_slug["bmc"].versioned_attributes if v.namespace == OUTOFBAND_STATUS_NAMESPACE]
    assert bmc_versions and bmc_versions[0].as_object()["firmware"]["installed"] == "01.02.20"
