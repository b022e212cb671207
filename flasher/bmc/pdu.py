"""Powering a server through its Redfish PDU outlet, for when the server's BMC does not answer.

As roller (Mozilla relops-hardware-controller) reboots a machine by ssh, else IPMI, else its PDU, flasher's
``set_power_state`` goes through the BMC, and only when the BMC does not answer and ``pdu.fallback`` is on, through
the outlet the inventory names for the server (attribute ``sh.hollow.flasher.pdu_outlet``: ``{"outlet": <the
Outlet resource's URL>}``). The outlet is a DSP0268 ``Outlet`` (DMTF's rack-PDU mockup: ``/redfish/v1/
PowerEquipment/RackPDUs/1/Outlets/A1``): flasher reads it, POSTs ``{"PowerState": "On" | "Off" | "PowerCycle"}`` to
its ``#Outlet.PowerControl`` target, and reads ``PowerState`` back until it is the state asked for (``On`` after a
PowerCycle). Requests use HTTP Basic with ``pdu.username``/``pdu.password`` over TLS verified against
``pdu.ca_bundle``; the password is never in an error or a log line.

A PDU switches mains power: the host loses power at once, without a shutdown, so only the actions that mean that
(``on``, ``off``, ``cycle``, ``reset``) fall back; ``soft`` (a graceful shutdown) never does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

import requests
from loguru import logger

from flasher import redact
from flasher.bmc.errors import BMCError, connection_reason
from flasher.config import PDUSettings

#: ``set_power_state`` parameters a PDU outlet can do, and the ``PowerState`` PowerControl is sent.
OUTLET_ACTIONS: Final[dict[str, str]] = {"on": "On", "off": "Off", "cycle": "PowerCycle", "reset": "PowerCycle"}
_POWER_CONTROL: Final = "#Outlet.PowerControl"


class PDUError(BMCError):
    """The PDU did not answer, refused the request, or its outlet never reached the state asked for."""


def check_outlet_url(value: Any) -> str:
    """The outlet URL of a ``sh.hollow.flasher.pdu_outlet`` attribute's ``outlet``; ``ValueError`` naming the field
    and the value when it is not an https URL of a Redfish resource (the PDU's credentials go with every request:
    never in the clear)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"pdu_outlet.outlet must be the Outlet resource's URL, got {value!r}")
    parts = urlsplit(value.strip())
    if parts.scheme != "https" or not parts.hostname or not parts.path.startswith("/redfish/"):
        raise ValueError(f"pdu_outlet.outlet must be an https URL of a Redfish Outlet, got {value!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("pdu_outlet.outlet must not contain credentials (they come from pdu.username/password)")
    return value.strip().rstrip("/")


class Outlet:
    """One PDU outlet (``url``: the Outlet resource), reached with ``settings``."""

    def __init__(self, url: str, settings: PDUSettings, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.url = check_outlet_url(url)
        self.settings = settings
        self._sleep = sleep
        parts = urlsplit(self.url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.session = requests.Session()
        self.session.trust_env = False
        password = settings.password.get_secret_value() if settings.password is not None else ""
        redact.register(password)
        self.session.auth = (settings.username, password)
        verify: bool | str = settings.verify_tls
        if settings.ca_bundle is not None and settings.verify_tls:
            verify = str(settings.ca_bundle)
        self.session.verify = verify
        self.session.headers["OData-Version"] = "4.0"

    def _request(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(method, url, timeout=self.settings.timeout, **kwargs)
        except requests.RequestException as exc:
            raise PDUError(f"{what}: the PDU at {self.base} did not answer: {connection_reason(str(exc))}") from exc
        if response.status_code >= 400:
            said: tuple[str, ...] = ()
            try:
                error = response.json().get("error", {})
                said = tuple(str(m.get("Message")) for m in error.get("@Message.ExtendedInfo", []) if m.get("Message"))
            except (ValueError, AttributeError):
                pass
            raise PDUError(f"{what}: the PDU answered HTTP {response.status_code}", bmc_messages=said)
        return response

    def read(self) -> dict[str, Any]:
        """The Outlet document; :class:`PDUError` when the PDU does not answer, refuses, or answers something that
        is not a JSON object (an HTML error page, a truncated body)."""
        what = f"read PDU outlet {self.url}"
        response = self._request("GET", self.url, what)
        try:
            doc = response.json()
        except ValueError as exc:  # requests' JSONDecodeError is a ValueError
            kind = response.headers.get("Content-Type") or "no content type"
            raise PDUError(f"{what}: the answer (HTTP {response.status_code}, {kind}) is not JSON") from exc
        if not isinstance(doc, dict):
            raise PDUError(f"read PDU outlet {self.url}: the answer is not a JSON object")
        return doc

    def power_state(self) -> str:
        """The outlet's ``PowerState`` now."""
        return str(self.read().get("PowerState") or "Unknown")

    def power_control(self, action: str) -> str:
        """Perform ``set_power_state`` ``action`` (:data:`OUTLET_ACTIONS`) on the outlet and wait until it reads
        the state asked for (``On`` after a PowerCycle, at most ``pdu.cycle_timeout`` s); returns that state.
        Raises ``ValueError`` for an action a PDU cannot do, :class:`PDUError` otherwise."""
        if action not in OUTLET_ACTIONS:
            can = ", ".join(OUTLET_ACTIONS)
            raise ValueError(f"power action {action!r} cannot go through a PDU outlet; it can: {can}")
        state = OUTLET_ACTIONS[action]
        doc = self.read()
        actions = doc.get("Actions") if isinstance(doc.get("Actions"), dict) else {}
        control = actions.get(_POWER_CONTROL) if isinstance(actions, dict) else None
        target = control.get("target") if isinstance(control, dict) else None
        if not isinstance(target, str):
            raise PDUError(f"PDU outlet {self.url} has no {_POWER_CONTROL} action")
        before = doc.get("PowerState")
        logger.warning("power {} through PDU outlet {} (PowerState {}; was {})", action, self.url, state, before)
        aimed = urlsplit(target)
        if aimed.netloc and f"{aimed.scheme}://{aimed.netloc}" != self.base:  # the credentials go to the PDU only
            raise PDUError(f"PDU outlet {self.url} names a PowerControl target on another host: {target!r}")
        url = target if aimed.netloc else self.base + target
        self._request("POST", url, f"PowerControl {state} of PDU outlet {self.url}", json={"PowerState": state})
        wanted = "On" if state == "PowerCycle" else state
        deadline = time.monotonic() + self.settings.cycle_timeout
        while True:
            now = self.power_state()
            if now == wanted:
                return now
            if time.monotonic() >= deadline:
                raise PDUError(
                    f"PDU outlet {self.url} reads {now} {self.settings.cycle_timeout:.0f} s after PowerControl "
                    f"{state}, expected {wanted}"
                )
            self._sleep(0.2)

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()
