"""flasher's ``bmc.ca_bundle``, ``bmc.verify_tls`` and ``bmc.scheme`` against the simulated BMCs' HTTPS.

Each simulated BMC has its own key and certificate (its address in ``subjectAltName``), signed by the sandbox CA
(``fleet.ca_bundle``), as a fleet of real BMCs with certificates from the operator's CA. flasher verifies it
against ``bmc.ca_bundle``, refuses it clearly without, and with ``verify_tls: false`` connects and warns once per
process. A plain-HTTP BMC works with ``bmc.scheme: http``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from loguru import logger

from flasher.bmc import BMC, BMCUnreachableError
from flasher.config import BMCSettings
from flasher.logs import forget_warnings
from flasher_sandbox.bmc.config import FleetSpec, default_bmc
from flasher_sandbox.bmc.tls import load_or_create_ca
from flasher_sandbox.procs import LOOPBACK
from flasher_sandbox.servers import BmcFleet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELL, SUPERMICRO = 0, 1
FAST = BMCSettings(retries=1, retry_delay=0.05, read_timeout=5, connect_timeout=2)
OFF_WARNING = "TLS certificate verification is OFF"


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """loguru WARNING+ messages emitted during the test (flasher's once-per-process warnings forgotten before and
    after)."""
    forget_warnings()
    lines: list[str] = []
    handler = logger.add(lambda message: lines.append(str(message).rstrip("\n")), level="WARNING", format="{message}")
    yield lines
    logger.remove(handler)
    forget_warnings()


def _versions(fleet: BmcFleet, i: int, settings: BMCSettings, address: str | None = None) -> dict[str, str]:
    with BMC(address or fleet.address(i), *fleet.credentials(i), settings=settings) as bmc:
        return {c.slug: str(c.version) for c in bmc.firmware_inventory()}


@pytest.mark.parametrize("i", [DELL, SUPERMICRO])
def test_the_ca_bundle_verifies_each_bmcs_own_certificate(bmcsim: BmcFleet, i: int, warnings: list[str]) -> None:
    assert bmcsim.address(i).startswith("https://") and bmcsim.ca_bundle is not None
    trusted = FAST.model_copy(update={"ca_bundle": bmcsim.ca_bundle})
    assert _versions(bmcsim, i, trusted)["bmc"] == bmcsim.version(i, "bmc")
    # A bare host:port takes https, the default scheme.
    assert _versions(bmcsim, i, trusted, f"{LOOPBACK}:{bmcsim.port(i)}")["bmc"] == bmcsim.version(i, "bmc")
    assert warnings == []

    pem = ssl.get_server_certificate((LOOPBACK, bmcsim.port(i)))
    certificate = x509.load_pem_x509_certificate(pem.encode())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert LOOPBACK in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]
    ca = x509.load_pem_x509_certificate(bmcsim.ca_bundle.read_bytes())
    certificate.verify_directly_issued_by(ca)
    other = ssl.get_server_certificate((LOOPBACK, bmcsim.port(1 - i)))
    assert other != pem  # each BMC has a key and certificate of its own


def test_without_the_ca_bundle_the_certificate_is_refused_saying_what_to_set(bmcsim: BmcFleet) -> None:
    with pytest.raises(BMCUnreachableError) as refused:
        _versions(bmcsim, DELL, FAST)
    message = str(refused.value)
    assert bmcsim.address(DELL) in message
    assert "its TLS certificate is not trusted (set bmc.ca_bundle, or bmc.insecure)" in message
    assert bmcsim.audit(DELL)["installs"] == [] and bmcsim.state(DELL)["sessions"] == []


def test_a_ca_bundle_of_another_ca_is_refused(bmcsim: BmcFleet, tmp_path: Path) -> None:
    stranger = load_or_create_ca(tmp_path / "other-ca")
    with pytest.raises(BMCUnreachableError, match="its TLS certificate is not trusted"):
        _versions(bmcsim, SUPERMICRO, FAST.model_copy(update={"ca_bundle": stranger.cert_path}))


@pytest.mark.parametrize("setting", [{"verify_tls": False}, {"insecure": True}])
def test_verification_off_connects_and_warns_once(
    bmcsim: BmcFleet, warnings: list[str], setting: dict[str, bool]
) -> None:
    off = FAST.model_copy(update=setting)
    assert _versions(bmcsim, DELL, off)["bios"] == bmcsim.version(DELL, "bios")
    assert _versions(bmcsim, SUPERMICRO, off)["bios"] == bmcsim.version(SUPERMICRO, "bios")
    # One warning for the process, naming the first BMC (flasher.logs.warn_once), however many sessions follow.
    assert [w for w in warnings if OFF_WARNING in w] == [
        f"{OFF_WARNING} for BMCs (bmc.insecure / bmc.verify_tls), first for {bmcsim.address(DELL)}"
    ], warnings


def test_a_plain_http_bmc_with_scheme_http(bmcsim_factory: Callable[..., BmcFleet], warnings: list[str]) -> None:
    plain = default_bmc(0, shape="supermicro").model_copy(update={"scheme": "http"})
    fleet = bmcsim_factory(config=FleetSpec(bmcs=[plain, default_bmc(1, shape="dell")]))
    assert fleet.address(0).startswith("http://") and fleet.address(1).startswith("https://")
    settings = FAST.model_copy(update={"scheme": "http", "ca_bundle": fleet.ca_bundle})
    assert _versions(fleet, 0, settings, f"{LOOPBACK}:{fleet.port(0)}")["bmc"] == fleet.version(0, "bmc")
    assert _versions(fleet, 1, settings)["bmc"] == fleet.version(1, "bmc")  # its address says https
    assert warnings == []
