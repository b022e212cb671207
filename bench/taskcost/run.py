"""Task cost benchmark: the Redfish and inventory requests, by kind, and flasher's CPU of one task of each kind.

    .venv/bin/python -m bench.taskcost.run                      # every task kind once; --json, --repeat
    .venv/bin/python -m bench.taskcost.run --tasks dell-bios --profile 25   # and where a worker's CPU goes

Starts a sandbox (:class:`flasher_sandbox.up.stack.Stack`: Redis, the inventory, one ``flasher-sandbox bmc``
process with one BMC per task, an image server; BMCs over HTTPS with the sandbox CA) and runs, in this process,
the service's parts as ``flasher run`` wires them: a :class:`~flasher.service.poller.Poller` with
:class:`~flasher.service.admission.Admission`, and a :class:`~flasher.service.worker.WorkerPool` of one worker
with the install and server-control runners. Each task gets a server of its own (a fresh BMC), is flagged as
an operator would, admitted by one ``poll_once`` and run by the worker; the next starts when it has ended.

Counting: a requests response hook on both HTTP sessions, the worker pool's inventory client
(:class:`~flasher.inventory.client.InventoryClient` takes a session) and every BMC session
(:class:`~flasher.bmc.BMC`'s ``response_hooks``): every response received is one request, classified by method and
path (ids replaced by ``{id}``) and by the thread that sent it (the worker, its heartbeat, the poller). The
admission's requests (the poll) are counted apart from the run's, and so is its CPU (the poll runs in the main
thread: ``time.thread_time``). CPU: this process's ``time.process_time``
from the flag to the task's end (the worker, its heartbeat threads, the poll and admission), less the main
thread's CPU while it waited for the end (its reads of the attribute every 50 ms are the benchmark's, not
flasher's); sampled load beside it. Redis: the calls of each command from the flag to the end (``INFO
commandstats`` of the sandbox's Redis: the poll, the claim, the heartbeat, every fence check, the ack).
``--profile N``: cProfile of the worker threads over every task, the top ``N`` functions by cumulative time, then
by time in the function itself (cProfile counts wall time: waits show as ``acquire`` and ``sleep``; with
``--profile-cpu`` it counts each thread's CPU time instead, ``time.thread_time``: where the CPU goes).

The least each task needs (issue 17) is printed beside the counts; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import math
import pstats
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis
import requests

from bench.support import LoadSampler, workdir
from flasher.bmc import BMC
from flasher.config import Settings
from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from flasher.control.runner import run_server_control
from flasher.install.runner import InstallRunner
from flasher.inventory.client import InventoryClient
from flasher.queue import TaskQueue
from flasher.service.admission import Admission
from flasher.service.poller import Poller
from flasher.service.worker import WorkerPool
from flasher.store.fileserver import FileServer
from flasher.store.store import FirmwareStore
from flasher.task.model import TaskKind
from flasher_sandbox.up.scenario import Scenario, build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

_ENDED = ("success", "failed", "cancelled")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ID = re.compile(r"/(JID_[0-9A-Za-z]+|[0-9]+|[0-9a-f]{16,})(?=/|$)")


@dataclass(frozen=True)
class TaskSpec:
    """One task of the benchmark: its name, the BMC shape, the attribute namespace and what it asks."""

    name: str
    shape: str
    namespace: str
    kind: str  # bios, bmc, set, control


#: The tasks, one server each, in order: index i gets BMC i (Dell-like at even indexes).
TASKS: tuple[TaskSpec, ...] = (
    TaskSpec("dell-bios", "dell", TASK_NAMESPACE, "bios"),
    TaskSpec("smc-bios", "supermicro", TASK_NAMESPACE, "bios"),
    TaskSpec("dell-bmc", "dell", TASK_NAMESPACE, "bmc"),
    TaskSpec("smc-bmc", "supermicro", TASK_NAMESPACE, "bmc"),
    TaskSpec("dell-set", "dell", TASK_NAMESPACE, "set"),
    TaskSpec("smc-set", "supermicro", TASK_NAMESPACE, "set"),
    TaskSpec("dell-power-cycle", "dell", SERVER_CONTROL_NAMESPACE, "set_power_state:cycle"),
    TaskSpec("smc-power-off", "supermicro", SERVER_CONTROL_NAMESPACE, "set_power_state:off"),
    TaskSpec("dell-boot-pxe", "dell", SERVER_CONTROL_NAMESPACE, "set_next_boot_device:pxe"),
    TaskSpec("smc-power-state", "supermicro", SERVER_CONTROL_NAMESPACE, "get_power_state:"),
)


def _path_kind(path: str) -> str:
    path = _UUID.sub("{id}", path.split("?", 1)[0])
    return _ID.sub("/{id}", path)


def _role(thread: str) -> str:
    if thread.startswith("flasher-worker"):
        return "worker"
    if thread.startswith("beat-"):
        return "heartbeat"
    return "poll"


class RequestCounter:
    """A requests response hook counting ``(target, thread role, "METHOD path")``; thread-safe."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        request = response.request
        key = (
            self.target,
            _role(threading.current_thread().name),
            f"{request.method} {_path_kind(request.path_url)}",
        )
        with self._lock:
            self.counts[key] += 1
        return response

    def take(self) -> Counter[tuple[str, str, str]]:
        """The counts since the last call, then start again."""
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return counts


