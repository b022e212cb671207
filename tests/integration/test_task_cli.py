"""``flasher task`` against the sandbox inventory: each command writes or reads the attribute as documented;
``status --watch`` and ``--wait`` end when the task ends (the test drives the attribute as a worker would)."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from flasher.commands import task as task_cli
from flasher.config import InventorySettings
from flasher.constants import SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE
from flasher.inventory import InventoryClient
from flasher.inventory.errors import NotFoundError
from flasher.task.model import TaskKind
from flasher.task.request import request_task_id
from flasher_sandbox.servers import InventoryServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

MISSING_SERVER = "00000000-0000-4000-8000-000000000001"


@pytest.fixture
def inventory(
    clean_inventory: InventoryServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[InventoryClient]:
    monkeypatch.chdir(tmp_path)  # no config/flasher.yaml here: settings come from the environment
    monkeypatch.delenv("FLASHER_CONFIG", raising=False)
    monkeypatch.setenv("FLASHER_INVENTORY__URL", clean_inventory.url)
    monkeypatch.setenv("FLASHER_INVENTORY__RETRY_DEADLINE", "1")
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("USER", "carol")
    yield InventoryClient(InventorySettings(url=clean_inventory.url))


def seed(inventory_server: InventoryServer, *names: str, attributes: dict[str, Any] | None = None) -> list[str]:
    servers = [{"name": name, "vendor": "dell", "model": "r6515", "attributes": attributes or {}} for name in names]
    ids: list[str] = inventory_server.seed({"servers": servers})["server_ids"]
    return ids


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(task_cli.app, list(args))
    return result.exit_code, result.stdout, result.stderr


def attribute(inventory: InventoryClient, server: str, namespace: str = TASK_NAMESPACE) -> dict[str, Any]:
    data = inventory.get_attribute(server, namespace).data
    assert isinstance(data, dict)
    return data


def running_install(**extra: Any) -> dict[str, Any]:
    return {
        "method": "out-of-band",
        "status": "active",
        "priority": 2,
        "requester": "alice",
        "firmwareSet": "dell-r6515",
        "taskID": "t-1",
        "worker": "flasher-a",
        **extra,
    }


# -- install ----------------------------------------------------------------------------------------------------------
def test_install_with_a_firmware_set_writes_a_new_request(
    inventory: InventoryClient, clean_inventory: InventoryServer
) -> None:
    (server,) = seed(clean_inventory, "a01")
    code, out, _ = run("install", "--server", server, "--firmware-set", "dell-r6515", "--priority", "3")
    assert code == 0, out
    assert attribute(inventory, server) == {
        "method": "out-of-band",
        "status": "",
        "priority": 3,
        "requester": "carol",
        "firmwareSet": "dell-r6515",
        "force": False,
        "dryRun": False,
    }
    assert "requested firmware set dell-r6515" in out and "a01" in out


def test_install_with_versions_force_and_dry_run(inventory: InventoryClient, clean_inventory: InventoryServer) -> None:
    (server,) = seed(clean_inventory, "a02")
    args = ["install", "-s", server, "--firmware", "bmc=2.80.80.80", "--firmware", "BIOS=2.7.3"]
    code, _, err = run(*args, "--force", "--dry-run", "--requester", "ops-bot")
    assert code == 0, err
    data = attribute(inventory, server)
    assert data["Firmware"] == {"bmc": {"version": "2.80.80.80"}, "bios": {"version": "2.7.3"}}
    assert (data["force"], data["dryRun"], data["requester"], data["priority"]) == (True, True, "ops-bot", 1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--firmware", "bmc"], "--firmware 'bmc': use COMPONENT=VERSION"),
        (["--firmware", "bmc=1", "--firmware", "bmc=2"], "names component 'bmc' twice"),
        (["--firmware", "bmc=1", "--firmware-set", "s"], "give --firmware-set or --firmware, not both"),
        (["--firmware", "bmc=1", "--requester", ""], None),  # empty requester: $USER
    ],
)
def test_install_refuses_bad_arguments_and_writes_nothing(
    inventory: InventoryClient, clean_inventory: InventoryServer, args: list[str], message: str | None
) -> None:
    (server,) = seed(clean_inventory, "a03")
    code, _, err = run("install", "--server", server, *args)
    if message is None:
        assert code == 0 and attribute(inventory, server)["requester"] == "carol"
        return
    assert code == 2 and message in err
    with pytest.raises(NotFoundError):
        attribute(inventory, server)


def test_priority_out_of_range_is_a_usage_error(inventory: InventoryClient, clean_inventory: InventoryServer) -> None:
    (server,) = seed(clean_inventory, "a04")
    code, _, err = run("install", "--server", server, "--priority", "7")
    assert code == 2 and "--priority" in err


def test_a_running_task_is_not_overwritten_without_replace(
    inventory: InventoryClient, clean_inventory: InventoryServer
) -> None:
    (server,) = seed(clean_inventory, "a05", attributes={TASK_NAMESPACE: running_install()})
    code, _, err = run("install", "--server", server, "--firmware-set", "other")
    assert code == 3
    assert "is active (taskID t-1, worker flasher-a)" in err and "--replace" in err
    assert attribute(inventory, server) == running_install()

    code, out, _ = run("install", "--server", server, "--firmware-set", "other", "--replace")
    assert code == 0 and "replacing a active task" in out
    assert attribute(inventory, server)["firmwareSet"] == "other"
    assert attribute(inventory, server)["status"] == ""


def test_a_finished_task_is_replaced_by_a_new_request(
    inventory: InventoryClient, clean_inventory: InventoryServer
) -> None:
    (server,) = seed(clean_inventory, "a06", attributes={TASK_NAMESPACE: running_install(status="failed")})
    code, _, _ = run("install", "--server", server)
    assert code == 0
    data = attribute(inventory, server)
    assert data["status"] == "" and "firmwareSet" not in data and "taskID" not in data


def test_an_unknown_server_exits_4(inventory: InventoryClient) -> None:
    code, _, err = run("install", "--server", MISSING_SERVER, "--firmware-set", "x")
    assert code == 4 and f"server {MISSING_SERVER} not found" in err
    code, _, err = run("status", "--server", MISSING_SERVER)
    assert code == 4 and "not found" in err


def test_a_malformed_uuid_is_a_usage_error(inventory: InventoryClient) -> None:
    code, _, err = run("status", "--server", "not-a-uuid")
    assert code == 2 and "'not-a-uuid'" in err


# -- server control -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("choice", "action", "parameter"),
    [
        ("on", "set_power_state", "on"),
        ("off", "set_power_state", "off"),
        ("soft", "set_power_state", "soft"),
        ("cycle", "set_power_state", "cycle"),
        ("reset", "set_power_state", "reset"),
        ("status", "get_power_state", None),
        ("bmc-reset", "power_cycle_bmc", None),
    ],
)
def test_power_writes_the_server_control_attribute(
    inventory: InventoryClient, clean_inventory: InventoryServer, choice: str, action: str, parameter: str | None
) -> None:
    (server,) = seed(clean_inventory, f"p-{choice}")
    code, _, err = run("power", "--server", server, "--action", choice, "--priority", "3")
    assert code == 0, err
    expected: dict[str, Any] = {"action": action, "status": "", "priority": 3, "requester": "carol"}
    if parameter is not None:
        expected["action_parameter"] = parameter
    assert attribute(inventory, server, SERVER_CONTROL_NAMESPACE) == expected


def test_power_refuses_an_unknown_action_listing_the_valid_ones(inventory: InventoryClient) -> None:
    code, _, err = run("power", "--server", MISSING_SERVER, "--action", "hibernate")
    assert code == 2
    assert "hibernate" in err and "on|off|soft|cycle|reset|status|bmc-reset" in err.replace("'", "").replace(", ", "|")


def test_boot_writes_device_persistence_and_mode(inventory: InventoryClient, clean_inventory: InventoryServer) -> None:
    one, two, three = seed(clean_inventory, "b1", "b2", "b3")
    assert run("boot", "--server", one, "--device", "pxe", "--persistent", "--efi")[0] == 0
    assert attribute(inventory, one, SERVER_CONTROL_NAMESPACE) == {
        "action": "set_next_boot_device",
        "action_parameter": "pxe",
        "set_next_boot_device_persistent": True,
        "set_next_boot_device_efi": True,
        "status": "",
        "priority": 1,
        "requester": "carol",
    }
    assert run("boot", "--server", two, "--device", "disk")[0] == 0
    data = attribute(inventory, two, SERVER_CONTROL_NAMESPACE)
    assert (data["action_parameter"], data["set_next_boot_device_persistent"], data["set_next_boot_device_efi"]) == (
        "disk",
        False,
        False,
    )
    assert run("boot", "--server", three, "--pxe-persistent")[0] == 0
    assert attribute(inventory, three, SERVER_CONTROL_NAMESPACE)["action"] == "pxe_boot_persistent"


@pytest.mark.parametrize(
    "args",
    [[], ["--device", "floppy", "--pxe-persistent"], ["--device", "tape"]],
)
def test_boot_refuses_bad_arguments(
    inventory: InventoryClient, clean_inventory: InventoryServer, args: list[str]
) -> None:
    (server,) = seed(clean_inventory, "b4")
    code, _, err = run("boot", "--server", server, *args)
    assert code == 2, err
    with pytest.raises(NotFoundError):
        attribute(inventory, server, SERVER_CONTROL_NAMESPACE)


# -- status, cancel, list -----------------------------------------------------------------------------------------
def test_status_shows_worker_components_and_messages(
    inventory: InventoryClient, clean_inventory: InventoryServer
) -> None:
    data = running_install(
        Firmware={
            "bmc": {"version": "2.80.80.80", "status": "installed", "installedVersion": "2.80.80.80"},
            "bios": {"version": "2.7.3", "status": "active", "message": "Running 40%"},
        },
        messages=["2026-11-20T23:55:46Z [bios] installing 2.7.3: Running 40%"],
    )
    (server,) = seed(clean_inventory, "s1", attributes={TASK_NAMESPACE: data})
    code, out, _ = run("status", "--server", server)
    assert code == 0
    for text in ("active", "flasher-a", "t-1", "bmc", "2.80.80.80", "installed", "bios", "Running 40%", "[bios]"):
        assert text in out

    code, out, _ = run("status", "--server", server, "--json")
    assert code == 0 and json.loads(out) == data


def test_status_of_a_failed_task_exits_1_and_a_missing_task_4(
    inventory: InventoryClient, clean_inventory: InventoryServer
) -> None:
    control = {"action": "get_power_state", "status": "failed", "error": "error identifying current power state: x"}
    (server,) = seed(clean_inventory, "s2", attributes={SERVER_CONTROL_NAMESPACE: control})
    code, out, _ = run("status", "--server", server, "--control")
    assert code == 1 and "error identifying current power state: x" in out
    code, _, err = run("status", "--server", server)
    assert code == 4 and "has no install task" in err


def _drive(inventory: InventoryClient, server: str, namespace: str, steps: list[dict[str, Any]]) -> threading.Thread:
    """Write each step's data over the attribute, 0.3 s apart, from a thread (as a worker would)."""

    def go() -> None:
        for data in steps:
            time.sleep(0.3)
            inventory.replace_attribute(server, namespace, data)

    thread = threading.Thread(target=go, daemon=True)
    thread.start()
    return thread


