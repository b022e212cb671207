"""DMTF's Redfish Service Validator and Protocol Validator, run as subprocesses against one BMC, offline, with
their reports parsed.

* Service Validator (``rf_service_validator``): walks every resource from ``/redfish/v1`` and checks each payload
  against the CSDL schemas in ``tests/data/redfish-schema/csdl`` (``--skipschema``: nothing is downloaded). Its
  result is the summary table it prints and one debug-log line per finding (``WARN - ...``, ``FAIL - ...``).
* Protocol Validator (``rf_protocol_validator``): checks DSP0266's protocol assertions (headers, methods, status
  codes, sessions, TLS) and writes a TSV report, one row per assertion tested. It is run through
  :data:`PROTOCOL_WRAPPER`, which makes its SSDP discovery find nothing: the simulated BMCs do not announce
  themselves, and the discovery would send multicast M-SEARCH packets off the loopback interface (with 5 s
  timeouts, four times). Nothing else of the validator changes.

Both get the environment without ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``: requests lets those override the
``verify`` of a ``requests.Session`` (the Protocol Validator sets its CA bundle that way), so a machine that sets
them would make every HTTPS request fail verification against the sandbox CA.
"""

from __future__ import annotations

import csv
import json
import os
import re
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from redfish_protocol_validator.utils import random_sequence

ROOT = Path(__file__).resolve().parents[2]
#: The DMTF schema files (CSDL) the Service Validator checks payloads against (vendored, BSD 3-Clause).
SCHEMA_DIR = ROOT / "tests" / "data" / "redfish-schema" / "csdl"
PROTOCOL_WRAPPER = Path(__file__).with_name("protocol_validator_offline.py")
_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_SUMMARY = re.compile(r"\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|")
_FINDING = re.compile(r" - (WARNING|ERROR) - (WARN|FAIL) - (.*)$")


@dataclass
class ServiceReport:
    """The Service Validator's counts and findings (``warnings``/``failures``: the message of each)."""

    passed: int
    warned: int
    failed: int
    not_tested: int
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class ProtocolReport:
    """The Protocol Validator's counts and its failed or warned assertions (``(assertion, URI, message)``)."""

    counts: Counter[str]
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> int:
        return self.counts["FAIL"]

    @property
    def warned(self) -> int:
        return self.counts["WARN"]

    @property
    def passed(self) -> int:
        return self.counts["PASS"]

    @property
    def not_tested(self) -> int:
        return self.counts["NOT_TESTED"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _CA_VARIABLES}


def _console_script(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    if not path.exists():
        raise RuntimeError(f"{name} is not installed next to {sys.executable}: pip install -e '.[test]'")
    return str(path)


def run_service_validator(
    url: str, username: str, password: str, report_dir: Path, timeout: float = 120
) -> ServiceReport:
    """Run the Service Validator against the BMC at ``url`` (``https://host:port``) with a Redfish session.

    Raises ``AssertionError`` with the end of its output when it exits non-zero without a summary, or
    ``subprocess.TimeoutExpired`` after ``timeout`` s.
    """
    argv = [_console_script("rf_service_validator"), "--rhost", url, "--user", username, "--password", password]
    argv += ["--authtype", "Session", "--logdir", str(report_dir), "--schema_directory", str(SCHEMA_DIR)]
    argv += ["--skipschema", "--timeout", "20"]
    start = time.monotonic()
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - start
    summaries = _SUMMARY.findall(done.stdout)
    if not summaries:
        output = done.stdout[-3000:] + done.stderr[-3000:]
        raise AssertionError(f"the Service Validator printed no summary (exit {done.returncode}):\n{output}")
    passed, warned, failed, not_tested = (int(n) for n in summaries[-1])
    report = ServiceReport(passed, warned, failed, not_tested, seconds=seconds)
    for log in sorted(report_dir.glob("*/RedfishServiceValidatorDebug_*.log")):
        for line in log.read_text(errors="replace").splitlines():
            match = _FINDING.search(line)
            if match:
                (report.warnings if match.group(2) == "WARN" else report.failures).append(match.group(3))
    return report


def run_protocol_validator(
    url: str, username: str, password: str, report_dir: Path, ca_bundle: Path | None, timeout: float = 120
) -> ProtocolReport:
    """Run the Protocol Validator against the BMC at ``url``, verifying its certificate against ``ca_bundle``
    (``None``: a plain-HTTP BMC). Raises ``AssertionError`` with its output when it writes no report."""
    argv = [sys.executable, str(PROTOCOL_WRAPPER), "--rhost", url, "--user", username, "--password", password]
    argv += ["--report-dir", str(report_dir), "--report-type", "tsv"]
    if ca_bundle is not None:
        argv += ["--ca-bundle", str(ca_bundle)]
    start = time.monotonic()
    done = subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)
    seconds = time.monotonic() - start
    reports = sorted(report_dir.glob("RedfishProtocolValidationReport_*.tsv"))
    if not reports:
        output = done.stdout[-3000:] + done.stderr[-3000:]
        raise AssertionError(f"the Protocol Validator wrote no report (exit {done.returncode}):\n{output}")
    report = ProtocolReport(Counter(), seconds=seconds)
    with reports[-1].open(newline="") as tsv:
        for row in csv.DictReader(tsv, delimiter="\t"):
            result = row["Result"]
            report.counts[result] += 1
            finding = (row["Assertion"], row["URI"], row["Message"])
            if result == "FAIL":
                report.failures.append(finding)
            elif result == "WARN":
                report.warnings.append(finding)
    return report


#: The Protocol Validator's warning on a session token that fails its randomness tests.
TOKEN_RANDOMNESS = "RESP_HEADERS_X_AUTH_TOKEN"


def token_randomness_failures(url: str, username: str, password: str, ca_bundle: Path | None, tokens: int) -> int:
    """How many of ``tokens`` fresh session tokens of the BMC at ``url`` fail the Protocol Validator's own
    randomness tests (NIST SP 800-22 monobit and runs, each at p < 0.01).

    Those tests flag about 2 % of truly random tokens, so one run's ``RESP_HEADERS_X_AUTH_TOKEN`` warning says
    little; a sample does: of 20 random tokens, 4 or more fail with probability below 0.1 %, while a counter,
    a timestamp or a short alphabet fails nearly all of them. Each session is logged out again.
    """
    context = ssl.create_default_context(cafile=str(ca_bundle)) if ca_bundle is not None else None
    failures = 0
    body = json.dumps({"UserName": username, "Password": password}).encode()
    for _ in range(tokens):
        login = urllib.request.Request(
            f"{url}/redfish/v1/SessionService/Sessions", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(login, context=context, timeout=10) as answer:
            token, location = answer.headers["X-Auth-Token"], answer.headers["Location"]
        if random_sequence(token) is not True:
            failures += 1
        logout = urllib.request.Request(f"{url}{location}", method="DELETE", headers={"X-Auth-Token": token})
        with urllib.request.urlopen(logout, context=context, timeout=10):
            pass
    return failures
