"""``flasher task``'s view of a task attribute: tolerant of any content, follows until the end, choices in sync."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from flasher.commands.task import POWER_ACTIONS, BootDevice, PowerChoice
from flasher.commands.task_view import TaskView, follow, render
from flasher.task.model import BOOT_DEVICES, POWER_STATES, TaskKind


def view(data: dict[str, Any] | None, kind: TaskKind = TaskKind.INSTALL) -> TaskView:
    return TaskView("3f0c2a8e-1b7d-4c55-9a3e-0c1d2e3f4a01", "a01", kind, data)


def shown(v: TaskView) -> str:
    out = io.StringIO()
    Console(file=out, width=160).print(render(v))
    return out.getvalue()


def test_the_cli_choices_match_the_task_vocabulary() -> None:
    assert [d.value for d in BootDevice] == list(BOOT_DEVICES)
    assert {p for _, p in POWER_ACTIONS.values() if p} == set(POWER_STATES)
    assert set(POWER_ACTIONS) == set(PowerChoice)


@pytest.mark.parametrize(
    ("data", "status", "ended"),
    [
        ({"status": ""}, "requested", False),
        ({}, "requested", False),
        ({"status": "requested"}, "requested", False),
        ({"status": "active"}, "active", False),
        ({"status": "cancelled"}, "cancelled", True),
        ({"status": 7}, "7", False),
        (None, "-", False),
    ],
)
def test_status_as_operators_read_it(data: dict[str, Any] | None, status: str, ended: bool) -> None:
    assert (view(data).status, view(data).ended) == (status, ended)


def test_what_the_task_asks_for() -> None:
    firmware = {"firmwareSet": "dell-r6515", "Firmware": {"bmc": {"version": "2.80.80.80"}}}
    assert view(firmware).what() == "firmware set dell-r6515: bmc 2.80.80.80"
    assert view(firmware).what(detail=False) == "firmware set dell-r6515"
    assert view({"Firmware": {"bios": {"version": "2.7.3"}}}).what(detail=False) == "bios 2.7.3"
    assert view({}).what() == "firmware set of the server's vendor and model"
    boot = {"action": "set_next_boot_device", "action_parameter": "pxe", "set_next_boot_device_persistent": True}
    assert view(boot, TaskKind.SERVER_CONTROL).what() == "set_next_boot_device pxe persistent"


def test_render_tolerates_an_attribute_that_does_not_parse() -> None:
    text = shown(view({"status": "failed", "priority": "high", "Firmware": "everything", "messages": [1, "x y"]}))
    assert "failed" in text and "high" in text and "x y" in text
    assert "components" not in text
    assert "none (no attribute sh.hollow.flasher.task)" in shown(view(None))


def test_follow_reports_changes_until_the_end() -> None:
    readings = iter([{"status": ""}, {"status": ""}, {"status": "active"}, {"status": "success"}])
    seen: list[str] = []
    last = follow(lambda: view(next(readings)), lambda v: seen.append(v.status), interval=0, sleep=lambda _: None)
    assert seen == ["requested", "active", "success"] and last.succeeded


def test_follow_ends_when_the_attribute_is_deleted() -> None:
    readings = iter([{"status": "queued"}, None])
    last = follow(lambda: view(next(readings)), lambda _: None, interval=0, sleep=lambda _: None)
    assert last.data is None
