"""HPE iLO 5/6 rules (sources: HPE's iLO user guides and RESTful API documentation, as issue 16 sums them up).

* **System ROM staged.** iLO ends a System ROM (``bios``) update task ``Completed`` once the image is staged; the
  new ROM runs only after the host reboots. A Completed task is therefore no proof: flasher reads the version
  back and, when it is still the old one, resets the host or waits for a reboot, as ``bmc.staged_firmware``
  says (:func:`stages_until_host_reset`; the engine acts on it).
* **POST.** Right after a flash (or any host boot) iLO refuses boot-override changes with
  ``UnableToModifyDuringSystemPOST`` until POST ends: the change is retried for a bounded time
  (:func:`is_post_refusal`, used by :func:`flasher.bmc.power.set_boot_device`).
* **NetworkAdapters** answer 400 until the host OS has booted: the firmware inventory and the hardware walk
  skip what they cannot read (a NIC's model and serial then come from the FirmwareInventory member only).
"""

from __future__ import annotations

from typing import Any, Final

#: The message id (any registry version) iLO answers while the host is in POST.
POST_REFUSAL: Final = "UnableToModifyDuringSystemPOST"
#: Longest time a boot-device change refused during POST is retried (seconds).
POST_RETRY_SECONDS: Final = 180.0


def stages_until_host_reset(vendor: str, slug: str) -> bool:
    """Whether a finished install of component type ``slug`` on a BMC of ``vendor`` may only be staged: an HPE
    System ROM (``bios``)."""
    return vendor == "hpe" and slug == "bios"


def is_post_refusal(message_ids: Any) -> bool:
    """Whether an error's message ids (a string or a list of strings and Redfish ``Message`` dicts) include
    ``UnableToModifyDuringSystemPOST``."""
    if isinstance(message_ids, str):
        return message_ids.rsplit(".", 1)[-1] == POST_REFUSAL
    if isinstance(message_ids, dict):
        return is_post_refusal(message_ids.get("MessageId"))
    if isinstance(message_ids, list | tuple):
        return any(is_post_refusal(m) for m in message_ids)
    return False
