"""Vendor detection and the pure helpers of the vendor rules (:mod:`flasher.bmc.quirks`)."""

from __future__ import annotations

from typing import Any

import pytest
import sushy

from flasher.bmc.power import _retry_during_post
from flasher.bmc.quirks import detect_vendor, hpe, openbmc


@pytest.mark.parametrize(
    ("root", "model", "vendor"),
    [
        ({"Vendor": "HPE", "Oem": {"Hpe": {}}}, None, "hpe"),
        ({"Oem": {"Hp": {}}}, None, "hpe"),
        ({"Vendor": "Dell"}, None, "dell"),
        ({"Vendor": "Supermicro"}, None, "supermicro"),
        ({"Vendor": "Lenovo"}, None, "lenovo"),
        ({"Vendor": "OpenBMC"}, None, "openbmc"),
        ({}, "OpenBmc", "openbmc"),  # bmcweb builds without a Vendor: the Manager's Model
        ({}, "iDRAC9", "dell"),
        ({}, "iLO 5", "hpe"),
        ({"Vendor": "Contoso"}, "Contoso BMC", "unknown"),
        ({}, None, "unknown"),
    ],
)
def test_the_vendor_comes_from_what_the_bmc_answers(root: dict[str, Any], model: str | None, vendor: str) -> None:
    assert detect_vendor(root, model) == vendor


def test_only_an_hpe_system_rom_may_be_staged_and_only_an_openbmc_bios_needs_the_host_off() -> None:
    assert hpe.stages_until_host_reset("hpe", "bios")
    assert not hpe.stages_until_host_reset("hpe", "bmc")
    assert not hpe.stages_until_host_reset("dell", "bios")
    assert openbmc.needs_host_off("openbmc", "bios")
    assert not openbmc.needs_host_off("openbmc", "nic")
    assert not openbmc.needs_host_off("hpe", "bios")


@pytest.mark.parametrize(
    ("ids", "refused"),
    [
        ("iLO.2.14.UnableToModifyDuringSystemPOST", True),
        ([{"MessageId": "iLO.2.18.UnableToModifyDuringSystemPOST"}], True),
        ([{"MessageId": "Base.1.16.PropertyValueNotInList"}], False),
        ("Base.1.0.GeneralError", False),
        (None, False),
    ],
)
def test_the_post_refusal_is_known_by_its_message_id_in_any_registry_version(ids: Any, refused: bool) -> None:
    assert hpe.is_post_refusal(ids) is refused


class _Response:
    def __init__(self, status: int, message_id: str) -> None:
        self.status_code = status
        info = [{"MessageId": message_id}]
        self._body = {"error": {"code": message_id, "message": "no", "@Message.ExtendedInfo": info}}

    def json(self) -> Any:
        return self._body


class _Conn:
    base_url = "https://bmc.test"


def _refusal(message_id: str = "iLO.2.14.UnableToModifyDuringSystemPOST", status: int = 400) -> Exception:
    error: Exception = sushy.exceptions.BadRequestError("PATCH", "/redfish/v1/Systems/1", _Response(status, message_id))
    return error


def test_a_change_refused_during_post_is_retried_until_it_goes_through() -> None:
    attempts: list[int] = []
    now = [0.0]

    def change() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise _refusal()

    def sleep(seconds: float) -> None:
        now[0] += seconds

    _retry_during_post(_Conn(), change, 1.0, sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]
    assert len(attempts) == 3 and now[0] == 2.0


def test_the_post_retry_is_bounded_and_other_refusals_pass_at_once() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def always() -> None:
        raise _refusal()

    with pytest.raises(sushy.exceptions.BadRequestError):
        _retry_during_post(_Conn(), always, 5.0, limit=20.0, sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]
    assert now[0] == 20.0

    calls: list[int] = []

    def other() -> None:
        calls.append(1)
        raise _refusal("Base.1.16.PropertyValueNotInList")

    with pytest.raises(sushy.exceptions.BadRequestError):
        _retry_during_post(_Conn(), other, 5.0, sleep=sleep, clock=lambda: now[0])  # type: ignore[arg-type]
    assert calls == [1]
