"""Replacement requests written while tasks run are never lost (issue 12, item 4).

Real processes: Redis, the sandbox inventory, simulated BMCs and three ``flasher run`` replicas. On each of
:data:`SERVERS` servers, :data:`ROUNDS` rounds one after another (:data:`SERVERS` x :data:`ROUNDS` rounds in all):
an operator requests a forced install of the server's firmware set; once it is ``active``, two more operators each
write a replacement request (a forced BIOS install, a forced BMC install) at a random moment within
:data:`WRITE_WITHIN` seconds, with :func:`flasher.task.request.submit` (what ``flasher task install`` does: write,
read back, write again when a status write landed over it). The round ends when the attribute shows an ended task
and both writers returned.

The sandbox inventory's journal (every attribute write, in the order the writes took effect) is the ground truth.
A request is identified by its digest (:func:`flasher.task.request.request_task_id`: the ``taskID`` flasher gives
it). A request an operator wrote is

* **ran** when some write carries its ``taskID`` with an ended status (``success``, ``failed``, ``cancelled``);
* **reported replaced** when some write's messages say that it was replaced by a later request (``replaces install
  task <id>`` or ``install task <id> (replaced by this request)``);
* **superseded by an operator** when its writer was told so (``Verdict.SUPERSEDED``), flasher never took it up,
  and the journal shows another operator's request written after its last write (the last write wins: the
  operator's business). When a flasher status write landed over it before that later request (the writer had
  not read back yet), it is counted as superseded too, and reported apart: the later request would have
  replaced it all the same, and its writer was told;
* **lost** otherwise. The test requires 0 lost.

The journal also counts how often a flasher status write landed right over an operator's request (the one round
trip between flasher's re-read and its write), and how often the writers wrote their request again because of it.

``FLASHER_RACE_WRITERS=raw`` makes the writers write once without reading back (as ``flasher task`` did before this
fix, or ``curl``): the figures then show what the read-back is for (and the test fails when a request was lost).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flasher.config import InventorySettings
from flasher.constants import TASK_NAMESPACE
from flasher.inventory import InventoryClient
from flasher.service.admission import request_task_id
from flasher.task.model import TaskKind
from flasher_sandbox.up.scenario import build
from flasher_sandbox.up.stack import ReplicaOptions, Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]

SERVERS = 17
ROUNDS = 3
WRITE_WITHIN = 1.5
OPTIONS = ReplicaOptions(
    concurrency=4,
    poll_interval=1.0,
    poll_jitter=0.2,
    lease_seconds=6.0,
    heartbeat_interval=1.0,
    stale_after=10.0,
    bmc_poll_interval=0.2,
)
TERMINAL = frozenset({"success", "failed", "cancelled"})
RAW = os.environ.get("FLASHER_RACE_WRITERS", "") == "raw"


@dataclass
class Written:
    """One request an operator wrote: the server, the data, its digest, and what its writer was told."""

    server: str
    data: dict[str, Any]
    task_id: str
    verdict: str | None = None
    restored: int = 0


@dataclass
class Ledger:
    """Every request the test's operators wrote (thread-safe)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    written: list[Written] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, item: Written) -> None:
        with self.lock:
            self.written.append(item)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    scenario = build(SERVERS, install_seconds=0.2, offline_seconds=0.3, power_seconds=0.1, image_size=32 * 1024)
    with Stack(tmp_path / "stack", scenario).running() as running:
        yield running


def _targets(stack: Stack, name: str) -> tuple[str, dict[str, str]]:
    """The firmware set of server ``name`` and its target version per component."""
    spec = stack.scenario.sets[stack.scenario.shape_of(name)]
    return spec["name"], {fw["component"]: fw["version"] for fw in spec["firmware"]}


def _write(client: InventoryClient, server: str, data: dict[str, Any], ledger: Ledger) -> Written:
    item = Written(server, data, request_task_id(server, TaskKind.INSTALL, data))
    ledger.add(item)
    if RAW:
        client.upsert_attribute(server, TASK_NAMESPACE, data)
        return item
    from flasher.task.request import submit  # the new API; raw mode also runs against code from before it

    submission = submit(client, server, TaskKind.INSTALL, data, confirm_for=30.0, interval=0.5)
    item.verdict, item.restored = submission.verdict.value, submission.restored
    return item


