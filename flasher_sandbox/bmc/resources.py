"""The Redfish resources of a simulated BMC as JSON documents, shaped after the DMTF public rack-server mockup
(``shared/fixtures/redfish/dmtf-public-rackmount1``) and the vendors' published output.

:func:`static_resources` maps every fixed URI to a function rendering it from the BMC's current state; tasks,
sessions and Dell jobs (URIs with run-time ids) are rendered by the request handlers.
"""

from __future__ import annotations

import functools
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flasher_sandbox.bmc.audit import now_iso
from flasher_sandbox.bmc.components import FIRMWARE_INVENTORY, Component
from flasher_sandbox.bmc.expand import EXPAND_QUERY
from flasher_sandbox.bmc.installer import APPLY_TIMES, MAX_IMAGE_BYTES, TRANSFER_PROTOCOLS
from flasher_sandbox.bmc.sessions import SESSION_TIMEOUT
from flasher_sandbox.bmc.shapes import REDFISH, TASKS
from flasher_sandbox.bmc.vendors import supermicro

if TYPE_CHECKING:
    from flasher_sandbox.bmc.config import OtherSystemSpec
    from flasher_sandbox.bmc.simulator import SimulatedBmc

Document = dict[str, Any]
Renderer = Callable[[], Document]

UPDATE_SERVICE = f"{REDFISH}/UpdateService"
SIMPLE_UPDATE = f"{UPDATE_SERVICE}/Actions/UpdateService.SimpleUpdate"
SIMPLE_UPDATE_INFO = f"{UPDATE_SERVICE}/SimpleUpdateActionInfo"
TASK_SERVICE = f"{REDFISH}/TaskService"
SESSION_SERVICE = f"{REDFISH}/SessionService"
SESSIONS = f"{SESSION_SERVICE}/Sessions"
ACCOUNT_SERVICE = f"{REDFISH}/AccountService"
ACCOUNTS = f"{ACCOUNT_SERVICE}/Accounts"
ROLES = f"{ACCOUNT_SERVICE}/Roles"
METADATA = f"{REDFISH}/$metadata"
#: The Redfish standard roles and their privileges (DSP0266 "Roles"; ``Redfish_1.x_PrivilegeRegistry``).
STANDARD_ROLES: dict[str, tuple[str, ...]] = {
    "Administrator": ("Login", "ConfigureManager", "ConfigureUsers", "ConfigureSelf", "ConfigureComponents"),
    "Operator": ("Login", "ConfigureSelf", "ConfigureComponents"),
    "ReadOnly": ("Login", "ConfigureSelf"),
}
#: ``@odata.type`` of the resources rendered by the request handlers rather than :func:`static_resources`.
DYNAMIC_TYPES: tuple[str, ...] = ("#Task.v1_6_0.Task", "#Session.v1_6_0.Session", "#Message.v1_1_1.Message")
_OK = {"State": "Enabled", "Health": "OK"}


def ref(uri: str) -> dict[str, str]:
    """``{"@odata.id": uri}``."""
    return {"@odata.id": uri}


def collection_type(member_type: str) -> str:
    """The collection type of members of ``member_type``: ``#Drive.v1_17_0.Drive`` → ``DriveCollection`` (the
    DMTF names each collection after its member type, singular: ``NetworkAdapterCollection``,
    ``StorageControllerCollection``, ``PowerSupplyCollection``)."""
    return member_type.lstrip("#").split(".")[-1] + "Collection"


def collection(uri: str, odata_type: str, name: str, members: Iterable[str]) -> Document:
    """A resource collection of type ``odata_type`` (``DriveCollection``) listing ``members`` (URIs)."""
    listed = [ref(m) for m in members]
    return {
        "@odata.type": f"#{odata_type}.{odata_type}",
        "@odata.id": uri,
        "Name": name,
        "Members": listed,
        "Members@odata.count": len(listed),
    }


