"""The Redfish dialects the simulator speaks: Dell-like (iDRAC), Supermicro-like, HPE iLO-like, OpenBMC-like.

A shape fixes resource ids and URIs, task ids and names, which reset types are offered, and the behaviours that
differ between vendors (sources: ``shared/reference/redfish.md``, the DMTF public rack-server mockup, the
vendors' published Redfish output):

* Dell-like answers ``GET`` of a running task with 200 (the sushy pitfall: ``TaskMonitor.wait()`` returns at
  once), keeps a Dell job (``Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/<id>``) beside each task, schedules BIOS
  installs until the host resets, accepts a second install while one runs (as iDRAC queues jobs) and answers
  409 to a power request for the state the host is already in. Its FirmwareInventory Ids carry the running
  version (``Installed-<ComponentID>-<Version>__<FQDD>``), so a member's Id and URI change after an update, and an
  install request names at most one target (400 otherwise), one job per component.
* Supermicro-like answers 202 from the task and its task monitor while the task runs, and 200 once it has ended;
  it refuses a second install while one runs (503, ``ServiceTemporarilyUnavailable``) and treats power requests
  for the current state as no-ops.
* Lenovo XCC-like pushes to ``HttpPushUri`` only while a client has claimed the UpdateService
  (``HttpPushUriTargetsBusy``), answers a push with only the ``Location`` of a task monitor, deletes a finished
  task when its monitor is read, answers 503 while another push runs and 413 for an image over
  ``MaxImageSizeBytes`` (:mod:`flasher_sandbox.bmc.vendors.lenovo`).
* Supermicro X13-like takes multipart pushes with ``OnStartUpdateRequest`` only, names its tasks "BMC Verify",
  "BIOS Update"..., waits in Pending for ``StartUpdate`` once the upload is verified, takes ``Preserve*`` options
  per model and answers 403 to a BIOS update without the licence (:mod:`flasher_sandbox.bmc.vendors.supermicro`).
* HPE iLO 5/6-like stages a System ROM image and activates it at the next host boot, runs installs first in,
  first out, refuses boot-device changes during POST and answers 400 on NetworkAdapters until the host OS has
  booted (:mod:`flasher_sandbox.bmc.vendors.hpe`).
* OpenBMC (bmcweb)-like installs by ``HttpPushUri`` only, with the UpdateService-wide ``HttpPushUriOptions``
  apply time, refuses to activate host firmware (BIOS) while the host is on, forgets its tasks when it reboots
  and, as older builds do, gives no ``PercentComplete`` (:mod:`flasher_sandbox.bmc.vendors.openbmc`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from flasher_sandbox.bmc.config import ShapeName

REDFISH: Final = "/redfish/v1"
#: The Task collection (both shapes).
TASKS: Final = f"{REDFISH}/TaskService/Tasks"
#: Where Supermicro-like task monitors live.
TASK_MONITORS: Final = f"{REDFISH}/TaskMonitor"

#: iDRAC-style component ids (the number in ``Installed-<id>__<FQDD>``) by component type.
_DELL_COMPONENT_IDS: Final[dict[str, int]] = {
    "bmc": 25227,
    "bios": 159,
    "cpld": 27763,
    "nic": 104483,
    "drive": 110434,
    "storage-controller": 108553,
    "psu": 27914,
    "backplane": 2008,
    "tpm": 109673,
    "gpu": 101112,
    "cpu": 101113,
}
#: Dell job names by component type (as iDRAC names firmware update jobs).
_DELL_JOB_NAMES: Final[dict[str, str]] = {
    "bmc": "iDRAC with Lifecycle Controller",
    "bios": "BIOS",
    "cpld": "CPLD",
    "nic": "Network",
    "drive": "Serial ATA",
    "storage-controller": "SAS RAID",
    "psu": "Power Supply",
}


@dataclass(frozen=True)
class Related:
    """Where a component's ``RelatedItem`` resource lives: its collection URI, member Id and Redfish type."""

    collection: str
    member_id: str
    odata_type: str

    @property
    def uri(self) -> str:
        """The member's URI."""
        return f"{self.collection}/{self.member_id}"


