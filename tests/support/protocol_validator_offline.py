"""``rf_protocol_validator`` with SSDP discovery that finds nothing, so a run sends no multicast off loopback.

Run as a script with the validator's own arguments (``python protocol_validator_offline.py --rhost ...``);
:mod:`tests.support.redfish_validators` does. The SSDP assertions then come out NOT_TESTED ("Service not found
via SSDP"), which is what they are for a BMC that does not announce itself.
"""

from __future__ import annotations

from typing import Any

from redfish_protocol_validator import console_scripts, utils


def _no_ssdp(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """What ``utils.discover_ssdp`` answers when no service responds: no services."""
    return {}


if __name__ == "__main__":
    utils.discover_ssdp = _no_ssdp
    console_scripts.main()
