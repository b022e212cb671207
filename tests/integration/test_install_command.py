"""``flasher install`` against the simulated BMCs (0 Dell-like: SimpleUpdate, BIOS at host reset; 1
Supermicro-like: multipart push): the same steps as the service, for one BMC at a console."""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from flasher.cli import app
from flasher_sandbox.bmc.config import BmcSpec, FleetSpec
from flasher_sandbox.images import make_image
from flasher_sandbox.procs import ManagedProcess
from flasher_sandbox.servers import BmcFleet, ImageServer
from tests.support.fixtures.bmcsim import BmcFleetPool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELL, SUPERMICRO = 0, 1


@pytest.fixture
def config(tmp_path: Path, bmcsim: BmcFleet) -> Path:
    path = tmp_path / "flasher.yaml"
    bmc = {"poll_interval": 0.1, "offline_grace": 20, "retries": 1, "retry_delay": 0.05}
    settings = {
        "bmc": {**bmc, "scheme": "http", "ca_bundle": str(bmcsim.ca_bundle)},
        "store": {"cache_dir": str(tmp_path / "cache"), "allowed_hosts": ["127.0.0.1"]},
        "fileserver": {"host": "127.0.0.1", "port": 0},
        "steps": {"install": {"timeout": 15}, "confirm": {"timeout": 5}, "power": {"timeout": 15}},
    }
    path.write_text(yaml.safe_dump(settings))
    (tmp_path / "password").write_text("calvin\n")
    return path


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app,
        ["--config", str(config), "install", *args, "--password-file", str(config.parent / "password")],
        env={"COLUMNS": "200"},
    )
    return result.exit_code, result.output


def _image(tmp_path: Path, component: str, vendor: str, version: str, models: list[str]) -> Path:
    path = tmp_path / f"{vendor}-{component}-{version}.bin"
    path.write_bytes(make_image(component, vendor, version, models))
    return path


def _sm_bios(bmcsim: BmcFleet, image: Path, version: str = "1.5a") -> list[str]:
    """The arguments installing ``image`` on the Supermicro-like BMC's BIOS."""
    return ["--bmc", bmcsim.address(SUPERMICRO), "--component", "bios", "--version", version, "--file", str(image)]


def test_a_local_file_pushed_to_the_bmc(bmcsim: BmcFleet, config: Path, tmp_path: Path) -> None:
    image = _image(tmp_path, "bios", "supermicro", "1.5a", ["x12stw"])
    code, output = _run(config, *_sm_bios(bmcsim, image))
    assert code == 0, output
    assert "[bios] installing 1.5a (installed: 1.4a)" in output
    assert "[bios] installing 1.5a: Running" in output  # progress as it goes
    assert "success: 1 installed" in output
    assert bmcsim.version(SUPERMICRO, "bios") == "1.5a"
    assert [(i["method"], i["outcome"]) for i in bmcsim.audit(SUPERMICRO)["installs"]] == [
        ("MultipartHttpPush", "success")
    ]


def test_a_url_pulled_by_the_bmc_from_a_file_server_of_its_own_with_the_host_reset(
    bmcsim: BmcFleet, firmware_server: ImageServer, config: Path
) -> None:
    data = make_image("bios", "dell", "2.12.0", ["r6515"])
    url = firmware_server.add("cmd-dell-bios-2.12.0.bin", data)
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    code, output = _run(
        config,
        "--bmc",
        bmcsim.address(DELL),
        "--component",
        "bios",
        "--version",
        "2.12.0",
        "--url",
        url,
        "--checksum",
        checksum,
    )
    assert code == 0, output
    assert "serving the image to the BMC from http://127.0.0.1:" in output
    assert "the BMC applies 2.12.0 at the next host reset: resetting the host" in output
    assert bmcsim.version(DELL, "bios") == "2.12.0"
    audit = bmcsim.audit(DELL)
    assert [(i["method"], i["outcome"]) for i in audit["installs"]] == [("SimpleUpdate", "success")]
    assert [p["action"] for p in audit["power"]] == ["ForceRestart"]


def test_dry_run_reads_and_tells_and_changes_nothing(bmcsim: BmcFleet, config: Path, tmp_path: Path) -> None:
    image = _image(tmp_path, "bios", "supermicro", "1.5a", ["x12stw"])
    code, output = _run(config, *_sm_bios(bmcsim, image), "--dry-run")
    assert code == 0, output
    assert "dry run: would install bios 1.4a → 1.5a; nothing was changed on the BMC" in output
    audit = bmcsim.audit(SUPERMICRO)
    assert audit["installs"] == [] and audit["power"] == []


NO_UPDATE_SERVICE = FleetSpec(
    bmcs=[BmcSpec(vendor="supermicro", model="x12stw", serial="SM000000", update_service=False)],
)


