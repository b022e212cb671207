"""Several clients writing the sandbox inventory at once: no 5xx, no "database is locked", no lost update."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from flasher.constants import OUTOFBAND_STATUS_NAMESPACE
from flasher_sandbox.servers import InventoryServer

pytestmark = pytest.mark.integration

THREADS = 8
ROUNDS = 100


def test_concurrent_attribute_writes(clean_inventory: InventoryServer) -> None:
    seeded = clean_inventory.seed(
        {
            "servers": [
                *({"name": f"own-{t}", "attributes": {"ns.counter": {"n": -1}}} for t in range(THREADS)),
                {
                    "name": "shared",
                    "attributes": {f"ns.thread-{t}": {"n": -1} for t in range(THREADS)} | {"ns.all": {"n": -1}},
                    "components": [{"type": "bmc", "installed": "0"}],
                },
            ]
        }
    )
    shared = seeded["servers"]["shared"]
    api = clean_inventory.api
    (bmc,) = requests.get(f"{api}/servers/{shared}/components", timeout=30).json()["records"]

    def worker(thread: int) -> list[str]:
        problems = []
        own = seeded["servers"][f"own-{thread}"]
        with requests.Session() as session:
            for n in range(ROUNDS):
                calls: list[tuple[str, str, Any]] = [
                    ("PUT", f"{api}/servers/{own}/attributes/ns.counter", {"data": {"n": n}}),
                    ("PUT", f"{api}/servers/{shared}/attributes/ns.thread-{thread}", {"data": {"n": n}}),
                ]
                if n % 5 == 0:
                    log = {"namespace": "ns.log", "data": {"t": thread, "n": n}}
                    calls.append(("POST", f"{api}/servers/{shared}/versioned-attributes", log))
                    calls.append(("PUT", f"{api}/servers/{shared}/attributes/ns.all", {"data": {"t": thread, "n": n}}))
                if n % 25 == 0:
                    version = {"namespace": OUTOFBAND_STATUS_NAMESPACE, "data": {"firmware": {"installed": f"{n}"}}}
                    calls.append(
                        ("PUT", f"{api}/servers/{shared}/components", [bmc | {"versioned_attributes": [version]}])
                    )
                    calls.append(("GET", f"{api}/servers?attr=ns.thread-{thread}&limit=5", None))
                for method, url, payload in calls:
                    response = session.request(method, url, json=payload, timeout=60)
                    if response.status_code >= 300:
                        problems.append(f"{method} {url}: {response.status_code} {response.text}")
                read = session.get(f"{api}/servers/{own}/attributes/ns.counter", timeout=60)
                if read.status_code != 200 or read.json()["record"]["data"] != {"n": n}:
                    problems.append(f"read-back of own-{thread} at {n}: {read.status_code} {read.text}")
        return problems

    with ThreadPoolExecutor(THREADS) as pool:
        problems = [problem for found in pool.map(worker, range(THREADS)) for problem in found]
    assert problems == [], problems[:5]

    for thread in range(THREADS):
        own = seeded["servers"][f"own-{thread}"]
        assert requests.get(f"{api}/servers/{own}/attributes/ns.counter", timeout=30).json()["record"]["data"] == {
            "n": ROUNDS - 1
        }
    attributes = requests.get(f"{api}/servers/{shared}/attributes", timeout=30).json()["records"]
    final = {a["namespace"]: a["data"] for a in attributes}
    assert all(final[f"ns.thread-{t}"] == {"n": ROUNDS - 1} for t in range(THREADS))
    assert final["ns.all"]["n"] == ROUNDS - 5  # some thread's last write
    log = requests.get(f"{api}/servers/{shared}/versioned-attributes/ns.log", timeout=30).json()
    assert log["total_record_count"] == THREADS * ROUNDS // 5  # not one append lost
    assert len({(v["data"]["t"], v["data"]["n"]) for v in log["records"]}) == THREADS * ROUNDS // 5
    (component,) = requests.get(f"{api}/servers/{shared}/components", timeout=30).json()["records"]
    assert component["versioned_attributes"][0]["data"]["firmware"]["installed"] in {
        str(n) for n in range(0, ROUNDS, 25)
    }
