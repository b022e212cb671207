"""The files ``flasher-sandbox serve`` writes so that an operator's shell can use flasher against the sandbox.

* the **env file**: shell ``export`` lines, each value quoted with :func:`shlex.quote` (so ``source FILE`` in
  bash, zsh or dash sets exactly these values): :data:`ENV_VARIABLES` says what each one holds;
* ``servers.json`` (``FLASHER_SANDBOX_SERVERS``): a JSON list, one object per server in fleet order:
  ``uuid``, ``name``, ``vendor``, ``model``, ``bmc`` (the BMC's address as the inventory holds it,
  ``127.0.0.1:<port>``; the simulated BMCs speak HTTPS), ``bmc_username`` and ``bmc_password`` (the
  simulator's well-known default credentials, not a secret of anyone's);
* ``flasher-cli.yaml`` (``FLASHER_CONFIG``): flasher's settings for the ``flasher`` commands: the sandbox's
  inventory and Redis, ``bmc.scheme: https`` and ``bmc.ca_bundle`` (the sandbox CA, ``bmc-tls/ca.pem`` in the
  work directory) with the fleet's user and ``bmc.password_file`` (so ``flasher bmc
  inventory 127.0.0.1:<port>`` needs no password option), loopback images, and the replicas' service timings
  with ``/healthz`` on any free port (so ``flasher run`` from that shell joins as one more replica);
* ``bmc-password`` (mode 0600): the fleet's BMC password, named by ``bmc.password_file``.

Every file is written whole or not at all (a temporary file renamed over it), so a reader that waits for the
env file never sees half of one.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from flasher_sandbox.up.stack import ReplicaOptions, Stack

#: The env file's variables, in the order written, and what each holds.
ENV_VARIABLES: Final[dict[str, str]] = {
    "FLASHER_CONFIG": "flasher's settings file for the CLI (flasher-cli.yaml in the work directory)",
    "FLASHER_INVENTORY__URL": "the sandbox inventory's base URL (Serverservice API under /api/v1)",
    "FLASHER_REDIS__URL": "the sandbox's Redis (the task queue)",
    "FLASHER_SANDBOX_BMC_CONTROL": "the simulated BMC fleet's control API (/fleet, /fleet/state/<port>, ...)",
    "FLASHER_SANDBOX_BMC_CA": "the sandbox CA's certificate, which signs every BMC's (curl --cacert, bmc.ca_bundle)",
    "FLASHER_SANDBOX_SERVERS": "path of servers.json: each server's uuid, name, vendor, model and BMC",
    "FLASHER_SANDBOX_IMAGES": "the image server's base URL (the firmware's repository_url points here)",
    "FLASHER_SANDBOX_WORKDIR": "the work directory (logs/, the inventory database, settings, images)",
    "FLASHER_API_URL": "flasher api's base URL: the dashboard at /ui, the API docs at /docs",
}


@dataclass(frozen=True)
class SessionFiles:
    """What :func:`write_session` wrote: the paths, the variables, and the env file's text (to recognise it)."""

    env_file: Path
    servers_file: Path
    config_file: Path
    password_file: Path
    variables: dict[str, str]
    env_text: str


def server_listing(seed: Mapping[str, Any]) -> list[dict[str, str]]:
    """One entry per server of an inventory ``seed`` (:meth:`flasher_sandbox.up.scenario.Scenario.seed`), as
    ``servers.json`` lists them."""
    return [
        {
            "uuid": str(server["uuid"]),
            "name": str(server["name"]),
            "vendor": str(server["vendor"]),
            "model": str(server["model"]),
            "bmc": str(server["bmc"]["address"]),
            "bmc_username": str(server["bmc"]["username"]),
            "bmc_password": str(server["bmc"]["password"]),
        }
        for server in seed["servers"]
    ]


def client_settings(stack: Stack, options: ReplicaOptions, password_file: Path) -> dict[str, Any]:
    """flasher's settings for the CLI against ``stack``: a replica's settings
    (:meth:`~flasher_sandbox.up.stack.Stack.replica_settings`, no worker id, ``/healthz`` on any free port) and
    the fleet's BMC user with ``password_file``."""
    settings = stack.replica_settings(options, worker_id=None, http_port=0)
    fleet = stack.scenario.fleet
    settings["bmc"] = {**settings["bmc"], "username": fleet.username, "password_file": str(password_file)}
    return settings


def env_text(variables: Mapping[str, str], header: str) -> str:
    """``# header`` then one ``export NAME=VALUE`` line per variable, each value :func:`shlex.quote`-d.

    Raises ``ValueError`` for a name that is not a shell variable name.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name, value in variables.items():
        if not name.isidentifier() or not name.isascii():
            raise ValueError(f"env file: {name!r} is not a shell variable name")
        lines.append(f"export {name}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a temporary file in its directory renamed over it, with ``mode``."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_session(stack: Stack, options: ReplicaOptions, env_file: Path) -> SessionFiles:
    """Write ``servers.json``, ``bmc-password`` and ``flasher-cli.yaml`` into the stack's work directory and
    compose the env file's text; :func:`publish_env_file` writes ``env_file`` itself, last, once everything is
    ready and printed (its existence is the "ready" signal scripts wait for). ``stack`` must be started."""
    workdir = stack.workdir.resolve()
    servers_file = workdir / "servers.json"
    write_atomically(servers_file, json.dumps(server_listing({"servers": stack.server_entries()}), indent=2) + "\n")
    password_file = workdir / "bmc-password"
    write_atomically(password_file, stack.scenario.fleet.password + "\n", mode=0o600)
    config_file = workdir / "flasher-cli.yaml"
    settings = client_settings(stack, options, password_file)
    write_atomically(config_file, yaml.safe_dump(settings, sort_keys=False))
    assert stack.images is not None, "the stack is not started"
    assert stack.api_url is not None, "flasher api is not started"
    values = [
        str(config_file),
        stack.inventory_url,
        str(stack.redis_url),
        stack.control_url,
        str(stack.bmcs.ca_bundle or ""),
        str(servers_file),
        stack.images.base_url,
        str(workdir),
        stack.api_url,
    ]
    variables = dict(zip(ENV_VARIABLES, values, strict=True))
    header = (
        f"flasher-sandbox serve (pid {os.getpid()}): source this file to use flasher against the sandbox.\n"
        "It is removed when the sandbox stops."
    )
    text = env_text(variables, header)
    return SessionFiles(env_file, servers_file, config_file, password_file, variables, text)


def publish_env_file(files: SessionFiles) -> None:
    """Write the env file :func:`write_session` composed, atomically (a reader sees all of it or nothing)."""
    write_atomically(files.env_file, files.env_text)


def remove_env_file(files: SessionFiles) -> bool:
    """Delete the env file if it still holds what :func:`write_session` wrote (another sandbox may have written
    the same path since); returns whether it was deleted."""
    try:
        if files.env_file.read_text(encoding="utf-8") != files.env_text:
            return False
        files.env_file.unlink()
    except FileNotFoundError:
        return False
    return True
