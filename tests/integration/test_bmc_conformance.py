"""DMTF's Redfish Service Validator and Protocol Validator against every shape the simulator knows, over HTTPS.

Each shape in :data:`flasher_sandbox.bmc.shapes.SHAPES` gets a fleet of one BMC of its own (the shape's default
server, HTTPS with a certificate signed by the sandbox CA) and both validators, offline (the schemas are
``tests/data/redfish-schema/csdl``; see :mod:`tests.support.redfish_validators`). A shape added to the simulator
is validated here without a change to this file.

What must hold: no failure from either validator, no warning from the Protocol Validator (its session-token
randomness warning, a statistical test that 2 % of random tokens fail, is checked again on a sample of 20
tokens instead), and from the Service
Validator no warning but those :data:`KNOWN_WARNINGS` allows for the shape, each a behaviour of the real BMC the
shape models (kept on purpose, and listed in ``docs/sandbox.md``, "Conformance"). The counts of every run are
printed in the terminal summary.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flasher_sandbox.bmc.config import FleetSpec, ShapeName, default_bmc
from flasher_sandbox.bmc.shapes import SHAPES
from flasher_sandbox.servers import BmcFleet
from tests.support.redfish_validators import (
    TOKEN_RANDOMNESS,
    run_protocol_validator,
    run_service_validator,
    token_randomness_failures,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Service Validator warnings a shape may give, because the BMC it models does (message patterns).
KNOWN_WARNINGS: dict[str, tuple[str, ...]] = {
    # iDRAC 9 offers HttpPushUri and its options, which UpdateService v1_15 deprecated for MultipartHttpPushUri,
    # and links its job queue through Dell's OEM schemas (DellOem, DellJobCollection), which are not DMTF's.
    "dell": (
        r"^/HttpPushUri(Targets|TargetsBusy|Options|OptionsBusy)? \(.*\): Deprecated Property Warning",
        r"Unable to locate the schema definition for the '(DellOem\.v1_\d+_\d+\.DellOemLinks|"
        r"DellJobCollection\.DellJobCollection)' type",
    ),
    # Lenovo XCC pushes images through HttpPushUri, claimed with HttpPushUriTargetsBusy (XCC Redfish guide).
    "lenovo": (r"^/HttpPushUri(Targets|TargetsBusy|Options|OptionsBusy)? \(.*\): Deprecated Property Warning",),
    # bmcweb takes pushed images at HttpPushUri with the UpdateService-wide HttpPushUriOptions (older builds have
    # no MultipartHttpPushUri), properties UpdateService v1_15 deprecated.
    "openbmc": (r"^/HttpPushUri(Targets|TargetsBusy|Options|OptionsBusy)? \(.*\): Deprecated Property Warning",),
}
#: The counts of the last full run per shape (``docs/sandbox.md``, "Conformance"): (validator, pass, warn, fail).
#: Passes grow as a shape serves more resources; failures must stay 0.
COUNTS: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "lenovo": (("protocol", 272, 0, 0), ("service", 609, 5, 0)),
    "supermicro-x13": (("protocol", 272, 0, 0), ("service", 545, 0, 0)),
    "hpe": (("protocol", 272, 0, 0), ("service", 678, 0, 0)),
    "openbmc": (("protocol", 272, 0, 0), ("service", 495, 5, 0)),
}
#: How many Service Validator warnings each shape gives (all of them KNOWN_WARNINGS; docs/sandbox.md has the
#: full counts per shape).
EXPECTED_SERVICE_WARNINGS: dict[str, int] = {
    "dell": 7,
    "supermicro": 0,
    "lenovo": 5,
    "supermicro-x13": 0,
    "hpe": 0,
    "openbmc": 5,
}
#: The warning the issue named: a collection type the DMTF does not define (``DrivesCollection``).
MADE_UP_TYPE = re.compile(r"Unable to locate the schema definition for the '(\w+)\.\1' type")


def _fleet(factory: Callable[..., BmcFleet], shape: ShapeName) -> BmcFleet:
    return factory(config=FleetSpec(bmcs=[default_bmc(0, shape=shape)]), power_seconds=0.2, install_seconds=1.0)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_dmtf_validators_find_no_failure(
    shape: ShapeName, bmcsim_factory: Callable[..., BmcFleet], tmp_path: Path, conformance_table: list[dict[str, Any]]
) -> None:
    fleet = _fleet(bmcsim_factory, shape)
    assert fleet.url(0).startswith("https://") and fleet.ca_bundle is not None
    username, password = fleet.credentials(0)

    protocol = run_protocol_validator(fleet.url(0), username, password, tmp_path / "protocol", fleet.ca_bundle)
    service = run_service_validator(fleet.url(0), username, password, tmp_path / "service")
    for name, report in (("protocol", protocol), ("service", service)):
        conformance_table.append(
            {
                "shape": shape,
                "validator": name,
                "pass": report.passed,
                "warn": report.warned,
                "fail": report.failed,
                "not_tested": report.not_tested,
                "seconds": report.seconds,
            }
        )
    counts = f"{service.passed} pass, {service.warned} warn, {service.failed} fail"
    print(f"{shape}: protocol {dict(protocol.counts)}; service {counts}")

    assert protocol.passed > 200, f"the Protocol Validator tested little: {protocol.counts}"
    assert protocol.failures == [], "\n".join(f"{a} {u}: {m}" for a, u, m in protocol.failures)
    warnings = [w for w in protocol.warnings if w[0] != TOKEN_RANDOMNESS]
    assert warnings == [], "\n".join(f"{a} {u}: {m}" for a, u, m in warnings)
    if len(warnings) < len(protocol.warnings):  # a statistical test at p < 0.01: check a sample of tokens
        failing = token_randomness_failures(fleet.url(0), username, password, fleet.ca_bundle, tokens=20)
        assert failing <= 3, f"{failing} of 20 session tokens fail the randomness tests"

    assert service.passed > 300, f"the Service Validator tested little: {service.passed} passed"
    assert service.failed == 0, "\n".join(service.failures)
    assert service.failures == []
    made_up = [w for w in service.warnings if MADE_UP_TYPE.search(w) and not _known(shape, w)]
    assert made_up == [], "collection types the DMTF does not define:\n" + "\n".join(made_up)
    unexpected = [w for w in service.warnings if not _known(shape, w)]
    assert unexpected == [], "\n".join(unexpected)
    assert service.warned == len(service.warnings) == EXPECTED_SERVICE_WARNINGS.get(shape, 0)
    # The token-randomness assertion is a statistical test (p < 0.01 per run): when it warns, the sample above has
    # checked the tokens again, so the warning counts as the pass it is on most runs (seen once in CI on openbmc).
    chance = len(protocol.warnings) - len(warnings)
    reports: dict[str, tuple[int, int, int]] = {
        "protocol": (protocol.passed + chance, protocol.warned - chance, protocol.failed),
        "service": (service.passed, service.warned, service.failed),
    }
    for validator, passed, warned, failed in COUNTS.get(shape, ()):
        got_passed, got_warned, got_failed = reports[validator]
        assert (got_failed, got_warned) == (failed, warned), f"{shape} {validator}: {reports[validator]}"
        assert got_passed >= passed, f"{shape} {validator} passes fewer assertions than before: {got_passed}"


def _known(shape: str, warning: str) -> bool:
    return any(re.search(pattern, warning) for pattern in KNOWN_WARNINGS.get(shape, ()))