def redfish_kind(line: str) -> str:
    """A Redfish request's kind for the summary: login, logout, task poll, FirmwareInventory, ... ."""
    method, path = line.split(" ", 1)
    if path.rstrip("/").endswith("SessionService/Sessions") and method == "POST":
        return "login"
    if "SessionService/Sessions/" in path and method == "DELETE":
        return "logout"
    if method != "GET":
        return f"{method} {path}"
    if "/TaskService/Tasks/" in path or "/Jobs/" in path or "TaskMonitor" in path:
        return "task poll"
    if "FirmwareInventory" in path:
        return "GET FirmwareInventory" + (" member" if path.rstrip("/").endswith("{id}") else "")
    return f"GET {path}"


def task_data(spec: TaskSpec, index: int, scenarios: dict[str, Scenario]) -> dict[str, Any]:
    """The attribute an operator writes for ``spec`` on server ``index``."""
    if spec.namespace == SERVER_CONTROL_NAMESPACE:
        action, parameter = spec.kind.split(":")
        data: dict[str, Any] = {"status": "", "action": action, "priority": 1}
        if parameter:
            data["action_parameter"] = parameter
        return data
    if spec.kind == "set":
        name = scenarios["any"].sets[spec.shape]["name"]
        return {"status": "", "priority": 1, "requester": "bench", "method": "out-of-band", "firmwareSet": name}
    return dict(scenarios[spec.kind].tasks[index].data)


def _attribute(stack: Stack, uuid: str, namespace: str) -> dict[str, Any]:
    response = stack.http.get(f"{stack.inventory_url}/api/v1/servers/{uuid}/attributes/{namespace}", timeout=30)
    response.raise_for_status()
    data: dict[str, Any] = response.json()["record"]["data"]
    return data


class _ThreadProfiles:
    """cProfile of every thread started while enabled (the worker threads); merged into one report."""

    def __init__(self, *, cpu: bool = False) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        self._cpu = cpu

    def hook(self, *_: Any) -> None:
        """``threading.setprofile``'s function: a thread's first call enables a profile of its own for it (which
        replaces this function in that thread)."""
        profile = cProfile.Profile(time.thread_time) if self._cpu else cProfile.Profile()
        with self._lock:
            self.profiles.append(profile)
        profile.enable()

    def report(self, top: int, dump: str | None = None) -> str:
        """The top ``top`` functions of the merged profiles (cumulative, then own time); ``dump``: also write the
        merged stats there (``pstats`` format, for ``python -m pstats``)."""
        out = io.StringIO()
        stats: pstats.Stats | None = None
        for profile in self.profiles:
            profile.create_stats()
            if not profile.stats:
                continue
            if stats is None:
                stats = pstats.Stats(profile, stream=out)
            else:
                stats.add(profile)
        if stats is None:
            return "(nothing profiled)"
        if dump:
            stats.dump_stats(dump)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        return out.getvalue()