def service_root(bmc: SimulatedBmc) -> Document:
    """``/redfish/v1``: readable without credentials (sushy reads it before logging in). ``Product`` is left out
    when the shape has none (a Redfish service omits what it does not support rather than sending "")."""
    doc: Document = {
        "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
        "@odata.id": REDFISH,
        "Id": "RootService",
        "Name": "Root Service",
        "RedfishVersion": bmc.shape.redfish_version,
        "UUID": bmc.uuid,
        "Vendor": bmc.shape.service_vendor,
        "Product": bmc.shape.product,
        "ProtocolFeaturesSupported": {"ExpandQuery": dict(EXPAND_QUERY), "SelectQuery": False, "FilterQuery": False},
        "Systems": ref(f"{REDFISH}/Systems"),
        "Chassis": ref(f"{REDFISH}/Chassis"),
        "Managers": ref(f"{REDFISH}/Managers"),
        "Tasks": ref(TASK_SERVICE),
        "SessionService": ref(SESSION_SERVICE),
        **({"UpdateService": ref(UPDATE_SERVICE)} if bmc.spec.update_service else {}),
        "AccountService": ref(ACCOUNT_SERVICE),
        "Links": {"Sessions": ref(SESSIONS)},
    }
    if not doc["Product"]:
        del doc["Product"]
    return doc


def odata_document() -> Document:
    """``/redfish/v1/odata``: the OData service document."""
    names = ("Systems", "Chassis", "Managers", "TaskService", "SessionService", "UpdateService", "AccountService")
    return {
        "@odata.context": f"{REDFISH}/$metadata",
        "value": [{"name": n, "kind": "Singleton", "url": f"{REDFISH}/{n}"} for n in names],
    }


def system(bmc: SimulatedBmc) -> Document:
    """The ComputerSystem: power, BIOS version, boot override and the reset action."""
    shape = bmc.shape
    bios = bmc.component("bios")
    processors = [c for c in bmc.components if c.slug in ("cpu", "gpu")]
    return {
        "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
        "@odata.id": shape.system_uri,
        "Id": shape.system_id,
        "Name": "System",
        "SystemType": "Physical",
        "Manufacturer": bmc.spec.manufacturer,
        "Model": bmc.spec.product,
        "SerialNumber": bmc.spec.serial,
        "SKU": bmc.spec.serial,
        "UUID": bmc.uuid,
        "HostName": f"{bmc.spec.model}-{bmc.spec.serial.lower()}",
        "PowerState": bmc.power.state,
        "BiosVersion": bios.version if bios else None,
        "Status": _OK,
        "Boot": boot(bmc),
        "ProcessorSummary": {"Count": max(1, sum(c.slug == "cpu" for c in processors))},
        "MemorySummary": {"TotalSystemMemoryGiB": 256},
        "Processors": ref(f"{shape.system_uri}/Processors"),
        "Storage": ref(shape.storage_uri),
        "EthernetInterfaces": ref(f"{shape.system_uri}/EthernetInterfaces"),
        "Links": {"Chassis": [ref(shape.chassis_uri)], "ManagedBy": [ref(shape.manager_uri)]},
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": f"{shape.system_uri}/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": list(shape.system_reset_types),
            }
        },
    }


def boot(bmc: SimulatedBmc) -> Document:
    """The System's ``Boot``: the override and, per property, its ``@Redfish.AllowableValues``
    (:meth:`~flasher_sandbox.bmc.power.HostPower.allowable_boot_values`); ``BootOrder`` where ``BootNext`` is
    offered."""
    state = bmc.power.boot
    values = {
        "BootSourceOverrideEnabled": state.enabled,
        "BootSourceOverrideTarget": state.target,
        "BootSourceOverrideMode": state.mode,
        "UefiTargetBootSourceOverride": state.uefi_target,
        "BootNext": state.boot_next,
    }
    doc: Document = {}
    for key, allowed in bmc.power.allowable_boot_values().items():
        doc[key] = values[key]
        doc[f"{key}@Redfish.AllowableValues"] = list(allowed)
    if "BootNext" in doc:
        doc["BootOrder"] = list(bmc.shape.boot_order)
    return doc


