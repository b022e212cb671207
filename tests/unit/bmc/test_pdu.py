"""The PDU outlet client's input checks and its PowerControl (HTTP edge cases with ``responses``)."""

from __future__ import annotations

import pytest
import responses

from flasher.bmc.pdu import Outlet, PDUError, check_outlet_url
from flasher.config import PDUSettings

URL = "https://pdu.example/redfish/v1/PowerEquipment/RackPDUs/1/Outlets/A1"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "must be the Outlet resource's URL, got None"),
        ("", "must be the Outlet resource's URL, got ''"),
        ("ftp://pdu/redfish/v1/Outlets/A1", "must be an https URL of a Redfish Outlet, got 'ftp://"),
        ("http://pdu/redfish/v1/Outlets/A1", "must be an https URL of a Redfish Outlet, got 'http://"),  # no cleartext
        ("https://pdu.example/outlets/A1", "must be an https URL of a Redfish Outlet"),
        ("https://root:calvin@pdu.example/redfish/v1/Outlets/A1", "must not contain credentials"),
    ],
)
def test_a_bad_outlet_is_refused_naming_the_field(value: object, why: str) -> None:
    with pytest.raises(ValueError, match=f"pdu_outlet.outlet {why}"):
        check_outlet_url(value)


@responses.activate
def test_a_power_cycle_posts_to_the_outlets_action_and_waits_for_on() -> None:
    states = iter(["Off", "Off", "On"])  # the readings after the POST: Off until the outlet is back
    responses.get(
        URL,
        json={
            "PowerState": "On",
            "Actions": {
                "#Outlet.PowerControl": {"target": URL.removeprefix("https://pdu.example") + "/Outlet.PowerControl"}
            },
        },
    )
    responses.add_callback(responses.GET, URL, lambda _: (200, {}, f'{{"PowerState": "{next(states)}"}}'))
    responses.post(URL + "/Outlet.PowerControl", status=204)
    outlet = Outlet(URL, PDUSettings(password="s3cret"), sleep=lambda _: None)
    assert outlet.power_control("cycle") == "On"
    assert next(states, None) is None  # it read the outlet until it was On again
    post = next(c.request for c in responses.calls if c.request.method == "POST")
    assert post.body == b'{"PowerState": "PowerCycle"}'


@responses.activate
def test_a_power_control_target_on_another_host_is_refused_and_gets_no_credentials() -> None:
    target = "https://collector.example/redfish/v1/Outlet.PowerControl"
    responses.get(URL, json={"PowerState": "On", "Actions": {"#Outlet.PowerControl": {"target": target}}})
    outlet = Outlet(URL, PDUSettings(password="s3cret"), sleep=lambda _: None)
    with pytest.raises(PDUError, match="names a PowerControl target on another host"):
        outlet.power_control("cycle")
    assert [c.request.method for c in responses.calls] == ["GET"]  # nothing was sent to the other host


@responses.activate
def test_a_refused_power_control_says_what_the_pdu_said() -> None:
    responses.get(
        URL, json={"PowerState": "On", "Actions": {"#Outlet.PowerControl": {"target": URL + "/Outlet.PowerControl"}}}
    )
    error = {"error": {"@Message.ExtendedInfo": [{"Message": "The outlet is locked."}]}}
    responses.post(URL + "/Outlet.PowerControl", status=409, json=error)
    outlet = Outlet(URL, PDUSettings(password="s3cret"), sleep=lambda _: None)
    with pytest.raises(PDUError, match=r"answered HTTP 409 \(BMC says: The outlet is locked.\)") as caught:
        outlet.power_control("off")
    assert "s3cret" not in str(caught.value)


def test_soft_cannot_go_through_a_pdu() -> None:
    with pytest.raises(ValueError, match="power action 'soft' cannot go through a PDU outlet"):
        Outlet(URL, PDUSettings()).power_control("soft")


@responses.activate
@pytest.mark.parametrize(
    ("body", "content_type"),
    [("<html><body>502 Bad Gateway</body></html>", "text/html"), ('{"PowerState": "On", "Act', "application/json")],
    ids=["html-page", "truncated-json"],
)
def test_an_outlet_answer_that_is_not_json_is_a_pdu_error(body: str, content_type: str) -> None:
    responses.get(URL, body=body, content_type=content_type)
    outlet = Outlet(URL, PDUSettings(password="s3cret"), sleep=lambda _: None)
    with pytest.raises(PDUError, match=r"read PDU outlet .*: the answer \(HTTP 200, .*\) is not JSON"):
        outlet.power_control("cycle")
    assert [c.request.method for c in responses.calls] == ["GET"]  # nothing was sent on a reading it could not use


@responses.activate
def test_a_power_state_reading_that_is_not_json_after_the_power_control_is_a_pdu_error() -> None:
    target = URL.removeprefix("https://pdu.example") + "/Outlet.PowerControl"
    responses.get(URL, json={"PowerState": "On", "Actions": {"#Outlet.PowerControl": {"target": target}}})
    responses.get(URL, body="Service Unavailable", content_type="text/plain")
    responses.post(URL + "/Outlet.PowerControl", status=204)
    outlet = Outlet(URL, PDUSettings(password="s3cret"), sleep=lambda _: None)
    with pytest.raises(PDUError, match="is not JSON"):
        outlet.power_control("off")
