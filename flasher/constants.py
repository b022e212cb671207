"""Names shared by flasher and the sandbox: attribute namespaces, component type slugs, install order.

The sandbox may import this module (and only this module) from ``flasher``; keep it free of imports.
"""

from typing import Final

#: The install task attribute an operator writes on a server (the original flasher's namespace).
TASK_NAMESPACE: Final = "sh.hollow.flasher.task"
#: The server-control task attribute (actions of metal-toolbox flipflop).
SERVER_CONTROL_NAMESPACE: Final = "sh.hollow.flasher.server_control"
#: Where the inventory keeps the BMC's address: ``data.address``.
BMC_INFO_NAMESPACE: Final = "sh.hollow.bmc_info"
#: Where the inventory keeps the server's vendor, model and serial: ``data.vendor|model|serial``.
SERVER_VENDOR_NAMESPACE: Final = "sh.hollow.alloy.server_vendor_attributes"
#: A component's versioned attribute holding ``data.firmware.installed`` as read out-of-band.
OUTOFBAND_STATUS_NAMESPACE: Final = "sh.hollow.alloy.outofband.status"
#: The same, as read in-band.
INBAND_STATUS_NAMESPACE: Final = "sh.hollow.alloy.inband.status"
#: A firmware set's labels, e.g. ``{"vendor": "dell", "model": "r6515"}``.
FIRMWARE_SET_LABELS_NAMESPACE: Final = "sh.hollow.firmware_set.labels"
#: A fleet rollout's record: an attribute of the firmware set named ``ROLLOUT_RECORD_PREFIX + <name>``.
ROLLOUT_NAMESPACE: Final = "sh.hollow.flasher.rollout"
#: The name of a rollout's record firmware set is this prefix and the rollout's name.
ROLLOUT_RECORD_PREFIX: Final = "flasher-rollout/"
#: The credential slug of a server's BMC (``GET /servers/{uuid}/credentials/bmc``).
BMC_CREDENTIAL_SLUG: Final = "bmc"

#: Component type slugs, in the order flasher installs them (DESIGN.md, "The task attribute").
INSTALL_ORDER: Final[tuple[str, ...]] = (
    "bmc",
    "bios",
    "cpld",
    "drive",
    "backplane",
    "storage-controller",
    "nic",
    "psu",
    "tpm",
    "gpu",
    "cpu",
)

#: Component types that are matched to firmware without a model (one per server, or model-agnostic).
MODEL_AGNOSTIC_COMPONENTS: Final[frozenset[str]] = frozenset({"bmc", "bios", "cpld", "chassis", "backplane", "cpu"})
