"""Checksum parsing, secret scrubbing and log formats."""

from __future__ import annotations

import io
import json

import pytest
from loguru import logger

from flasher import redact
from flasher.checksum import Checksum, ChecksumError
from flasher.logs import setup_logging, task_context

SHA256 = "ab" * 32


@pytest.mark.parametrize(
    ("value", "algorithm"),
    [
        (f"sha256:{SHA256}", "sha256"),
        (f"SHA256:{SHA256.upper()}", "sha256"),
        (SHA256, "sha256"),
        ("cd" * 16, "md5"),
        (f"md5:{'cd' * 16}", "md5"),
        ("ef" * 64, "sha512"),
        (f"sha512:{'ef' * 64}", "sha512"),
    ],
)
def test_checksum_forms(value: str, algorithm: str) -> None:
    parsed = Checksum.parse(value)
    assert parsed.algorithm == algorithm
    assert parsed.hexdigest == parsed.hexdigest.lower()
    assert Checksum.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    "value", ["", "sha1:" + "a" * 40, "a" * 40, "sha256:abc", "sha256:" + "g" * 64, "zz" * 32, "crc32:1234"]
)
def test_bad_checksums_name_the_value(value: str) -> None:
    with pytest.raises(ChecksumError) as caught:
        Checksum.parse(value)
    assert repr(value) in str(caught.value)


def test_scrub_masks_registered_secrets_and_url_passwords() -> None:
    redact.register("hunter2-password")
    try:
        assert redact.scrub("login with hunter2-password failed") == "login with *** failed"
        assert redact.scrub("redis://:pw@10.0.0.1:6379/0") == "redis://:***@10.0.0.1:6379/0"
        assert redact.scrub("https://root:calvin@bmc/redfish") == "https://root:***@bmc/redfish"
    finally:
        redact.forget_all()


def test_json_log_lines_carry_server_and_task_and_hide_secrets() -> None:
    sink = io.StringIO()
    setup_logging("DEBUG", "json", sink=sink)
    redact.register("s3cret-value")
    try:
        with task_context("srv-1", "task-9"):
            logger.info("installing with s3cret-value")
        logger.info("outside")
    finally:
        redact.forget_all()
        setup_logging("INFO", "text")
    first, second = (json.loads(line) for line in sink.getvalue().splitlines())
    assert first["server_id"] == "srv-1" and first["task_id"] == "task-9"
    assert first["message"] == "installing with ***"
    assert first["level"] == "INFO" and first["time"].endswith("Z")
    assert second["server_id"] == "-"


def test_text_log_lines_carry_server_and_task() -> None:
    sink = io.StringIO()
    setup_logging("INFO", "text", sink=sink)
    try:
        with task_context("srv-2", None):
            logger.info("hello {braces}")
    finally:
        setup_logging("INFO", "text")
    line = sink.getvalue()
    assert "[server=srv-2 task=-] hello {braces}" in line


def test_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format 'xml'"):
        setup_logging("INFO", "xml")  # type: ignore[arg-type]


def test_default_sink_follows_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test runner swaps and closes sys.stderr between invocations; logging must write to the current one."""
    import sys

    setup_logging("INFO", "text")
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    logger.warning("to the first stream")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logger.warning("to the second stream")
    assert "to the second stream" in second.getvalue()
    assert "Logging error" not in second.getvalue()
