"""Host power and BMC restarts during an install: the pre- and post-actions and the power restore.

Each call runs under its step's policy (:mod:`flasher.install.steps`): ``power`` (``on``/``off`` retried when
the BMC does not answer, since the driver reads the state first and does nothing when it is already there; a
reset never retried, as a repeated reset is a second reset) and ``bmc_reset``. The decisions themselves are in
:mod:`flasher.install.actions`.
"""

from __future__ import annotations

from loguru import logger

from flasher.bmc import BMC, BMCNotSupportedError, BMCTimeoutError, BMCUnreachableError
from flasher.install.steps import NO_COMPONENT, Steps
from flasher.task.model import FirmwareAction

#: Longest wait for a graceful shutdown before the host is forced off (seconds; the power step's timeout when
#: that is shorter).
GRACEFUL_OFF_SECONDS = 120.0


class HostPower:
    """Power operations on one BMC's host, timed and retried as the ``power`` and ``bmc_reset`` steps say."""

    def __init__(self, bmc: BMC, steps: Steps) -> None:
        self.bmc = bmc
        self.steps = steps

    def state(self, *, recent: bool = False) -> str:
        """The host's power state now (``On``, ``Off``, ``PoweringOn``...); ``recent``: the one read at connect
        will do when nothing was sent since (:meth:`flasher.bmc.BMC.power_state`: the task's initial state)."""
        return self.steps.run("power", lambda: self.bmc.power_state(recent=recent), transient=(BMCUnreachableError,))

    def set(self, action: str, component: str = NO_COMPONENT) -> str:
        """Power ``on`` or ``off`` (force) and wait for it; returns the state reached."""
        timeout = self.steps.timeout("power")
        return self.steps.run(
            "power",
            lambda: self.bmc.set_power(action, timeout=timeout),
            component=component,
            transient=(BMCUnreachableError,),
        )

    def reset(self, component: str = NO_COMPONENT) -> str:
        """Warm-reset the host (a host that is off is powered on); never repeated. Returns the state reached."""
        timeout = self.steps.timeout("power")
        return self.steps.run("power", lambda: self.bmc.set_power("reset", timeout=timeout), component=component)

    def apply_reset(self, component: str, *, wait: bool = True) -> str:
        """Reset the host so that the BMC applies an update waiting for it (power on a host that is off), on one
        reading of the System (:meth:`flasher.bmc.BMC.apply_reset`); never repeated, as a repeated reset is a
        second reset. ``wait``: until the host reads ``On``; without, the caller follows what the reset applies
        (the BMC's task). Returns the last state read."""
        timeout = self.steps.timeout("power")
        return self.steps.run("power", lambda: self.bmc.apply_reset(wait=wait, timeout=timeout), component=component)

    def off(self, component: str = NO_COMPONENT) -> str:
        """Shut the host down gracefully, forcing it off when it does not stop in time (or the BMC has no
        graceful shutdown)."""
        timeout = min(GRACEFUL_OFF_SECONDS, self.steps.timeout("power"))
        try:
            return self.steps.run(
                "power",
                lambda: self.bmc.set_power("soft", timeout=timeout),
                component=component,
                transient=(BMCUnreachableError,),
            )
        except (BMCTimeoutError, BMCNotSupportedError) as exc:
            logger.warning(
                "BMC {}: graceful shutdown did not power the host off ({}); forcing it", self.bmc.base_url, exc
            )
            return self.set("off", component)

    def reset_bmc(self, component: str = NO_COMPONENT) -> None:
        """Restart the BMC and wait until it answers again (a new session)."""
        timeout = self.steps.timeout("bmc_reset")
        self.steps.run("bmc_reset", lambda: self.bmc.reset_bmc(timeout=timeout), component=component)

    def run_action(self, action: FirmwareAction, component: str) -> str:
        """Run one pre- or post-action; returns a short past-tense description for the status message."""
        if action is FirmwareAction.RESET_BMC:
            self.reset_bmc(component)
            return "BMC restarted"
        if action is FirmwareAction.RESET_HOST:
            return f"host reset (power {self.reset(component)})"
        return f"host powered off (power {self.off(component)})"
