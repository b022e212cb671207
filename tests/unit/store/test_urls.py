"""Which image URLs the firmware store allows, and how URLs appear in its logs and errors."""

from __future__ import annotations

import pytest

from flasher import redact
from flasher.store.errors import DisallowedURLError
from flasher.store.urls import check_url, display_url, host_allowed


@pytest.mark.parametrize(
    ("host", "allowed", "expected"),
    [
        ("fw.example.com", [], True),
        ("fw.example.com", ["fw.example.com"], True),
        ("FW.Example.COM.", ["fw.example.com"], True),
        ("fw.example.com", ["*.example.com"], True),
        ("a.b.example.com", ["*.example.com"], True),
        ("example.com", ["*.example.com"], False),
        ("badexample.com", ["*.example.com"], False),
        ("example.com.evil.net", ["*.example.com", "example.com"], False),
        ("10.0.0.5", ["10.0.0.5"], True),
        ("10.0.0.50", ["10.0.0.5"], False),
        ("other.org", ["fw.example.com", "*.example.net"], False),
    ],
)
def test_host_allowed(host: str, allowed: list[str], expected: bool) -> None:
    assert host_allowed(host, allowed) is expected


@pytest.mark.parametrize(
    "url",
    ["https://fw.example.com/bios.bin", "http://mirror.example.com:8080/a/b.exe?x=1", "HTTPS://FW.EXAMPLE.COM/x"],
)
def test_allowed_urls_pass(url: str) -> None:
    check_url(url, ["http", "https"], ["fw.example.com", "*.example.com"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://fw.example.com/bios.bin", "scheme 'ftp' is not in store.allowed_schemes (http, https)"),
        ("fw.example.com/bios.bin", "scheme '(none)'"),
        ("https:///bios.bin", "has no host"),
        ("https://evil.net/bios.bin", "host 'evil.net' is not in store.allowed_hosts (fw.example.com, *.example.com)"),
        ("https://fw.example.com:99999/bios.bin", "does not parse"),
        ("https://[::1/bios.bin", "does not parse"),
    ],
)
def test_disallowed_urls_name_the_reason(url: str, reason: str) -> None:
    with pytest.raises(DisallowedURLError) as caught:
        check_url(url, ["http", "https"], ["fw.example.com", "*.example.com"])
    assert reason in str(caught.value)
    assert not caught.value.retriable


def test_https_only() -> None:
    with pytest.raises(DisallowedURLError, match="scheme 'http'"):
        check_url("http://fw.example.com/bios.bin", ["https"], [])


def test_display_url_masks_passwords_and_query_values() -> None:
    shown = display_url("https://user:s3cretpass@fw.example.com/a.bin?X-Amz-Signature=abcdef&X-Amz-Expires=60")

    assert "s3cretpass" not in shown
    assert "abcdef" not in shown
    assert shown == "https://user:***@fw.example.com/a.bin?X-Amz-Signature=***&X-Amz-Expires=***"


def test_display_url_masks_registered_secrets() -> None:
    redact.register("store-test-token-5f2a")
    assert display_url("https://fw.example.com/store-test-token-5f2a/a.bin") == "https://fw.example.com/***/a.bin"


def test_errors_show_the_scrubbed_url() -> None:
    with pytest.raises(DisallowedURLError) as caught:
        check_url("ftp://op:hunter22@fw.example.com/a.bin?sig=zzz999", ["https"], [])
    assert "hunter22" not in str(caught.value)
    assert "zzz999" not in str(caught.value)
    assert "ftp://op:***@fw.example.com/a.bin" in str(caught.value)
