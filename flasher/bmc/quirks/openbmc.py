"""OpenBMC (bmcweb) rules (sources: the OpenBMC project's code-update documentation and bmcweb's UpdateService,
as issue 16 sums them up).

* **Host firmware with the host off.** OpenBMC writes a host firmware (BIOS) image only while the host is off:
  flasher powers the host off before a ``bios`` install (gracefully, forced when it does not stop) and restores
  the power it had at the end of the task (:func:`needs_host_off`).
* **One apply time for the UpdateService.** ``HttpPushUriOptions.HttpPushUriApplyTime.ApplyTime`` stays as the
  last client left it: flasher sets ``Immediate`` before a push when it reads anything else and was asked for
  no apply time (:func:`flasher.bmc.install.http_push`, for every vendor).
* **Tasks lost on reboot.** bmcweb keeps tasks in memory: after a BMC update's reboot the task answers 404,
  which the task follower reads as ``Vanished``; success is then confirmed by reading the version back.
* **No percent** on older builds: progress lines then show the state only.
"""

from __future__ import annotations


def needs_host_off(vendor: str, slug: str) -> bool:
    """Whether an install of component type ``slug`` on a BMC of ``vendor`` needs the host powered off: an
    OpenBMC ``bios``."""
    return vendor == "openbmc" and slug == "bios"