def _install_steps(end: str) -> list[dict[str, Any]]:
    queued = running_install(status="queued", messages=["2026-11-20T23:55:40Z queued by flasher-a (priority 2)"])
    active = running_install(
        Firmware={"bios": {"version": "2.7.3", "status": "active"}},
        messages=[*queued["messages"], "2026-11-20T23:55:46Z [bios] installing 2.7.3: Running 40%"],
    )
    done = running_install(
        status=end,
        Firmware={"bios": {"version": "2.7.3", "status": "installed" if end == "success" else "failed"}},
        messages=[*active["messages"], f"2026-11-20T23:56:46Z {end}"],
    )
    return [queued, active, done]


@pytest.mark.parametrize(("end", "code"), [("success", 0), ("failed", 1)])
def test_status_watch_follows_until_the_task_ends(
    inventory: InventoryClient, clean_inventory: InventoryServer, end: str, code: int
) -> None:
    (server,) = seed(clean_inventory, "w1", attributes={TASK_NAMESPACE: {"status": "", "requester": "carol"}})
    thread = _drive(inventory, server, TASK_NAMESPACE, _install_steps(end))
    exit_code, out, _ = run("status", "--server", server, "--watch", "--interval", "0.1")
    thread.join(5)
    assert exit_code == code
    assert out.index("requested") < out.index("queued on flasher-a") < out.index("installing 2.7.3: Running 40%")
    assert f"{end} on flasher-a" in out


