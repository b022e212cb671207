"""The ``provision`` server-control action: network-boot a server into a boot profile and wait for it to call back.

1. The boot profile: ``action_parameter`` names one of ``netboot.profiles`` (written into the server's
   ``sh.hollow.flasher.boot`` as ``{"profile": NAME}``); without one the server's existing boot attribute is used
   (none: failed).
2. A new provision record (``sh.hollow.flasher.provision``, :mod:`flasher.netboot.state`): a fresh nonce, open
   until ``control.provision_timeout`` from now. The boot endpoint renders the token of this nonce into the
   kernel command line; an older record's token stops working.
3. Next boot PXE, once (UEFI when ``set_next_boot_device_efi``, else legacy).
4. Power cycle (a server that is off is powered on).
5. Wait until the record reads ``called-back`` (the booted machine used its one-time URL) or the timeout.

Messages, as the other actions': ``provisioning with boot profile rescue``, then those of the boot override and
the power cycle, ``waiting for the booted machine to call back (up to 1800 s)``, and finally
``provisioned: the booted machine called back at <time>`` or the failure ``error provisioning: ...``. Steps 1-2
write only the inventory; every BMC write is guarded (fence, then cancel/shutdown until the first one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from flasher.config import Settings
from flasher.constants import BOOT_NAMESPACE
from flasher.control.actions import ActionFailedError, ActionRun
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError, NotFoundError
from flasher.netboot import state
from flasher.netboot.profiles import ProfileError, resolve
from flasher.task.model import ServerControlTask

ERR_PROVISION = "error provisioning"


@dataclass
class ProvisionRun:
    """What ``provision`` needs besides the BMC: the inventory, the server, the settings, and a clock."""

    inventory: InventoryClient
    server_uuid: str
    settings: Settings
    #: The fence check before each inventory write (the task writer's ``check``).
    check: Callable[[], object] = lambda: None
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


def provision(task: ServerControlTask, run: ActionRun, ctx: ProvisionRun) -> str:
    """Run ``provision`` (module docstring); returns the final message. Raises :class:`ActionFailedError`."""
    profile = (task.action_parameter or "").strip()
    try:
        if profile:
            if profile not in ctx.settings.netboot.profiles:
                known = ", ".join(sorted(ctx.settings.netboot.profiles)) or "none configured"
                raise ActionFailedError(f"{ERR_PROVISION}: boot profile {profile!r} is not configured (known: {known})")
            ctx.check()
            ctx.inventory.upsert_attribute(ctx.server_uuid, BOOT_NAMESPACE, {"profile": profile})
        else:
            try:
                data = ctx.inventory.get_attribute(ctx.server_uuid, BOOT_NAMESPACE).data
            except NotFoundError:
                raise ActionFailedError(
                    f"{ERR_PROVISION}: no boot profile given and the server has no {BOOT_NAMESPACE} attribute"
                ) from None
            try:
                if resolve(data, ctx.settings.netboot.profiles) is None:
                    raise ActionFailedError(f"{ERR_PROVISION}: the server's boot attribute disables network boot")
            except ProfileError as exc:
                raise ActionFailedError(f"{ERR_PROVISION}: {exc}") from None
        timeout = ctx.settings.control.provision_timeout
        record = state.new_record(ctx.now(), timeout, state=state.WAITING, by="provision", profile=profile or None)
        ctx.check()
        state.write_record(ctx.inventory, ctx.server_uuid, record)
    except InventoryError as exc:
        raise ActionFailedError(f"{ERR_PROVISION}: the inventory failed: {exc}") from exc
    run.progress(
        f"provisioning with boot profile {profile}" if profile else "provisioning with the server's boot profile"
    )
    run.progress(run.set_next_boot_device("pxe", persistent=False, efi=task.set_next_boot_device_efi))
    run.progress(run.set_power_state("cycle"))
    run.progress(f"waiting for the booted machine to call back (up to {timeout:g} s)")
    called = _wait_for_callback(ctx, record["nonce"], timeout, run.poll)
    return f"provisioned: the booted machine called back at {called}"


def _wait_for_callback(ctx: ProvisionRun, nonce: str, timeout: float, poll: float) -> str:
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            record = state.read_record(ctx.inventory, ctx.server_uuid)
            last_error = ""
        except InventoryError as exc:  # keep waiting: the callback may land while the inventory is back
            record, last_error = None, str(exc)
        if record is not None and record.get("nonce") != nonce:
            raise ActionFailedError(f"{ERR_PROVISION}: another provision or boot replaced this one's token")
        if record is not None and record.get("state") == state.CALLED_BACK:
            return str(record.get("calledBackAt") or "an unknown time")
        if time.monotonic() >= deadline:
            seen = record.get("state") if record else "unreadable"
            extra = f"; last inventory error: {last_error}" if last_error else ""
            raise ActionFailedError(
                f"{ERR_PROVISION}: no callback from the booted machine within {timeout:g} s (record: {seen}){extra}"
            )
        ctx.sleep(min(max(poll, 0.2), max(deadline - time.monotonic(), 0.01)))