@dataclass(frozen=True)
class Shape:
    """One vendor dialect. See the module docstring for the behaviours each flag stands for."""

    name: ShapeName
    system_id: str
    manager_id: str
    chassis_id: str
    service_vendor: str
    product: str
    redfish_version: str
    multipart_path: str
    http_push_path: str
    task_answers_202_while_running: bool
    has_task_monitor: bool
    has_dell_jobs: bool
    refuses_concurrent_install: bool
    conflict_on_same_power_state: bool
    system_reset_types: tuple[str, ...]
    manager_reset_types: tuple[str, ...]
    boot_targets: tuple[str, ...]
    #: The Id of the BMC's account in ``AccountService/Accounts`` (iDRAC's root is account 2).
    account_id: str = "1"
    #: UEFI device paths ``UefiTargetBootSourceOverride`` takes (shapes offering the target ``UefiTarget``).
    uefi_device_paths: tuple[str, ...] = ()
    #: The host's UEFI ``BootOrder``, the values ``BootNext`` takes (shapes offering ``UefiBootNext``).
    boot_order: tuple[str, ...] = ()
    #: Lenovo XCC-like: a push needs a claimed UpdateService; the 202 names only the task monitor; reading the
    #: monitor of a finished task deletes the task (:mod:`flasher_sandbox.bmc.vendors.lenovo`).
    lenovo_push: bool = False
    #: Supermicro X13-like: multipart with ``OnStartUpdateRequest`` only, Verify/Update tasks, ``Preserve*``
    #: options, licence (:mod:`flasher_sandbox.bmc.vendors.supermicro`).
    x13_update: bool = False
    #: ``Retry-After`` (seconds) of the 503 a shape that refuses concurrent installs answers.
    busy_retry_after: int = 30
    #: The Manager's ``Model`` (default: the server's model in upper case).
    manager_model: str | None = None
    #: HPE-like: a BIOS (System ROM) task completes once the image is staged; the version changes at host boot.
    stages_bios_until_host_boot: bool = False
    #: HPE-like: seconds after a host boot during which the host is in POST (boot-device changes refused, and
    #: NetworkAdapters unreadable until the OS has booted, when ``network_adapters_need_os``).
    post_seconds: float = 0.0
    #: HPE-like: NetworkAdapters answer 400 until the host's OS has booted.
    network_adapters_need_os: bool = False
    #: HPE-like: installs run one at a time, first in first out; a staged item blocks the rest until host boot.
    fifo_install_queue: bool = False
    #: OpenBMC-like: a BIOS install fails when the host is not off.
    bios_needs_host_off: bool = False
    #: OpenBMC-like: every task is forgotten when the BMC reboots.
    forgets_tasks_on_reboot: bool = False
    #: False (OpenBMC-like older builds): the Task has no ``PercentComplete``.
    task_reports_percent: bool = True
    #: Dell-like: an install request names at most one target (iDRAC runs one job per component).
    one_target_per_request: bool = False

    @property
    def system_uri(self) -> str:
        return f"{REDFISH}/Systems/{self.system_id}"

    @property
    def manager_uri(self) -> str:
        return f"{REDFISH}/Managers/{self.manager_id}"

    @property
    def chassis_uri(self) -> str:
        return f"{REDFISH}/Chassis/{self.chassis_id}"

    @property
    def storage_uri(self) -> str:
        return f"{self.system_uri}/Storage"

    @property
    def dell_jobs_uri(self) -> str:
        return f"{self.manager_uri}/Oem/Dell/Jobs"

    def default_apply_time(self, slug: str) -> str:
        """``@Redfish.OperationApplyTime`` when the request gives none: iDRAC stages BIOS until a host reset."""
        return "OnReset" if self.name == "dell" and slug == "bios" else "Immediate"

    def task_id(self, sequence: int, epoch: int) -> str:
        """The Id of the ``sequence``-th task (1-based) of a BMC started at Unix time ``epoch``: iDRAC-style
        ``JID_`` and 12 digits for Dell-like, a plain counter for Supermicro-like."""
        if self.name == "dell":
            return f"JID_{(epoch % 10**9) * 1000 + sequence:012d}"
        return str(sequence)

    def job_name(self, slug: str, component_name: str) -> str:
        """The task's Name."""
        if self.name == "dell":
            return f"Firmware Update: {_DELL_JOB_NAMES.get(slug, component_name)}"
        return f"{component_name} Update"

    def inventory_id(self, slug: str, ordinal: int, related: Related) -> str:
        """The FirmwareInventory member Id of the ``ordinal``-th (1-based) component of type ``slug``; on the
        Dell-like shape a template with ``{version}``, as iDRAC's Ids carry the running version
        (``Installed-25227-{version}__iDRAC.Embedded.1-1``; :class:`~flasher_sandbox.bmc.components.Component`)."""
        if self.name == "dell":
            fqdd = {"bmc": "iDRAC.Embedded.1-1", "bios": "BIOS.Setup.1-1", "cpld": "CPLD.Embedded.1"}.get(
                slug, related.member_id
            )
            return f"Installed-{_DELL_COMPONENT_IDS.get(slug, 1000)}-{{version}}__{fqdd}"
        if self.name == "lenovo":
            fixed = {"bmc": "BMC-Primary", "bios": "UEFI"}
        else:
            fixed = {"bmc": "BMC", "bios": "BIOS", "cpld": "CPLD_Motherboard"}
        if slug in fixed and ordinal == 1:
            return fixed[slug]
        return f"{slug.upper().replace('-', '_')}_{ordinal}"

    def related(self, slug: str, ordinal: int) -> Related:
        """The resource a component's ``RelatedItem`` points to (bmc: the Manager, bios: the System, cpld: the
        Chassis; NICs, drives, PSUs, backplanes and TPMs under the Chassis; storage controllers, CPUs and GPUs
        under the System)."""
        dell = self.name == "dell"
        if slug == "bmc":
            return Related(f"{REDFISH}/Managers", self.manager_id, "#Manager.v1_17_0.Manager")
        if slug == "bios":
            return Related(f"{REDFISH}/Systems", self.system_id, "#ComputerSystem.v1_20_0.ComputerSystem")
        if slug == "cpld":
            return Related(f"{REDFISH}/Chassis", self.chassis_id, "#Chassis.v1_22_0.Chassis")
        if slug == "nic":
            member = f"NIC.Slot.{ordinal}" if dell else str(ordinal)
            return Related(f"{self.chassis_uri}/NetworkAdapters", member, "#NetworkAdapter.v1_9_0.NetworkAdapter")
        if slug == "drive":
            member = f"Disk.Bay.{ordinal - 1}" if dell else f"Disk.{ordinal - 1}"
            return Related(f"{self.chassis_uri}/Drives", member, "#Drive.v1_17_0.Drive")
        if slug == "storage-controller":
            member = f"RAID.Integrated.{ordinal}-1" if dell else f"HA-RAID.{ordinal - 1}"
            return Related(
                f"{self.storage_uri}/{member}/Controllers", member, "#StorageController.v1_7_0.StorageController"
            )
        if slug == "psu":
            member = f"PSU.Slot.{ordinal}" if dell else str(ordinal - 1)
            return Related(
                f"{self.chassis_uri}/PowerSubsystem/PowerSupplies", member, "#PowerSupply.v1_5_0.PowerSupply"
            )
        if slug in ("cpu", "gpu"):
            member = (
                f"{'CPU.Socket' if slug == 'cpu' else 'Video.Slot'}.{ordinal}" if dell else f"{slug.upper()}{ordinal}"
            )
            return Related(f"{self.system_uri}/Processors", member, "#Processor.v1_18_0.Processor")
        member = f"{slug.capitalize()}.{ordinal}"
        return Related(f"{self.chassis_uri}/PCIeDevices", member, "#PCIeDevice.v1_11_0.PCIeDevice")


