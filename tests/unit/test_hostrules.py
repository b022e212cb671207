"""The image-host rule (issue 12, item 10): loopback, link-local and cloud metadata refused unless named, in
every spelling of an address; ``store.allowed_hosts`` entries with ports; bad entries refused naming them."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flasher.config import Settings, SettingsError, load_settings
from flasher.hostrules import HostPattern, address_refused_because, parse_address, refused_because
from flasher.store.errors import DisallowedURLError
from flasher.store.urls import check_url, host_refusal

SCHEMES = ["http", "https"]
REFUSED = [
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "169.254.0.0/16",
        "0.0.0.0/8",
        "100.100.100.200/32",
        "::1/128",
        "::/128",
        "fe80::/10",
        "fd00:ec2::254/128",
    )
]


def _spellings(address: ipaddress.IPv4Address) -> list[str]:
    """Ways an HTTP client (the C library's inet_aton) reads as ``address``."""
    n = int(address)
    a, b, c, d = address.packed
    return [
        str(address),
        str(n),  # 2130706433
        hex(n),  # 0x7f000001
        f"{a}.{(b << 16) | (c << 8) | d}",  # 127.1 for 127.0.0.1
        f"{a}.{b}.{(c << 8) | d}",
        f"0x{a:x}.{b}.{c}.{d}",
        f"[::ffff:{address}]",  # IPv4-mapped IPv6
    ]


refused_v4 = st.one_of(
    st.ip_addresses(network="127.0.0.0/8"),
    st.ip_addresses(network="169.254.0.0/16"),
    st.ip_addresses(network="0.0.0.0/8"),
)
refused_v6 = st.one_of(st.just(ipaddress.IPv6Address("::1")), st.ip_addresses(network="fe80::/10"))
# Addresses outside every refused network (private ranges included: image mirrors live there).
allowed_v4 = st.ip_addresses(v=4).filter(lambda a: not any(a in n for n in REFUSED if n.version == 4))
allowed_v6: st.SearchStrategy[ipaddress.IPv6Address] = st.ip_addresses(v=6).filter(
    lambda a: (
        not (isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped is not None)
        and not any(a in n for n in REFUSED if n.version == 6)
    )
)  # type: ignore[assignment]


@given(refused_v4, st.integers(0, 6), st.sampled_from(["", ":8080"]))
def test_every_spelling_of_a_refused_ipv4_address_is_refused(
    address: ipaddress.IPv4Address, form: int, port: str
) -> None:
    spelled = _spellings(address)[form]
    assert socket.inet_aton(spelled.strip("[]").removeprefix("::ffff:")) == address.packed
    for allowed in ([], ["*.example.com"], ["fw.example.com"], [f"{address}:1"]):
        with pytest.raises(DisallowedURLError, match=rf"host '{address}' is .*, refused unless store.allowed_hosts"):
            check_url(f"http://{spelled}{port}/fw.bin", SCHEMES, allowed)
    # an entry naming the very address (in any spelling) allows it, on its port when it names one
    check_url(f"http://{spelled}{port}/fw.bin", SCHEMES, [str(address)])
    check_url(f"http://{spelled}{port}/fw.bin", SCHEMES, [f"{address}{port or ':80'}"])


@given(refused_v6)
def test_refused_ipv6_addresses(address: ipaddress.IPv6Address) -> None:
    with pytest.raises(DisallowedURLError, match=r"refused unless store\.allowed_hosts names it"):
        check_url(f"https://[{address}]/fw.bin", SCHEMES, [])
    check_url(f"https://[{address}]/fw.bin", SCHEMES, [f"[{address}]:443"])


@given(st.one_of(allowed_v4, allowed_v6))
def test_other_addresses_are_allowed_by_an_empty_list(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    host = f"[{address}]" if address.version == 6 else str(address)
    check_url(f"http://{host}/fw.bin", SCHEMES, [])
    with pytest.raises(DisallowedURLError, match=r"is not in store\.allowed_hosts"):
        check_url(f"http://{host}/fw.bin", SCHEMES, ["fw.example.com"])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "the cloud metadata address"),
        ("http://100.100.100.200/latest/meta-data/", "the cloud metadata address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "the cloud metadata name"),
        ("http://METADATA.google.internal./x", "the cloud metadata name"),
        ("http://localhost:6379/", "a loopback name"),
        ("http://redis.localhost/", "a loopback name"),
        ("http://[::1]:9090/metrics", "a loopback address"),
        ("http://0.0.0.0:9090/metrics", "an unspecified address"),
        ("http://[fe80::1%25eth0]/x", "a link-local address"),
    ],
)
def test_metadata_loopback_and_link_local_are_refused_by_default(url: str, why: str) -> None:
    with pytest.raises(DisallowedURLError, match=why):
        check_url(url, SCHEMES, [])
    with pytest.raises(DisallowedURLError, match=why):
        check_url(url, SCHEMES, ["*.internal", "*.localhost"])  # a wildcard never names a refused host


