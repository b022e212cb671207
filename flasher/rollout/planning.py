"""Planning a rollout over the selected servers: per server what would be installed, skipped or refused.

This is ``flasher rollout plan`` (read-only) and the first step of ``rollout create``; with ``--select all`` it
is the fleet's compliance report. Each selected server is planned exactly as admission would plan its task
(:func:`flasher.install.modes.build_plan` on the inventory's components and installed versions), with the
baseline's ``firmwareSet`` (or ResolveFirmware) and ``force``. Its outcome:

* ``install`` — at least one component would be installed (the server becomes a member);
* ``current`` — every matched component is at the baseline already (compliant; skipped by a rollout);
* ``refused`` — it cannot be planned (no matching set, a set with nothing for it, several candidates), a
  component is refused (a downgrade or an incomparable version without ``force``), it has no BMC address, or
  nothing would be installed because installed versions are unknown (``force`` installs over them);
* and, orthogonally, ``busy`` — it has an open install task (new, queued or active): ``create`` does not make
  it a member, and says so.

Counts are given per facility, per vendor/model and per component type (per component: ``install``,
``current``, ``unknown``, ``refused``). Servers are planned by a few threads at once (one components read
each); firmware sets and versions are read once per distinct lookup.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Protocol

from flasher.constants import TASK_NAMESPACE
from flasher.install.modes import FirmwareCatalog, build_plan
from flasher.install.plan import Decision, InstallPlan, PlanError, PlannedInstall
from flasher.install.versions import is_unknown_version
from flasher.inventory.filters import ComponentFilter
from flasher.inventory.models import Component, FirmwareSet, FirmwareVersion, Server
from flasher.rollout.definition import Baseline
from flasher.rollout.selectors import Selection
from flasher.task.model import InstallTask, TaskValidationError, is_new, is_terminal, parse_install_task

#: Servers planned at once.
PLAN_THREADS: Final = 8


class ServerOutcome(StrEnum):
    """What the rollout would do with one server (module docstring)."""

    INSTALL = "install"
    CURRENT = "current"
    REFUSED = "refused"


class ComponentOutcome(StrEnum):
    """What the rollout would do with one component."""

    INSTALL = "install"
    CURRENT = "current"
    UNKNOWN = "unknown"
    REFUSED = "refused"


class PlanningInventory(FirmwareCatalog, Protocol):
    """What planning reads (:class:`~flasher.inventory.client.InventoryClient` has it)."""

    def list_servers(
        self,
        attr: Sequence[str] = (),
        ver_attr: Sequence[str] = (),
        facility: str | None = None,
        components: Sequence[ComponentFilter] = (),
        include_deleted: bool = False,
    ) -> list[Server]: ...

    def list_components(self, uuid: str) -> list[Component]: ...


def component_outcome(item: PlannedInstall) -> ComponentOutcome:
    """One planned component's outcome: install, current (at the target), unknown (installed version unknown)
    or refused."""
    if item.decision is Decision.INSTALL:
        return ComponentOutcome.INSTALL
    if item.decision is Decision.REFUSE:
        return ComponentOutcome.REFUSED
    if item.installed_version is None or is_unknown_version(item.installed_version):
        return ComponentOutcome.UNKNOWN
    return ComponentOutcome.CURRENT


@dataclass(frozen=True)
class ServerPlan:
    """One server's plan: ``outcome`` and ``reason``, the install ``plan`` when there is one, and ``busy`` (why
    it cannot become a member now) when it has an open task."""

    server: Server
    outcome: ServerOutcome
    reason: str
    plan: InstallPlan | None = None
    busy: str | None = None

    @property
    def installs(self) -> tuple[PlannedInstall, ...]:
        """The components that would be installed."""
        return self.plan.to_install if self.plan else ()

    @property
    def firmware(self) -> list[str]:
        """``["bmc 7.00.00.00", "bios 2.12.2"]``: what would be installed, per component type, in order."""
        return list(dict.fromkeys(f"{item.component} {item.version}" for item in self.installs))

    @property
    def vendor_model(self) -> str:
        """``dell/r6515`` (``?`` where the inventory has no value)."""
        return f"{self.server.vendor or '?'}/{self.server.model or '?'}"


@dataclass
class FleetPlan:
    """Every selected server's :class:`ServerPlan`, and the counts."""

    selectors: list[str]
    baseline: Baseline
    servers: list[ServerPlan] = field(default_factory=list)

    def members(self) -> list[ServerPlan]:
        """The servers a rollout would make members: outcome ``install`` and not busy."""
        return [s for s in self.servers if s.outcome is ServerOutcome.INSTALL and s.busy is None]

    def counts(self) -> dict[str, Any]:
        """``{"servers": n, "outcome": {...}, "busy": n, "facility": {F: {...}}, "vendor/model": {...},
        "component": {slug: {"install": n, "current": n, "unknown": n, "refused": n}}}``."""
        outcome: Counter[str] = Counter()
        by_facility: dict[str, Counter[str]] = {}
        by_kind: dict[str, Counter[str]] = {}
        by_component: dict[str, Counter[str]] = {}
        for entry in self.servers:
            outcome[entry.outcome.value] += 1
            by_facility.setdefault(entry.server.facility or "?", Counter())[entry.outcome.value] += 1
            by_kind.setdefault(entry.vendor_model, Counter())[entry.outcome.value] += 1
            for item in entry.plan.items if entry.plan else ():
                by_component.setdefault(item.component, Counter())[component_outcome(item).value] += 1
        return {
            "servers": len(self.servers),
            "outcome": dict(outcome),
            "busy": sum(1 for s in self.servers if s.busy),
            "facility": {k: dict(v) for k, v in sorted(by_facility.items())},
            "vendor/model": {k: dict(v) for k, v in sorted(by_kind.items())},
            "component": {k: dict(v) for k, v in sorted(by_component.items())},
        }


