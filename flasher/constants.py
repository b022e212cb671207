"""Names shared by flasher and the sandbox: attribute namespaces, component type slugs, install order.

The sandbox may import this module (and only this module) from ``flasher``; keep it free of imports.
"""

from typing import Final

#: The install task attribute an operator writes on a server (the original flasher's namespace).
TASK_NAMESPACE: Final = "sh.hollow.flasher.task"
#: The server-control task attribute (actions of metal-toolbox flipflop).
SERVER_CONTROL_NAMESPACE: Final = "sh.hollow.flasher.server_control"
#: The inventory task attribute: collect the server's hardware from its BMC into the inventory (onboarding).
INVENTORY_NAMESPACE: Final = "sh.hollow.flasher.inventory"
#: Where the inventory keeps the BMC's address: ``data.address``.
BMC_INFO_NAMESPACE: Final = "sh.hollow.bmc_info"
#: Where the inventory keeps the server's vendor, model and serial: ``data.vendor|model|serial``.
SERVER_VENDOR_NAMESPACE: Final = "sh.hollow.alloy.server_vendor_attributes"
#: A component's versioned attribute holding ``data.firmware.installed`` as read out-of-band.
OUTOFBAND_STATUS_NAMESPACE: Final = "sh.hollow.alloy.outofband.status"
#: A component's attribute with what was read out-of-band besides firmware (alloy: MACs, slot, capacity...).
OUTOFBAND_METADATA_NAMESPACE: Final = "sh.hollow.alloy.outofband.metadata"
#: The same, as read in-band.
INBAND_STATUS_NAMESPACE: Final = "sh.hollow.alloy.inband.status"
#: A firmware set's labels, e.g. ``{"vendor": "dell", "model": "r6515"}``.
FIRMWARE_SET_LABELS_NAMESPACE: Final = "sh.hollow.firmware_set.labels"
#: A fleet rollout's record: an attribute of the firmware set named ``ROLLOUT_RECORD_PREFIX + <name>``.
ROLLOUT_NAMESPACE: Final = "sh.hollow.flasher.rollout"
#: The name of a rollout's record firmware set is this prefix and the rollout's name.
ROLLOUT_RECORD_PREFIX: Final = "flasher-rollout/"
#: A server's versioned attribute summarising the last collection (a digest; equal collections bump its tally).
COLLECTION_NAMESPACE: Final = "sh.hollow.flasher.collection"
#: Prefix of the server attributes that index a server by one of its MACs: ``<prefix>.<12 lowercase hex digits>``
#: (one attribute per MAC, so finding a server by MAC is one query on an exact namespace).
MAC_NAMESPACE_PREFIX: Final = "sh.hollow.flasher.mac"
#: The server's boot profile (netboot): ``{"profile": NAME}`` or ``{"kernel", "initrd", "cmdline"}``.
BOOT_NAMESPACE: Final = "sh.hollow.flasher.boot"
#: The state of a server's network boot: the one-time token's nonce, its expiry, the booted machine's callback.
PROVISION_NAMESPACE: Final = "sh.hollow.flasher.provision"
#: The Redfish PDU outlet that powers a server: ``{"outlet": "https://pdu/redfish/v1/PowerEquipment/RackPDUs/1/
#: Outlets/A1"}`` (the Outlet resource's URL). Power actions use it when the BMC does not answer and
#: ``pdu.fallback`` is on.
PDU_OUTLET_NAMESPACE: Final = "sh.hollow.flasher.pdu_outlet"
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
