"""How ``flasher task`` shows a task attribute, and follows it until its task ends.

:class:`TaskView` is one reading of a server's task attribute (install or server control). :func:`render` gives
the rich view ``flasher task status`` prints and keeps live: status, worker, the task's keys, per-component
status and versions (install tasks), the last messages. :func:`follow` re-reads the attribute every few
seconds and reports each change until the task is ``success``, ``failed`` or ``cancelled`` (or the attribute is
deleted). Attribute content is shown as text, never as rich markup, and tolerated when it does not parse; an
attribute whose data is not a JSON object is shown as ``invalid`` with the reason admission fails it for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from flasher.inventory.models import Server
from flasher.task.model import (
    MAX_MESSAGES,
    InstallTask,
    TaskKind,
    TaskStatus,
    TaskValidationError,
    is_new,
    is_terminal,
    show_value,
)

#: How each status is coloured.
_STYLE = {
    "requested": "cyan",
    "queued": "cyan",
    "active": "yellow",
    "success": "green",
    "failed": "red",
    "cancelled": "magenta",
    "pending": "dim",
    "installed": "green",
    "skipped": "dim",
    "invalid": "red",
}
#: The status shown for an attribute whose data is not a JSON object.
INVALID: str = "invalid"


@dataclass(frozen=True)
class TaskView:
    """One reading of ``server``'s ``kind`` attribute; ``data`` is ``None`` when the server has none.

    An attribute whose data is not a JSON object (``["oops"]``, ``5``, ``null``) has ``data`` ``{}``, ``invalid``
    the reason (``field 'data': value ["oops"] is not a JSON object``) and ``stored`` the data as stored.
    """

    server_id: str
    server_name: str
    kind: TaskKind
    data: dict[str, Any] | None
    invalid: str | None = None
    stored: Any = None

    @classmethod
    def of(cls, server: Server, kind: TaskKind) -> TaskView:
        """The view of ``server``'s ``kind`` attribute as the inventory listed it."""
        attribute = server.attribute(kind.namespace)
        if attribute is None:
            return cls(str(server.uuid), server.name, kind, None)
        if not isinstance(attribute.data, dict):
            try:
                kind.parse(attribute.data)
                reason = "is not a JSON object"  # cannot happen: parsing refuses it
            except TaskValidationError as exc:
                reason = str(exc)
            return cls(str(server.uuid), server.name, kind, {}, invalid=reason, stored=attribute.data)
        return cls(str(server.uuid), server.name, kind, dict(attribute.data), stored=attribute.data)

    @property
    def status(self) -> str:
        """The status as operators read it: ``requested`` for a new request (``""``), ``-`` without a task,
        ``invalid`` when the data is not a JSON object."""
        if self.data is None:
            return "-"
        if self.invalid is not None:
            return INVALID
        status = self.data.get("status", "")
        if not isinstance(status, str):
            return str(status)
        return "requested" if is_new(status) else status

    @property
    def ended(self) -> bool:
        """True when the task is ``success``, ``failed`` or ``cancelled``."""
        return is_terminal(self.status)

    @property
    def succeeded(self) -> bool:
        return self.status == TaskStatus.SUCCESS.value

    def text(self, key: str) -> str | None:
        """``data[key]`` as text (``None`` when absent or null)."""
        if self.data is None or self.data.get(key) is None:
            return None
        value = self.data[key]
        return value if isinstance(value, str) else str(value)

    @property
    def messages(self) -> list[str]:
        value = self.data.get("messages") if self.data is not None else None
        return [m for m in value if isinstance(m, str)] if isinstance(value, list) else []

    def what(self, *, detail: bool = True) -> str:
        """What the task asks for, in one line: ``firmware set dell-r6515: bmc 2.80.80.80, bios 2.7.3`` (without
        ``detail``: ``firmware set dell-r6515``), ``set_power_state cycle``."""
        if self.data is None:
            return "-"
        if self.invalid is not None:
            return f"unreadable data {show_value(self.stored)}"
        if self.kind is TaskKind.INVENTORY:
            return "collect the hardware from the BMC"
        if self.kind is TaskKind.SERVER_CONTROL:
            parts = [self.text("action") or "?", self.text("action_parameter") or ""]
            if self.data.get("set_next_boot_device_persistent"):
                parts.append("persistent")
            if self.data.get("set_next_boot_device_efi"):
                parts.append("EFI")
            return " ".join(p for p in parts if p)
        firmware = self.data.get("Firmware")
        if isinstance(firmware, dict) and firmware and (detail or not self.text("firmwareSet")):
            listed = ", ".join(
                f"{slug} {spec.get('version')}" if isinstance(spec, dict) else str(slug)
                for slug, spec in firmware.items()
            )
            if self.text("firmwareSet"):
                return f"firmware set {self.text('firmwareSet')}: {listed}"
            return listed
        if self.text("firmwareSet"):
            return f"firmware set {self.text('firmwareSet')}"
        return "firmware set of the server's vendor and model"

    def last_message(self) -> str | None:
        """The newest message without its timestamp, else the error."""
        if self.messages:
            line = self.messages[-1]
            parts = line.split(" ", 1)
            return parts[1] if len(parts) == 2 else line
        return self.invalid or self.text("error")

    def install_task(self) -> InstallTask | None:
        """The attribute parsed as an install task, or ``None`` (control task, or it does not parse)."""
        if self.kind is not TaskKind.INSTALL or self.data is None or self.invalid is not None:
            return None
        try:
            task = self.kind.parse(self.data)
        except TaskValidationError:
            return None
        return task if isinstance(task, InstallTask) else None

    def summary(self) -> dict[str, Any]:
        """A flat record for ``flasher task list --json``."""
        data = self.data or {}
        return {
            "server": self.server_id,
            "name": self.server_name,
            "kind": self.kind.value,
            "status": self.status,
            "what": self.what(detail=False),
            "priority": data.get("priority"),
            "requester": data.get("requester"),
            "worker": data.get("worker"),
            "taskID": data.get("taskID"),
            "updatedAt": data.get("updatedAt"),
            "last": self.last_message(),
        }