DELL: Final = Shape(
    name="dell",
    system_id="System.Embedded.1",
    manager_id="iDRAC.Embedded.1",
    chassis_id="System.Embedded.1",
    service_vendor="Dell",
    product="Integrated Dell Remote Access Controller",
    redfish_version="1.17.0",
    multipart_path=f"{REDFISH}/UpdateService/MultipartUpload",
    http_push_path=f"{REDFISH}/UpdateService/FirmwareInventory",
    task_answers_202_while_running=False,
    has_task_monitor=False,
    has_dell_jobs=True,
    refuses_concurrent_install=False,
    conflict_on_same_power_state=True,
    system_reset_types=(
        "On",
        "ForceOff",
        "ForceRestart",
        "GracefulRestart",
        "GracefulShutdown",
        "PushPowerButton",
        "Nmi",
        "PowerCycle",
    ),
    manager_reset_types=("GracefulRestart",),
    boot_targets=("None", "Pxe", "Floppy", "Cd", "Hdd", "BiosSetup", "Utilities", "UefiTarget", "SDCard", "UefiHttp"),
    account_id="2",
    one_target_per_request=True,
    uefi_device_paths=(
        "PciRoot(0x0)/Pci(0x1,0x1)/Pci(0x0,0x0)/MAC(B02628C29D40,0x1)/IPv4(0.0.0.0,0x0,DHCP,0.0.0.0,0.0.0.0,0.0.0.0)",
        "PciRoot(0x0)/Pci(0x3,0x1)/Pci(0x0,0x0)/Sata(0x0,0xFFFF,0x0)/HD(1,GPT,0E5F7D2C-41E5-4C3A-9A49-1F0D8C6B3A21,"
        "0x800,0x100000)/\\EFI\\BOOT\\BOOTX64.EFI",
    ),
)