class _Cached:
    """A :class:`FirmwareCatalog` that reads each distinct lookup once (answers and errors), thread-safe."""

    def __init__(self, inventory: FirmwareCatalog) -> None:
        self._inventory = inventory
        self._lock = threading.Lock()
        self._seen: dict[tuple[Any, ...], tuple[bool, Any]] = {}

    def _once(self, key: tuple[Any, ...], call: Callable[[], Any]) -> Any:
        with self._lock:
            found = self._seen.get(key)
        if found is None:
            try:
                found = (True, call())
            except Exception as exc:  # cached and raised again for every server that asks
                found = (False, exc)
            with self._lock:
                self._seen[key] = found
        ok, value = found
        if not ok:
            raise value
        return value

    def list_firmware(
        self,
        vendor: str | None = None,
        model: str | Sequence[str] | None = None,
        version: str | None = None,
        component: str | None = None,
    ) -> list[FirmwareVersion]:
        key = ("fw", vendor, tuple([model] if isinstance(model, str) else model or ()), version, component)
        return list(self._once(key, lambda: self._inventory.list_firmware(vendor, model, version, component)))

    def get_firmware_set(self, uuid_or_name: str) -> FirmwareSet:
        found: FirmwareSet = self._once(("set", uuid_or_name), lambda: self._inventory.get_firmware_set(uuid_or_name))
        return found

    def list_firmware_sets(self, name: str | None = None, labels: Mapping[str, str] | None = None) -> list[FirmwareSet]:
        key = ("sets", name, tuple(sorted((labels or {}).items())))
        return list(self._once(key, lambda: self._inventory.list_firmware_sets(name=name, labels=labels)))


def baseline_task(baseline: Baseline) -> InstallTask:
    """The install task a member of ``baseline`` carries (before the rollout's keys are added)."""
    data: dict[str, Any] = {"method": "out-of-band", "force": baseline.force}
    if baseline.firmware_set:
        data["firmwareSet"] = baseline.firmware_set
    return parse_install_task(data)


