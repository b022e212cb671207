"""Putting a server the inventory does not know into it, from its BMC (``flasher onboard``).

:func:`onboard` logs in to the BMC first (so that a wrong address or password creates nothing), refuses a BMC
address or a serial number the inventory already has (that server is re-collected with an inventory task
instead), then creates the server (named ``name``, else the System's ``HostName``, else its serial), stores the
BMC's address (``sh.hollow.bmc_info``) and credentials (``credentials/bmc``), and collects.

Collecting happens right here by default: the server is new, so no other task can hold it, and the operator sees
at once what was found. ``queue=True`` writes an inventory task instead (``{"status": "requested"}``), for an
operator host that cannot reach the BMC network while the service can; the service then collects it as any
inventory task. Either way the outcome is in the server's ``sh.hollow.flasher.inventory`` attribute: a direct
collection writes it as a finished task, with the same messages the service would write.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from flasher import redact
from flasher.bmc import BMC
from flasher.constants import BMC_INFO_NAMESPACE, INVENTORY_NAMESPACE, SERVER_VENDOR_NAMESPACE
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError
from flasher.inventory.filters import attr_filter
from flasher.onboard.collect import Collection, collect
from flasher.onboard.runner import MAX_NOTES, describe
from flasher.onboard.write import InventoryWriter, WriteReport
from flasher.task.model import InventoryTask, TaskStatus, utc_now

#: Opens a BMC session: ``(address, username, password) -> BMC``.
BMCFactory = Callable[[str, str, str], BMC]


class OnboardError(Exception):
    """The server cannot be onboarded (already known, or the BMC describes no server); nothing was created."""


@dataclass
class OnboardResult:
    """A server onboarded: its ``uuid`` and ``name``; ``collection`` and ``report`` when collected here (``None``
    when queued); ``messages`` as written into the inventory attribute."""

    uuid: str
    name: str
    collection: Collection | None = None
    report: WriteReport | None = None
    messages: list[str] = field(default_factory=list)


def _known(inventory: InventoryClient, namespace: str, key: str, value: str) -> str | None:
    if "~" in value or not value:
        return None
    servers = inventory.list_servers(attr=[attr_filter(namespace, key, "eq", value)], facility=None)
    return str(servers[0].uuid) if servers else None


def onboard(
    inventory: InventoryClient,
    open_bmc: BMCFactory,
    address: str,
    username: str,
    password: str,
    *,
    facility: str | None = None,
    name: str | None = None,
    queue: bool = False,
) -> OnboardResult:
    """Onboard the server behind the BMC at ``address`` (rules in the module docstring).

    Raises :class:`OnboardError` (already known, or no System and no Manager), the BMC driver's
    :class:`~flasher.bmc.BMCError` (unreachable, refused credentials: nothing created) and the inventory client's
    :class:`~flasher.inventory.errors.InventoryError` when nothing was created yet (an inventory failure after the
    server was created is an :class:`OnboardError` naming the server). The password is registered with
    :mod:`flasher.redact`.
    """
    if not username or not password:
        raise ValueError("onboarding needs the BMC's username and password (one is empty)")
    redact.register(password)
    if uuid := _known(inventory, BMC_INFO_NAMESPACE, "address", address):
        raise OnboardError(
            f"BMC {address} is already in the inventory as server {uuid}: request a collection with its "
            f"{INVENTORY_NAMESPACE} attribute instead"
        )
    collection: Collection | None = None
    bmc: BMC | None = None
    try:
        bmc = open_bmc(address, username, password)
        if not queue:
            collection = collect(bmc.read_hardware())
            if not any(c.slug in ("bmc", "bios") for c in collection.components):
                raise OnboardError(f"BMC {address} lists neither a System nor a Manager: no server to onboard")
            if collection.serial and (uuid := _known(inventory, SERVER_VENDOR_NAMESPACE, "serial", collection.serial)):
                raise OnboardError(
                    f"a server with serial {collection.serial} is already in the inventory ({uuid}): request a "
                    f"collection with its {INVENTORY_NAMESPACE} attribute instead"
                )
    finally:
        if bmc is not None:
            bmc.close()
    host = _host_name(collection)
    chosen = name or host or (collection.serial if collection else "") or address
    uuid = inventory.create_server(chosen, facility=facility)
    logger.info("onboarding: created server {} ({}) for BMC {}", uuid, chosen, address)
    try:
        return _complete(
            inventory,
            uuid,
            chosen=chosen,
            address=address,
            username=username,
            password=password,
            collection=collection,
        )
    except InventoryError as exc:
        raise OnboardError(
            f"server {uuid} ({chosen}) was created, but the inventory then failed: {exc}; once it answers, request a "
            f"collection with the server's {INVENTORY_NAMESPACE} attribute (flasher task collect) or delete the server"
        ) from exc


def _complete(
    inventory: InventoryClient,
    uuid: str,
    *,
    chosen: str,
    address: str,
    username: str,
    password: str,
    collection: Collection | None,
) -> OnboardResult:
    """Everything after the server was created: its BMC's address and credentials, then the collection (or the
    request for one)."""
    inventory.upsert_attribute(uuid, BMC_INFO_NAMESPACE, {"address": address})
    inventory.set_bmc_credentials(uuid, username, password)
    now = utc_now()
    if collection is None:
        inventory.upsert_attribute(
            uuid, INVENTORY_NAMESPACE, {"status": TaskStatus.REQUESTED.value, "requester": "flasher onboard"}
        )
        return OnboardResult(uuid, chosen, messages=["queued: the service collects it"])
    report = InventoryWriter(inventory).write(uuid, collection)
    task = InventoryTask.model_validate(
        {
            "status": TaskStatus.SUCCESS.value,
            "requester": "flasher onboard",
            "taskID": f"t-onboard-{secrets.token_hex(8)}",
            "attempts": 1,
            "createdAt": now,
            "updatedAt": now,
            "completedAt": now,
        }
    )
    task.add_message(f"onboarded from the BMC at {address}", now=now)
    for note in collection.notes[:MAX_NOTES]:
        task.add_message(f"skipped: {note}", now=now)
    task.add_message(f"success: {describe(collection, report)}", now=now)
    inventory.upsert_attribute(uuid, INVENTORY_NAMESPACE, task.to_attribute())
    return OnboardResult(uuid, chosen, collection, report, list(task.messages))


def _host_name(collection: Collection | None) -> str:
    return collection.host_name if collection is not None and collection.host_name else ""