def other_system_uri(other: OtherSystemSpec) -> str:
    """The URI of a System that is not the server."""
    return f"{REDFISH}/Systems/{other.id}"


def other_system(bmc: SimulatedBmc, other: OtherSystemSpec) -> Document:
    """A ComputerSystem the BMC lists beside the server's (read only; see :class:`OtherSystemSpec`)."""
    uri = other_system_uri(other)
    return {
        "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
        "@odata.id": uri,
        "Id": other.id,
        "Name": "System",
        "SystemType": "Physical",
        "Manufacturer": bmc.spec.manufacturer,
        "Model": bmc.spec.product,
        "SerialNumber": other.serial,
        "UUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{other.serial}.bmc.sandbox")),
        "PowerState": other.power_state,
        "BiosVersion": other.bios_version,
        "Status": _OK,
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": f"{uri}/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": list(bmc.shape.system_reset_types),
            }
        },
    }


def manager(bmc: SimulatedBmc) -> Document:
    """The BMC's Manager: firmware version and the reset action."""
    shape = bmc.shape
    bmc_component = bmc.component("bmc")
    doc: Document = {
        "@odata.type": "#Manager.v1_17_0.Manager",
        "@odata.id": shape.manager_uri,
        "Id": shape.manager_id,
        "Name": "Manager",
        "ManagerType": "BMC",
        "Model": "iDRAC9" if shape.name == "dell" else shape.manager_model or bmc.spec.model.upper(),
        "FirmwareVersion": bmc_component.version if bmc_component else None,
        "UUID": bmc.uuid,
        "DateTime": now_iso(),
        "PowerState": "On",
        "Status": _OK,
        "EthernetInterfaces": ref(f"{shape.manager_uri}/EthernetInterfaces"),
        "Links": {"ManagerForServers": [ref(shape.system_uri)], "ManagerForChassis": [ref(shape.chassis_uri)]},
        "Actions": {
            "#Manager.Reset": {
                "target": f"{shape.manager_uri}/Actions/Manager.Reset",
                "ResetType@Redfish.AllowableValues": list(shape.manager_reset_types),
            }
        },
    }
    if shape.has_dell_jobs:
        dell = {"@odata.type": "#DellOem.v1_3_0.DellOemLinks", "Jobs": ref(shape.dell_jobs_uri)}
        doc["Links"]["Oem"] = {"Dell": dell}
    return doc


def chassis(bmc: SimulatedBmc, related_collections: Iterable[str]) -> Document:
    """The Chassis, linking the collections under it that hold component resources."""
    shape = bmc.shape
    doc: Document = {
        "@odata.type": "#Chassis.v1_22_0.Chassis",
        "@odata.id": shape.chassis_uri,
        "Id": shape.chassis_id,
        "Name": "Computer System Chassis",
        "ChassisType": "RackMount",
        "Manufacturer": bmc.spec.manufacturer,
        "Model": bmc.spec.product,
        "SerialNumber": bmc.spec.serial,
        "PowerState": bmc.power.state,
        "Status": _OK,
        "Links": {"ComputerSystems": [ref(shape.system_uri)], "ManagedBy": [ref(shape.manager_uri)]},
    }
    for uri in related_collections:
        if uri.startswith(shape.chassis_uri + "/"):
            name = uri[len(shape.chassis_uri) + 1 :].split("/", 1)[0]
            doc[name] = ref(f"{shape.chassis_uri}/{name}")
    return doc


def related_member(component: Component) -> Document:
    """The resource a FirmwareInventory member's ``RelatedItem`` names (NIC, drive, PSU, controller...)."""
    spec = component.spec
    doc: Document = {
        "@odata.type": component.related.odata_type,
        "@odata.id": component.related.uri,
        "Id": component.related.member_id,
        "Name": spec.name,
        "Manufacturer": spec.manufacturer,
        "Model": spec.model,
        "SerialNumber": spec.serial,
        "Status": _OK,
    }
    if component.slug == "nic":
        doc["Controllers"] = [{"FirmwarePackageVersion": component.version}]
        if component.spec.port_macs:
            doc["Ports"] = ref(f"{component.related.uri}/Ports")
    elif component.slug == "drive":
        doc.update(Revision=component.version, MediaType="SSD", Protocol="SATA", CapacityBytes=480_103_981_056)
    elif component.slug == "cpu":
        doc["ProcessorType"] = "CPU"
    elif component.slug == "gpu":
        doc["ProcessorType"] = "GPU"
    else:
        doc["FirmwareVersion"] = component.version
    return doc


