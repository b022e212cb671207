"""The sandbox inventory against the reference Serverservice, over real HTTP with plain ``requests``.

First the transcript (``tests/data/serverservice-transcript.txt``, recorded from the real server) is replayed
with the same ids: every response must equal the recorded one byte for byte once timestamps are masked
(envelope keys and their order, omitted fields, ``null`` arrays, links and their escaping, error texts), with
the recorded status, ``Content-Type``, ``Location`` and ``Content-Length``. Then the behaviours the transcript
does not show: every filter operator, component and facility filters, paging across pages, soft delete,
versioned attributes, firmware validation and filters, firmware set labels.
"""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.structures import CaseInsensitiveDict

from flasher.constants import (
    BMC_INFO_NAMESPACE,
    FIRMWARE_SET_LABELS_NAMESPACE,
    OUTOFBAND_STATUS_NAMESPACE,
    SERVER_VENDOR_NAMESPACE,
    TASK_NAMESPACE,
)
from flasher_sandbox.servers import InventoryServer
from tests.support import serverservice_transcript

pytestmark = pytest.mark.integration

SERVER = "3f0c2a8e-1b7d-4c55-9a3e-0c1d2e3f4a01"
BMC_TYPE, BIOS_TYPE = "921b7e12-5c52-40c0-8d69-b18c7aed7f54", "b6258fd2-8e5f-4b08-8918-e4814eb305ae"
BMC_FW, BIOS_FW = "4533a9b3-9dd7-4987-bc0a-84aa986410ef", "35c8a01d-c51f-441b-8903-c85125bacd22"
FW_SET = "a6b9ec30-6efc-4870-996a-a48b60849415"
BMC_COMPONENT, BIOS_COMPONENT = "6025c07d-d67d-4ca7-9e47-efa5945dce03", "0ffe602c-baea-4bba-b7bf-601902345fd7"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
LABELS = FIRMWARE_SET_LABELS_NAMESPACE


@dataclass
class RecordedSection:
    """A transcript section as raw text: status line and headers (when shown) and body lines."""

    title: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    bodies: list[str] = field(default_factory=list)


def recorded_sections() -> list[RecordedSection]:
    sections: list[RecordedSection] = []
    for line in serverservice_transcript.PATH.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            sections.append(RecordedSection(line[4:].strip()))
        elif line.startswith("HTTP/1.1 "):
            sections[-1].status = int(line.split()[1])
        elif line.startswith("{"):
            try:
                json.loads(line)
            except json.JSONDecodeError:
                continue  # the transcript's last line is cut off; see the test for it
            sections[-1].bodies.append(line)
        elif ": " in line and sections:
            name, _, value = line.partition(": ")
            sections[-1].headers[name] = value
    return sections