SUPERMICRO: Final = Shape(
    name="supermicro",
    system_id="1",
    manager_id="1",
    chassis_id="1",
    service_vendor="Supermicro",
    product="",
    redfish_version="1.11.0",
    multipart_path=f"{REDFISH}/UpdateService/upload",
    http_push_path=f"{REDFISH}/UpdateService/HttpPush",
    task_answers_202_while_running=True,
    has_task_monitor=True,
    has_dell_jobs=False,
    refuses_concurrent_install=True,
    conflict_on_same_power_state=False,
    system_reset_types=(
        "On",
        "ForceOff",
        "GracefulShutdown",
        "GracefulRestart",
        "ForceRestart",
        "Nmi",
        "ForceOn",
        "PowerCycle",
    ),
    manager_reset_types=("ForceRestart", "GracefulRestart"),
    boot_targets=("None", "Pxe", "Hdd", "Cd", "Usb", "BiosSetup", "UsbCd", "UefiBootNext", "UefiHttp"),
    boot_order=("Boot0000", "Boot0001", "Boot0002", "Boot0003"),
)

#: Lenovo ThinkSystem with XCC (Lenovo XClarity Controller Redfish REST API guide; Lenovo's python-redfish-lenovo
#: ``update_firmware.py``).
LENOVO: Final = Shape(
    name="lenovo",
    system_id="1",
    manager_id="1",
    chassis_id="1",
    service_vendor="Lenovo",
    product="ThinkSystem SR650 V3",
    redfish_version="1.15.0",
    multipart_path=f"{REDFISH}/UpdateService/MultipartUpload",
    http_push_path=f"{REDFISH}/UpdateService/FirmwareUpload",
    task_answers_202_while_running=False,
    has_task_monitor=True,
    has_dell_jobs=False,
    refuses_concurrent_install=True,
    conflict_on_same_power_state=False,
    system_reset_types=("On", "Nmi", "GracefulShutdown", "GracefulRestart", "ForceOn", "ForceOff", "ForceRestart"),
    manager_reset_types=("GracefulRestart",),
    boot_targets=("None", "Pxe", "Cd", "Usb", "Hdd", "BiosSetup", "Diags", "UefiTarget"),
    uefi_device_paths=("PciRoot(0x0)/Pci(0x1C,0x0)/Pci(0x0,0x0)/MAC(7CD30A123456,0x1)",),
    lenovo_push=True,
    busy_retry_after=2,
)