def firmware_member(component: Component) -> Document:
    """A FirmwareInventory member (SoftwareInventory)."""
    spec = component.spec
    return {
        "@odata.type": "#SoftwareInventory.v1_9_0.SoftwareInventory",
        "@odata.id": component.uri,
        "Id": component.id,
        "Name": spec.name,
        "Version": component.version,
        "Updateable": spec.updateable,
        "SoftwareId": component.software_id,
        "Manufacturer": spec.manufacturer,
        "RelatedItem": [ref(component.related.uri)],
        "RelatedItem@odata.count": 1,
        "Status": _OK,
    }


def update_service(bmc: SimulatedBmc) -> Document:
    """The UpdateService with the install methods this BMC offers."""
    methods = set(bmc.spec.install_methods or [])
    actions: Document = {"Oem": {}}
    if "SimpleUpdate" in methods:
        actions["#UpdateService.SimpleUpdate"] = {
            "target": SIMPLE_UPDATE,
            "TransferProtocol@Redfish.AllowableValues": list(TRANSFER_PROTOCOLS),
            "@Redfish.ActionInfo": SIMPLE_UPDATE_INFO,
            "@Redfish.OperationApplyTimeSupport": {
                "@odata.type": "#Settings.v1_3_5.OperationApplyTimeSupport",
                "SupportedValues": list(APPLY_TIMES),
            },
        }
    doc: Document = {
        "@odata.type": "#UpdateService.v1_11_0.UpdateService",
        "@odata.id": UPDATE_SERVICE,
        "Id": "UpdateService",
        "Name": "Update Service",
        "ServiceEnabled": True,
        "Status": _OK,
        "MaxImageSizeBytes": bmc.spec.max_image_bytes or MAX_IMAGE_BYTES,
        "FirmwareInventory": ref(FIRMWARE_INVENTORY),
        "Actions": actions,
    }
    if "MultipartHttpPush" in methods:
        doc["MultipartHttpPushUri"] = bmc.shape.multipart_path
        if bmc.shape.x13_update:
            supermicro.update_service_extras(doc)
    if "HttpPush" in methods:
        doc.update(
            HttpPushUri=bmc.shape.http_push_path,
            HttpPushUriTargets=list(bmc.http_push_targets),
            HttpPushUriTargetsBusy=bmc.http_push_busy,
            HttpPushUriOptions={
                "HttpPushUriApplyTime": {
                    "ApplyTime": bmc.http_push_apply_time,
                    "ApplyTime@Redfish.AllowableValues": list(APPLY_TIMES),
                }
            },
            HttpPushUriOptionsBusy=False,
        )
    return doc


def simple_update_info() -> Document:
    """The SimpleUpdate ActionInfo."""
    return {
        "@odata.type": "#ActionInfo.v1_3_0.ActionInfo",
        "@odata.id": SIMPLE_UPDATE_INFO,
        "Id": "SimpleUpdateActionInfo",
        "Name": "Simple Update Action Info",
        "Parameters": [
            {"Name": "ImageURI", "Required": True, "DataType": "String"},
            {
                "Name": "TransferProtocol",
                "Required": False,
                "DataType": "String",
                "AllowableValues": list(TRANSFER_PROTOCOLS),
            },
            {"Name": "Targets", "Required": False, "DataType": "StringArray"},
            {
                "Name": "@Redfish.OperationApplyTime",
                "Required": False,
                "DataType": "String",
                "AllowableValues": list(APPLY_TIMES),
            },
        ],
    }


