"""The install state written into the task attribute, and read back from it when a task is resumed.

Written (into ``Firmware.<slug>``, over what the plan writes with :meth:`InstallPlan.apply_to`): ``status``,
``installedVersion``, ``message`` and ``bmcTask`` (the URI of the BMC task installing it); for several
components of one type each is an entry of ``instances`` (``name``, ``serial``, ``status``,
``installedVersion``, ``message``, ``bmcTask``) and the type's ``status`` aggregates them. At the top level:
``initialPowerState``, the host's power state before the task changed anything.

Read back (a task released at shutdown or reclaimed after a crash): each component's ``status`` and
``bmcTask``, and ``initialPowerState``.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

from flasher.install.plan import InstallPlan, PlannedInstall
from flasher.install.state import InstallState, PriorItem
from flasher.task.model import ComponentStatus, FirmwareSpec, InstallTask, InstanceResult

#: Attribute keys flasher adds for the install steps (fields of the task model: ``bmc_task``,
#: ``initial_power_state``).
BMC_TASK_KEY: Final = "bmcTask"
INITIAL_POWER_KEY: Final = "initialPowerState"


def _instance(spec: FirmwareSpec, item: PlannedInstall) -> InstanceResult | None:
    for instance in spec.instances or []:
        if instance.name == item.component_name and instance.serial == item.component_serial:
            return instance
    return None


def write_state(task: InstallTask, state: InstallState) -> None:
    """Write ``state`` into ``task`` (mutated in place): the plan, each component's result, the start power."""
    planned = state.plan.apply_to(task)
    task.mode = planned.mode
    if planned.firmware_set != task.firmware_set:
        task.firmware_set = planned.firmware_set
    firmware = planned.firmware or {}
    for item_state in state.items:
        item = item_state.item
        spec = firmware[item.component]
        if item.component in state.several:
            instance = spec.record_instance(
                item.component_name,
                item.component_serial,
                item_state.status,
                installed_version=item_state.installed_version,
                message=item_state.message,
            )
            if item_state.bmc_task:
                instance.bmc_task = item_state.bmc_task
        else:
            spec.status = item_state.status
            spec.installed_version = item_state.installed_version
            spec.message = item_state.message
            if item_state.bmc_task:
                spec.bmc_task = item_state.bmc_task
    for slug in state.several:
        spec = firmware[slug]
        instances = spec.instances or []
        versions = {i.installed_version for i in instances}
        if len(versions) == 1 and None not in versions:
            spec.installed_version = versions.pop()
        counts = Counter(i.status.value for i in instances)
        spec.message = ", ".join(f"{n} {status}" for status, n in counts.items())
    task.firmware = firmware
    if state.initial_power is not None:
        task.initial_power_state = state.initial_power


def prior_items(task: InstallTask, plan: InstallPlan) -> dict[str, PriorItem]:
    """What the attribute says about each planned component (by ``component_uuid``): its status and BMC task.

    Components the attribute says nothing about are left out.
    """
    firmware = task.firmware or {}
    counts = Counter(item.component for item in plan.items)
    found: dict[str, PriorItem] = {}
    for item in plan.items:
        spec = firmware.get(item.component)
        if spec is None:
            continue
        source: FirmwareSpec | InstanceResult | None = spec
        if counts[item.component] > 1:
            source = _instance(spec, item)
        if source is None or source.status is None:
            continue
        found[item.component_uuid] = PriorItem(
            status=source.status,
            bmc_task=source.bmc_task or None,
            installed_version=source.installed_version,
        )
    return found


def initial_power_of(task: InstallTask) -> str | None:
    """``initialPowerState`` as an earlier attempt recorded it, or ``None``."""
    return task.initial_power_state or None


def started(prior: dict[str, PriorItem]) -> bool:
    """True when an earlier attempt started or finished any component (the task is being resumed)."""
    return any(p.status in (ComponentStatus.ACTIVE, ComponentStatus.INSTALLED) for p in prior.values())
