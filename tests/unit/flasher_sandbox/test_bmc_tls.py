"""The simulated BMCs' TLS material (``flasher_sandbox.bmc.tls``), the fleet's scheme settings, and the
``$metadata`` document and ``Link`` header (``flasher_sandbox.bmc.metadata``); no servers."""

from __future__ import annotations

import ssl
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from flasher_sandbox.bmc.config import FleetSpec, default_bmc, load_fleet
from flasher_sandbox.bmc.fleet import Fleet
from flasher_sandbox.bmc.metadata import describedby, metadata_document, split_type
from flasher_sandbox.bmc.resources import collection_type
from flasher_sandbox.bmc.tls import CA_CERT, CA_KEY, TLSSetupError, issue, load_or_create_ca, server_context

EDMX = "{http://docs.oasis-open.org/odata/ns/edmx}"
EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


# ---- the CA -------------------------------------------------------------------------------------------------


def test_the_ca_is_made_once_then_reused_with_its_key_private(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path / "tls")
    assert ca.cert_path == tmp_path / "tls" / CA_CERT
    assert stat.S_IMODE((tmp_path / "tls" / CA_KEY).stat().st_mode) == 0o600
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    again = load_or_create_ca(tmp_path / "tls")
    assert again.cert == ca.cert and again.cert_path.read_bytes() == ca.cert_path.read_bytes()


def test_a_ca_whose_key_does_not_match_is_refused_naming_the_files(tmp_path: Path) -> None:
    load_or_create_ca(tmp_path / "a")
    load_or_create_ca(tmp_path / "b")
    (tmp_path / "a" / CA_KEY).write_bytes((tmp_path / "b" / CA_KEY).read_bytes())
    with pytest.raises(TLSSetupError, match=r"ca-key\.pem is not the key of .*ca\.pem; remove both"):
        load_or_create_ca(tmp_path / "a")
    (tmp_path / "a" / CA_CERT).write_text("not a certificate")
    with pytest.raises(TLSSetupError, match="cannot read the sandbox CA in"):
        load_or_create_ca(tmp_path / "a")


def test_a_tls_directory_that_cannot_be_made_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(TLSSetupError, match=r"cannot use TLS directory .*file/tls"):
        load_or_create_ca(tmp_path / "file" / "tls")


# ---- a BMC's certificate ------------------------------------------------------------------------------------


def _names(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(name.value) for name in san]


@pytest.mark.parametrize(
    ("host", "names"),
    [
        ("127.0.0.1", ["127.0.0.1", "localhost"]),
        ("0.0.0.0", ["0.0.0.0", "localhost", "127.0.0.1"]),
        ("10.20.30.40", ["10.20.30.40"]),
        ("bmc-r6515-01.example", ["bmc-r6515-01.example"]),
        ("::1", ["::1", "localhost", "127.0.0.1"]),
    ],
)
def test_each_bmc_gets_its_own_key_and_a_certificate_naming_its_address(
    tmp_path: Path, host: str, names: list[str]
) -> None:
    ca = load_or_create_ca(tmp_path)
    cert_path, key_path = issue(ca, host, 8443, "CN7X01", tmp_path)
    assert (cert_path.name, key_path.name) == ("bmc-8443.pem", "bmc-8443-key.pem")
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert _names(cert) == names
    cert.verify_directly_issued_by(ca.cert)
    assert cert.version is x509.Version.v3
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == host
    assert "CN7X01" in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)[0].value
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_two_bmcs_never_share_a_key(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path)
    first, second = (issue(ca, "127.0.0.1", port, "S", tmp_path) for port in (1, 2))
    assert first[1].read_bytes() != second[1].read_bytes()
    a, b = (x509.load_pem_x509_certificate(p.read_bytes()) for p, _ in (first, second))
    assert a.public_key() != b.public_key() and a.serial_number != b.serial_number


def test_the_server_context_refuses_tls_older_than_1_2(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path)
    context = server_context(*issue(ca, "127.0.0.1", 1, "S", tmp_path))
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.verify_mode is ssl.CERT_NONE  # no client certificates asked for