def account_resources(bmc: SimulatedBmc) -> dict[str, Renderer]:
    """The AccountService: the BMC's one account (its configured user, role Administrator) and the three
    standard roles, all read-only (as the DMTF mockup's, with ``IsPredefined`` roles; DSP0266 "Roles":
    services shall support Administrator, Operator and ReadOnly)."""
    account_uri = f"{ACCOUNTS}/{bmc.shape.account_id}"
    out: dict[str, Renderer] = {
        ACCOUNT_SERVICE: lambda: {
            "@odata.type": "#AccountService.v1_12_0.AccountService",
            "@odata.id": ACCOUNT_SERVICE,
            "Id": "AccountService",
            "Name": "Account Service",
            "ServiceEnabled": True,
            "Status": _OK,
            "LocalAccountAuth": "Enabled",
            "MinPasswordLength": 4,
            "MaxPasswordLength": 40,
            "Accounts": ref(ACCOUNTS),
            "Roles": ref(ROLES),
        },
        ACCOUNTS: lambda: collection(ACCOUNTS, "ManagerAccountCollection", "Accounts Collection", [account_uri]),
        account_uri: lambda: {
            "@odata.type": "#ManagerAccount.v1_10_0.ManagerAccount",
            "@odata.id": account_uri,
            "Id": bmc.shape.account_id,
            "Name": "User Account",
            "UserName": bmc.username,
            "Password": None,
            "RoleId": "Administrator",
            "Enabled": True,
            "Locked": False,
            "PasswordChangeRequired": False,
            "AccountTypes": ["Redfish"],
            "Links": {"Role": ref(f"{ROLES}/Administrator")},
        },
        ROLES: lambda: collection(
            ROLES, "RoleCollection", "Roles Collection", [f"{ROLES}/{role}" for role in STANDARD_ROLES]
        ),
    }
    for role, privileges in STANDARD_ROLES.items():
        out[f"{ROLES}/{role}"] = _bind_role(role, privileges)
    return out


def _bind_role(role: str, privileges: tuple[str, ...]) -> Renderer:
    return lambda: {
        "@odata.type": "#Role.v1_3_1.Role",
        "@odata.id": f"{ROLES}/{role}",
        "Id": role,
        "Name": "User Role",
        "RoleId": role,
        "IsPredefined": True,
        "AssignedPrivileges": list(privileges),
    }


def served_types(resources: dict[str, Renderer]) -> set[str]:
    """Every ``@odata.type`` the BMC serves: those of ``resources`` (rendered once) and :data:`DYNAMIC_TYPES`
    (for ``$metadata``)."""
    found = set(DYNAMIC_TYPES)
    for uri, render in resources.items():
        if uri != METADATA:
            found |= _types_in(render())
    return found


def _types_in(node: Any) -> set[str]:
    if isinstance(node, dict):
        out = {node["@odata.type"]} if isinstance(node.get("@odata.type"), str) else set()
        for value in node.values():
            out |= _types_in(value)
        return out
    if isinstance(node, list):
        return set().union(*(_types_in(v) for v in node)) if node else set()
    return set()