def run(
    names: list[str],
    repeat: int,
    install_seconds: float,
    heartbeat: float,
    bmc_poll: float,
    profile_top: int,
    keep_alive: bool = False,
    profile_cpu: bool = False,
    profile_out: str | None = None,
) -> dict[str, Any]:
    """Run every task of ``names`` ``repeat`` times (each on a fresh server); returns every figure."""
    specs = [spec for spec in TASKS if spec.name in names]
    count = len(TASKS) * repeat
    count += count % 2
    common = {"special": False, "install_seconds": install_seconds, "offline_seconds": 1.0, "power_seconds": 0.3}
    scenarios = {
        "any": build(count, **common),  # type: ignore[arg-type]
        "bios": build(count, component="bios", **common),  # type: ignore[arg-type]
        "bmc": build(count, component="bmc", **common),  # type: ignore[arg-type]
    }
    results: list[dict[str, Any]] = []
    profiles = _ThreadProfiles(cpu=profile_cpu)
    with workdir("bench-taskcost-") as work, Stack(work, scenarios["any"]).running() as stack:
        options = ReplicaOptions(concurrency=1, heartbeat_interval=heartbeat, bmc_poll_interval=bmc_poll)
        config = stack.replica_settings(options, worker_id="bench-taskcost", http_port=0)
        config["service"]["poll_interval"] = 3600  # the benchmark polls itself
        config["events"] = {"enabled": False}
        if keep_alive:
            config["bmc"]["keep_alive"] = True
        settings = Settings(**config)
        worker_counter, poll_counter, bmc_counter = (
            RequestCounter("inventory"),
            RequestCounter("inventory"),
            RequestCounter("redfish"),
        )
        worker_session, poll_session = requests.Session(), requests.Session()
        worker_session.hooks["response"].append(worker_counter)
        poll_session.hooks["response"].append(poll_counter)
        worker_inventory = InventoryClient(settings.inventory, session=worker_session)
        poll_inventory = InventoryClient(settings.inventory, session=poll_session)
        queue = TaskQueue.from_settings(settings)
        poller = Poller(poll_inventory, queue, Admission(poll_inventory, queue, settings, worker_id="bench"), settings)
        store = FirmwareStore(settings.store, attempts=2, backoff=0.1)
        fileserver = FileServer(settings.fileserver, store)
        fileserver.start()

        def open_bmc(address: str, username: str, password: str) -> BMC:
            return BMC(address, username, password, settings=settings.bmc, response_hooks=[bmc_counter])

        pool = WorkerPool(
            queue,
            worker_inventory,
            settings,
            {TaskKind.INSTALL: InstallRunner(store, fileserver), TaskKind.SERVER_CONTROL: run_server_control},
            open_bmc,
            worker_id="bench-taskcost",
            idle_wait=0.05,
        )
        sampler = LoadSampler(every=2.0).start()
        if profile_top:  # every thread started from now on: the workers and their heartbeats
            threading.setprofile(profiles.hook)
        pool.start()
        try:
            index = 0
            for _ in range(repeat):
                for spec in specs:
                    while scenarios["any"].fleet.bmcs[index].shape_name != spec.shape:
                        index += 1
                    counters = (worker_counter, poll_counter, bmc_counter)
                    results.append(_one(stack, scenarios, spec, index, poller, pool, counters))
                    index += 1
        finally:
            threading.setprofile(None)
            sampler.stop()
            pool.stop(10)
            fileserver.stop()
    report: dict[str, Any] = {
        "install_seconds": install_seconds,
        "heartbeat_interval": heartbeat,
        "bmc_poll_interval": bmc_poll,
        "keep_alive": keep_alive,
        "load": sampler.summary(),
        "tasks": results,
    }
    if profile_top:
        report["profile"] = profiles.report(profile_top, profile_out)
    return report


def _one(
    stack: Stack,
    scenarios: dict[str, Scenario],
    spec: TaskSpec,
    index: int,
    poller: Poller,
    pool: WorkerPool,
    counters: tuple[RequestCounter, RequestCounter, RequestCounter],
) -> dict[str, Any]:
    name = scenarios["any"].names[index]
    uuid = scenarios["any"].uuids[name]
    for counter in counters:
        counter.take()
    redis_before = _redis_calls(stack)
    cpu = time.process_time()
    started = time.monotonic()
    stack.flag(uuid, spec.namespace, task_data(spec, index, scenarios))
    polling = time.thread_time()
    poller.poll_once()
    admission_cpu = time.thread_time() - polling
    admitted = counters[1].take()
    deadline = time.monotonic() + 300
    data: dict[str, Any] = {}
    waiting = time.thread_time()  # the benchmark's own reads of the attribute, not flasher's: left out
    while time.monotonic() < deadline:
        data = _attribute(stack, uuid, spec.namespace)
        if data.get("status") in _ENDED and not pool.running():
            break
        time.sleep(0.05)
    wall = time.monotonic() - started
    cpu_s = time.process_time() - cpu - (time.thread_time() - waiting)
    worker = counters[0].take()
    redfish = counters[2].take()
    redis_calls = _redis_calls(stack) - redis_before
    return {
        "task": spec.name,
        "server": name,
        "status": data.get("status"),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu_s, 3),
        "admission_cpu_s": round(admission_cpu, 3),
        "admission": {f"{k[2]}": v for k, v in sorted(admitted.items())},
        "inventory": {f"{k[1]}: {k[2]}": v for k, v in sorted(worker.items())},
        "redfish": {k[2]: v for k, v in sorted(redfish.items())},
        "redfish_by_kind": dict(Counter(redfish_kind(k[2]) for k in redfish.elements())),
        "state_changes": _state_changes(stack, uuid, spec.namespace),
        "redis": dict(redis_calls),
    }


