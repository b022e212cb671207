"""Server-control tasks through the service's own parts: admission, the Redis queue and the worker pool, beside
install tasks on the same servers (sandbox inventory, Redis, simulated BMCs)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from flasher.constants import SERVER_CONTROL_NAMESPACE
from flasher.service.admission import Action, Admission
from flasher.service.worker import WorkerPool
from flasher.task.model import TaskKind, is_terminal
from tests.support.control_helpers import messages_of
from tests.support.install_env import InstallWorld

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SUPERMICRO = 1
PLATFORM = {"Firmware": {"bmc": {"version": "01.02.20"}, "bios": {"version": "1.5a"}}}


@contextmanager
def both_kinds(world: InstallWorld) -> Iterator[WorkerPool]:
    """A running worker pool with the install runner and the server-control runner."""
    with world.pool(worker_id="worker-a", server_control=True) as pool:
        yield pool


def control_attribute(world: InstallWorld, uuid: str) -> dict[str, Any]:
    data = world.inventory.get_attribute(uuid, SERVER_CONTROL_NAMESPACE).data
    assert isinstance(data, dict)
    return data


def poll_until_ended(world: InstallWorld, uuid: str, admission: Admission, timeout: float = 60) -> list[Action]:
    """Reconcile the server's control attribute every 0.1 s, as the poller would, until the task ends; returns
    the admission actions seen."""
    actions: list[Action] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = world.inventory.get_server(uuid)
        attribute = server.attribute(SERVER_CONTROL_NAMESPACE)
        assert attribute is not None
        if is_terminal(str(attribute.as_object().get("status"))):
            return actions
        actions.append(admission.reconcile(server, TaskKind.SERVER_CONTROL).action)
        time.sleep(0.1)
    raise AssertionError(f"control task did not end: {control_attribute(world, uuid)}")


def test_a_control_task_waits_for_the_running_install_on_its_server(install_world: InstallWorld) -> None:
    w = install_world
    admission = Admission(w.inventory, w.queue, w.settings, worker_id="admission")
    uuid = w.flag(SUPERMICRO, PLATFORM)  # install: BMC (with its own restart) and BIOS
    with both_kinds(w):
        w.wait_until(uuid, lambda d: d.get("status") == "active", "the install running")
        w.inventory.upsert_attribute(
            uuid,
            SERVER_CONTROL_NAMESPACE,
            {"action": "set_power_state", "action_parameter": "cycle", "status": "", "priority": 3, "requester": "bob"},
        )
        actions = poll_until_ended(w, uuid, admission)
        install = w.wait_final(uuid)
    control = control_attribute(w, uuid)

    assert install["status"] == "success", install
    assert control["status"] == "success", control
    assert Action.WAITING in actions  # the queue refused a second task for the server while the install ran
    messages = messages_of(control)
    assert any(m.startswith("waiting: install task") and "is running on this server" in m for m in messages)
    assert messages[-1] == "server power state set successful: cycle"
    # The control task was claimed only after the install had finished, and its power request came after every
    # install request on the BMC.
    claimed = next(line.split(" ", 1)[0] for line in control["messages"] if "claimed by" in line)
    assert claimed >= install["completedAt"]
    audit = w.fleet.audit(SUPERMICRO)
    install_ends = [r["end"] for r in audit["installs"]]
    cycles = [r for r in audit["power"] if r["action"] in ("PowerCycle", "ForceRestart")]
    assert install_ends and all(end is not None for end in install_ends)
    assert cycles and all(cycles[-1]["start"] >= end for end in install_ends)
    assert audit["overlapping_installs"] == 0


def test_an_unknown_action_fails_at_admission_listing_the_valid_ones(install_world: InstallWorld) -> None:
    w = install_world
    uuid = w.servers[SUPERMICRO]
    w.inventory.upsert_attribute(uuid, SERVER_CONTROL_NAMESPACE, {"action": "reboot", "status": ""})
    admission = Admission(w.inventory, w.queue, w.settings, worker_id="admission")
    result = admission.reconcile(w.inventory.get_server(uuid), TaskKind.SERVER_CONTROL)
    assert result.action is Action.FAILED
    data = control_attribute(w, uuid)
    assert data["status"] == "failed"
    assert data["error"] == (
        "field 'action': value \"reboot\" is not a known server-control action (known: set_power_state, "
        "get_power_state, power_cycle_bmc, set_next_boot_device, pxe_boot_persistent, provision)"
    )

    w.inventory.replace_attribute(
        uuid, SERVER_CONTROL_NAMESPACE, {"action": "set_power_state", "action_parameter": "hibernate", "status": ""}
    )
    assert admission.reconcile(w.inventory.get_server(uuid), TaskKind.SERVER_CONTROL).action is Action.FAILED
    assert control_attribute(w, uuid)["error"] == (
        "field 'action_parameter': value \"hibernate\" is not valid for action 'set_power_state' "
        "(valid: on, off, soft, cycle, reset)"
    )