def test_a_dry_run_against_a_bmc_without_an_update_service_fails(
    bmcsim_pool: BmcFleetPool, config: Path, tmp_path: Path
) -> None:
    # Issue 12, item 9: it printed "success: dry run: would install bios ..." and exited 0.
    fleet = bmcsim_pool.get(config=NO_UPDATE_SERVICE)
    image = _image(tmp_path, "bios", "supermicro", "1.5a", ["x12stw"])
    args = ["--bmc", fleet.address(0), "--component", "bios", "--version", "1.5a", "--file", str(image)]
    code, output = _run(config, *args, "--dry-run")
    assert code == 1, output
    assert f"dry run: the install could not start: bios: BMC {fleet.url(0)} has no UpdateService" in output
    assert "would install" not in output
    code, output = _run(config, *args)  # and the real run indeed cannot start
    assert code == 1 and "has no UpdateService" in output, output


@pytest.mark.parametrize(
    ("name", "reason"),
    [("absent.bin", "HTTP 404"), ("localhost", "is a loopback name, refused unless store.allowed_hosts names it")],
)
def test_a_dry_run_fails_when_the_image_could_not_be_fetched(
    bmcsim: BmcFleet, config: Path, firmware_server: ImageServer, name: str, reason: str
) -> None:
    data = make_image("bios", "supermicro", "1.5a", ["x12stw"])
    good = firmware_server.add("sm-bios-1.5a.bin", data)
    url = firmware_server.url(name) if name.endswith(".bin") else good.replace("127.0.0.1", name)
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    base = ["--bmc", bmcsim.address(SUPERMICRO), "--component", "bios", "--version", "1.5a"]
    code, output = _run(config, *base, "--url", url, "--checksum", checksum, "--dry-run")
    assert code == 1, output
    assert "dry run: the install could not start: bios: " in output and reason in output
    code, output = _run(config, *base, "--url", good, "--checksum", checksum, "--dry-run")
    assert code == 0, output
    assert "dry run: would install bios 1.4a → 1.5a" in output
    assert bmcsim.audit(SUPERMICRO)["installs"] == []


def test_an_image_that_does_not_match_its_checksum_never_reaches_the_bmc(
    bmcsim: BmcFleet, config: Path, tmp_path: Path
) -> None:
    image = _image(tmp_path, "bios", "supermicro", "1.5a", ["x12stw"])
    code, output = _run(config, *_sm_bios(bmcsim, image), "--checksum", "sha256:" + "0" * 64)
    assert code == 1, output
    assert "checksum mismatch" in output
    assert bmcsim.audit(SUPERMICRO)["installs"] == []


def test_a_downgrade_is_refused_without_force(bmcsim: BmcFleet, config: Path, tmp_path: Path) -> None:
    image = _image(tmp_path, "bios", "supermicro", "1.3a", ["x12stw"])
    args = _sm_bios(bmcsim, image, "1.3a")
    code, output = _run(config, *args)
    assert code == 1 and "downgrade from 1.4a to 1.3a refused (set force to allow it)" in output, output
    assert bmcsim.audit(SUPERMICRO)["installs"] == []
    code, output = _run(config, *args, "--force")
    assert code == 0, output
    assert bmcsim.version(SUPERMICRO, "bios") == "1.3a"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--version", "1.5a"], "give the image as --file PATH or as --url URL with --checksum"),
        (["--version", "1.5a", "--url", "http://127.0.0.1:9/x.bin"], "--url needs --checksum"),
        (["--version", "1.5a", "--url", "http://127.0.0.1:9/x.bin", "--checksum", "nope"], "--checksum:"),
        (
            [
                "--version",
                "1.5a",
                "--url",
                "http://127.0.0.1:9/x.bin",
                "--checksum",
                "ab" * 32,
                "--pre-action",
                "reboot",
            ],
            "--pre-action 'reboot'",
        ),
    ],
)
def test_bad_arguments_exit_2_before_touching_the_bmc(
    bmcsim: BmcFleet, config: Path, args: list[str], message: str
) -> None:
    code, output = _run(config, "--bmc", bmcsim.address(SUPERMICRO), "--component", "bios", *args)
    assert code == 2 and message in output, output
    assert bmcsim.audit(SUPERMICRO)["installs"] == []


def test_ctrl_c_cancels_at_the_next_safe_point(bmcsim: BmcFleet, firmware_server: ImageServer, config: Path) -> None:
    data = make_image("nic", "broadcom", "22.32.0", ["bcm57414", "bcm5720"])
    url = firmware_server.add("cmd-dell-nic-22.32.0.bin", data)
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    flasher = Path(sys.executable).parent / "flasher"
    argv = [str(flasher), "--config", str(config), "install", "--bmc", bmcsim.address(DELL), "--component", "nic"]
    argv += ["--version", "22.32.0", "--url", url, "--checksum", checksum]
    argv += ["--password-file", str(config.parent / "password")]
    log = config.parent / "install.log"
    process = ManagedProcess(argv, log, env={"COLUMNS": "200"}).start()
    try:
        deadline = time.monotonic() + 30
        while "installing 22.32.0 by simple update" not in log.read_text(errors="replace"):
            assert process.alive() and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C while the first NIC flashes
        assert process.proc is not None
        code = process.proc.wait(timeout=60)
    finally:
        process.stop()
    output = log.read_text(errors="replace")
    assert code == 130, output
    assert "cancel requested: stopping at the next safe point" in output
    assert "not installed: the task was cancelled" in output
    installs = bmcsim.audit(DELL)["installs"]
    assert [(i["component"], i["outcome"]) for i in installs] == [("nic", "success")]  # finished, never cut
