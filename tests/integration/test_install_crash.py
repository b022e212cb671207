"""Crash safety: a worker process killed with SIGKILL at a step boundary; another worker claims the task once the
lease expires and finishes it, with no component flashed twice and no overlapping installs on the BMC.

The killed worker runs in a subprocess (:mod:`tests.support.install_worker`) that stops dead right after writing
the status message of the step we want to kill it in; the second worker is an in-process pool. The lease lasts
2 s. BMC 1 (Supermicro-like: multipart push) installs its BMC (restarting itself, 1 s offline) and its BIOS.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flasher_sandbox.images import make_image
from flasher_sandbox.procs import ManagedProcess
from flasher_sandbox.servers import ImageServer
from tests.support.install_env import InstallWorld

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SUPERMICRO = 1
REPO = Path(__file__).resolve().parents[2]


def _start_worker(world: InstallWorld, tmp_path: Path, pause_after: str) -> ManagedProcess:
    settings = world.with_settings(queue={"lease_seconds": 2}, service={"worker_id": "worker-a"})
    argv = [
        sys.executable,
        "-m",
        "tests.support.install_worker",
        json.dumps(settings.model_dump(mode="json")),
        pause_after,
    ]
    return ManagedProcess(argv, tmp_path / "worker-a.log", cwd=REPO).start()


def _slow_bmc_image(image_server: ImageServer) -> dict[str, Any]:
    """The BMC image from a server that takes about 2.5 s to send it (1 MiB, 64 KiB every 0.15 s)."""
    data = make_image("bmc", "supermicro", "01.02.20", ["x12stw"], size=1024 * 1024)
    image_server.chunk_delay = 0.15
    url = image_server.add("/slow/supermicro-bmc-01.02.20.bin", data)
    return {
        "version": "01.02.20",
        "updateFileURL": url,
        "updateFileChecksum": "sha256:" + hashlib.sha256(data).hexdigest(),
    }


FRESH = "installed {} (confirmed by the BMC)"
FOLLOWED = "installed {} by the earlier attempt's BMC task (confirmed by the BMC)"
EARLIER = "installed {} by an earlier attempt (the BMC reports it)"


@pytest.mark.parametrize(
    ("pause_after", "installed_before_the_crash", "how"),
    [
        ("connected to the BMC", [], (FRESH, FRESH)),
        ("downloading 01.02.20", [], (FRESH, FRESH)),
        ("[bmc] installing 01.02.20: the BMC is not answering", ["bmc"], (FOLLOWED, FRESH)),
        ("installing 1.5a: Running", ["bmc", "bios"], (EARLIER, FOLLOWED)),
        ("installed 1.5a (confirmed by the BMC)", ["bmc", "bios"], (EARLIER, EARLIER)),
    ],
    ids=["after-connect", "during-download", "during-bmc-self-update", "during-bmc-task", "after-confirm"],
)
def test_a_killed_worker_is_replaced_and_nothing_is_flashed_twice(
    install_world: InstallWorld,
    image_server: ImageServer,
    tmp_path: Path,
    pause_after: str,
    installed_before_the_crash: list[str],
    how: tuple[str, str],
) -> None:
    w = install_world
    bmc = _slow_bmc_image(image_server) if "download" in pause_after else {"version": "01.02.20"}
    uuid = w.flag(SUPERMICRO, {"Firmware": {"bmc": bmc, "bios": {"version": "1.5a"}}})
    worker = _start_worker(w, tmp_path, pause_after.removeprefix("[bmc] "))
    try:
        w.wait_until(uuid, lambda d: any(pause_after in m for m in d["messages"]), pause_after)
        worker.kill()  # SIGKILL: no safe point, no goodbye
    finally:
        worker.stop()
    crashed = w.attribute(uuid)
    assert crashed["status"] == "active" and crashed["worker"] == "worker-a", crashed
    assert [i["component"] for i in w.installs(SUPERMICRO)] == installed_before_the_crash

    with w.pool(w.with_settings(queue={"lease_seconds": 2}), worker_id="worker-b"):
        final = w.wait_final(uuid, timeout=60)

    assert final["status"] == "success", final
    assert (final["worker"], final["attempts"]) == ("worker-b", 2)
    audit = w.fleet.audit(SUPERMICRO)
    assert audit["overlapping_installs"] == 0, audit
    assert Counter(i["component"] for i in audit["installs"]) == {"bmc": 1, "bios": 1}, audit["installs"]
    assert all(i["outcome"] == "success" for i in audit["installs"])
    for (slug, version), message in zip((("bmc", "01.02.20"), ("bios", "1.5a")), how, strict=True):
        spec = final["Firmware"][slug]
        assert (spec["status"], spec["installedVersion"]) == ("installed", version), spec
        assert spec["message"] == message.format(version)  # what the second worker did about it
    versions = w.installed(uuid)
    assert (versions["bmc:SM000001"], versions["bios:SM000001"]) == ("01.02.20", "1.5a")
    assert w.fleet.state(SUPERMICRO)["power"]["state"] == "On"