def open_task(server: Server) -> str | None:
    """Why ``server``'s install attribute is in the way of a new request (new, queued or active), or ``None``."""
    attribute = server.attribute(TASK_NAMESPACE)
    return None if attribute is None else open_task_of(attribute.data)


def open_task_of(data: Any) -> str | None:
    """:func:`open_task` for an install attribute's ``data``."""
    try:
        task = parse_install_task(data)
    except TaskValidationError:
        status = data.get("status") if isinstance(data, dict) else None
        if isinstance(status, str) and is_terminal(status):
            return None
        return "its install task attribute does not parse (flasher will fail it); fix or remove it first"
    if is_terminal(task.status):
        return None
    what = "a new install request" if is_new(task.status) else f"an install task {task.status.value}"
    rollout = f" of rollout {task.rollout.name}" if task.rollout else ""
    return f"it has {what}{rollout} (taskID {task.task_id or '-'}); wait for it or cancel it"


def plan_server(
    server: Server, task: InstallTask, inventory: PlanningInventory, catalog: FirmwareCatalog
) -> ServerPlan:
    """Plan one server (module docstring)."""
    busy = open_task(server)
    if not server.bmc_address:
        reason = "no BMC address (attribute sh.hollow.bmc_info, key address)"
        return ServerPlan(server, ServerOutcome.REFUSED, reason, busy=busy)
    try:
        plan = build_plan(task, server, inventory.list_components(str(server.uuid)), catalog)
    except PlanError as exc:
        return ServerPlan(server, ServerOutcome.REFUSED, str(exc), busy=busy)
    if refusal := plan.refusal():
        return ServerPlan(server, ServerOutcome.REFUSED, refusal, plan, busy=busy)
    unknown = [item for item in plan.items if component_outcome(item) is ComponentOutcome.UNKNOWN]
    if plan.to_install:
        note = f"; {len(unknown)} with an unknown installed version skipped" if unknown else ""
        return ServerPlan(server, ServerOutcome.INSTALL, plan.summary() + note, plan, busy=busy)
    if unknown:
        names = ", ".join(sorted({item.component for item in unknown}))
        reason = f"nothing to install but the installed version of {names} is unknown (force installs over it)"
        return ServerPlan(server, ServerOutcome.REFUSED, reason, plan, busy=busy)
    return ServerPlan(server, ServerOutcome.CURRENT, "already at the baseline", plan, busy=busy)


def select(inventory: PlanningInventory, selection: Selection) -> list[Server]:
    """The servers ``selection`` covers, sorted by name then uuid."""
    found = inventory.list_servers(attr=selection.attr, facility=selection.facility, components=selection.components)
    unique = {str(s.uuid): s for s in found if selection.matches(s)}
    return sorted(unique.values(), key=lambda s: (s.name, str(s.uuid)))


def plan_fleet(
    inventory: PlanningInventory,
    selectors: Iterable[str],
    baseline: Baseline,
    *,
    threads: int = PLAN_THREADS,
) -> FleetPlan:
    """Select and plan (module docstring). Raises :class:`~flasher.rollout.selectors.SelectorError` for a bad
    selector; inventory errors propagate."""
    selection = Selection.of(selectors)
    servers = select(inventory, selection)
    task = baseline_task(baseline)
    catalog = _Cached(inventory)
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="rollout-plan") as pool:
        plans = list(pool.map(lambda s: plan_server(s, task, inventory, catalog), servers))
    return FleetPlan(selection.texts(), baseline, plans)


def target_firmware(plans: Iterable[ServerPlan]) -> list[str]:
    """The inventory firmware uuids the members would install, one per (vendor, component, version) (the rule
    the inventory applies to a set's firmware), in first-seen order."""
    seen: dict[tuple[str, str, str], str] = {}
    for entry in plans:
        for item in entry.installs:
            if item.firmware_uuid:
                seen.setdefault((item.component_vendor, item.component, item.version.lower()), item.firmware_uuid)
    return list(dict.fromkeys(seen.values()))
