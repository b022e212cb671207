"""HPE iLO 5/6-like behaviour (shape ``hpe``), after HPE's iLO 5/6 user guides and iLO RESTful API documentation
(firmware updates, the installation queue ``UpdateTaskQueue``, the iLO message registry), as issue 16 sums them up:

* **System ROM staged.** iLO writes a System ROM (BIOS) image and reports the update done; the running ROM
  changes only when the host reboots (the user guide: a System ROM update takes effect after a server reboot).
  The Task ends ``Completed`` with ``Update.1.0.UpdateSuccessful`` and the FirmwareInventory keeps the old version
  until the host boots (:func:`stage`; ``SimulatedBmc._activate_staged`` at boot).
* **First in, first out.** iLO's installation queue (``UpdateTaskQueue``) runs its items in order, one at a time;
  an item waiting for POST blocks every item behind it (:func:`wait_turn`): they stay ``New``.
* **POST.** While the host is in POST (``post_seconds`` after each boot), iLO refuses changes to the boot
  override with ``iLO.2.14.UnableToModifyDuringSystemPOST`` (HTTP 400, the iLO registry's message id;
  :func:`refuse_boot_change`).
* **NetworkAdapters.** iLO learns NetworkAdapters from the host (UEFI and the OS's Agentless Management Service):
  until the OS has booted the resources answer 400 (:func:`refuse_network_adapters`; the message id
  ``iLO.2.14.ResourceNotReadyRetry`` is the simulator's wording).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeVar

from flasher_sandbox.bmc.errors import RedfishError

if TYPE_CHECKING:
    from flasher_sandbox.bmc.simulator import SimulatedBmc
    from flasher_sandbox.bmc.tasks import InstallTask

V = TypeVar("V")

#: iLO's message registry prefix the simulator answers with.
ILO_REGISTRY = "iLO.2.14"
#: Seconds between looks at the queue while a task waits for its turn.
QUEUE_POLL = 0.05


def in_post(bmc: SimulatedBmc) -> bool:
    """Whether the host is in POST: on, and booted less than the shape's ``post_seconds`` ago."""
    return bmc.power.state == "On" and time.monotonic() - bmc.booted_at < bmc.shape.post_seconds


def os_booted(bmc: SimulatedBmc) -> bool:
    """Whether the host's OS runs: on, and out of POST."""
    return bmc.power.state == "On" and not in_post(bmc)


def refuse_boot_change(bmc: SimulatedBmc) -> None:
    """Raise 400 ``UnableToModifyDuringSystemPOST`` while the host is in POST (a ``PATCH`` of ``Boot``)."""
    if bmc.shape.post_seconds and in_post(bmc):
        bmc.quirks["post_refusals"] = bmc.quirks.get("post_refusals", 0) + 1
        raise RedfishError(
            400,
            f"{ILO_REGISTRY}.UnableToModifyDuringSystemPOST",
            "The value for the property cannot be changed while the server is in POST. Retry after POST completes.",
        )


def refuse_network_adapters(bmc: SimulatedBmc, path: str) -> None:
    """Raise 400 for a ``GET`` under the Chassis' NetworkAdapters until the host's OS has booted."""
    if not bmc.shape.network_adapters_need_os or not path.startswith(f"{bmc.shape.chassis_uri}/NetworkAdapters"):
        return
    if os_booted(bmc):
        return
    bmc.quirks["network_adapter_refusals"] = bmc.quirks.get("network_adapter_refusals", 0) + 1
    raise RedfishError(
        400,
        f"{ILO_REGISTRY}.ResourceNotReadyRetry",
        "The resource is not ready: network adapter data is available once the server has booted its OS.",
    )


def expandable(bmc: SimulatedBmc, resources: Mapping[str, V]) -> Mapping[str, V]:
    """The resources a ``$expand`` may bring in: all of them, except, while the HPE-like host's OS has not booted,
    those under the Chassis' NetworkAdapters, which stay hyperlinks (a GET of one answers 400, as
    :func:`refuse_network_adapters` says), so ``$expand`` is no way around the refusal."""
    if not bmc.shape.network_adapters_need_os or os_booted(bmc):
        return resources
    prefix = f"{bmc.shape.chassis_uri}/NetworkAdapters"
    return {path: value for path, value in resources.items() if not path.startswith(prefix)}


def stage(bmc: SimulatedBmc, task: InstallTask) -> None:
    """Keep ``task``'s image for the next host boot (its components keep their version until then)."""
    bmc.staged.append(task)


async def wait_turn(bmc: SimulatedBmc, task: InstallTask) -> None:
    """Wait (``New``) until every task created before ``task`` has ended and no staged item waits for POST."""
    noted = False
    while True:
        earlier = []
        for other in bmc.tasks.values():  # in creation order
            if other is task:
                break
            if not other.terminal:
                earlier.append(other)
        if not earlier and not bmc.staged:
            return
        if not noted:
            what = "an item waiting for the server to reboot" if bmc.staged else f"task {earlier[0].id}"
            task.note("OperationTransitionedToJob", f"Queued in the installation queue behind {what}.")
            noted = True
        await asyncio.sleep(QUEUE_POLL)