def static_resources(bmc: SimulatedBmc) -> dict[str, Renderer]:
    """Every fixed URI of ``bmc`` and the function rendering it. Built once per BMC; renders read live state."""
    shape = bmc.shape
    out: dict[str, Renderer] = {
        REDFISH: lambda: service_root(bmc),
        f"{REDFISH}/odata": odata_document,
        f"{REDFISH}/Systems": lambda: collection(
            f"{REDFISH}/Systems",
            "ComputerSystemCollection",
            "Computer System Collection",
            # the others first: a client that takes the first System listed takes the wrong one
            [*(other_system_uri(o) for o in bmc.spec.other_systems), shape.system_uri],
        ),
        shape.system_uri: lambda: system(bmc),
        **{other_system_uri(o): functools.partial(other_system, bmc, o) for o in bmc.spec.other_systems},
        f"{REDFISH}/Managers": lambda: collection(
            f"{REDFISH}/Managers", "ManagerCollection", "Manager Collection", [shape.manager_uri]
        ),
        shape.manager_uri: lambda: manager(bmc),
        f"{REDFISH}/Chassis": lambda: collection(
            f"{REDFISH}/Chassis", "ChassisCollection", "Chassis Collection", [shape.chassis_uri]
        ),
        UPDATE_SERVICE: lambda: update_service(bmc),
        FIRMWARE_INVENTORY: lambda: collection(
            FIRMWARE_INVENTORY,
            "SoftwareInventoryCollection",
            "Firmware Inventory Collection",
            [c.uri for c in bmc.components],
        ),
        TASK_SERVICE: lambda: {
            "@odata.type": "#TaskService.v1_2_0.TaskService",
            "@odata.id": TASK_SERVICE,
            "Id": "TaskService",
            "Name": "Task Service",
            "ServiceEnabled": True,
            "CompletedTaskOverWritePolicy": "Oldest",
            "LifeCycleEventOnTaskStateChange": False,
            "DateTime": now_iso(),
            "Status": _OK,
            "Tasks": ref(TASKS),
        },
        TASKS: lambda: collection(
            TASKS, "TaskCollection", "Task Collection", [t.uri for t in bmc.tasks.values() if not t.purged]
        ),
        SESSION_SERVICE: lambda: {
            "@odata.type": "#SessionService.v1_1_8.SessionService",
            "@odata.id": SESSION_SERVICE,
            "Id": "SessionService",
            "Name": "Session Service",
            "ServiceEnabled": True,
            "SessionTimeout": SESSION_TIMEOUT,
            "Status": _OK,
            "Sessions": ref(SESSIONS),
        },
        SESSIONS: lambda: collection(
            SESSIONS, "SessionCollection", "Session Collection", [f"{SESSIONS}/{s.id}" for s in bmc.sessions.all()]
        ),
    }
    out.update(account_resources(bmc))
    if "SimpleUpdate" in (bmc.spec.install_methods or []):
        out[SIMPLE_UPDATE_INFO] = simple_update_info
    for component in bmc.components:
        out[component.uri] = _bind(firmware_member, component)
    if not bmc.spec.update_service:  # nothing under /redfish/v1/UpdateService
        out = {uri: render for uri, render in out.items() if not uri.startswith(UPDATE_SERVICE)}
    by_collection: dict[str, list[Component]] = defaultdict(list)
    for component in bmc.components:
        if component.slug not in ("bmc", "bios", "cpld"):
            by_collection[component.related.collection].append(component)
            out[component.related.uri] = _bind(related_member, component)
    out[shape.chassis_uri] = lambda: chassis(bmc, by_collection)
    for uri, members in by_collection.items():
        name = uri.rsplit("/", 1)[-1]
        kind = collection_type(members[0].related.odata_type)
        out[uri] = _bind_collection(uri, kind, name, [m.related.uri for m in members])
    _storage(bmc, by_collection, out)
    _ethernet(bmc, out)
    out.setdefault(
        f"{shape.system_uri}/Processors",
        _bind_collection(f"{shape.system_uri}/Processors", "ProcessorCollection", "Processors", []),
    )
    if f"{shape.chassis_uri}/PowerSubsystem/PowerSupplies" in by_collection:
        out[f"{shape.chassis_uri}/PowerSubsystem"] = lambda: {
            "@odata.type": "#PowerSubsystem.v1_1_0.PowerSubsystem",
            "@odata.id": f"{shape.chassis_uri}/PowerSubsystem",
            "Id": "PowerSubsystem",
            "Name": "Power Subsystem",
            "Status": _OK,
            "PowerSupplies": ref(f"{shape.chassis_uri}/PowerSubsystem/PowerSupplies"),
        }
    if shape.has_dell_jobs:
        out[shape.dell_jobs_uri] = lambda: collection(
            shape.dell_jobs_uri, "DellJobCollection", "JobQueue", [f"{shape.dell_jobs_uri}/{t}" for t in bmc.tasks]
        )
    return out


