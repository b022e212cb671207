"""Install plans: which component gets which image, in which order, and why.

A plan is pure data (pydantic, JSON-serialisable: ``flasher plan --json`` prints it as is): an
:class:`InstallPlan` of :class:`PlannedInstall` items, each with its :class:`Decision`. :func:`decide` makes the
version decision for one component, :func:`recheck` re-decides a plan with the versions the BMC reports, and
:meth:`InstallPlan.apply_to` writes the resolved ``mode``, ``firmwareSet`` and ``Firmware`` back into the task.
Resolving the three install modes against the inventory into a plan is :mod:`flasher.install.modes`.

Decisions (:func:`decide`), from the installed version (the inventory's at plan time, the BMC's at
:func:`recheck`) and the target, with ``force`` the task's or the entry's:

=====================================  =================================  ======================================
installed vs target                    without force                      with force
=====================================  =================================  ======================================
unknown (see below)                    skip                               install
equal (:func:`~.compare_versions`)     skip                               install (reinstall)
lower                                  install (upgrade)                  install
higher                                 refuse (downgrade)                 install (downgrade)
cannot compare                         refuse, saying why                 install
=====================================  =================================  ======================================

Unknown: no version reported, or one that says it is unknown: ``N/A``, ``Unknown``, ``-`` or blank, in any case
(:func:`~flasher.install.versions.is_unknown_version`). Such a component is skipped like one that reports
nothing, not refused as "cannot compare" (which would fail the task).

Errors: :class:`PlanError` when the task cannot be planned at all (the task should fail with its message);
:class:`~flasher.inventory.errors.InventoryError` from the inventory calls propagates (usually transient: retry).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict

from flasher.constants import INSTALL_ORDER
from flasher.install.versions import IncomparableVersionsError, compare_versions, is_unknown_version
from flasher.task.model import (
    ComponentStatus,
    FirmwareAction,
    FirmwareSpec,
    InstallMode,
    InstallTask,
    aggregate_status,
)

#: Where the installed version a decision used came from.
SOURCE_INVENTORY: Final = "inventory"
SOURCE_BMC: Final = "bmc"


class PlanError(ValueError):
    """The task cannot be planned (no matching firmware, several candidates, no such set...): the message says
    what was looked for and what was found. The task should fail with it."""


class Decision(StrEnum):
    """What happens to one component."""

    INSTALL = "install"
    SKIP = "skip"
    REFUSE = "refuse"


class PlannedInstall(BaseModel):
    """One component's planned install.

    ``component`` is the type slug; ``component_*`` identify the inventory's component; ``installed_version`` is
    ``None`` when unknown, and ``version_source`` says where it was read (``inventory`` or ``bmc``); ``version``
    is the target; ``image_url``/``checksum`` (``algorithm:hex``)/``filename`` the image (``firmware_uuid`` when it
    is the inventory's); ``force`` is the task's or the entry's; ``decision`` and ``reason`` say what happens
    and why.
    """

    model_config = ConfigDict(frozen=True)

    component: str
    component_uuid: str
    component_name: str = ""
    component_serial: str = ""
    component_vendor: str = ""
    component_model: str = ""
    installed_version: str | None = None
    version_source: str = SOURCE_INVENTORY
    version: str
    image_url: str
    checksum: str
    filename: str = ""
    firmware_uuid: str | None = None
    pre_actions: tuple[FirmwareAction, ...] = ()
    post_actions: tuple[FirmwareAction, ...] = ()
    force: bool = False
    decision: Decision
    reason: str

    @property
    def lookup_keys(self) -> tuple[str, ...]:
        """Keys :func:`recheck` looks this component up by, most specific first: the component's uuid,
        ``<slug>:<serial>``, ``<slug>:<name>``, and ``<slug>`` (the last only when it is its type's one component)."""
        keys = [self.component_uuid]
        if self.component_serial:
            keys.append(f"{self.component}:{self.component_serial}")
        if self.component_name:
            keys.append(f"{self.component}:{self.component_name}")
        return tuple(keys)


class InstallPlan(BaseModel):
    """What flasher will do for one task: the ``mode``, the firmware set used (``firmware_set_name``/``_uuid``,
    ``None`` in PredefinedFirmware), the ordered ``items``, and ``unmatched``: firmware of the set that fits none
    of the server's components (``"<component> <vendor> [models] <version>"``)."""

    model_config = ConfigDict(frozen=True)

    server_uuid: str
    mode: InstallMode
    firmware_set_name: str | None = None
    firmware_set_uuid: str | None = None
    items: tuple[PlannedInstall, ...] = ()
    unmatched: tuple[str, ...] = ()

    @property
    def to_install(self) -> tuple[PlannedInstall, ...]:
        """Items to install, in install order."""
        return tuple(item for item in self.items if item.decision is Decision.INSTALL)

    @property
    def skipped(self) -> tuple[PlannedInstall, ...]:
        return tuple(item for item in self.items if item.decision is Decision.SKIP)

    @property
    def refused(self) -> tuple[PlannedInstall, ...]:
        return tuple(item for item in self.items if item.decision is Decision.REFUSE)

    def refusal(self) -> str | None:
        """One line naming each refused component and why, or ``None`` when nothing is refused. A task whose plan
        refuses anything should fail with it before anything is installed."""
        if not self.refused:
            return None
        return "refused: " + "; ".join(f"{_label(item)}: {item.reason}" for item in self.refused)

    def summary(self) -> str:
        """``"2 to install, 1 skipped, 0 refused"``."""
        return f"{len(self.to_install)} to install, {len(self.skipped)} skipped, {len(self.refused)} refused"

    def apply_to(self, task: InstallTask) -> InstallTask:
        """A copy of ``task`` with the plan written in: ``mode``; ``firmwareSet`` (the resolved set's name in
        ResolveFirmware); ``Firmware`` with, per component type, ``status`` (install → ``pending``, skip →
        ``skipped``, refuse → ``failed``), ``installedVersion`` and ``message`` (the reason), and ``instances``
        where the server has several components of the type. PredefinedFirmware keeps the operator's entries
        and fills a missing ``updateFileURL``/``updateFileChecksum`` from the inventory; the set modes write
        ``version``, ``updateFileURL`` and ``updateFileChecksum`` per type."""
        update: dict[str, object] = {"mode": self.mode, "firmware": self._firmware(task)}
        if self.mode is InstallMode.RESOLVE_FIRMWARE and self.firmware_set_name:
            update["firmware_set"] = self.firmware_set_name
        return task.model_copy(update=update, deep=True)

    def _firmware(self, task: InstallTask) -> dict[str, FirmwareSpec]:
        by_slug: dict[str, list[PlannedInstall]] = {}
        for item in self.items:
            by_slug.setdefault(item.component, []).append(item)
        given = (task.firmware or {}) if self.mode is InstallMode.PREDEFINED_FIRMWARE else {}
        result: dict[str, FirmwareSpec] = {}
        for slug, items in by_slug.items():
            base = given.get(slug)
            data = base.model_dump(mode="json", by_alias=True, exclude_unset=True) if base else {}
            for key in _REPORT_KEYS:  # an earlier plan's report (a re-planned task) is replaced, not merged
                data.pop(key, None)
            for key, value in _spec_report(items, keep_versions=base is not None).items():
                if key not in _OPERATOR_IMAGE_KEYS or key not in data:  # the operator's image stays as written
                    data[key] = value
            result[slug] = FirmwareSpec.model_validate(data)
        for slug, spec in given.items():  # entries that planned nothing (cannot happen today) stay as given
            result.setdefault(slug, spec)
        return result


_OPERATOR_IMAGE_KEYS: Final = frozenset({"updateFileURL", "updateFileChecksum"})
_REPORT_KEYS: Final = ("status", "installedVersion", "message", "instances", "bmcTask")
_STATUS_OF: Final[Mapping[Decision, ComponentStatus]] = {
    Decision.INSTALL: ComponentStatus.PENDING,
    Decision.SKIP: ComponentStatus.SKIPPED,
    Decision.REFUSE: ComponentStatus.FAILED,
}


def _common(values: Iterable[str | None]) -> str | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _spec_report(items: list[PlannedInstall], *, keep_versions: bool) -> dict[str, object]:
    """The ``Firmware.<slug>`` keys flasher writes for ``items`` (all of one type)."""
    report: dict[str, object] = {}
    targets = sorted({item.version for item in items})
    if not keep_versions:
        report["version"] = ", ".join(targets)
    url, checksum = _common(i.image_url for i in items), _common(i.checksum for i in items)
    if url and checksum:
        report["updateFileURL"] = url
        report["updateFileChecksum"] = checksum
    if len(items) == 1:
        item = items[0]
        report["status"] = _STATUS_OF[item.decision].value
        if item.installed_version is not None:
            report["installedVersion"] = item.installed_version
        report["message"] = item.reason
        return report
    instances = []
    for item in items:
        instance = {
            "name": item.component_name,
            "serial": item.component_serial,
            "status": _STATUS_OF[item.decision].value,
            "message": item.reason,
        }
        if len(targets) > 1:
            instance["version"] = item.version
        if item.installed_version is not None:
            instance["installedVersion"] = item.installed_version
        instances.append(instance)
    report["instances"] = instances
    statuses = [ComponentStatus(str(i["status"])) for i in instances]
    report["status"] = aggregate_status(statuses).value
    installed = _common(i.installed_version for i in items)
    if installed is not None:
        report["installedVersion"] = installed
    counts = Counter(item.decision for item in items)
    report["message"] = ", ".join(f"{counts[d]} {_VERB[d]}" for d in Decision if counts[d])
    return report


_VERB: Final[Mapping[Decision, str]] = {
    Decision.INSTALL: "to install",
    Decision.SKIP: "skipped",
    Decision.REFUSE: "refused",
}


def _label(item: PlannedInstall) -> str:
    name = item.component_name or item.component_uuid
    return f"{item.component} {name}" + (f" ({item.component_serial})" if item.component_serial else "")


# --------------------------------------------------------------------------------------------------------------
# Decisions


def decide(installed: str | None, target: str, *, force: bool) -> tuple[Decision, str]:
    """The decision for one component and its reason (see the module's table). ``installed`` counts as unknown
    when :func:`~flasher.install.versions.is_unknown_version` says so (``None``, blank, ``N/A``, ``Unknown``,
    ``-``)."""
    if installed is None or is_unknown_version(installed):
        unknown = "installed version unknown" + (
            f" (reported as {installed.strip()!r})" if installed and installed.strip() else ""
        )
        if force:
            return Decision.INSTALL, f"{unknown}; installing {target} because force is set"
        return Decision.SKIP, f"{unknown}; not installing {target} (set force to install anyway)"
    try:
        order = compare_versions(installed, target)
    except IncomparableVersionsError as exc:
        if force:
            return Decision.INSTALL, f"{exc}; installing {target} because force is set"
        return Decision.REFUSE, f"{exc} (set force to install anyway)"
    if order == 0:
        if force:
            return Decision.INSTALL, f"already at {installed}; reinstalling because force is set"
        return Decision.SKIP, f"already at {installed}"
    if order < 0:
        return Decision.INSTALL, f"upgrade from {installed} to {target}"
    if force:
        return Decision.INSTALL, f"downgrade from {installed} to {target} because force is set"
    return Decision.REFUSE, f"downgrade from {installed} to {target} refused (set force to allow it)"


def install_order_key(item: PlannedInstall) -> tuple[int, str, str, str]:
    """The sort key of a planned install: :data:`~flasher.constants.INSTALL_ORDER`, then types it does not list
    (alphabetically), then component name and serial."""
    rank = INSTALL_ORDER.index(item.component) if item.component in INSTALL_ORDER else len(INSTALL_ORDER)
    return (rank, item.component, item.component_name, item.component_serial)


def recheck(plan: InstallPlan, installed: Mapping[str, str | None]) -> InstallPlan:
    """``plan`` re-decided with installed versions read from the BMC.

    ``installed`` maps a key of each component (:attr:`PlannedInstall.lookup_keys`: its uuid, ``<slug>:<serial>``,
    ``<slug>:<name>``, or ``<slug>`` when the plan has one component of the type) to its version, ``None`` when
    the BMC reports no version. A component not in ``installed``, or refused for its image, keeps its decision.
    Every re-decided item has ``version_source`` ``bmc``.
    """
    per_type = Counter(item.component for item in plan.items)
    items = []
    for item in plan.items:
        keys = item.lookup_keys + ((item.component,) if per_type[item.component] == 1 else ())
        key = next((k for k in keys if k in installed), None)
        if key is None or not item.image_url:  # not reported, or refused for its image: the decision stands
            items.append(item)
            continue
        version = installed[key]
        decision, reason = decide(version, item.version, force=item.force)
        items.append(
            item.model_copy(
                update={
                    "installed_version": version,
                    "version_source": SOURCE_BMC,
                    "decision": decision,
                    "reason": reason,
                }
            )
        )
    return plan.model_copy(update={"items": tuple(items)})
