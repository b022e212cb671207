"""TLS for the simulated BMCs: one sandbox CA, and per BMC its own key and a certificate the CA signs.

Real BMCs serve HTTPS with a certificate of their own (self-signed out of the factory, or issued by the
operator's CA); clients either trust that CA (flasher's ``bmc.ca_bundle``) or turn verification off. The sandbox
does the same: :func:`load_or_create_ca` keeps a CA in a directory (``ca.pem``, ``ca-key.pem``; created on first
use, reused after, so a client's CA bundle stays valid across restarts), and :func:`issue` gives each BMC an
ECDSA P-256 key and an X.509 v3 certificate naming the BMC's address in ``subjectAltName`` (RFC 6125: a client
checks the address it connects to against the SAN, not the subject's CN).

P-256 rather than RSA keys: a key takes well under a millisecond to make, so a thousand BMCs start in about the
same time over HTTPS as over plain HTTP (figures in ``docs/benchmarks.md``).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: File names inside the TLS directory.
CA_CERT: Final = "ca.pem"
CA_KEY: Final = "ca-key.pem"
#: How long the CA and a BMC certificate are valid.
CA_DAYS: Final = 3650
BMC_DAYS: Final = 825  # the longest validity browsers and most TLS clients accept for a server certificate
_CLOCK_SKEW: Final = datetime.timedelta(days=1)


class TLSSetupError(Exception):
    """The TLS directory cannot be used: unreadable or mismatched CA files, or not writable. Names the path."""


@dataclass(frozen=True)
class SandboxCA:
    """The CA that signs every simulated BMC's certificate. ``cert_path`` is what clients trust."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_path: Path


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``, whole (a temporary file renamed over it: a reader never sees half
    a certificate)."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load_or_create_ca(directory: Path) -> SandboxCA:
    """The CA in ``directory`` (``ca.pem`` and ``ca-key.pem``), created there when absent.

    Processes sharing ``directory`` share the CA: an exclusive lock (``.ca.lock``) keeps two from both making one.
    Raises :class:`TLSSetupError` when the directory cannot be created or written, or when the files are there
    but unreadable or do not belong together.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with (directory / ".ca.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return _load_or_create_ca(directory)
    except OSError as exc:
        raise TLSSetupError(f"cannot use TLS directory {directory}: {exc.strerror or exc}") from exc


def _load_or_create_ca(directory: Path) -> SandboxCA:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        return _load_ca(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flasher sandbox"),
            x509.NameAttribute(NameOID.COMMON_NAME, "flasher sandbox BMC CA"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_file(key_path, _key_pem(key), 0o600)
    _write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return SandboxCA(cert, key, cert_path)


def _load_ca(cert_path: Path, key_path: Path) -> SandboxCA:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except ValueError as exc:
        raise TLSSetupError(f"cannot read the sandbox CA in {cert_path.parent}: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise TLSSetupError(f"{key_path} is not the key of {cert_path}; remove both to make a new CA")
    return SandboxCA(cert, key, cert_path)


def subject_alt_names(host: str) -> list[x509.GeneralName]:
    """The ``subjectAltName`` entries for a BMC listening on ``host``: the IP address (or DNS name) itself, plus
    ``localhost`` and ``127.0.0.1`` for a loopback or wildcard address (what a client on the same machine uses)."""
    names: list[x509.GeneralName] = []
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        names.append(x509.DNSName(host))
        local = host == "localhost"
    else:
        names.append(x509.IPAddress(address))
        local = address.is_loopback or address.is_unspecified
    if local:
        for extra in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
            if extra not in names:
                names.append(extra)
    return names


def issue(ca: SandboxCA, host: str, port: int, serial: str, directory: Path) -> tuple[Path, Path]:
    """Make the key and certificate of the BMC on ``host:port`` (system serial ``serial``), signed by ``ca``, and
    write them to ``directory`` as ``bmc-<port>.pem`` and ``bmc-<port>-key.pem`` (0600). Returns both paths.
    Raises :class:`TLSSetupError` when they cannot be written."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flasher sandbox"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"BMC of {serial}"),
            x509.NameAttribute(NameOID.COMMON_NAME, host),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW)
        .not_valid_after(now + datetime.timedelta(days=BMC_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(subject_alt_names(host)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"bmc-{port}.pem", directory / f"bmc-{port}-key.pem"
    try:
        _write_file(key_path, _key_pem(key), 0o600)
        _write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    except OSError as exc:
        raise TLSSetupError(f"cannot write the certificate of BMC {host}:{port} in {directory}: {exc}") from exc
    return cert_path, key_path


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later, as DSP0266 asks of a Redfish service) with this certificate.

    Built from ``PROTOCOL_TLS_SERVER`` rather than ``ssl.create_default_context``, which would load the system's
    CA store into every BMC's context for client certificates no BMC asks for (megabytes per thousand BMCs).
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context