@st.composite
def _host_and_pattern(draw: st.DrawFn) -> tuple[str, int | None, str, int, bool]:
    """(pattern host, pattern port, URL host, URL port, whether the pattern covers the URL)."""
    name = draw(st.sampled_from(["fw.example.com", "10.0.0.5", "[fd00::5]", "*.example.com"]))
    pattern_port = draw(st.one_of(st.none(), st.integers(1, 65535)))
    url_host = draw(st.sampled_from(["fw.example.com", "a.b.example.com", "example.com", "10.0.0.5", "[fd00::5]"]))
    url_port = draw(st.one_of(st.just(pattern_port or 80), st.integers(1, 65535)))
    host_ok = url_host.endswith(".example.com") if name == "*.example.com" else url_host == name
    return name, pattern_port, url_host, url_port, host_ok and (pattern_port is None or pattern_port == url_port)


@given(_host_and_pattern())
def test_entries_with_ports_allow_only_that_port(case: tuple[str, int | None, str, int, bool]) -> None:
    name, pattern_port, url_host, url_port, covered = case
    entry = name if pattern_port is None else f"{name}:{pattern_port}"
    reason = host_refusal(url_host.strip("[]"), url_port, [entry])
    assert (reason is None) == covered, (entry, url_host, url_port, reason)
    if not covered and reason is not None and (name == url_host or url_host.endswith(name.lstrip("*"))):
        assert reason.startswith(f"port {url_port} of host")


def test_a_url_without_a_port_has_its_schemes() -> None:
    check_url("https://fw.example.com/a.bin", SCHEMES, ["fw.example.com:443"])
    with pytest.raises(DisallowedURLError, match=r"port 80 of host 'fw\.example\.com' is not in store\.allowed_hosts"):
        check_url("http://fw.example.com/a.bin", SCHEMES, ["fw.example.com:443"])


@pytest.mark.parametrize(
    "url", ["http://fw.example.com/a b.bin", "http://fw.example.com/a.bin\r\nX-Evil: 1", "http://fw.example.com/\x7f"]
)
def test_spaces_and_control_characters_are_refused(url: str) -> None:
    with pytest.raises(DisallowedURLError, match="spaces or control characters"):
        check_url(url, SCHEMES, [])


@pytest.mark.parametrize(
    ("entry", "why"),
    [
        ("fw.example.com:99999", "the port must be a number from 1 to 65535, got '99999'"),
        ("fw.example.com:http", "the port must be a number from 1 to 65535, got 'http'"),
        ("fw.example.com:", "the port must be a number from 1 to 65535, got ''"),
        ("[fd00::5", "opens a bracket it does not close"),
        ("[fd00::5]x", "after the bracketed address"),
        ("fw example.com", "is not a host name, an IP address or *.domain"),
        ("*.*.example.com", "is not a host name, an IP address or *.domain"),
        ("fw.*.com", "is not a host name, an IP address or *.domain"),
        ("", "an entry is empty"),
    ],
)
def test_bad_entries_are_refused_naming_them(entry: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("*", r"\*").replace("[", r"\[").replace("(", r"\(")):
        HostPattern.parse(entry)


def test_settings_refuse_a_bad_entry_naming_field_and_value(tmp_path: Path) -> None:
    config = tmp_path / "flasher.yaml"
    config.write_text("store:\n  allowed_hosts: [fw.example.com, 'fw.example.com:99999']\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    text = "\n".join(caught.value.lines)
    assert "store.allowed_hosts" in text and "fw.example.com:99999" in text
    assert Settings(store={"allowed_hosts": ["fw.example.com:8443", "*.example.com", "[fd00::5]:443"]})


def test_address_parsing() -> None:
    assert parse_address("127.1") == ipaddress.IPv4Address("127.0.0.1")
    assert parse_address("[::ffff:169.254.169.254]") == ipaddress.IPv4Address("169.254.169.254")
    assert parse_address("fw.example.com") is None
    assert parse_address("1e100") is None
    assert address_refused_because("fe80::1%eth0") == "a link-local address"
    assert address_refused_because("10.1.2.3") is None
    assert refused_because("LOCALHOST.") == "a loopback name"