def styled_status(status: str) -> Text:
    """``status`` as coloured text."""
    return Text(status, style=_STYLE.get(status, ""))


def render(view: TaskView) -> RenderableType:
    """The task as ``flasher task status`` shows it: its keys, per-component results, the last messages."""
    title = f"{view.kind.value.replace('_', '-')} task of server {view.server_id}"
    if view.server_name:
        title += f" ({view.server_name})"
    if view.data is None:
        return Text(f"{title}: none (no attribute {view.kind.namespace})")
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    head.add_row("status", styled_status(view.status))
    head.add_row("task", Text(view.what()))
    for label, key in (
        ("taskID", "taskID"),
        ("worker", "worker"),
        ("priority", "priority"),
        ("requester", "requester"),
        ("attempts", "attempts"),
        ("mode", "mode"),
        ("created", "createdAt"),
        ("updated", "updatedAt"),
        ("completed", "completedAt"),
    ):
        value = view.text(key)
        if value is not None:
            head.add_row(label, Text(value))
    if view.data.get("dryRun"):
        head.add_row("dry run", Text("yes: plan and report, install nothing"))
    if view.data.get("cancel") and not view.ended:
        head.add_row("cancel", Text("requested", style="magenta"))
    if view.text("error"):
        head.add_row("error", Text(view.text("error") or "", style="red"))
    if view.invalid is not None:
        head.add_row("error", Text(view.invalid, style="red"))
    parts: list[RenderableType] = [Text(title, style="bold"), head]
    components = _components(view)
    if components is not None:
        parts.append(components)
    if view.messages:
        log = Table(title="messages", title_justify="left", show_header=False, box=None, padding=(0, 1))
        log.add_column(overflow="fold")
        for line in view.messages[-MAX_MESSAGES:]:
            log.add_row(Text(line))
        parts.append(log)
    return Group(*parts)


def _components(view: TaskView) -> Table | None:
    task = view.install_task()
    if task is None or not task.firmware:
        return None
    table = Table(title="components", title_justify="left", header_style="bold")
    for column in ("component", "version", "status", "installed", "message"):
        table.add_column(column, overflow="fold")
    for slug, spec in task.firmware.items():
        status = spec.status.value if spec.status is not None else "pending"
        table.add_row(
            Text(slug),
            Text(spec.version),
            styled_status(status),
            Text(spec.installed_version or "-"),
            Text(spec.message or ""),
        )
        for instance in spec.instances or []:
            table.add_row(
                Text(f"  {instance.name or '?'} {instance.serial}".rstrip()),
                Text(instance.version or spec.version),
                styled_status(instance.status.value),
                Text(instance.installed_version or "-"),
                Text(instance.message or ""),
            )
    return table


def follow(
    read: Callable[[], TaskView],
    on_change: Callable[[TaskView], None],
    *,
    interval: float,
    sleep: Callable[[float], None] = time.sleep,
) -> TaskView:
    """Call ``read()`` every ``interval`` s and ``on_change(view)`` for the first reading and each one whose
    data differs, until the task ended or the attribute is gone; returns the last reading. ``read``'s errors
    propagate."""
    last: TaskView | None = None
    while True:
        view = read()
        if last is None or view.data != last.data or view.stored != last.stored:
            on_change(view)
        last = view
        if view.data is None or view.ended:
            return view
        sleep(interval)
