"""How many requests a task costs the BMC and the inventory (issue 17), counted against the simulated BMCs and the
sandbox inventory with a requests response hook on both HTTP sessions (``BMC(response_hooks=...)`` and the
inventory client's session). Upper bounds on each kind of request, from the least a task needs."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
import requests

from flasher.bmc import BMC
from flasher.config import Settings
from flasher.install.runner import InstallRunner
from flasher.inventory import InventoryClient
from flasher.queue import TaskQueue
from flasher.service.worker import WorkerPool
from flasher.store.fileserver import FileServer
from flasher.store.store import FirmwareStore
from flasher.task.model import TaskKind
from tests.support.install_env import InstallWorld

pytestmark = pytest.mark.integration

SUPERMICRO, DELL = 1, 0


class Counts:
    """A response hook counting ``"METHOD path"`` (query included) and the thread that sent it."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.threads: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        with self._lock:
            self.requests[f"{response.request.method} {response.request.path_url}"] += 1
            self.threads[threading.current_thread().name.split("-")[0]] += 1
        return response

    def matching(self, method: str, part: str) -> int:
        return sum(n for line, n in self.requests.items() if line.startswith(f"{method} ") and part in line)


@contextmanager
def counted_pool(
    world: InstallWorld, settings: Settings, *, more_hooks: Sequence[Callable[..., Any]] = ()
) -> Iterator[tuple[Counts, Counts]]:
    """A worker pool of the install runner whose BMC sessions (with ``more_hooks``) and inventory client count
    their requests."""
    redfish, inventory = Counts(), Counts()
    session = requests.Session()
    session.hooks["response"].append(inventory)
    store = FirmwareStore(settings.store, attempts=2, backoff=0.1)
    fileserver = FileServer(settings.fileserver, store)
    fileserver.start()
    pool = WorkerPool(
        TaskQueue.from_settings(settings),
        InventoryClient(settings.inventory, session=session),
        settings,
        {TaskKind.INSTALL: InstallRunner(store, fileserver)},
        lambda address, username, password: BMC(
            address, username, password, settings=settings.bmc, response_hooks=[redfish, *more_hooks]
        ),
        worker_id="worker-a",
        idle_wait=0.05,
    )
    pool.start()
    try:
        yield redfish, inventory
    finally:
        pool.stop(10)
        fileserver.stop()


def test_a_bios_install_reads_the_firmware_inventory_in_one_request_and_each_resource_once(
    install_world: InstallWorld,
) -> None:
    w = install_world
    uuid = w.flag(SUPERMICRO, {"Firmware": {"bios": {"version": "1.5a"}}})
    with counted_pool(w, w.settings) as (redfish, _):
        final = w.wait_final(uuid)

    assert final["status"] == "success", final
    seen = dict(redfish.requests)
    # One session, one log-out.
    assert redfish.matching("POST", "/SessionService/Sessions") == 1, seen
    assert redfish.matching("DELETE", "/SessionService/Sessions/") == 1, seen
    # The FirmwareInventory is read with $expand (members and their RelatedItem in one request): the read before
    # and the read-back, which is also what the inventory's components get; no member, no device read on its own.
    inventory_reads = redfish.matching("GET", "/UpdateService/FirmwareInventory")
    assert inventory_reads == redfish.matching("GET", "/UpdateService/FirmwareInventory?$expand=") == 2, seen
    assert redfish.matching("GET", "/UpdateService/FirmwareInventory/") == 0, seen
    for device in ("/NetworkAdapters/", "/Drives/", "/PowerSupplies/", "/Controllers/"):
        assert redfish.matching("GET", device) == 0, seen
    # Nothing but the task and the power state is read twice with the same answer expected.
    polls = redfish.matching("GET", "/TaskService/Tasks/")
    repeated = {line: n for line, n in seen.items() if n > 1 and "/TaskService/Tasks/" not in line}
    assert all(
        "FirmwareInventory" in line or line.startswith("GET /redfish/v1/Systems/") or "UpdateService" in line
        for line in repeated
    ), repeated
    # The least: session, inventory read, update request, polls, read-back, log-out; at most 1.5 times that.
    least = 1 + 1 + 1 + polls + 1 + 1
    # Beside it: the service root; the Systems, expanded (the host's initial power state comes with it); one
    # power read, for the restore at the end; one UpdateService read (the install uses it: multipart, no install
    # since); the board's model for the BIOS's Preserve* options (Supermicro: the Managers, expanded); the BMC's
    # tasks under way before the install (never two installs at once, issue 12): the Tasks collection at the
    # schema's URI, expanded, without the TaskService.
    _assert_the_extras(seen, system="/redfish/v1/Systems/1", power_reads=1)
    assert seen.get("GET /redfish/v1/Managers?$expand=.($levels=1)") == 1, seen
    assert sum(seen.values()) <= least + 6, seen


def _assert_the_extras(seen: dict[str, int], *, system: str, power_reads: int) -> None:
    """The requests of a BIOS install beside issue 17's least that every vendor makes, each at most once."""
    assert seen.get("GET /redfish/v1/") == 1, seen
    assert seen.get("GET /redfish/v1/Systems?$expand=.($levels=1)") == 1, seen
    assert seen.get("GET /redfish/v1/Systems") is None, seen
    assert seen.get(f"GET {system}") == power_reads, seen
    assert seen.get("GET /redfish/v1/UpdateService") == 1, seen
    assert seen.get("GET /redfish/v1/TaskService") is None, seen
    assert seen.get("GET /redfish/v1/TaskService/Tasks?$expand=.($levels=1)") == 1, seen


