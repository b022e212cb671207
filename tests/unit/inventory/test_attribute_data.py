"""Issue 12, item 3: an attribute's data is whatever JSON its writer stored. Any value in any attribute of a server
record (the server's own, its components' versioned ones, a firmware set's labels) leaves the record readable, and
every reader of keys sees an object or nothing."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flasher.commands.inventory import _task_status
from flasher.commands.task_view import INVALID, TaskView, render
from flasher.constants import (
    BMC_INFO_NAMESPACE,
    FIRMWARE_SET_LABELS_NAMESPACE,
    OUTOFBAND_STATUS_NAMESPACE,
    SERVER_CONTROL_NAMESPACE,
    SERVER_VENDOR_NAMESPACE,
    TASK_NAMESPACE,
)
from flasher.inventory.models import ANSWER_CONTEXT, Component, FirmwareSet, Server
from flasher.task.model import TaskKind
from tests.unit.task.test_model_properties import json_values

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SERVER_ID = "3f0c2a8e-1b7d-4c55-9a3e-0c1d2e3f4a01"
NAMESPACES = [TASK_NAMESPACE, SERVER_CONTROL_NAMESPACE, SERVER_VENDOR_NAMESPACE, BMC_INFO_NAMESPACE, "x.other"]


@SETTINGS
@given(st.dictionaries(st.sampled_from(NAMESPACES), json_values, min_size=1))
def test_a_server_record_with_any_attribute_data_is_readable(data: dict[str, Any]) -> None:
    record = {"uuid": SERVER_ID, "attributes": [{"namespace": ns, "data": value} for ns, value in data.items()]}
    server = Server.model_validate(record, context=ANSWER_CONTEXT)
    for namespace, value in data.items():
        attribute = server.attribute(namespace)
        assert attribute is not None and attribute.data == value  # as stored, null included
        assert attribute.as_object() == (value if isinstance(value, dict) else {})
    for found in (server.vendor, server.model, server.serial, server.bmc_address):
        assert found is None or (isinstance(found, str) and found)
    for kind in TaskKind:
        view = TaskView.of(server, kind)
        value = data.get(kind.namespace, ...)
        if value is ...:
            assert view.data is None and _task_status(server, kind.namespace) is None
            continue
        render(view)
        view.summary()
        if not isinstance(value, dict):
            assert view.status == INVALID == _task_status(server, kind.namespace)
            assert view.invalid is not None and "is not a JSON object" in view.invalid
            assert view.stored == value and view.install_task() is None


@SETTINGS
@given(json_values)
def test_components_and_firmware_sets_with_any_attribute_data_are_readable(value: Any) -> None:
    component = Component.model_validate(
        {"uuid": SERVER_ID, "versioned_attributes": [{"namespace": OUTOFBAND_STATUS_NAMESPACE, "data": value}]},
        context=ANSWER_CONTEXT,
    )
    installed = component.installed_firmware()
    assert installed is None or isinstance(installed, str)
    firmware_set = FirmwareSet.model_validate(
        {"uuid": SERVER_ID, "name": "s", "attributes": [{"namespace": FIRMWARE_SET_LABELS_NAMESPACE, "data": value}]},
        context=ANSWER_CONTEXT,
    )
    assert all(isinstance(v, str) for v in firmware_set.labels.values())


def test_a_null_task_attribute_is_not_an_empty_request() -> None:
    server = Server.model_validate({"uuid": SERVER_ID, "attributes": [{"namespace": TASK_NAMESPACE, "data": None}]})
    view = TaskView.of(server, TaskKind.INSTALL)
    assert view.status == INVALID and view.invalid == "field 'data': value null is not a JSON object"
