"""Issue 12, item 1, end to end (admission, the worker pool, the install runner, simulated BMCs): the attribute
means only what it says. A look-alike key cannot turn a dry run into an install, and what a previous run wrote
(``initialPowerState``) is not read back by a new run of the request."""

from __future__ import annotations

import pytest

from tests.support.install_env import InstallWorld

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

DELL, SUPERMICRO = 0, 1


@pytest.mark.parametrize("key", ["dry_run", "DryRun", "dryrun"])
def test_a_look_alike_key_does_not_turn_a_dry_run_into_an_install(install_world: InstallWorld, key: str) -> None:
    w = install_world
    # The reproduction: dryRun true, a look-alike false, a BMC version to install.
    _, final = w.run(SUPERMICRO, {"dryRun": True, key: False, "Firmware": {"bmc": {"version": "01.02.20"}}})

    assert final["status"] == "success", final
    assert final["dryRun"] is True and final[key] is False  # both kept as written
    assert "dry run: would install bmc" in "\n".join(final["messages"])
    assert w.installs(SUPERMICRO) == []  # nothing was flashed
    audit = w.fleet.audit(SUPERMICRO)
    assert audit["power"] == [] and audit["bmc_resets"] == []


def test_a_re_run_does_not_restore_the_power_state_a_previous_run_recorded(install_world: InstallWorld) -> None:
    w = install_world
    # A finished attribute set back to new by the operator: its initialPowerState is the earlier run's.
    w.fleet.reset_audit(DELL)
    _, final = w.run(DELL, {"Firmware": {"bios": {"version": "2.12.0"}}, "initialPowerState": "Off"})

    assert final["status"] == "success", final
    assert final["initialPowerState"] == "On"  # read from the BMC, not taken from the attribute
    assert str(w.fleet.state(DELL)["power"]["state"]) == "On"  # the host stays on
    assert [p["to_state"] for p in w.fleet.audit(DELL)["power"]] == ["On"]  # the BIOS reset only