def test_a_bios_install_that_waits_for_a_host_reset_reads_the_power_once_around_the_reset(
    install_world: InstallWorld,
) -> None:
    w = install_world
    uuid = w.flag(DELL, {"Firmware": {"bios": {"version": "2.12.0"}}})
    with counted_pool(w, w.settings) as (redfish, _):
        final = w.wait_final(uuid)

    assert final["status"] == "success", final
    seen = dict(redfish.requests)
    system = "/redfish/v1/Systems/System.Embedded.1"
    assert redfish.matching("POST", f"{system}/Actions/ComputerSystem.Reset") == 1, seen
    polls = redfish.matching("GET", "/TaskService/Tasks/")
    least = 1 + 1 + 1 + polls + 1 + 1
    # Beside the least: as on any BMC (the root, the Systems expanded, the UpdateService, the tasks under way), the
    # SimpleUpdate ActionInfo, and the host reset: one System read that decides it (reset, or power on a host
    # that is off), the reset itself, and the power read for the restore at the end. The reset is not followed by
    # power reads: the BMC's task, followed next, says when it applied the BIOS.
    _assert_the_extras(seen, system=system, power_reads=2)
    assert seen.get("GET /redfish/v1/UpdateService/SimpleUpdateActionInfo") == 1, seen
    assert sum(seen.values()) <= least + 8, seen


def test_the_simulator_expands_as_the_service_root_offers(install_world: InstallWorld) -> None:
    w = install_world
    base, verify = w.fleet.url(DELL), str(w.fleet.ca_bundle)

    def get(path: str) -> requests.Response:
        return requests.get(f"{base}{path}", auth=("root", "calvin"), verify=verify, timeout=10)

    offered = get("/redfish/v1").json()["ProtocolFeaturesSupported"]["ExpandQuery"]
    assert offered["MaxLevels"] == 2 and offered["ExpandAll"] and offered["NoLinks"] and offered["Links"]
    inventory = "/redfish/v1/UpdateService/FirmwareInventory"
    plain, one, two = (get(inventory + q).json() for q in ("", "?$expand=.($levels=1)", "?$expand=.($levels=2)"))
    assert [m["@odata.id"] for m in one["Members"]] == [m["@odata.id"] for m in plain["Members"]]
    assert all("Version" in m for m in one["Members"])
    related = [m["RelatedItem"][0] for m in one["Members"] if m.get("RelatedItem")]
    assert related and all(set(r) == {"@odata.id"} for r in related)  # one level: RelatedItem stays a link
    deeper = [m["RelatedItem"][0] for m in two["Members"] if m.get("RelatedItem")]
    assert deeper and all("Name" in r for r in deeper)  # two levels: the device itself
    # "~" expands only what is inside Links, "." only what is outside.
    root_links = get("/redfish/v1?$expand=~").json()
    assert "Id" not in root_links["Systems"] and "Members" in root_links["Links"]["Sessions"]
    root_dot = get("/redfish/v1?$expand=.").json()
    assert "Members" in root_dot["Systems"] and set(root_dot["Links"]["Sessions"]) == {"@odata.id"}
    for value, status in (("(levels=2)", 400), (".($levels=3)", 400), ("*", 200), ("*($levels=2)", 200)):
        assert get(f"/redfish/v1/Systems?$expand={value}").status_code == status, value
    assert get("/redfish/v1/Systems?$top=1").status_code == 501


def _client_port(response: requests.Response) -> int | None:
    connection = getattr(response.raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    return sock.getsockname()[1] if sock is not None else None


@pytest.mark.parametrize("keep_alive", [False, True])
def test_keep_alive_makes_one_connection_per_task_but_a_new_one_for_each_action(
    install_world: InstallWorld, keep_alive: bool
) -> None:
    w = install_world
    settings = w.with_settings(bmc={"keep_alive": keep_alive})
    uuid = w.flag(SUPERMICRO, {"Firmware": {"bios": {"version": "1.5a"}}})
    ports: list[tuple[str, int | None]] = []
    closing: list[bool] = []

    def hook(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        ports.append((response.request.method or "", _client_port(response)))
        closing.append(response.request.headers.get("Connection") == "close")
        return response

    with counted_pool(w, settings, more_hooks=[hook]) as (redfish, _):
        final = w.wait_final(uuid)

    assert final["status"] == "success", final
    requests_sent = sum(redfish.requests.values())
    connections = {port for _, port in ports}
    posts = [port for method, port in ports if method == "POST"]
    assert len(ports) == requests_sent
    if not keep_alive:  # sushy's way: every request asks the BMC to close its connection
        assert all(closing), closing
    else:
        assert not any(closing) and None not in connections, ports
        # One connection for the reads, and a new one for each action (log-in, the upload): never more.
        assert len(connections) <= len(posts) + 2 < requests_sent, ports
        assert len(set(posts)) == len(posts)  # each POST on a connection of its own
