"""``Manager.Reset`` whose answer is lost: the BMC restarts while answering, against ``responses``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses

from flasher.bmc import BMC, BMCUnreachableError
from tests.support.redfish_fake import BASE, PASSWORD, SESSIONS, SETTINGS, register_service

MANAGERS = f"{BASE}/redfish/v1/Managers"
MANAGER = f"{MANAGERS}/1"
RESET = f"{MANAGER}/Actions/Manager.Reset"
DROPPED = requests.ConnectionError("('Connection aborted.', RemoteDisconnected('Remote end closed connection'))")
READ_TIMEOUT = requests.ReadTimeout("HTTPSConnectionPool(host='bmc.test', port=443): Read timed out.")


def _manager_doc() -> dict[str, Any]:
    return {
        "@odata.id": "/redfish/v1/Managers/1",
        "Id": "1",
        "ManagerType": "BMC",
        "Actions": {
            "#Manager.Reset": {
                "target": "/redfish/v1/Managers/1/Actions/Manager.Reset",
                "ResetType@Redfish.AllowableValues": ["GracefulRestart", "ForceRestart"],
            }
        },
    }


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_service(mock)
        mock.get(MANAGERS, json={"Members": [{"@odata.id": "/redfish/v1/Managers/1"}]})
        mock.get(MANAGER, json=_manager_doc())  # read before the reset
        mock.get(MANAGER, body=requests.ConnectionError("[Errno 111] Connection refused"))  # then it is gone
        yield mock


def _calls(rsps: responses.RequestsMock, method: str, url: str) -> int:
    return sum(1 for c in rsps.calls if c.request.method == method and c.request.url == url)


@pytest.mark.parametrize("failure", [DROPPED, READ_TIMEOUT], ids=["connection-dropped", "read-timeout"])
def test_a_reset_whose_answer_is_lost_waits_for_the_bmc_to_come_back(
    rsps: responses.RequestsMock, failure: Exception
) -> None:
    rsps.post(RESET, body=failure)
    with BMC("bmc.test", "root", PASSWORD, settings=SETTINGS) as bmc:
        logins = _calls(rsps, "POST", SESSIONS)
        bmc.reset_bmc(timeout=10)
    assert _calls(rsps, "POST", RESET) == 1  # sent once, never repeated
    assert _calls(rsps, "POST", SESSIONS) == logins + 1  # it went away, then a new session once it answered


def test_a_reset_whose_answer_is_lost_without_wait_returns(rsps: responses.RequestsMock) -> None:
    rsps.post(RESET, body=DROPPED)
    with BMC("bmc.test", "root", PASSWORD, settings=SETTINGS) as bmc:
        bmc.reset_bmc(wait=False)
    assert _calls(rsps, "POST", RESET) == 1


def test_a_reset_that_never_connected_is_unreachable(rsps: responses.RequestsMock) -> None:
    rsps.post(RESET, body=requests.ConnectTimeout("Max retries exceeded (ConnectTimeoutError)"))
    with BMC("bmc.test", "root", PASSWORD, settings=SETTINGS) as bmc, pytest.raises(BMCUnreachableError, match="reset"):
        bmc.reset_bmc(timeout=10)
