"""flasher.httpenv: the environment read once per session, and one TLS context per CA bundle."""

from __future__ import annotations

import os
import shutil
import ssl
from pathlib import Path

import pytest
import requests
from requests.adapters import HTTPAdapter

from flasher import httpenv

CERTIFI = requests.utils.DEFAULT_CA_BUNDLE_PATH


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    shutil.copyfile(CERTIFI, path)
    return path


def test_one_context_per_bundle_loaded_again_when_the_file_changes(bundle: Path) -> None:
    first = httpenv.tls_context(str(bundle))
    assert httpenv.tls_context(str(bundle)) is first
    assert first.verify_mode == ssl.CERT_REQUIRED
    assert first.cert_store_stats()["x509_ca"] > 100
    one = Path(CERTIFI).read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    bundle.write_text(one)
    os.utime(bundle, ns=(1, 1))
    again = httpenv.tls_context(str(bundle))
    assert again is not first and again.cert_store_stats()["x509_ca"] == 1


def test_settle_reads_the_environment_once_and_keeps_what_it_names(
    monkeypatch: pytest.MonkeyPatch, bundle: Path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "bmc-skip.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    session = requests.Session()
    session.mount("https://", HTTPAdapter(pool_connections=3, pool_maxsize=17))

    verify = httpenv.settle(session, "https://bmc-1.example", True)

    assert verify == str(bundle)  # requests' own choice for verify=True, made once
    assert session.trust_env is False
    assert session.proxies["https"] == "http://proxy.example:3128"
    adapter = session.adapters["https://"]
    assert isinstance(adapter, httpenv.TLSContextAdapter)
    assert (adapter._pool_connections, adapter._pool_maxsize) == (3, 17)  # type: ignore[attr-defined]

    bypassed = requests.Session()
    httpenv.settle(bypassed, "https://bmc-skip.example", True)
    assert "https" not in bypassed.proxies


def test_verified_connections_take_the_shared_context_and_no_bundle_to_load(bundle: Path) -> None:
    context = httpenv.tls_context(str(bundle))
    adapter = httpenv.TLSContextAdapter(context)
    request = requests.Request("GET", "https://bmc.example/redfish/v1").prepare()
    _, pool = adapter.build_connection_pool_key_attributes(request, str(bundle))
    assert pool["ssl_context"] is context and "ca_certs" not in pool and pool["cert_reqs"] == "CERT_REQUIRED"
    conn = adapter.get_connection_with_tls_context(request, str(bundle))
    adapter.cert_verify(conn, request.url or "", str(bundle), None)
    assert conn.ca_certs is None and conn.cert_reqs == "CERT_REQUIRED"  # type: ignore[attr-defined]
    # verify=False stays requests' own: no context, no verification.
    _, pool = adapter.build_connection_pool_key_attributes(request, False)
    assert "ssl_context" not in pool and pool["cert_reqs"] == "CERT_NONE"


def test_an_unreadable_bundle_mounts_nothing_and_requests_says_so_at_the_request(tmp_path: Path) -> None:
    session = requests.Session()
    missing = str(tmp_path / "missing.pem")
    assert httpenv.settle(session, "https://bmc.example", missing) == missing
    assert type(session.adapters["https://"]) is HTTPAdapter
    with pytest.raises(OSError, match="invalid path"):
        session.get("https://bmc.example/redfish/v1", verify=missing, timeout=1)
