"""InventoryClient over real HTTP against the sandbox inventory (``flasher-sandbox inventory``).

Covers what the unit tests mock: attribute CRUD and upsert, paging with a small page size, attribute and
component filters, installed-firmware updates, firmware sets by labels, BMC credentials, bearer-token auth,
and retries against injected faults (including a lost response to a write).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flasher import redact
from flasher.config import InventorySettings
from flasher.constants import BMC_INFO_NAMESPACE, OUTOFBAND_STATUS_NAMESPACE, TASK_NAMESPACE
from flasher.inventory import (
    ComponentFilter,
    ConflictError,
    InventoryClient,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
    attr_filter,
)
from flasher_sandbox.servers import InventoryServer

pytestmark = pytest.mark.integration

FIRMWARE: list[dict[str, Any]] = [
    {
        "vendor": "dell",
        "model": ["r6515", "r7515"],
        "component": "bmc",
        "version": "2.80.80.80",
        "filename": "iDRAC_2.80.80.80.bin",
        "checksum": "4b" * 32,
        "upstream_url": "https://downloads.example/dell/idrac-2.80.80.80.bin",
        "repository_url": "http://127.0.0.1:9000/firmware/dell/idrac-2.80.80.80.bin",
    },
    {
        "vendor": "dell",
        "model": ["r6515"],
        "component": "bios",
        "version": "2.7.3",
        "filename": "BIOS_R6515_2.7.3.bin",
        "checksum": "0a" * 32,
        "upstream_url": "https://downloads.example/dell/bios-2.7.3.bin",
        "repository_url": "http://127.0.0.1:9000/firmware/dell/bios-2.7.3.bin",
    },
]


def _server(name: str, bmc_version: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "vendor": "dell",
        "model": "r6515",
        "serial": name.upper(),
        "bmc": {"address": f"127.0.0.1:{8443 + len(name)}", "username": "root", "password": "sandbox-bmc-pw"},
        "components": [
            {"type": "bmc", "name": "BMC", "installed": bmc_version},
            {"type": "bios", "name": "BIOS", "installed": "2.6.6"},
        ],
        **extra,
    }


SEED: dict[str, Any] = {
    "firmware": FIRMWARE,
    "firmware_sets": [
        {
            "name": "dell-r6515",
            "labels": {"vendor": "dell", "model": "r6515"},
            "firmware": [{"component": "bmc", "version": "2.80.80.80"}, {"component": "bios", "version": "2.7.3"}],
        },
        {
            "name": "dell-r7515",
            "labels": {"vendor": "dell", "model": "r7515"},
            "firmware": [{"component": "bmc", "version": "2.80.80.80"}],
        },
    ],
    "servers": [_server(f"r6515-a{i:02d}", "2.75.75.75" if i % 3 else "2.80.80.80") for i in range(7)]
    + [_server("r6515-b01", "2.75.75.75", facility="ams1")],
}


def client_for(server: InventoryServer, **overrides: Any) -> InventoryClient:
    values: dict[str, Any] = {"url": server.url, "retry_deadline": 10.0, "retry_max_wait": 0.2, "read_timeout": 10}
    values.update(overrides)
    return InventoryClient(InventorySettings(**values))


@pytest.fixture
def seeded(clean_inventory: InventoryServer) -> Iterator[tuple[InventoryServer, dict[str, str]]]:
    """The session inventory holding SEED; yields it with the server uuids by name."""
    result = clean_inventory.seed(SEED)
    yield clean_inventory, result["servers"]
    redact.forget_all()


def test_ready(clean_inventory: InventoryServer) -> None:
    assert client_for(clean_inventory).ready() is True


def test_attribute_crud_and_upsert(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, ids = seeded
    client = client_for(server)
    uuid = ids["r6515-a01"]

    assert client.create_attribute(uuid, TASK_NAMESPACE, {"status": "", "priority": 2}) == TASK_NAMESPACE
    with pytest.raises(ConflictError):
        client.create_attribute(uuid, TASK_NAMESPACE, {"status": ""})
    client.replace_attribute(uuid, TASK_NAMESPACE, {"status": "queued", "priority": 2, "worker": "w1"})
    assert client.get_attribute(uuid, TASK_NAMESPACE).data == {"status": "queued", "priority": 2, "worker": "w1"}

    client.upsert_attribute(uuid, TASK_NAMESPACE, {"status": "active"})  # exists: replaced
    assert client.get_attribute(uuid, TASK_NAMESPACE).data == {"status": "active"}
    client.delete_attribute(uuid, TASK_NAMESPACE)
    with pytest.raises(NotFoundError):
        client.get_attribute(uuid, TASK_NAMESPACE)
    with pytest.raises(NotFoundError):
        client.delete_attribute(uuid, TASK_NAMESPACE)
    client.upsert_attribute(uuid, TASK_NAMESPACE, {"status": "requested"})  # missing: created
    assert client.get_attribute(uuid, TASK_NAMESPACE).data == {"status": "requested"}
    assert TASK_NAMESPACE in {a.namespace for a in client.list_attributes(uuid)}

    with pytest.raises(NotFoundError):
        client.upsert_attribute("00000000-0000-4000-8000-000000000000", TASK_NAMESPACE, {"status": ""})


def test_servers_and_their_helpers(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, ids = seeded
    client = client_for(server)
    record = client.get_server(ids["r6515-a02"])
    assert (record.name, record.vendor, record.model, record.serial) == ("r6515-a02", "dell", "r6515", "R6515-A02")
    assert record.bmc_address == "127.0.0.1:8452"
    assert record.attribute(BMC_INFO_NAMESPACE) is not None
    new = client.create_server("r6515-c01", facility="ams1")
    assert client.get_server(new).facility == "ams1"


def test_paging_with_a_small_page_size(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, ids = seeded
    client = client_for(server, page_size=3)
    names = [s.name for s in client.list_servers()]
    assert sorted(names) == sorted(ids)  # 8 servers over 3 pages, each once
    assert len(names) == len(set(names)) == 8
    assert [s.name for s in client.iter_servers(facility="ams1")] == ["r6515-b01"]


def test_filters(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, ids = seeded
    client = client_for(server, page_size=2)
    for name, status in (("r6515-a01", "queued"), ("r6515-a02", ""), ("r6515-a04", "active")):
        client.upsert_attribute(ids[name], TASK_NAMESPACE, {"status": status, "priority": len(name) % 4})

    def names(**kwargs: Any) -> list[str]:
        return sorted(s.name for s in client.list_servers(**kwargs))

    assert names(attr=[TASK_NAMESPACE]) == ["r6515-a01", "r6515-a02", "r6515-a04"]
    assert names(attr=[attr_filter(TASK_NAMESPACE, "status", "eq", "queued")]) == ["r6515-a01"]
    assert names(attr=[attr_filter(TASK_NAMESPACE, "status", "eq", "")]) == ["r6515-a02"]
    assert names(attr=[attr_filter(TASK_NAMESPACE, "status", "like", "act")]) == ["r6515-a04"]
    assert names(attr=[TASK_NAMESPACE, attr_filter(TASK_NAMESPACE, "status", "eq", "done")]) == []

    on_old_bmc = ComponentFilter(
        type="bmc", ver_attr=[attr_filter(OUTOFBAND_STATUS_NAMESPACE, "firmware.installed", "eq", "2.75.75.75")]
    )
    old = names(components=[on_old_bmc])
    assert old == sorted(n for n in ids if n == "r6515-b01" or int(n[-2:]) % 3)
    assert names(components=[on_old_bmc], facility="ams1") == ["r6515-b01"]


def test_set_installed_firmware(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, ids = seeded
    client = client_for(server)
    uuid = ids["r6515-a01"]
    (bmc,) = [c for c in client.list_components(uuid) if c.component_type_slug == "bmc"]
    assert bmc.installed_firmware() == "2.75.75.75"

    client.set_installed_firmware(uuid, bmc, "2.80.80.80")

    after = {c.component_type_slug: c for c in client.list_components(uuid)}
    assert after["bmc"].installed_firmware() == "2.80.80.80"
    assert after["bios"].installed_firmware() == "2.6.6"  # the other component is untouched
    # the stored fields survived the update
    assert (after["bmc"].name, after["bmc"].vendor, after["bmc"].serial) == (bmc.name, bmc.vendor, bmc.serial)
    newest = ComponentFilter(
        type="bmc", ver_attr=[attr_filter(OUTOFBAND_STATUS_NAMESPACE, "firmware.installed", "eq", "2.80.80.80")]
    )
    assert uuid in {s.uuid for s in client.list_servers(components=[newest])}


def test_firmware_and_firmware_sets(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, _ = seeded
    client = client_for(server)
    assert sorted(fw.component for fw in client.list_firmware(vendor="DELL", model="r6515")) == ["bios", "bmc"]
    (bmc,) = client.list_firmware(vendor="dell", component="BMC")
    assert client.get_firmware(str(bmc.uuid)).model == ["r6515", "r7515"]
    with pytest.raises(ConflictError):  # same vendor, component, version and filename
        client.create_firmware(FIRMWARE[0])

    (by_labels,) = client.list_firmware_sets(labels={"vendor": "dell", "model": "r6515"})
    assert by_labels.name == "dell-r6515"
    assert sorted((fw.component, fw.version) for fw in by_labels.component_firmware) == [
        ("bios", "2.7.3"),
        ("bmc", "2.80.80.80"),
    ]
    assert client.list_firmware_sets(labels={"vendor": "dell", "model": "r9999"}) == []
    assert client.get_firmware_set("dell-r7515").labels == {"vendor": "dell", "model": "r7515"}
    assert client.get_firmware_set(str(by_labels.uuid)).name == "dell-r6515"
    with pytest.raises(NotFoundError):
        client.get_firmware_set("dell-r0000")

    new_set = client.create_firmware_set("dell-r6515-bmc-only", [str(bmc.uuid)], {"vendor": "dell", "model": "x"})
    assert client.get_firmware_set(new_set).labels == {"vendor": "dell", "model": "x"}


def test_bmc_credentials(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, ids = seeded
    creds = client_for(server).get_bmc_credentials(ids["r6515-a03"])
    assert creds.username == "root"
    assert creds.password.get_secret_value() == "sandbox-bmc-pw"
    assert redact.scrub("password sandbox-bmc-pw") == "password ***"


def test_retries_ride_over_injected_5xx(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, ids = seeded
    client = client_for(server, page_size=2)
    with server.faults(every=2, status=503):  # every other API request fails
        assert len(client.list_servers()) == 8
        client.upsert_attribute(ids["r6515-a05"], TASK_NAMESPACE, {"status": "queued"})
        state = server.fault_state()
    assert state["injected"] >= 3
    assert client.get_attribute(ids["r6515-a05"], TASK_NAMESPACE).data == {"status": "queued"}


def test_a_lost_answer_to_a_create_is_reported_not_repeated(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, ids = seeded
    client = client_for(server)
    uuid = ids["r6515-a06"]
    with server.faults(every=1, status=500, methods=["POST"], phase="after", times=1):
        with pytest.raises(UnavailableError, match="may have been applied"):
            client.create_attribute(uuid, TASK_NAMESPACE, {"status": ""})
        assert server.fault_state()["matched"] == 1  # one POST: not retried
    assert client.get_attribute(uuid, TASK_NAMESPACE).data == {"status": ""}  # it had been applied


def test_upsert_survives_a_lost_answer(seeded: tuple[InventoryServer, dict[str, str]]) -> None:
    server, ids = seeded
    client = client_for(server)
    uuid = ids["r6515-a00"]
    # the POST is applied but its answer is lost (500): upsert retries, meets duplicate key, replaces
    with server.faults(every=1, status=500, methods=["POST"], phase="after", times=1):
        client.upsert_attribute(uuid, TASK_NAMESPACE, {"status": "queued"})
    assert client.get_attribute(uuid, TASK_NAMESPACE).data == {"status": "queued"}


def test_the_retry_deadline_bounds_a_dead_inventory(clean_inventory: InventoryServer) -> None:
    client = client_for(clean_inventory, retry_deadline=0.5, retry_max_wait=0.1)
    with clean_inventory.faults(every=1, status=502):
        with pytest.raises(UnavailableError, match="gave up after"):
            client.list_servers()
        assert clean_inventory.fault_state()["matched"] >= 2  # retried, then stopped


def test_bearer_token_auth(tmp_path: Path) -> None:
    server = InventoryServer(tmp_path, token="sandbox-api-token-1").start()
    try:
        good = client_for(server, auth="token", token="sandbox-api-token-1")
        assert good.list_servers() == []
        bad = client_for(server, auth="token", token="wrong-token-2222")
        with pytest.raises(UnauthorizedError) as info:
            bad.list_servers()
        assert "wrong-token-2222" not in str(info.value)
        with pytest.raises(UnauthorizedError):
            client_for(server).list_servers()  # no token at all
    finally:
        server.stop()
        redact.forget_all()