@dataclass
class Answer:
    """One HTTP answer: status, headers (case-insensitive names) and body text."""

    status_code: int
    headers: CaseInsensitiveDict[str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def call(method: str, url: str, payload: Any = None) -> Answer:
    """One request over plain HTTP. The target is sent exactly as written (``requests`` would escape the
    brackets of ``sc_0[type]``, which the recorded client did not)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.netloc, timeout=30)
    try:
        body = None if payload is None else json.dumps(payload)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        headers = CaseInsensitiveDict(response.getheaders())
        return Answer(response.status, headers, response.read().decode("utf-8"))
    finally:
        connection.close()


def masked(text: str) -> str:
    return TIMESTAMP.sub("<ts>", text)


def _fw(uuid: str, component: str, version: str, filename: str, checksum: str, models: list[str]) -> dict[str, Any]:
    name = "idrac-2.80.bin" if component == "bmc" else "bios-2.7.3.bin"
    return {
        "uuid": uuid,
        "vendor": "dell",
        "model": models,
        "filename": filename,
        "version": version,
        "component": component,
        "checksum": checksum,
        "upstream_url": f"https://downloads.example/{name}",
        "repository_url": f"http://127.0.0.1:9000/firmware/dell/{name}",
    }


BMC_FIRMWARE = _fw(
    BMC_FW,
    "bmc",
    "2.80.80.80",
    "iDRAC-with-Lifecycle-Controller_Firmware_2.80.bin",
    "4b2f3c1d0e9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c",
    ["r6515", "r7515"],
)
BIOS_FIRMWARE = _fw(
    BIOS_FW,
    "bios",
    "2.7.3",
    "BIOS_2.7.3.bin",
    "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
    ["r6515"],
)
TASK = {"method": "out-of-band", "status": "", "priority": 2, "requester": "alice", "firmwareSet": "dell-r6515"}


def _component(uuid: str | None, name: str, type_id: str, installed: str | None = None) -> dict[str, Any]:
    component: dict[str, Any] = {"name": name, "vendor": "dell", "model": "r6515", "serial": "0"}
    component["component_type_id"] = type_id
    if uuid is not None:
        component |= {"uuid": uuid, "server_uuid": SERVER, "component_type_name": name}
        component["component_type_slug"] = name.lower()
        component["versioned_attributes"] = [
            {"namespace": OUTOFBAND_STATUS_NAMESPACE, "data": {"firmware": {"installed": installed}}}
        ]
    return component


def replay(inventory: InventoryServer) -> list[tuple[str, Answer]]:
    """The transcript's calls, in its order, with its ids; each answer under its section title."""
    api, server = inventory.api, f"{inventory.api}/servers/{SERVER}"
    sets = f"{api}/server-component-firmware-sets"
    task_url = f"{server}/attributes/{TASK_NAMESPACE}"
    queued = {**TASK, "status": "queued", "worker": "flasher-0"}
    calls: list[tuple[str, str, str, Any]] = [
        ("POST /servers", "POST", f"{api}/servers", {"uuid": SERVER, "name": "r6515-a01", "facility": "sandbox"}),
        (
            "POST /server-component-types",
            "POST",
            f"{api}/server-component-types",
            {"id": BMC_TYPE, "name": "BMC", "slug": "bmc"},
        ),
        (
            "POST /server-component-types",
            "POST",
            f"{api}/server-component-types",
            {"id": BIOS_TYPE, "name": "BIOS", "slug": "bios"},
        ),
        ("GET /server-component-types", "GET", f"{api}/server-component-types", None),
        (
            "POST /servers/{uuid}/attributes (vendor attrs)",
            "POST",
            f"{server}/attributes",
            {"namespace": SERVER_VENDOR_NAMESPACE, "data": {"vendor": "dell", "model": "r6515", "serial": "ABC123"}},
        ),
        (
            "POST /servers/{uuid}/attributes (vendor attrs)",
            "POST",
            f"{server}/attributes",
            {"namespace": BMC_INFO_NAMESPACE, "data": {"address": "127.0.1.1"}},
        ),
        (
            "POST /servers/{uuid}/components",
            "POST",
            f"{server}/components",
            [_component(None, "BMC", BMC_TYPE), _component(None, "BIOS", BIOS_TYPE)],
        ),
        ("GET /servers/{uuid}/components", "GET", f"{server}/components", None),
        ("POST /server-component-firmwares", "POST", f"{api}/server-component-firmwares", BMC_FIRMWARE),
        (
            "POST /server-component-firmwares (uppercase vendor -> error)",
            "POST",
            f"{api}/server-component-firmwares",
            {**BIOS_FIRMWARE, "vendor": "Dell", "upstream_url": "", "repository_url": ""},
        ),
        (
            "POST /server-component-firmwares (uppercase vendor -> error)",
            "POST",
            f"{api}/server-component-firmwares",
            BIOS_FIRMWARE,
        ),
        (
            "GET /server-component-firmwares?vendor=dell&model=r6515",
            "GET",
            f"{api}/server-component-firmwares?vendor=dell&model=r6515",
            None,
        ),
        (
            "POST /server-component-firmware-sets",
            "POST",
            sets,
            {
                "uuid": FW_SET,
                "name": "dell-r6515",
                "component_firmware_uuids": [BIOS_FW, BMC_FW],
                "attributes": [{"namespace": LABELS, "data": {"vendor": "dell", "model": "r6515"}}],
            },
        ),
        (
            "GET /server-component-firmware-sets?attr=labels vendor+model",
            "GET",
            f"{sets}?attr={LABELS}~vendor~eq~dell&attr={LABELS}~model~eq~r6515",
            None,
        ),
        ("GET /server-component-firmware-sets?name=dell-r6515", "GET", f"{sets}?name=dell-r6515", None),
        ("POST task attribute", "POST", f"{server}/attributes", {"namespace": TASK_NAMESPACE, "data": TASK}),
        (
            "POST same namespace again -> error",
            "POST",
            f"{server}/attributes",
            {"namespace": TASK_NAMESPACE, "data": TASK},
        ),
        ("GET /servers?attr=sh.hollow.flasher.task", "GET", f"{api}/servers?attr={TASK_NAMESPACE}", None),
        (f"PUT /servers/{{uuid}}/attributes/{TASK_NAMESPACE}", "PUT", task_url, {"data": queued}),
        (f"GET /servers/{{uuid}}/attributes/{TASK_NAMESPACE}", "GET", task_url, None),
        (
            f"GET /servers?attr={TASK_NAMESPACE}~status~eq~queued&page=1&limit=2",
            "GET",
            f"{api}/servers?attr={TASK_NAMESPACE}~status~eq~queued&limit=2",
            None,
        ),
        ("GET /servers/{uuid}", "GET", server, None),
        ("GET missing server", "GET", f"{api}/servers/3f0c2a8e-1b7d-4c55-9a3e-0c1d2e3f4aff", None),
        ("GET missing attribute", "GET", f"{server}/attributes/sh.hollow.missing", None),
        ("PUT credentials bmc", "PUT", f"{server}/credentials/bmc", {"username": "root", "password": "calvin"}),
        ("GET credentials bmc", "GET", f"{server}/credentials/bmc", None),
        ("DELETE attribute", "DELETE", task_url, None),
        ("GET /servers empty filter", "GET", f"{api}/servers?attr={TASK_NAMESPACE}", None),
        (
            "POST /servers/{uuid}/components",
            "POST",
            f"{server}/components",
            [
                _component(BMC_COMPONENT, "BMC", BMC_TYPE, "2.75.75.75"),
                _component(BIOS_COMPONENT, "BIOS", BIOS_TYPE, "2.6.6"),
            ],
        ),
        ("GET /servers/{uuid}/components", "GET", f"{server}/components", None),
        (
            "GET /servers?sc_0[type]=bmc&sc_0_ver_attr=...",
            "GET",
            f"{api}/servers?sc_0[type]=bmc&sc_0_ver_attr={OUTOFBAND_STATUS_NAMESPACE}~firmware.installed~eq~2.75.75.75",
            None,
        ),
    ]
    return [(title, call(method, url, payload)) for title, method, url, payload in calls]


@pytest.fixture(scope="module")
def own_inventory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InventoryServer]:
    """An inventory of this module's own, empty at start: the replay creates component types with the
    transcript's ids and slugs, which ``/_sandbox/reset`` keeps, so the session server (``sandbox_inventory``)
    may already hold them when other modules ran first."""
    server = InventoryServer(tmp_path_factory.mktemp("contract-inventory")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def replayed(own_inventory: InventoryServer) -> list[tuple[str, Answer]]:
    return replay(own_inventory)


def _pairs() -> list[tuple[str, int, int]]:
    """(title, section index, body index) for every recorded body, in order."""
    return [(s.title, i, j) for i, s in enumerate(recorded_sections()) for j in range(len(s.bodies))]


@pytest.mark.parametrize(("title", "section", "index"), _pairs(), ids=[f"{t} [{j}]" for t, _i, j in _pairs()])
def test_replayed_call_answers_as_recorded(
    replayed: list[tuple[str, Answer]], title: str, section: int, index: int
) -> None:
    recorded = recorded_sections()[section]
    position = sum(len(s.bodies) for s in recorded_sections()[:section]) + index
    replay_title, response = replayed[position]
    assert replay_title == title
    body = recorded.bodies[index]
    if TIMESTAMP.search(body):
        assert masked(response.text) == masked(body)
    else:
        assert response.text == body
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    if index == 0 and recorded.status is not None:
        assert response.status_code == recorded.status
        for name in ("Content-Type", "Location"):
            assert response.headers.get(name) == recorded.headers.get(name)
        if not TIMESTAMP.search(body):
            assert response.headers["Content-Length"] == recorded.headers["Content-Length"]


def test_the_cut_off_component_filter_answer_starts_as_recorded(replayed: list[tuple[str, Answer]]) -> None:
    (cut,) = [s for s in serverservice_transcript.sections() if s.broken]
    title, response = replayed[-1]
    assert title == cut.title
    assert response.status_code == 200
    assert response.text.startswith(cut.broken[0])
    assert response.json()["total_record_count"] == 1


def test_creates_answer_201_with_location(replayed: list[tuple[str, Answer]]) -> None:
    for title, response in replayed:
        if title.startswith("POST") and "error" not in title and response.status_code < 300:
            assert response.status_code == 201, title
            assert response.headers["Location"] == response.json()["_links"]["self"]["href"], title


def test_put_keeps_the_attributes_own_updated_at_and_moves_the_servers(
    replayed: list[tuple[str, Answer]],
) -> None:
    answers = dict(replayed)
    attribute = answers[f"GET /servers/{{uuid}}/attributes/{TASK_NAMESPACE}"].json()["record"]
    assert attribute["created_at"] == attribute["updated_at"]
    assert attribute["data"]["status"] == "queued"
    server = answers["GET /servers/{uuid}"].json()["record"]
    assert server["updated_at"] > server["created_at"]


# --- behaviours beyond the transcript ------------------------------------------------------------------------


def _post(url: str, payload: Any) -> requests.Response:
    response = requests.post(url, json=payload, timeout=30)
    assert response.status_code == 201, response.text
    return response


def _get(url: str, **params: Any) -> dict[str, Any]:
    response = requests.get(url, params=params, timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _names(body: dict[str, Any]) -> list[str]:
    return [record["name"] for record in body["records"]]


FLEET = {
    "servers": [
        {
            "name": "a1",
            "facility": "ams1",
            "vendor": "dell",
            "model": "r6515",
            "serial": "S1",
            "attributes": {
                TASK_NAMESPACE: {
                    "status": "requested",
                    "priority": 3,
                    "Firmware": {"bios": {"version": "2.7.3"}},
                    "dryRun": True,
                }
            },
            "components": [{"type": "bmc", "installed": "2.75.75.75"}, {"type": "bios", "installed": "2.6.6"}],
        },
        {
            "name": "a2",
            "facility": "ams1",
            "vendor": "dell",
            "model": "r7515",
            "serial": "S2",
            "attributes": {TASK_NAMESPACE: {"status": "queued", "priority": 1, "worker": "flasher-1", "dryRun": False}},
            "components": [
                {"type": "bmc", "installed": "2.80.80.80"},
                {"type": "nic", "vendor": "intel", "model": "e810", "serial": "N2", "installed": "4.2"},
            ],
        },
        {
            "name": "b1",
            "facility": "fra2",
            "vendor": "supermicro",
            "model": "x12stw-tf",
            "serial": "S3",
            "attributes": {TASK_NAMESPACE: {"status": "", "priority": 0, "count": 1.5}},
            "components": [{"type": "bmc", "installed": "01.01.06"}],
        },
        {
            "name": "b2",
            "facility": "fra2",
            "vendor": "supermicro",
            "model": "x12stw-tf",
            "serial": "S4",
            "components": [
                {"type": "bmc", "installed": "01.01.10"},
                {"type": "nic", "vendor": "mellanox", "model": "cx6", "serial": "N4", "installed": "22.1"},
            ],
        },
    ]
}


@pytest.fixture(scope="module")
def fleet(own_inventory: InventoryServer, replayed: list[tuple[str, Answer]]) -> InventoryServer:
    """The transcript's state plus four servers (created after it, so they come first in lists)."""
    own_inventory.seed(FLEET)
    return own_inventory


TASK_FILTERS = [
    (f"{TASK_NAMESPACE}", ["b1", "a2", "a1"]),
    (f"{TASK_NAMESPACE}~status~eq~requested", ["a1"]),
    (f"{TASK_NAMESPACE}~status~eq~", ["b1"]),
    (f"{TASK_NAMESPACE}~status~like~que", ["a2"]),
    (f"{TASK_NAMESPACE}~status~like~%ue%", ["a2", "a1"]),
    (f"{TASK_NAMESPACE}~status~like~Que", []),
    (f"{TASK_NAMESPACE}~priority~gt~0", ["a2", "a1"]),
    (f"{TASK_NAMESPACE}~priority~lt~2", ["b1", "a2"]),
    (f"{TASK_NAMESPACE}~priority~eq~3", ["a1"]),
    (f"{TASK_NAMESPACE}~worker", ["a2"]),
    (f"{TASK_NAMESPACE}~worker~eq", ["a2"]),
    (f"{TASK_NAMESPACE}~Firmware.bios.version~eq~2.7.3", ["a1"]),
    (f"{TASK_NAMESPACE}~Firmware.bios", ["a1"]),
    (f"{TASK_NAMESPACE}~dryRun~eq~true", ["a1"]),
    (f"{TASK_NAMESPACE}~dryRun~eq~false", ["a2"]),
    (f"{TASK_NAMESPACE}~count~eq~1.5", ["b1"]),
    (f"{SERVER_VENDOR_NAMESPACE}~vendor~like~de", ["a2", "a1", "r6515-a01"]),
    (f"{SERVER_VENDOR_NAMESPACE}~model~eq~x12stw-tf", ["b2", "b1"]),
    ("sh.hollow.nothing", []),
]


@pytest.mark.parametrize(("attr", "expected"), TASK_FILTERS, ids=[a for a, _ in TASK_FILTERS])
def test_attr_filter(fleet: InventoryServer, attr: str, expected: list[str]) -> None:
    assert _names(_get(f"{fleet.api}/servers", attr=attr)) == expected


def test_attr_filters_and(fleet: InventoryServer) -> None:
    attrs = [f"{SERVER_VENDOR_NAMESPACE}~vendor~eq~dell", f"{TASK_NAMESPACE}~priority~lt~2"]
    assert _names(_get(f"{fleet.api}/servers", attr=attrs)) == ["a2"]


def test_gt_with_a_non_integer_value_is_a_datastore_error(fleet: InventoryServer) -> None:
    response = requests.get(f"{fleet.api}/servers", params={"attr": f"{TASK_NAMESPACE}~priority~gt~x"}, timeout=30)
    assert response.status_code == 500
    assert response.json() == {
        "_links": {},
        "message": "datastore error",
        "error": 'pq: invalid input syntax for type integer: "x"',
    }


COMPONENT_FILTERS = [
    ({"sc_0[type]": "nic"}, ["b2", "a2"]),
    ({"sc_0[type]": "nic", "sc_0[vendor]": "intel"}, ["a2"]),
    ({"sc_0[model]": "cx6"}, ["b2"]),
    ({"sc_0[serial]": "N2"}, ["a2"]),
    ({"sc_0[type]": "bmc", "sc_0_ver_attr": f"{OUTOFBAND_STATUS_NAMESPACE}~firmware.installed~like~01."}, ["b2", "b1"]),
    ({"sc_0[type]": "bmc", "sc_1[type]": "nic"}, ["b2", "a2"]),
    ({"sc_0[type]": "bios", "sc_1[type]": "nic"}, []),
    ({"sc_0[type]": "nic", "sc_0[vendor]": "mellanox", "facility-code": "fra2"}, ["b2"]),
    ({"facility-code": "ams1"}, ["a2", "a1"]),
    ({"ver_attr": "sh.hollow.none~x~eq~y"}, []),
]


@pytest.mark.parametrize(("params", "expected"), COMPONENT_FILTERS, ids=[str(p) for p, _ in COMPONENT_FILTERS])
def test_component_and_facility_filters(fleet: InventoryServer, params: dict[str, str], expected: list[str]) -> None:
    assert _names(_get(f"{fleet.api}/servers", **params)) == expected


def test_components_list_filters_components(fleet: InventoryServer) -> None:
    body = _get(f"{fleet.api}/servers/components", **{"sc_0[type]": "nic"})
    assert [c["serial"] for c in body["records"]] == ["N4", "N2"]
    assert body["total_record_count"] == 2
    assert body["records"][0]["versioned_attributes"][0]["data"] == {"firmware": {"installed": "22.1"}}


def test_component_attribute_filter(fleet: InventoryServer) -> None:
    server = fleet.seed(
        {
            "servers": [
                {
                    "name": "c1",
                    "components": [
                        {
                            "type": "drive",
                            "serial": "D1",
                            "attributes": {"sh.hollow.alloy.drive": {"media": "ssd", "size_gb": 960}},
                        }
                    ],
                }
            ]
        }
    )
    params = {"sc_0_attr": "sh.hollow.alloy.drive~size_gb~gt~500"}
    assert [s["uuid"] for s in _get(f"{fleet.api}/servers", **params)["records"]] == [server["servers"]["c1"]]
    params = {"sc_0_attr": "sh.hollow.alloy.drive~media~eq~hdd"}
    assert _get(f"{fleet.api}/servers", **params)["records"] == []
    requests.delete(f"{fleet.api}/servers/{server['servers']['c1']}", timeout=30)


def test_ver_attr_matches_the_newest_version_only(fleet: InventoryServer) -> None:
    (server_id,) = fleet.seed({"servers": [{"name": "v1"}]})["server_ids"]
    url = f"{fleet.api}/servers/{server_id}/versioned-attributes"
    for state in ("installing", "installed"):
        _post(url, {"namespace": "sh.hollow.test.progress", "data": {"state": state}})
    assert _names(_get(f"{fleet.api}/servers", ver_attr="sh.hollow.test.progress~state~eq~installed")) == ["v1"]
    assert _get(f"{fleet.api}/servers", ver_attr="sh.hollow.test.progress~state~eq~installing")["records"] == []
    listed = _get(f"{fleet.api}/servers", ver_attr="sh.hollow.test.progress")["records"][0]
    assert [v["data"] for v in listed["versioned_attributes"]] == [{"state": "installed"}]
    requests.delete(f"{fleet.api}/servers/{server_id}", timeout=30)


def test_paging_across_pages(fleet: InventoryServer) -> None:
    names = [f"p{i}" for i in range(7)]
    fleet.seed({"servers": [{"name": name, "facility": "paging"} for name in names]})
    seen = []
    url = f"{fleet.api}/servers?facility-code=paging&limit=3"
    for page in (1, 2, 3):
        body = _get(f"{url}&page={page}")
        assert (body["page_size"], body["page"], body["total_pages"], body["total_record_count"]) == (3, page, 3, 7)
        assert body["page_count"] == (3 if page < 3 else 1)
        links = body["_links"]
        assert links["self"]["href"] == f"/api/v1/servers?facility-code=paging&limit=3&page={page}"
        assert links["first"]["href"] == "/api/v1/servers?facility-code=paging&limit=3&page=1"
        assert links["last"]["href"] == "/api/v1/servers?facility-code=paging&limit=3&page=3"
        assert ("previous" in links) == (page > 1)
        assert ("next" in links) == (page < 3)
        if page < 3:
            assert links["next"]["href"] == f"/api/v1/servers?facility-code=paging&limit=3&page={page + 1}"
        if page > 1:
            assert links["previous"]["href"] == f"/api/v1/servers?facility-code=paging&limit=3&page={page - 1}"
        seen += _names(body)
    assert seen == list(reversed(names))  # one listing, newest first, no server twice
    beyond = _get(f"{url}&page=4")
    assert beyond["records"] == [] and "page_count" not in beyond and beyond["total_record_count"] == 7
    assert _get(f"{fleet.api}/servers", limit=5000)["page_size"] == 1000
    assert _get(f"{fleet.api}/servers", limit=0)["page_size"] == 100


def test_soft_delete_and_include_deleted(fleet: InventoryServer) -> None:
    ids = fleet.seed({"servers": [{"name": "keep", "facility": "del"}, {"name": "gone", "facility": "del"}]})["servers"]
    deleted = requests.delete(f"{fleet.api}/servers/{ids['gone']}", timeout=30)
    assert (deleted.status_code, deleted.text) == (200, '{"_links":{},"message":"resource deleted"}')
    assert _names(_get(f"{fleet.api}/servers", **{"facility-code": "del"})) == ["keep"]
    everything = _get(f"{fleet.api}/servers", **{"facility-code": "del", "include-deleted": "true"})["records"]
    assert [s["name"] for s in everything] == ["gone", "keep"]
    assert "deleted_at" in everything[0] and "deleted_at" not in everything[1]
    assert "deleted_at" in _get(f"{fleet.api}/servers/{ids['gone']}")["record"]
    again = requests.delete(f"{fleet.api}/servers/{ids['gone']}", timeout=30)
    assert again.status_code == 404
    assert requests.get(f"{fleet.api}/servers/{ids['gone']}/attributes", timeout=30).status_code == 404
    bad = requests.get(f"{fleet.api}/servers", params={"include-deleted": "yes"}, timeout=30)
    assert bad.status_code == 400
    assert bad.json()["message"] == "invalid filter"


def test_versioned_attributes_history_and_tally(fleet: InventoryServer) -> None:
    (server_id,) = fleet.seed({"servers": [{"name": "h"}]})["server_ids"]
    url = f"{fleet.api}/servers/{server_id}/versioned-attributes"
    created = _post(url, {"namespace": "ns.a", "data": {"v": 1}})
    assert (
        created.json()["slug"] == "ns.a"
        and created.headers["Location"] == f"/api/v1/servers/{server_id}/versioned-attributes/ns.a"
    )
    _post(url, {"namespace": "ns.a", "data": {"v": 1}})
    _post(url, {"namespace": "ns.a", "data": {"v": 2}})
    _post(url, {"namespace": "ns.b", "data": {"x": True}})
    history = _get(f"{url}/ns.a")
    assert [(r["data"], r["tally"]) for r in history["records"]] == [({"v": 2}, 0), ({"v": 1}, 1)]
    assert history["total_record_count"] == 2
    assert [r["namespace"] for r in _get(url)["records"]] == ["ns.b", "ns.a", "ns.a"]
    server = _get(f"{fleet.api}/servers/{server_id}")["record"]
    assert [(v["namespace"], v["data"]) for v in server["versioned_attributes"]] == [
        ("ns.a", {"v": 2}),
        ("ns.b", {"x": True}),
    ]
    missing = requests.post(url, json={"namespace": "ns.c"}, timeout=30)
    assert missing.status_code == 400
    assert missing.json() == {
        "_links": {},
        "message": "invalid versioned attributes",
        "error": "Key: 'VersionedAttributes.Data' Error:Field validation for 'Data' failed on the 'required' tag",
    }


def test_component_put_adds_versions_and_get_shows_the_newest(fleet: InventoryServer) -> None:
    (server_id,) = fleet.seed(
        {
            "servers": [
                {"name": "u", "vendor": "dell", "model": "r6515", "components": [{"type": "bmc", "installed": "1.0"}]}
            ]
        }
    )["server_ids"]
    url = f"{fleet.api}/servers/{server_id}/components"
    (component,) = _get(url)["records"]
    component["versioned_attributes"] = [
        {"namespace": OUTOFBAND_STATUS_NAMESPACE, "data": {"firmware": {"installed": "2.0"}}}
    ]
    response = requests.put(url, json=[component], timeout=30)
    assert (response.status_code, response.json()) == (
        200,
        {"_links": {"self": {"href": f"/api/v1/servers/{server_id}/components"}}, "message": "resource updated"},
    )
    (updated,) = _get(url)["records"]
    assert [v["data"] for v in updated["versioned_attributes"]] == [{"firmware": {"installed": "2.0"}}]
    missing = [{**component, "uuid": "00000000-0000-0000-0000-000000000001"}]
    response = requests.put(url, json=missing, timeout=30)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "component resource referenced by UUID does not exist: 00000000-0000-0000-0000-000000000001: "
        "error in server component payload"
    )
    empty = requests.post(url, json=[], timeout=30)
    assert empty.json() == {"_links": {}, "error": "ServerComponentSlice is empty: error in server component payload"}


FIRMWARE_ERRORS = [
    (
        {"component": "BIOS"},
        "Key: 'ComponentFirmwareVersion.Component' Error:Field validation for 'Component' "
        "failed on the 'lowercase' tag",
    ),
    (
        {"checksum": "ABCD"},
        "Key: 'ComponentFirmwareVersion.Checksum' Error:Field validation for 'Checksum' failed on the 'lowercase' tag",
    ),
    (
        {"upstream_url": ""},
        "Key: 'ComponentFirmwareVersion.UpstreamURL' Error:Field validation for 'UpstreamURL' "
        "failed on the 'required' tag",
    ),
    (
        {"model": None},
        "Key: 'ComponentFirmwareVersion.Model' Error:Field validation for 'Model' failed on the 'required' tag",
    ),
]


@pytest.mark.parametrize(("change", "error"), FIRMWARE_ERRORS, ids=[str(c) for c, _ in FIRMWARE_ERRORS])
def test_firmware_validation(fleet: InventoryServer, change: dict[str, Any], error: str) -> None:
    payload = {**BIOS_FIRMWARE, "uuid": None, "version": "0.0.1", **change}
    response = requests.post(f"{fleet.api}/server-component-firmwares", json=payload, timeout=30)
    assert response.status_code == 400
    assert response.json() == {"_links": {}, "message": "invalid payload: ComponentFirmwareVersion{}", "error": error}


def test_firmware_is_unique_per_vendor_component_version_filename(fleet: InventoryServer) -> None:
    url = f"{fleet.api}/server-component-firmwares"
    acme = {**BIOS_FIRMWARE, "uuid": None, "vendor": "acme", "model": ["z1"]}
    _post(url, acme)
    again = requests.post(url, json={**acme, "checksum": "ff"}, timeout=30)
    assert again.status_code == 400
    assert again.json() == {
        "_links": {},
        "error": "models: unable to insert into component_firmware_version: pq: duplicate key value violates "
        'unique constraint "vendor_component_version_filename_unique"',
    }
    _post(url, {**acme, "filename": "BIOS_2.7.3-b.bin"})
    assert _get(url, vendor="acme")["total_record_count"] == 2


def test_firmware_filters(fleet: InventoryServer) -> None:
    url = f"{fleet.api}/server-component-firmwares"
    assert [f["uuid"] for f in _get(url, model="r7515")["records"]] == [BMC_FW]
    assert [f["uuid"] for f in _get(url, model=["r6515", "r7515"])["records"]] == [BMC_FW]
    assert [f["uuid"] for f in _get(url, version="2.7.3", vendor="dell")["records"]] == [BIOS_FW]
    assert [f["uuid"] for f in _get(url, filename="BIOS_2.7.3.bin", vendor="dell")["records"]] == [BIOS_FW]
    assert [f["uuid"] for f in _get(url, checksum=BMC_FIRMWARE["checksum"])["records"]] == [BMC_FW]
    assert _get(url, vendor="supermicro")["records"] == []
    assert _get(url, model="r6515", vendor="dell")["total_record_count"] == 2
    missing = requests.get(f"{url}/00000000-0000-0000-0000-0000000000aa", timeout=30)
    assert (missing.status_code, missing.json()["message"]) == (404, "resource not found")


def test_firmware_set_labels_update_and_remove(fleet: InventoryServer) -> None:
    url = f"{fleet.api}/server-component-firmware-sets"
    labels = f"{LABELS}~vendor~eq~dell"
    assert [s["name"] for s in _get(url, attr=labels)["records"]] == ["dell-r6515"]
    assert _get(url, attr=[labels, f"{LABELS}~model~eq~r7515"])["records"] == []
    assert _get(url, attr=f"{LABELS}~vendor~like~de")["total_record_count"] == 1
    created = _post(
        url,
        {
            "name": "only-bios",
            "component_firmware_uuids": [BIOS_FW],
            "attributes": [{"namespace": LABELS, "data": {"vendor": "dell", "model": "r7515"}}],
        },
    )
    set_id = created.json()["slug"]
    put = requests.put(f"{url}/{set_id}", json={"uuid": set_id, "component_firmware_uuids": [BMC_FW]}, timeout=30)
    assert put.status_code == 200, put.text
    record = _get(f"{url}/{set_id}")["record"]
    assert [f["uuid"] for f in record["component_firmware"]] == [BIOS_FW, BMC_FW]
    assert record["attributes"][0]["data"] == {"model": "r7515", "vendor": "dell"}
    twice = requests.put(f"{url}/{set_id}", json={"uuid": set_id, "component_firmware_uuids": [BMC_FW]}, timeout=30)
    assert twice.status_code == 400
    assert "exists in firmware set 'only-bios'" in twice.json()["error"]
    removed = requests.post(
        f"{url}/{set_id}/remove-firmware", json={"uuid": set_id, "component_firmware_uuids": [BIOS_FW]}, timeout=30
    )
    assert removed.status_code == 200, removed.text
    assert [f["uuid"] for f in _get(f"{url}/{set_id}")["record"]["component_firmware"]] == [BMC_FW]
    in_use = requests.delete(f"{fleet.api}/server-component-firmwares/{BMC_FW}", timeout=30)
    assert in_use.status_code == 500  # still in a set: ON DELETE RESTRICT
    assert requests.delete(f"{url}/{set_id}", timeout=30).status_code == 200
    assert requests.get(f"{url}/{set_id}", timeout=30).status_code == 404
    no_firmware = requests.post(url, json={"name": "empty"}, timeout=30)
    assert no_firmware.json() == {
        "_links": {},
        "error": "expected one or more firmware UUIDs, got none: error in component firmware set request",
    }


def test_credentials_and_errors(fleet: InventoryServer) -> None:
    url = f"{fleet.api}/servers/{SERVER}/credentials"
    assert requests.get(f"{url}/other", timeout=30).status_code == 404
    assert requests.put(f"{url}/other", json={"username": "u", "password": "p"}, timeout=30).status_code == 404
    unknown = requests.put(
        f"{fleet.api}/servers/3f0c2a8e-1b7d-4c55-9a3e-0c1d2e3f4aff/credentials/bmc", json={}, timeout=30
    )
    assert (unknown.status_code, unknown.json()) == (404, {"_links": {}, "message": "server not found"})
    bad_uuid = requests.get(f"{fleet.api}/servers/{SERVER}/attributes", timeout=30)
    assert bad_uuid.status_code == 200
    bad_uuid = requests.get(f"{fleet.api}/servers/not-a-uuid/attributes", timeout=30)
    assert bad_uuid.json() == {"_links": {}, "message": "failed to parse uuid", "error": "invalid UUID length: 10"}
    route = requests.get(f"{fleet.api}/no-such-thing", timeout=30)
    assert (route.status_code, route.text) == (404, "404 page not found")
    broken = requests.post(f"{fleet.api}/servers", data="{", timeout=30)
    assert broken.json() == {"_links": {}, "message": "invalid server", "error": "unexpected EOF"}