def _redis_calls(stack: Stack) -> Counter[str]:
    """Calls of each Redis command so far (``INFO commandstats``; scripts count as ``evalsha``), less the
    ``info`` call that reads them."""
    assert stack.redis_url is not None
    client = redis.Redis.from_url(stack.redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def _state_changes(stack: Stack, uuid: str, namespace: str) -> int:
    """How many times the attribute's status changed over the task's writes (the sandbox inventory's journal)."""
    statuses = [entry["data"].get("status") for entry in stack.attribute_journal(server=uuid, namespace=namespace)]
    changes = 0
    for before, after in itertools.pairwise(statuses):
        changes += before != after
    return changes


def _table(report: dict[str, Any]) -> str:
    lines = [
        "| task | status | wall (s) | CPU (s) | of it the poll (s) | Redfish requests | login | logout | "
        "FirmwareInventory GETs | task polls | other GETs | POST/PATCH | inventory requests (worker) | "
        "writes (PUT) | of them heartbeat | state changes | admission requests | Redis calls |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task in report["tasks"]:
        kinds: Counter[str] = Counter(task["redfish_by_kind"])
        fw = sum(v for k, v in kinds.items() if k.startswith("GET FirmwareInventory"))
        polls = kinds["task poll"]
        gets = sum(v for k, v in kinds.items() if k.startswith("GET ")) - fw
        writes = sum(v for k, v in kinds.items() if k.startswith(("POST ", "PATCH ")))
        inventory = task["inventory"]
        puts = sum(v for k, v in inventory.items() if " PUT " in k or " POST " in k)
        beats = sum(v for k, v in inventory.items() if k.startswith("heartbeat:") and (" PUT " in k or " POST " in k))
        lines.append(
            f"| {task['task']} | {task['status']} | {task['wall_s']:.1f} | {task['cpu_s']:.2f} | "
            f"{task.get('admission_cpu_s', float('nan')):.2f} | "
            f"{sum(kinds.values())} | {kinds['login']} | {kinds['logout']} | {fw} | {polls} | {gets} | {writes} | "
            f"{sum(inventory.values())} | {puts} | {beats} | {task['state_changes']} | "
            f"{sum(task['admission'].values())} | "
            f"{sum(v for k, v in task.get('redis', {}).items() if k not in ('info', 'hello', 'client|setinfo'))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.taskcost.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=[t.name for t in TASKS], choices=[t.name for t in TASKS])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each task (each on its own server)")
    parser.add_argument("--install-seconds", type=float, default=2.0, help="simulated install time (s)")
    parser.add_argument("--heartbeat", type=float, default=2.0, help="service.heartbeat_interval (s)")
    parser.add_argument("--bmc-poll", type=float, default=0.5, help="bmc.poll_interval (s)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile the workers: top N functions")
    parser.add_argument("--profile-cpu", action="store_true", help="--profile counts CPU time, not wall time")
    parser.add_argument("--profile-out", metavar="FILE", help="also write the merged profile there (pstats)")
    parser.add_argument("--keep-alive", action="store_true", help="bmc.keep_alive: one connection per BMC session")
    parser.add_argument("--json", action="store_true", help="print every figure as JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    report = run(
        args.tasks,
        args.repeat,
        args.install_seconds,
        args.heartbeat,
        args.bmc_poll,
        args.profile,
        args.keep_alive,
        profile_cpu=args.profile_cpu,
        profile_out=args.profile_out,
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_table(report))
        print(
            f"\n{report['load']}; install {args.install_seconds} s, heartbeat {args.heartbeat} s, "
            f"bmc.poll_interval {args.bmc_poll} s; ceil(run/heartbeat) per task: "
            + ", ".join(f"{t['task']} {math.ceil(t['wall_s'] / args.heartbeat)}" for t in report["tasks"])
        )
        if args.profile:
            print(report["profile"])
    failed = [t["task"] for t in report["tasks"] if t["status"] != "success"]
    if failed:
        print(f"tasks that did not succeed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