def _wait(client: InventoryClient, server: str, done: Any, timeout: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        data = client.get_attribute(server, TASK_NAMESPACE).as_object()
        if done(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"server {server}: {what} within {timeout:.0f} s; the attribute: {data}")
        time.sleep(0.5)


def _rounds(stack: Stack, name: str, seed: int, ledger: Ledger) -> None:
    client = InventoryClient(InventorySettings(url=stack.inventory_url, retry_deadline=30, retry_max_wait=1))
    server = stack.scenario.uuids[name]
    firmware_set, versions = _targets(stack, name)
    rng = random.Random(seed)
    try:
        for number in range(ROUNDS):
            base = {
                "method": "out-of-band",
                "status": "",
                "priority": 2,
                "requester": f"base-{name}-{number}",
                "firmwareSet": firmware_set,
                "force": True,
            }
            first = _write(client, server, base, ledger)
            _wait(
                client,
                server,
                lambda d, t=first.task_id: d.get("taskID") == t and d.get("status") in ("active", *TERMINAL),
                60,
                "the base request did not start",
            )
            replacements = [
                {
                    "requester": f"w1-{name}-{number}",
                    "priority": 1,
                    "Firmware": {"bios": {"version": versions["bios"]}},
                },
                {"requester": f"w2-{name}-{number}", "priority": 3, "Firmware": {"bmc": {"version": versions["bmc"]}}},
            ]
            writers = []
            for extra in replacements:
                data = {"method": "out-of-band", "status": "", "force": True, **extra}
                delay = rng.uniform(0, WRITE_WITHIN)
                writers.append(threading.Thread(target=_late_write, args=(client, server, data, delay, ledger)))
            for writer in writers:
                writer.start()
            for writer in writers:
                writer.join(90)
            _wait(client, server, lambda d: d.get("status") in TERMINAL, 90, "no task ended")
    except Exception as exc:  # reported by the test, with the others
        ledger.error(f"{name}: {type(exc).__name__}: {exc}")


def _late_write(client: InventoryClient, server: str, data: dict[str, Any], delay: float, ledger: Ledger) -> None:
    time.sleep(delay)
    try:
        _write(client, server, data, ledger)
    except Exception as exc:
        ledger.error(f"writer on {server}: {type(exc).__name__}: {exc}")


@dataclass
class Tally:
    """What became of every request, and how often flasher wrote over one."""

    ran: int = 0
    reported: int = 0
    superseded: int = 0
    lost: list[str] = field(default_factory=list)
    overwritten_by_flasher: int = 0
    restored: int = 0
    masked: int = 0


def _is_operator_write(entry: dict[str, Any], requests: dict[str, Written]) -> bool:
    data = entry.get("data")
    return isinstance(data, dict) and data.get("status") == "" and "taskID" not in data and _key(data) in requests


def _key(data: dict[str, Any]) -> str:
    return str(data.get("requester"))


def tally(journal: list[dict[str, Any]], written: list[Written]) -> Tally:
    """Classify every written request against the journal (the module docstring defines the classes)."""
    result = Tally()
    by_server: dict[str, list[dict[str, Any]]] = {}
    for entry in journal:
        if entry["namespace"] == TASK_NAMESPACE:
            by_server.setdefault(entry["server"], []).append(entry)
    requests = {_key(item.data): item for item in written}
    for item in written:
        entries = by_server.get(item.server, [])
        mine = [
            i for i, e in enumerate(entries) if _is_operator_write(e, requests) and _key(e["data"]) == _key(item.data)
        ]
        for index in mine:
            following = entries[index + 1] if index + 1 < len(entries) else None
            if (
                following is not None
                and not _is_operator_write(following, requests)
                and (following.get("data") or {}).get("taskID") != item.task_id
            ):
                result.overwritten_by_flasher += 1
        result.restored += item.restored
        carried = [
            e["data"] for e in entries if isinstance(e.get("data"), dict) and e["data"].get("taskID") == item.task_id
        ]
        if any(d.get("status") in TERMINAL for d in carried):
            result.ran += 1
            continue
        notes = (f"replaces install task {item.task_id}", f"install task {item.task_id} (replaced by this request)")
        if any(
            any(note in str(m) for note in notes for m in (e["data"].get("messages") or []))
            for e in entries
            if isinstance(e.get("data"), dict)
        ):
            result.reported += 1
            continue
        last = mine[-1] if mine else -1
        later = [
            e for e in entries[last + 1 :] if _is_operator_write(e, requests) and _key(e["data"]) != _key(item.data)
        ]
        if later and not carried and (RAW or item.verdict == "superseded"):
            result.superseded += 1
            following = entries[last + 1]
            if not _is_operator_write(following, requests):
                result.masked += 1  # flasher wrote over it first, but a later request would have replaced it anyway
            continue
        following = entries[last + 1] if 0 <= last < len(entries) - 1 else None
        result.lost.append(
            f"{item.data['requester']} on {item.server} (task {item.task_id}, writer told: {item.verdict}, "
            f"written {len(mine)} time(s), next write: {(following or {}).get('data')})\n"
            + _trace(entries[max((mine or [0])[0] - 8, 0) :], requests)
        )
    return result


def _trace(entries: list[dict[str, Any]], requests: dict[str, Written]) -> str:
    """The writes ``entries`` hold, one line each (who wrote, what it holds, its last messages): what a lost
    request's failure shows, so that the interleaving that lost it can be read."""
    lines = []
    for entry in entries:
        data = entry.get("data")
        if not isinstance(data, dict):
            lines.append(f"    {entry.get('op')}: {data!r}")
            continue
        messages = [str(m).split(" ", 1)[-1][:110] for m in (data.get("messages") or [])[-3:]]
        who = "operator" if _is_operator_write(entry, requests) else str(entry.get("agent", ""))[:20]
        lines.append(
            f"    [{who}] {data.get('requester')} status={data.get('status')!r} taskID={data.get('taskID')}"
            f" worker={data.get('worker')} attempts={data.get('attempts')} {messages}"
        )
    return "\n".join(lines)


def test_no_request_written_while_tasks_run_is_lost(stack: Stack) -> None:
    stack.start_replicas(["flasher-0", "flasher-1", "flasher-2"], OPTIONS)
    ledger = Ledger()
    threads = [
        threading.Thread(target=_rounds, args=(stack, name, index, ledger), name=f"rounds-{name}")
        for index, name in enumerate(stack.scenario.names)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(240)
    elapsed = time.monotonic() - started

    journal = stack.attribute_journal(namespace=TASK_NAMESPACE)
    result = tally(journal, ledger.written)
    print(
        f"\nrequest race: {SERVERS * ROUNDS} rounds, {len(ledger.written)} requests in {elapsed:.0f} s"
        f" ({'raw writers' if RAW else 'writers reading back'}): {result.ran} ran, {result.reported} reported"
        f" replaced, {result.superseded} superseded by another operator ({result.masked} of them after a flasher"
        f" status write had landed over them), {len(result.lost)} lost;"
        f" a flasher status write landed over an operator's request {result.overwritten_by_flasher} time(s),"
        f" the writers wrote theirs again {result.restored} time(s)"
    )
    assert result.lost == [], f"{len(result.lost)} request(s) lost:\n" + "\n".join(result.lost)
    assert ledger.errors == [], "\n".join(ledger.errors)
    for name in ("flasher-0", "flasher-1", "flasher-2"):
        assert stack.replicas[name].alive(), f"replica {name} died:\n{stack.replicas[name].tail()}"
    assert result.ran + result.reported + result.superseded == len(ledger.written)
    assert result.ran >= SERVERS * ROUNDS  # every round ended with a task that ran
    for name in ("flasher-0", "flasher-1", "flasher-2"):
        assert stack.stop_replica(name) == 0