def _storage(bmc: SimulatedBmc, by_collection: dict[str, list[Component]], out: dict[str, Renderer]) -> None:
    """Storage resources (``Systems/<id>/Storage/<sid>``) around storage controllers, linking the drives."""
    shape = bmc.shape
    controllers = [c for c in bmc.components if c.slug == "storage-controller"]
    drives = [c.related.uri for c in bmc.components if c.slug == "drive"]
    storages = [f"{shape.storage_uri}/{c.related.member_id}" for c in controllers]
    out[shape.storage_uri] = _bind_collection(shape.storage_uri, "StorageCollection", "Storage Collection", storages)
    for controller, uri in zip(controllers, storages, strict=True):
        out[uri] = _bind_storage(uri, controller, drives)


def ethernet_interface(uri: str, ident: str, name: str, mac: str) -> Document:
    """An EthernetInterface with its MAC (permanent and current alike)."""
    return {
        "@odata.type": "#EthernetInterface.v1_12_0.EthernetInterface",
        "@odata.id": uri,
        "Id": ident,
        "Name": name,
        "MACAddress": mac.upper(),
        "PermanentMACAddress": mac.upper(),
        "InterfaceEnabled": True,
        "LinkStatus": "LinkUp",
        "Status": _OK,
    }


def _ethernet(bmc: SimulatedBmc, out: dict[str, Renderer]) -> None:
    """NIC ports with their MACs, the System's EthernetInterfaces (one per NIC port) and the Manager's own."""
    shape = bmc.shape
    system_interfaces: list[str] = []
    for component in bmc.components:
        macs = component.spec.port_macs if component.slug == "nic" else []
        if not macs:
            continue
        ports_uri = f"{component.related.uri}/Ports"
        port_uris = [f"{ports_uri}/{n}" for n in range(1, len(macs) + 1)]
        out[ports_uri] = _bind_collection(ports_uri, "PortCollection", "Ports", port_uris)
        for number, (uri, mac) in enumerate(zip(port_uris, macs, strict=True), start=1):
            out[uri] = _bind_port(uri, str(number), mac)
            ident = f"{component.related.member_id}-{number}"
            interface = f"{shape.system_uri}/EthernetInterfaces/{ident}"
            system_interfaces.append(interface)
            out[interface] = _bind_interface(interface, ident, f"{component.spec.name} port {number}", mac)
    collection_uri = f"{shape.system_uri}/EthernetInterfaces"
    out[collection_uri] = _bind_collection(
        collection_uri, "EthernetInterfaceCollection", "Ethernet Interfaces", system_interfaces
    )
    manager_uri = f"{shape.manager_uri}/EthernetInterfaces"
    nic_uri = f"{manager_uri}/NIC.1"
    out[manager_uri] = _bind_collection(manager_uri, "EthernetInterfaceCollection", "Manager NICs", [nic_uri])
    out[nic_uri] = _bind_interface(nic_uri, "NIC.1", "Manager Ethernet Interface", bmc.mac)


def _bind_port(uri: str, ident: str, mac: str) -> Renderer:
    return lambda: {
        "@odata.type": "#Port.v1_7_0.Port",
        "@odata.id": uri,
        "Id": ident,
        "Name": f"Port {ident}",
        "LinkStatus": "LinkUp",
        "Ethernet": {"AssociatedMACAddresses": [mac.upper()]},
        "Status": _OK,
    }


def _bind_interface(uri: str, ident: str, name: str, mac: str) -> Renderer:
    return lambda: ethernet_interface(uri, ident, name, mac)


def _bind(render: Callable[[Component], Document], component: Component) -> Renderer:
    return lambda: render(component)


def _bind_collection(uri: str, odata_type: str, name: str, members: list[str]) -> Renderer:
    return lambda: collection(uri, odata_type, name, members)


def _bind_storage(uri: str, controller: Component, drives: list[str]) -> Renderer:
    return lambda: {
        "@odata.type": "#Storage.v1_13_0.Storage",
        "@odata.id": uri,
        "Id": controller.related.member_id,
        "Name": controller.spec.name,
        "Status": _OK,
        "Controllers": ref(controller.related.collection),
        "Drives": [ref(d) for d in drives],
        "Drives@odata.count": len(drives),
    }
