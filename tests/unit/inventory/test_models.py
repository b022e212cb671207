"""Inventory models parse the reference server's JSON literally (bodies copied from the transcript)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from flasher.constants import (
    BMC_INFO_NAMESPACE,
    INBAND_STATUS_NAMESPACE,
    OUTOFBAND_STATUS_NAMESPACE,
    SERVER_VENDOR_NAMESPACE,
    TASK_NAMESPACE,
)
from flasher.inventory.models import (
    ANSWER_CONTEXT,
    Attributes,
    BMCCredentials,
    Component,
    ComponentType,
    FirmwareSet,
    FirmwareVersion,
    Server,
    VersionedAttributes,
)
from tests.support.serverservice_transcript import body, sections

SERVER_ID = "3f0c2a8e-1b7d-4c55-9a3e-0c1d2e3f4a01"


def test_the_transcript_copy_is_complete_and_parses() -> None:
    titles = [s.title for s in sections()]
    assert "GET /servers/{uuid}" in titles
    assert "GET credentials bmc" in titles
    # every section but the last (cut off in the reference) has at least one JSON body
    assert all(s.bodies for s in sections()[:-1])


def test_server_from_get_server() -> None:
    server = Server.model_validate(body("GET /servers/{uuid}")["record"], context=ANSWER_CONTEXT)
    assert server.uuid == SERVER_ID
    assert server.name == "r6515-a01"
    assert server.facility == "sandbox"
    # "components": null and "versioned_attributes": null read as empty lists
    assert server.components == []
    assert server.versioned_attributes == []
    assert [a.namespace for a in server.attributes] == [SERVER_VENDOR_NAMESPACE, BMC_INFO_NAMESPACE, TASK_NAMESPACE]
    assert (server.vendor, server.model, server.serial) == ("dell", "r6515", "ABC123")
    assert server.bmc_address == "127.0.1.1"
    task = server.attribute(TASK_NAMESPACE)
    assert task is not None and isinstance(task.data, dict)
    assert task.data["status"] == "queued"
    assert task.data["worker"] == "flasher-0"
    assert task.created_at == datetime(2026, 11, 20, 23, 55, 46, 439352, tzinfo=UTC)
    assert server.updated_at == datetime(2026, 11, 20, 23, 55, 46, 468555, tzinfo=UTC)
    assert server.deleted_at is None
    assert server.attribute("sh.hollow.nothing") is None


def test_servers_list_records() -> None:
    records = body("GET /servers?attr=sh.hollow.flasher.task")["records"]
    servers = [Server.model_validate(r, context=ANSWER_CONTEXT) for r in records]
    assert [s.uuid for s in servers] == [SERVER_ID]
    task = servers[0].attribute(TASK_NAMESPACE)
    assert task is not None and isinstance(task.data, dict) and task.data["status"] == ""


def test_server_without_vendor_or_bmc_attributes() -> None:
    server = Server.model_validate({"uuid": SERVER_ID, "attributes": None})
    assert server.attributes == []
    assert (server.vendor, server.model, server.serial, server.bmc_address) == (None, None, None, None)
    odd = Server.model_validate(
        {
            "uuid": SERVER_ID,
            "attributes": [
                {"namespace": SERVER_VENDOR_NAMESPACE, "data": {"vendor": 7, "model": ""}},
                {"namespace": BMC_INFO_NAMESPACE, "data": None},
            ],
        }
    )
    assert odd.vendor is None  # not a string
    assert odd.model is None  # empty
    assert odd.bmc_address is None
    bmc_info = odd.attribute(BMC_INFO_NAMESPACE)
    # issue 12: a null data stays null (read as {} a null task attribute was a new request); its keys: none
    assert bmc_info is not None and bmc_info.data is None and bmc_info.as_object() == {}


def test_components_and_installed_firmware() -> None:
    records = body("GET /servers/{uuid}/components", occurrence=1)["records"]
    components = [Component.model_validate(r, context=ANSWER_CONTEXT) for r in records]
    bmc, bios = components
    assert bmc.component_type_slug == "bmc"
    assert bmc.component_type_id == "921b7e12-5c52-40c0-8d69-b18c7aed7f54"
    assert bmc.component_type_name == "BMC"
    assert bmc.server_uuid == SERVER_ID
    assert bmc.attributes == []  # null
    assert bmc.installed_firmware() == "2.75.75.75"
    assert bios.installed_firmware() == "2.6.6"
    assert bmc.installed_firmware(INBAND_STATUS_NAMESPACE) is None
    assert bmc.versioned_attributes[0].tally == 0
    assert bmc.versioned_attributes[0].last_reported_at == datetime(2026, 11, 20, 23, 55, 49, 401892, tzinfo=UTC)


def _version(installed: Any, at: datetime | None, namespace: str = OUTOFBAND_STATUS_NAMESPACE) -> dict[str, Any]:
    return {
        "namespace": namespace,
        "data": {"firmware": {"installed": installed}},
        "created_at": at.isoformat() if at else None,
    }


def test_installed_firmware_reads_the_newest_version_whatever_the_order() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    component = Component.model_validate(
        {
            "uuid": "6025c07d-d67d-4ca7-9e47-efa5945dce03",
            "versioned_attributes": [
                _version("1.0", t0),
                _version("3.0", t0 + timedelta(hours=2)),
                _version("9.9", t0 + timedelta(hours=5), INBAND_STATUS_NAMESPACE),
                _version("2.0", t0 + timedelta(hours=1)),
            ],
        }
    )
    assert component.installed_firmware() == "3.0"
    assert component.installed_firmware(INBAND_STATUS_NAMESPACE) == "9.9"


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"firmware": None},
        {"firmware": "2.0"},
        {"firmware": {}},
        {"firmware": {"installed": ""}},
        {"firmware": {"installed": 2}},
    ],
)
def test_installed_firmware_is_none_when_unknown(data: dict[str, Any]) -> None:
    component = Component.model_validate(
        {"uuid": "x", "versioned_attributes": [{"namespace": OUTOFBAND_STATUS_NAMESPACE, "data": data}]}
    )
    assert component.installed_firmware() is None


def test_component_types() -> None:
    types = [ComponentType.model_validate(r) for r in body("GET /server-component-types")["records"]]
    assert [(t.name, t.slug) for t in types] == [("BMC", "bmc"), ("BIOS", "bios")]
    assert types[0].id == "921b7e12-5c52-40c0-8d69-b18c7aed7f54"


def test_firmware_versions() -> None:
    records = body("GET /server-component-firmwares?vendor=dell&model=r6515")["records"]
    bios, bmc = (FirmwareVersion.model_validate(r, context=ANSWER_CONTEXT) for r in records)
    assert bios.model == ["r6515"]
    assert bmc.model == ["r6515", "r7515"]
    assert bmc.component == "bmc"
    assert bmc.version == "2.80.80.80"
    assert bmc.filename == "iDRAC-with-Lifecycle-Controller_Firmware_2.80.bin"
    assert bmc.checksum == "4b2f3c1d0e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c"
    assert bmc.repository_url == "http://127.0.0.1:9000/firmware/dell/idrac-2.80.bin"
    assert bmc.upstream_url == "https://downloads.example/idrac-2.80.bin"


@pytest.mark.parametrize(
    "title",
    [
        "GET /server-component-firmware-sets?attr=labels vendor+model",
        "GET /server-component-firmware-sets?name=dell-r6515",
    ],
)
def test_firmware_sets(title: str) -> None:
    (record,) = body(title)["records"]
    fw_set = FirmwareSet.model_validate(record, context=ANSWER_CONTEXT)
    assert fw_set.uuid == "a6b9ec30-6efc-4870-996a-a48b60849415"
    assert fw_set.name == "dell-r6515"
    assert fw_set.labels == {"vendor": "dell", "model": "r6515"}
    assert sorted((fw.component, fw.version) for fw in fw_set.component_firmware) == [
        ("bios", "2.7.3"),
        ("bmc", "2.80.80.80"),
    ]


def test_firmware_set_labels_ignore_other_namespaces_and_non_strings() -> None:
    fw_set = FirmwareSet.model_validate(
        {
            "uuid": "a6b9ec30-6efc-4870-996a-a48b60849415",
            "name": "x",
            "attributes": [
                {"namespace": "sh.hollow.firmware_set.labels", "data": {"vendor": "dell", "latest": True}},
                {"namespace": "other", "data": {"model": "r6515"}},
            ],
            "component_firmware": None,
        }
    )
    assert fw_set.labels == {"vendor": "dell"}
    assert fw_set.component_firmware == []
    assert FirmwareSet.model_validate({"uuid": "u", "name": "y", "attributes": None}).labels == {}


def test_credentials_hide_the_password() -> None:
    creds = BMCCredentials.model_validate(body("GET credentials bmc")["record"])
    assert creds.username == "root"
    assert creds.password.get_secret_value() == "calvin"
    assert "calvin" not in repr(creds)
    assert "calvin" not in str(creds)


def test_unknown_keys_are_ignored() -> None:
    record = body("GET /servers/{uuid}")["record"] | {"state": "in_use", "new_field": {"x": 1}}
    server = Server.model_validate(record, context=ANSWER_CONTEXT)
    assert not hasattr(server, "new_field")
    attr = Attributes.model_validate({"namespace": "a", "data": {"k": 1}, "extra": 1})
    assert attr.data == {"k": 1}
    version = VersionedAttributes.model_validate({"namespace": "a", "data": {}, "tally": 3, "server_id": "x"})
    assert version.tally == 3


@pytest.mark.parametrize(
    ("model", "record", "field"),
    [
        (Server, {"name": "no-uuid"}, "uuid"),
        (Attributes, {"data": {}}, "namespace"),
        (Component, {"name": "BMC"}, "uuid"),
        (FirmwareVersion, {"vendor": "dell", "version": "1", "component": "bmc"}, "uuid"),
        (FirmwareSet, {"name": "s"}, "uuid"),
        (BMCCredentials, {"username": "root"}, "password"),
    ],
)
def test_answers_missing_required_fields_fail(model: type[Any], record: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        model.model_validate(record, context=ANSWER_CONTEXT)
    assert field in str(info.value)


def test_request_models_may_lack_the_uuid_outside_answers() -> None:
    fw = FirmwareVersion(vendor="dell", version="1.0", component="bios")
    assert fw.uuid is None
    assert FirmwareSet(name="s").uuid is None


def test_go_zero_deleted_at_means_not_deleted() -> None:
    zero = Server.model_validate({"uuid": SERVER_ID, "deleted_at": "0001-01-01T00:00:00Z"})
    assert zero.deleted_at is None
    deleted = Server.model_validate({"uuid": SERVER_ID, "deleted_at": "2026-11-20T23:55:46Z"})
    assert deleted.deleted_at == datetime(2026, 11, 20, 23, 55, 46, tzinfo=UTC)
