"""The files ``flasher-sandbox serve`` writes for the operator's shell (``flasher_sandbox/serve/session.py``)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest

from flasher_sandbox.serve.session import (
    ENV_VARIABLES,
    SessionFiles,
    env_text,
    remove_env_file,
    server_listing,
    write_atomically,
)
from flasher_sandbox.up.scenario import build

AWKWARD = {
    "FLASHER_CONFIG": '/tmp/with space/it\'s "quoted".yaml',
    "FLASHER_INVENTORY__URL": "http://127.0.0.1:8000/?a=1&b=$HOME`id`",
    "FLASHER_SANDBOX_WORKDIR": "line one\nline two",
    "FLASHER_REDIS__URL": "",
}


def _sourced(path: Path) -> dict[str, str]:
    done = subprocess.run(
        ["bash", "-c", '. "$1" && env -0', "source", str(path)], capture_output=True, check=True, timeout=10, env={}
    )
    pairs = (item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {name: value for name, value in pairs if name in AWKWARD}


def test_sourcing_the_env_file_gives_back_every_value_exactly(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.env"
    path.write_text(env_text(AWKWARD, "a header\nof two lines"))

    assert _sourced(path) == AWKWARD
    assert path.read_text().startswith("# a header\n# of two lines\nexport FLASHER_CONFIG=")


def test_a_name_that_is_not_a_shell_variable_is_refused() -> None:
    with pytest.raises(ValueError, match="'FLASHER-CONFIG' is not a shell variable name"):
        env_text({"FLASHER-CONFIG": "x"}, "h")


def test_every_documented_variable_is_a_flasher_variable() -> None:
    assert all(name.startswith("FLASHER_") for name in ENV_VARIABLES)
    required = {"FLASHER_INVENTORY__URL", "FLASHER_REDIS__URL", "FLASHER_SANDBOX_BMC_CONTROL"}
    required |= {"FLASHER_SANDBOX_SERVERS", "FLASHER_CONFIG"}
    assert required <= set(ENV_VARIABLES)


def test_write_atomically_replaces_the_file_with_the_mode_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "bmc-password"
    path.write_text("old")
    write_atomically(path, "calvin\n", mode=0o600)

    assert path.read_text() == "calvin\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["bmc-password"]


def _files(env_file: Path, text: str) -> SessionFiles:
    return SessionFiles(env_file, Path("s"), Path("c"), Path("p"), {}, text)


def test_the_env_file_is_removed_only_while_it_is_still_ours(tmp_path: Path) -> None:
    env_file = tmp_path / "sandbox.env"
    env_file.write_text("ours\n")
    assert remove_env_file(_files(env_file, "ours\n"))
    assert not env_file.exists()
    assert not remove_env_file(_files(env_file, "ours\n"))  # already gone: nothing to do

    env_file.write_text("another sandbox's\n")
    assert not remove_env_file(_files(env_file, "ours\n"))
    assert env_file.read_text() == "another sandbox's\n"


def test_the_server_listing_names_each_server_and_its_bmc() -> None:
    scenario = build(3, special=False)
    seed = scenario.seed(bmc_base_port=41000, image_base_url="http://127.0.0.1:1")

    listing = server_listing(seed)

    assert [entry["name"] for entry in listing] == scenario.names
    first = listing[0]
    assert first == {
        "uuid": scenario.uuids[scenario.names[0]],
        "name": "r6515-000",
        "vendor": "dell",
        "model": "r6515",
        "bmc": "127.0.0.1:41000",
        "bmc_username": "root",
        "bmc_password": "calvin",
    }
    assert listing[1]["vendor"] == "supermicro" and listing[1]["bmc"] == "127.0.0.1:41001"
    json.dumps(listing)  # what servers.json holds
