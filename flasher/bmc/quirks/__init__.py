"""Vendor quirks: which vendor a BMC is, from what it answers, and the rules that differ per vendor.

The vendor is read from the BMC itself, never from configuration or a name (:func:`detect_vendor`): the service
root's ``Vendor`` (``Dell``, ``HPE``, ``Supermicro``, ``Lenovo``, ``OpenBMC``), else the vendor keys of its
``Oem`` object (``Dell``, ``Hpe``/``Hp``, ``Supermicro``, ``Lenovo``), else the Manager's ``Model`` (bmcweb
answers ``OpenBmc``; iDRAC ``iDRAC9``...; iLO ``iLO 5``). This is the only place a vendor is recognised: the
driver (:attr:`flasher.bmc.driver.BMC.vendor`) and the install paths (:mod:`flasher.bmc.install`) both ask it. A
Supermicro X13 is ``supermicro``; its board (``X13SEI``...) comes from the Manager's ``Model``
(:func:`.supermicro.board_model`). One module per vendor holds its rules (:mod:`.hpe`, :mod:`.lenovo`,
:mod:`.openbmc`, :mod:`.supermicro`).
"""

from __future__ import annotations

import re
from typing import Any, Final

#: What :func:`detect_vendor` returns when nothing names a vendor it knows.
UNKNOWN: Final = "unknown"
_BY_NAME: Final = (
    (re.compile(r"^(hpe|hp|hewlett)", re.IGNORECASE), "hpe"),
    (re.compile(r"^dell", re.IGNORECASE), "dell"),
    (re.compile(r"^supermicro", re.IGNORECASE), "supermicro"),
    (re.compile(r"^lenovo", re.IGNORECASE), "lenovo"),
    (re.compile(r"^openbmc", re.IGNORECASE), "openbmc"),
)
_BY_MODEL: Final = (
    (re.compile(r"^openbmc$", re.IGNORECASE), "openbmc"),
    (re.compile(r"^idrac", re.IGNORECASE), "dell"),
    (re.compile(r"^ilo\b", re.IGNORECASE), "hpe"),
    (re.compile(r"^xcc", re.IGNORECASE), "lenovo"),
)


def _by_name(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    for pattern, vendor in _BY_NAME:
        if pattern.match(text.strip()):
            return vendor
    return None


def detect_vendor(root: dict[str, Any], manager_model: str | None = None) -> str:
    """The BMC's vendor slug (``dell``, ``hpe``, ``supermicro``, ``lenovo``, ``openbmc``, or :data:`UNKNOWN`)
    from the service root document ``root`` and, when the root names none, the Manager's ``Model``."""
    vendor = _by_name(root.get("Vendor"))
    if vendor is not None:
        return vendor
    oem = root.get("Oem")
    if isinstance(oem, dict):
        for key in oem:
            vendor = _by_name(key)
            if vendor is not None:
                return vendor
    if isinstance(manager_model, str):
        for pattern, vendor in _BY_MODEL:
            if pattern.match(manager_model.strip()):
                return vendor
    return UNKNOWN
