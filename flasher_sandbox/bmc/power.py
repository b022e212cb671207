"""The simulated host's power and boot override.

A power request takes ``power_seconds``: ``PowerState`` reads the old state until then and the new one after
(``PowerCycle`` reads Off from half-way). ``On``/``ForceOn`` from Off, the restarts and ``PowerCycle`` boot the
host: a ``Once`` boot override is then used up, and installs waiting ``OnReset`` start. A second request while
one is in progress answers 409 ``ResourceInUse``; a restart of a host that is off answers 409
``ResourceInStandby``, while ``PowerCycle`` powers it on (DSP8010 ``Resource.ResetType``: "If currently in the
power off state, the resource will transition to a power on state"); Dell-like answers 409 to On when on and
to ForceOff/GracefulShutdown when off (iDRAC does), Supermicro-like treats them as no-ops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from loguru import logger

from flasher_sandbox.bmc.audit import AuditLog, PowerRecord, now_iso
from flasher_sandbox.bmc.errors import BASE, bad_request, conflict
from flasher_sandbox.bmc.shapes import Shape

_RESTARTS: Final = frozenset({"ForceRestart", "GracefulRestart"})
_OFFS: Final = frozenset({"ForceOff", "GracefulShutdown"})
_ONS: Final = frozenset({"On", "ForceOn"})
BOOT_ENABLED: Final = ("Disabled", "Once", "Continuous")
BOOT_MODES: Final = ("UEFI", "Legacy")


@dataclass
class BootOverride:
    """``Boot.BootSourceOverride*``, and the UEFI device path (``UefiTargetBootSourceOverride``) or boot option
    (``BootNext``) that the targets ``UefiTarget`` and ``UefiBootNext`` boot from."""

    target: str = "None"
    enabled: str = "Disabled"
    mode: str = "UEFI"
    uefi_target: str | None = None
    boot_next: str | None = None

    def as_json(self) -> dict[str, str]:
        """``target``, ``enabled``, ``mode``, and ``uefi_target``/``boot_next`` once set."""
        out = {"target": self.target, "enabled": self.enabled, "mode": self.mode}
        if self.uefi_target is not None:
            out["uefi_target"] = self.uefi_target
        if self.boot_next is not None:
            out["boot_next"] = self.boot_next
        return out


class HostPower:
    """Power state, transitions and boot override of one host."""

    def __init__(
        self,
        shape: Shape,
        audit: AuditLog,
        seconds: float,
        initial: str,
        on_boot: Callable[[], None],
        *,
        on_off: Callable[[], None] = lambda: None,
    ) -> None:
        self.shape = shape
        self.audit = audit
        self.seconds = seconds
        self.state = initial
        self.boot = BootOverride()
        self.boots = 0
        self.last_boot: str | None = None
        #: The boot override target the last boot used (``Pxe``, ``None``...), read before a ``Once`` is used up.
        self.last_boot_target = "None"
        self._on_boot = on_boot
        self._on_off = on_off
        self._transition: asyncio.Task[None] | None = None

    @property
    def in_transition(self) -> bool:
        return self._transition is not None and not self._transition.done()

    def reset(self, reset_type: Any) -> None:
        """Start ``ComputerSystem.Reset`` with ``reset_type``. Raises ``RedfishError`` (400 or 409)."""
        if not isinstance(reset_type, str) or reset_type not in self.shape.system_reset_types:
            allowed = ", ".join(self.shape.system_reset_types)
            raise bad_request(
                "PropertyValueNotInList" if isinstance(reset_type, str) else "ActionParameterMissing",
                f"The value {reset_type!r} for the parameter ResetType is not one of {allowed}.",
                str(reset_type),
                "ResetType",
            )
        if self.in_transition:
            raise conflict(
                f"{BASE}.ResourceInUse",
                "The change to the requested resource failed because the resource is in use or in transition.",
            )
        on = self.state == "On"
        if reset_type == "Nmi":
            return
        if reset_type == "PushPowerButton":
            reset_type = "ForceOff" if on else "On"
        if (reset_type in _ONS and on) or (reset_type in _OFFS and not on):
            if self.shape.conflict_on_same_power_state:
                word = "ON" if on else "OFF"
                raise conflict(f"IDRAC.2.8.PSU50{1 if on else 2}", f"Server is already powered {word}.")
            self.audit.begin_power(reset_type, self.state, self.state).end = now_iso()
            return
        if reset_type in _RESTARTS and not on:
            raise conflict(
                f"{BASE}.ResourceInStandby", "The request could not be performed because the resource is in standby."
            )
        target = "Off" if reset_type in _OFFS else "On"
        record = self.audit.begin_power(reset_type, self.state, target)
        self._transition = asyncio.get_running_loop().create_task(self._run(reset_type, record))

    async def _run(self, reset_type: str, record: PowerRecord) -> None:
        try:
            if reset_type == "PowerCycle" and self.state == "On":
                await asyncio.sleep(self.seconds / 2)
                self.state = "Off"
                self._on_off()
                await asyncio.sleep(self.seconds / 2)
            else:
                await asyncio.sleep(self.seconds)
            self.state = record.to_state
            record.end = now_iso()
            record.outcome = "done"
            logger.info("host power {} done: {}", reset_type, self.state)
            if self.state == "On":
                self._booted()
            else:
                self._on_off()
        except asyncio.CancelledError:
            record.outcome = "cancelled"
            raise

    def _booted(self) -> None:
        self.boots += 1
        self.last_boot = now_iso()
        self.last_boot_target = self.boot.target if self.boot.enabled != "Disabled" else "None"
        if self.boot.enabled == "Once":
            self.boot = BootOverride(mode=self.boot.mode, uefi_target=self.boot.uefi_target)
        self._on_boot()

    def allowable_boot_values(self) -> dict[str, tuple[str, ...]]:
        """The writable ``Boot`` properties and their ``@Redfish.AllowableValues``: the override target, enabled
        and mode, plus ``UefiTargetBootSourceOverride`` (the shape's UEFI device paths) where ``UefiTarget`` is a
        target and ``BootNext`` (the ``BootOrder`` entries) where ``UefiBootNext`` is."""
        allowed: dict[str, tuple[str, ...]] = {
            "BootSourceOverrideTarget": self.shape.boot_targets,
            "BootSourceOverrideEnabled": BOOT_ENABLED,
            "BootSourceOverrideMode": BOOT_MODES,
        }
        if "UefiTarget" in self.shape.boot_targets:
            allowed["UefiTargetBootSourceOverride"] = self.shape.uefi_device_paths
        if "UefiBootNext" in self.shape.boot_targets:
            allowed["BootNext"] = self.shape.boot_order
        return allowed

    def set_boot(self, patch: Any) -> None:
        """Apply a ``PATCH`` of ``Boot``. Raises ``RedfishError`` 400 naming the bad property and value.

        The rules are the ComputerSystem schema's (DSP8010, ``Boot``): every value is one of the property's
        ``@Redfish.AllowableValues``; ``UefiTargetBootSourceOverride`` is the device ``UefiTarget`` boots and
        ``BootNext`` the option ``UefiBootNext`` boots, so each is written only with its target (in the same
        ``PATCH`` or already set) and each target needs its value; ``UefiBootNext`` is one-time by definition,
        so never ``Continuous``. A target set without ``BootSourceOverrideEnabled`` while the override is
        ``Disabled`` is enabled ``Once``.
        """
        if not isinstance(patch, dict):
            raise bad_request("PropertyValueTypeError", f"The value {patch!r} for the property Boot is not an object.")
        allowed = self.allowable_boot_values()
        for key, value in patch.items():
            if key not in allowed:
                raise bad_request("PropertyUnknown", f"The property {key} is not in the list of valid properties.", key)
            if value not in allowed[key]:
                raise bad_request(
                    "PropertyValueNotInList",
                    f"The value {value!r} for the property {key} is not in the list of acceptable values.",
                    str(value),
                    key,
                )
        target = patch.get("BootSourceOverrideTarget", self.boot.target)
        enabled = patch.get("BootSourceOverrideEnabled", self.boot.enabled)
        if "BootSourceOverrideTarget" in patch and "BootSourceOverrideEnabled" not in patch and enabled == "Disabled":
            enabled = "Once"
        uefi_target = patch.get("UefiTargetBootSourceOverride", self.boot.uefi_target)
        boot_next = patch.get("BootNext", self.boot.boot_next)
        for key, needs, value in (
            ("UefiTargetBootSourceOverride", "UefiTarget", uefi_target),
            ("BootNext", "UefiBootNext", boot_next),
        ):
            if key in patch and target != needs:
                raise bad_request(
                    "PropertyValueConflict",
                    f"The property {key} ({patch[key]!r}) applies only with BootSourceOverrideTarget {needs}, "
                    f"not {target!r}.",
                    key,
                    "BootSourceOverrideTarget",
                )
            if target == needs and value is None:
                raise bad_request(
                    "PropertyMissing",
                    f"BootSourceOverrideTarget {needs} needs the property {key}: one of {', '.join(allowed[key])}.",
                    key,
                )
        if target == "UefiBootNext" and enabled == "Continuous":
            raise bad_request(
                "PropertyValueConflict",
                "BootSourceOverrideTarget UefiBootNext boots once: BootSourceOverrideEnabled cannot be Continuous.",
                "BootSourceOverrideEnabled",
                "BootSourceOverrideTarget",
            )
        mode = patch.get("BootSourceOverrideMode", self.boot.mode)
        self.boot = BootOverride(target, enabled, mode, uefi_target, boot_next)

    def restore(self, state: str) -> None:
        """Back to ``state`` with no override and no boots (the transition must be stopped first)."""
        self.state = state
        self.boot = BootOverride()
        self.boots = 0
        self.last_boot = None

    async def stop(self) -> None:
        """Cancel a transition in progress (at shutdown)."""
        if self._transition is not None and not self._transition.done():
            self._transition.cancel()