# ---- the fleet's scheme -------------------------------------------------------------------------------------


def test_https_is_the_default_and_a_bmc_may_serve_plain_http(tmp_path: Path) -> None:
    fleet = FleetSpec(bmcs=[default_bmc(0), default_bmc(1).model_copy(update={"scheme": "http"})])
    assert fleet.scheme == "https" and [fleet.scheme_of(i) for i in (0, 1)] == ["https", "http"]
    everything_plain = fleet.model_copy(update={"scheme": "http"})
    assert [everything_plain.scheme_of(i) for i in (0, 1)] == ["http", "http"]
    path = tmp_path / "fleet.yaml"
    fleet.dump_yaml(path)
    assert load_fleet(path) == fleet


def test_an_unknown_scheme_is_refused_naming_the_field_and_value(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"bmcs": [{"vendor": "dell", "model": "r6515", "serial": "S1", "scheme": "ftp"}]}))
    with pytest.raises(ValueError, match=r"bmcs\.0\.scheme: .*'https' or 'http' \(got 'ftp'\)"):
        load_fleet(path)


def test_a_fleet_with_https_bmcs_needs_a_tls_directory() -> None:
    with pytest.raises(ValueError, match="needs a TLS directory"):
        Fleet(FleetSpec(bmcs=[default_bmc(0)]), host="127.0.0.1", base_port=8443)
    plain = Fleet(FleetSpec(scheme="http", bmcs=[default_bmc(0)]), host="127.0.0.1", base_port=8443)
    assert plain.ca_path is None and plain.bmcs[0].url == "http://127.0.0.1:8443"


# ---- $metadata and the Link header --------------------------------------------------------------------------


def test_odata_types_split_into_namespace_version_and_name() -> None:
    assert split_type("#ComputerSystem.v1_20_0.ComputerSystem") == ("ComputerSystem", "v1_20_0", "ComputerSystem")
    assert split_type("#DriveCollection.DriveCollection") == ("DriveCollection", None, "DriveCollection")
    with pytest.raises(ValueError, match=r"not an @odata\.type: 'Drive'"):
        split_type("Drive")


def test_the_link_header_names_the_json_schema_of_the_resource() -> None:
    assert (
        describedby("#Drive.v1_17_0.Drive")
        == "<http://redfish.dmtf.org/schemas/v1/Drive.v1_17_0.json>; rel=describedby"
    )
    assert describedby("#RoleCollection.RoleCollection").startswith(
        "<http://redfish.dmtf.org/schemas/v1/RoleCollection.json>"
    )


def test_collections_are_named_after_their_members_type() -> None:
    assert collection_type("#Drive.v1_17_0.Drive") == "DriveCollection"
    assert collection_type("#NetworkAdapter.v1_9_0.NetworkAdapter") == "NetworkAdapterCollection"
    assert collection_type("#StorageController.v1_7_0.StorageController") == "StorageControllerCollection"
    assert collection_type("#PowerSupply.v1_5_0.PowerSupply") == "PowerSupplyCollection"


def test_the_metadata_document_references_each_schema_once_and_extends_the_service_root() -> None:
    text = metadata_document(
        ["#Drive.v1_17_0.Drive", "#DriveCollection.DriveCollection", "#Drive.v1_17_0.Drive"],
        "#ServiceRoot.v1_15_0.ServiceRoot",
    )
    root = ET.fromstring(text)
    references = {r.get("Uri"): {i.get("Namespace") for i in r} for r in root.iter(f"{EDMX}Reference")}
    base = "http://redfish.dmtf.org/schemas/v1"
    assert references == {
        f"{base}/Drive_v1.xml": {"Drive", "Drive.v1_17_0"},
        f"{base}/DriveCollection_v1.xml": {"DriveCollection"},
        f"{base}/ServiceRoot_v1.xml": {"ServiceRoot", "ServiceRoot.v1_15_0"},
        f"{base}/RedfishExtensions_v1.xml": {"RedfishExtensions.v1_0_0"},
    }
    (container,) = root.iter(f"{EDM}EntityContainer")
    assert container.get("Extends") == "ServiceRoot.v1_15_0.ServiceContainer"
