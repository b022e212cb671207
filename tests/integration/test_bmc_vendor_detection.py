"""One vendor detection for every simulated shape: :attr:`flasher.bmc.BMC.vendor` (and the install paths, which ask
the same :func:`flasher.bmc.quirks.detect_vendor`) recognise each shape from what its BMC answers.

The six shapes run in one fleet (BMC ``i`` takes ``SHAPES[i]``); a shape added to the simulator without an entry
here fails the test, so its vendor is decided on purpose."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from flasher.bmc import BMC
from flasher.bmc.quirks import detect_vendor
from flasher.config import BMCSettings
from flasher_sandbox.bmc.config import FleetSpec, ShapeName, default_bmc
from flasher_sandbox.bmc.shapes import SHAPES
from flasher_sandbox.servers import BmcFleet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

#: The vendor each simulated shape must be detected as (the X13 is a Supermicro; its board comes from the Manager).
EXPECTED: dict[str, str] = {
    "dell": "dell",
    "supermicro": "supermicro",
    "supermicro-x13": "supermicro",
    "lenovo": "lenovo",
    "hpe": "hpe",
    "openbmc": "openbmc",
}


def test_every_shape_is_detected_as_its_vendor(bmcsim_factory: Callable[..., BmcFleet]) -> None:
    shapes: list[ShapeName] = sorted(SHAPES)
    assert set(shapes) == set(EXPECTED), "a shape without an expected vendor"
    fleet = bmcsim_factory(config=FleetSpec(bmcs=[default_bmc(i, shape=s) for i, s in enumerate(shapes)]))
    settings = BMCSettings(ca_bundle=fleet.ca_bundle)
    found, from_root = {}, {}
    for index, shape in enumerate(shapes):
        with BMC(fleet.address(index), "root", "calvin", settings=settings) as bmc:
            found[shape] = bmc.vendor
        # What the install paths ask: the public service root alone.
        root = requests.get(fleet.redfish(index), verify=str(fleet.ca_bundle), timeout=10)
        from_root[shape] = detect_vendor(root.json())
    assert found == EXPECTED
    assert from_root == EXPECTED
