"""The scale benchmark's inventory beyond the simulated servers: servers no BMC answers for, each carrying an
ended BIOS task as flasher leaves one (a fleet after earlier rollouts), so a full poll lists the whole inventory.
"""

from __future__ import annotations

import uuid
from typing import Any

from bench.poll.run import finished_attribute
from flasher.constants import TASK_NAMESPACE
from flasher_sandbox.up.scenario import build

#: uuids of the idle servers: uuid5 of their names in this namespace (apart from the scenario's).
_IDLE_NAMESPACE = uuid.UUID("0b6f3c55-64d1-4d3f-8a51-3c1b0d2f5e77")
#: Nothing listens here: an idle server's BMC is never asked (it has no open task).
_NOWHERE_PORT = 9


def idle_servers(count: int) -> list[dict[str, Any]]:
    """``count`` seed entries (the format of :meth:`Scenario.seed`: 9 components, BMC address and credentials,
    vendor attributes, rack) named ``idle-00000``.., each with an ended BIOS install task (about 1.3 KiB:
    :func:`bench.poll.run.finished_attribute`) and a BMC address on a port nothing listens on."""
    if count <= 0:
        return []
    scenario = build(max(count, 2), special=False, component="bios")
    seed = scenario.seed(bmc_base_port=20000, image_base_url="http://127.0.0.1:9/images")
    servers = []
    for index, (entry, task) in enumerate(zip(seed["servers"][:count], scenario.tasks, strict=False)):
        name = f"idle-{index:05d}"
        servers.append(
            entry
            | {
                "name": name,
                "uuid": str(uuid.uuid5(_IDLE_NAMESPACE, name)),
                "bmc": entry["bmc"] | {"address": f"127.0.0.1:{_NOWHERE_PORT}"},
                "attributes": entry["attributes"] | {TASK_NAMESPACE: finished_attribute(task.data, index)},
            }
        )
    return servers
