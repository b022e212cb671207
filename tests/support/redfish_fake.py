"""A minimal Redfish service on ``responses``, for unit tests of the BMC driver's HTTP edge cases.

Only what the driver needs to log in (service root, session service, Systems) is registered by
:func:`register_service`; each test adds the resources its case is about.
"""

from __future__ import annotations

from typing import Any

import responses

from flasher.config import BMCSettings

BASE = "https://bmc.test"
ROOT = f"{BASE}/redfish/v1/"
SESSIONS = f"{BASE}/redfish/v1/SessionService/Sessions"
PASSWORD = "s3cret-Passw0rd"

#: Fast settings: one connection attempt, no waiting between polls.
SETTINGS = BMCSettings(retries=1, retry_delay=0.01, poll_interval=0.01, offline_grace=60, read_timeout=5)


def root_doc() -> dict[str, Any]:
    return {
        "@odata.id": "/redfish/v1/",
        "Id": "RootService",
        "Name": "Root Service",
        "RedfishVersion": "1.15.0",
        "Systems": {"@odata.id": "/redfish/v1/Systems"},
        "Managers": {"@odata.id": "/redfish/v1/Managers"},
        "UpdateService": {"@odata.id": "/redfish/v1/UpdateService"},
        "Tasks": {"@odata.id": "/redfish/v1/TaskService"},
        "SessionService": {"@odata.id": "/redfish/v1/SessionService"},
        "Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}},
    }


def error_body(*messages: str, severity: str = "Critical") -> dict[str, Any]:
    """A Redfish error body whose ExtendedInfo carries ``messages``."""
    return {
        "error": {
            "code": "Base.1.0.GeneralError",
            "message": "A general error has occurred. See ExtendedInfo for more information.",
            "@Message.ExtendedInfo": [
                {"MessageId": "Base.1.0.GeneralError", "Message": m, "Severity": severity} for m in messages
            ],
        }
    }


def register_service(rsps: responses.RequestsMock, *, login_ok: bool = True) -> None:
    """Service root, sessions (token ``tok``) and a Systems collection with one System."""
    rsps.get(ROOT, json=root_doc())
    if login_ok:
        rsps.post(
            SESSIONS,
            status=201,
            json={"@odata.id": "/redfish/v1/SessionService/Sessions/1", "Id": "1"},
            headers={"X-Auth-Token": "tok", "Location": "/redfish/v1/SessionService/Sessions/1"},
        )
        rsps.get(f"{BASE}/redfish/v1/Systems", json={"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]})
    else:
        rsps.post(SESSIONS, status=401, json=error_body("Invalid username or password."))
        rsps.get(f"{BASE}/redfish/v1/Systems", status=401, json=error_body("Invalid username or password."))
    rsps.delete(f"{SESSIONS}/1", status=204)


def update_service_doc(**fields: Any) -> dict[str, Any]:
    """An UpdateService with SimpleUpdate (HTTP, HTTPS) plus ``fields``."""
    doc: dict[str, Any] = {
        "@odata.id": "/redfish/v1/UpdateService",
        "Id": "UpdateService",
        "Name": "Update Service",
        "FirmwareInventory": {"@odata.id": "/redfish/v1/UpdateService/FirmwareInventory"},
        "Actions": {
            "#UpdateService.SimpleUpdate": {
                "target": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
                "TransferProtocol@Redfish.AllowableValues": ["HTTP", "HTTPS"],
            }
        },
    }
    doc.update(fields)
    return doc


def task_doc(task_id: str, state: str, percent: int | None = None, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@odata.type": "#Task.v1_6_0.Task",
        "@odata.id": f"/redfish/v1/TaskService/Tasks/{task_id}",
        "Id": task_id,
        "Name": f"Task {task_id}",
        "TaskState": state,
    }
    if percent is not None:
        doc["PercentComplete"] = percent
    doc.update(fields)
    return doc
