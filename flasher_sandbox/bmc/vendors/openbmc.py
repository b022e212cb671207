"""OpenBMC (bmcweb)-like behaviour (shape ``openbmc``), as the OpenBMC project documents it:

* **Host firmware needs the host off.** OpenBMC's code update writes a host firmware (BIOS) image only while the
  host is powered off (openbmc/docs, code update: the host's flash is not written under a running host); the
  simulator fails such a task ``Exception`` with
  ``Update.1.0.ApplyFailed`` when the host is not off as the install starts (:func:`refuse_bios_with_host_on`).
* **One apply time for the whole UpdateService.** bmcweb takes the apply time of an ``HttpPushUri`` upload from
  ``HttpPushUriOptions.HttpPushUriApplyTime.ApplyTime``, a setting of the UpdateService that stays as the last
  client left it (bmcweb's UpdateService; default ``Immediate``). Served by the common UpdateService code.
* **Tasks live in memory.** bmcweb keeps its TaskService in memory: a BMC reboot (a BMC update ends with one)
  forgets every ended task, so its URI answers 404 afterwards (``SimulatedBmc._forget_ended_tasks``).
* **No percent on older builds.** Older bmcweb builds set no ``PercentComplete`` on update tasks (flag
  ``task_reports_percent``, served by :meth:`~flasher_sandbox.bmc.tasks.InstallTask.as_redfish`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flasher_sandbox.bmc.simulator import SimulatedBmc
    from flasher_sandbox.bmc.tasks import InstallTask


def refuse_bios_with_host_on(bmc: SimulatedBmc, task: InstallTask) -> str | None:
    """Why ``task`` cannot activate now (a BIOS image while the host is not off), or ``None``."""
    if not bmc.shape.bios_needs_host_off or "bios" not in task.slugs or bmc.power.state == "Off":
        return None
    return (
        f"Activation of image '{task.image_name}' on '{task.target_names}' failed: the host firmware can only be "
        f"updated while the host is powered off (host power {bmc.power.state})."
    )