def test_status_watch_json_prints_one_line_per_change(
    inventory: InventoryClient, clean_inventory: InventoryServer
) -> None:
    (server,) = seed(clean_inventory, "w2", attributes={TASK_NAMESPACE: {"status": "", "requester": "carol"}})
    thread = _drive(inventory, server, TASK_NAMESPACE, _install_steps("success"))
    code, out, _ = run("status", "--server", server, "--watch", "--json", "--interval", "0.1")
    thread.join(5)
    assert code == 0
    statuses = [json.loads(line)["status"] for line in out.splitlines()]
    assert statuses == ["", "queued", "active", "success"]


def test_status_watch_on_a_terminal_draws_a_live_view(
    inventory: InventoryClient, clean_inventory: InventoryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (server,) = seed(clean_inventory, "w3", attributes={TASK_NAMESPACE: {"status": "", "requester": "carol"}})
    screen = io.StringIO()
    monkeypatch.setattr(task_cli, "console", Console(file=screen, force_terminal=True, width=200))
    thread = _drive(inventory, server, TASK_NAMESPACE, _install_steps("success"))
    code, _, _ = run("status", "--server", server, "--watch", "--interval", "0.1")
    thread.join(5)
    assert code == 0
    drawn = screen.getvalue()
    assert "\x1b[" in drawn  # drawn with terminal control sequences
    assert "components" in drawn and "installed" in drawn and "success" in drawn


def test_power_wait_follows_the_control_task(inventory: InventoryClient, clean_inventory: InventoryServer) -> None:
    (server,) = seed(clean_inventory, "w4")
    base = {"action": "set_power_state", "action_parameter": "cycle", "priority": 1, "requester": "carol"}
    steps = [
        {**base, "status": "queued", "taskID": "t-9", "worker": "flasher-b"},
        {
            **base,
            "status": "active",
            "taskID": "t-9",
            "worker": "flasher-b",
            "messages": ["2026 identified current power state: on"],
        },
        {
            **base,
            "status": "success",
            "taskID": "t-9",
            "worker": "flasher-b",
            "messages": ["2026 identified current power state: on", "2026 server power state set successful: cycle"],
        },
    ]

    def operator_then_worker() -> None:  # wait for the command's write, then act as the worker
        deadline = time.monotonic() + 5
        task_id = "t-9"
        while time.monotonic() < deadline:
            try:
                request = attribute(inventory, server, SERVER_CONTROL_NAMESPACE)
                if request.get("status") == "":
                    task_id = request_task_id(server, TaskKind.SERVER_CONTROL, request)  # as flasher admits it
                    break
            except NotFoundError:
                pass
            time.sleep(0.05)
        for data in steps:
            time.sleep(0.2)
            inventory.replace_attribute(server, SERVER_CONTROL_NAMESPACE, {**data, "taskID": task_id})

    thread = threading.Thread(target=operator_then_worker, daemon=True)
    thread.start()
    code, out, _ = run("power", "--server", server, "--action", "cycle", "--wait", "--interval", "0.1")
    thread.join(5)
    assert code == 0, out
    assert "server power state set successful: cycle" in out


def test_cancel_says_what_state_the_task_was_in(inventory: InventoryClient, clean_inventory: InventoryServer) -> None:
    queued, done = seed(clean_inventory, "c1", "c2")
    inventory.create_attribute(queued, TASK_NAMESPACE, running_install(status="queued"))
    inventory.create_attribute(done, SERVER_CONTROL_NAMESPACE, {"action": "get_power_state", "status": "success"})

    code, out, _ = run("cancel", "--server", queued)
    assert code == 0 and "(it was queued)" in out
    assert attribute(inventory, queued) == {**running_install(status="queued"), "cancel": True}
    code, out, _ = run("cancel", "--server", queued)
    assert code == 0 and "already requested" in out

    code, out, _ = run("cancel", "--server", done, "--control")
    assert code == 0 and "already ended (success); nothing to cancel" in out
    assert "cancel" not in attribute(inventory, done, SERVER_CONTROL_NAMESPACE)

    code, _, err = run("cancel", "--server", done)
    assert code == 4 and "has no install task" in err


def test_list_filters_by_status_and_kind_with_one_query_per_namespace(
    inventory: InventoryClient, clean_inventory: InventoryServer
) -> None:
    seed(clean_inventory, "l1", attributes={TASK_NAMESPACE: running_install(status="queued")})
    seed(clean_inventory, "l2", attributes={TASK_NAMESPACE: running_install(status="success")})
    seed(
        clean_inventory, "l3", attributes={SERVER_CONTROL_NAMESPACE: {"action": "get_power_state", "status": "queued"}}
    )
    seed(clean_inventory, "l4", attributes={TASK_NAMESPACE: {"status": "requested"}})
    seed(clean_inventory, "l5")

    clean_inventory.set_faults(every=1, status=None, delay=0.001, methods=["GET"], path_regex="^/api/v1/servers$")
    code, out, _ = run("list", "--status", "queued", "--json")
    assert clean_inventory.fault_state()["matched"] == 3  # one listing per namespace (three kinds, one page each)
    clean_inventory.clear_faults()
    assert code == 0
    assert sorted((t["name"], t["kind"]) for t in json.loads(out)) == [("l1", "install"), ("l3", "server_control")]

    code, out, _ = run("list", "--kind", "install", "--json")
    assert sorted((t["name"], t["status"]) for t in json.loads(out)) == [
        ("l1", "queued"),
        ("l2", "success"),
        ("l4", "requested"),
    ]
    code, out, _ = run("list", "--status", "new", "--json")
    assert [t["name"] for t in json.loads(out)] == ["l4"]

    code, out, _ = run("list")
    assert code == 0 and "tasks (4)" in out and "get_power_state" in out and "firmware set dell-r6515" in out


def test_collect_and_provision_write_their_requests(
    inventory: InventoryClient, clean_inventory: InventoryServer
) -> None:
    from flasher.constants import INVENTORY_NAMESPACE

    (server,) = seed(clean_inventory, "collect-me")
    code, out, err = run("collect", "--server", server, "--priority", "2")
    assert code == 0, err
    assert "requested collect the hardware from the BMC" in out
    assert attribute(inventory, server, INVENTORY_NAMESPACE) == {"status": "", "priority": 2, "requester": "carol"}
    code, _, err = run("provision", "--server", server, "--profile", "rescue", "--efi")
    assert code == 0, err
    assert attribute(inventory, server, SERVER_CONTROL_NAMESPACE) == {
        "action": "provision",
        "action_parameter": "rescue",
        "status": "",
        "priority": 1,
        "requester": "carol",
        "set_next_boot_device_efi": True,
    }