#: Supermicro X13 (Supermicro Redfish Reference Guide for X13/H13, "Firmware update").
SUPERMICRO_X13: Final = Shape(
    name="supermicro-x13",
    system_id="1",
    manager_id="1",
    chassis_id="1",
    service_vendor="Supermicro",
    product="",
    redfish_version="1.14.0",
    multipart_path=f"{REDFISH}/UpdateService/upload",
    http_push_path=f"{REDFISH}/UpdateService/HttpPush",
    task_answers_202_while_running=True,
    has_task_monitor=True,
    has_dell_jobs=False,
    refuses_concurrent_install=True,
    conflict_on_same_power_state=False,
    system_reset_types=SUPERMICRO.system_reset_types,
    manager_reset_types=("ForceRestart", "GracefulRestart"),
    boot_targets=SUPERMICRO.boot_targets,
    boot_order=SUPERMICRO.boot_order,
    x13_update=True,
    busy_retry_after=2,
)

HPE: Final = Shape(
    name="hpe",
    system_id="1",
    manager_id="1",
    chassis_id="1",
    service_vendor="HPE",
    product="ProLiant DL360 Gen10 Plus",
    redfish_version="1.13.0",
    multipart_path=f"{REDFISH}/UpdateService/upload",
    http_push_path=f"{REDFISH}/UpdateService/HttpPush",
    task_answers_202_while_running=True,
    has_task_monitor=True,
    has_dell_jobs=False,
    refuses_concurrent_install=False,
    conflict_on_same_power_state=False,
    system_reset_types=("On", "ForceOff", "GracefulShutdown", "ForceRestart", "Nmi", "PushPowerButton"),
    manager_reset_types=("GracefulRestart",),
    boot_targets=("None", "Pxe", "Hdd", "Cd", "Usb", "BiosSetup", "Utilities", "UefiShell", "UefiHttp"),
    manager_model="iLO 5",
    stages_bios_until_host_boot=True,
    post_seconds=1.0,
    network_adapters_need_os=True,
    fifo_install_queue=True,
)

OPENBMC: Final = Shape(
    name="openbmc",
    system_id="system",
    manager_id="bmc",
    chassis_id="chassis",
    service_vendor="OpenBMC",
    product="",
    redfish_version="1.17.0",
    multipart_path=f"{REDFISH}/UpdateService/update-multipart",
    http_push_path=f"{REDFISH}/UpdateService/update",
    task_answers_202_while_running=False,
    has_task_monitor=False,
    has_dell_jobs=False,
    refuses_concurrent_install=True,
    conflict_on_same_power_state=False,
    system_reset_types=(
        "On",
        "ForceOff",
        "ForceOn",
        "ForceRestart",
        "GracefulRestart",
        "GracefulShutdown",
        "PowerCycle",
        "Nmi",
    ),
    manager_reset_types=("GracefulRestart", "ForceRestart"),
    boot_targets=("None", "Pxe", "Hdd", "Cd", "Diags", "BiosSetup", "Usb"),
    manager_model="OpenBmc",
    bios_needs_host_off=True,
    forgets_tasks_on_reboot=True,
    task_reports_percent=False,
)

SHAPES: Final[dict[ShapeName, Shape]] = {
    "dell": DELL,
    "supermicro": SUPERMICRO,
    "lenovo": LENOVO,
    "supermicro-x13": SUPERMICRO_X13,
    "hpe": HPE,
    "openbmc": OPENBMC,
}
