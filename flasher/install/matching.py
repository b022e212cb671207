"""Which component the BMC reports is which component of the plan.

A plan names the inventory's components (uuid, type slug, name, serial, model); the BMC reports its own
(:class:`~flasher.bmc.BMCComponent`: FirmwareInventory Id, slug, name, serial and model from the related item).
They are paired one to one within each type, in passes, each pairing only what is unambiguous:

1. a type with exactly one component on both sides (BMC, BIOS, CPLD...);
2. the same serial number (case-insensitive; the inventory's serials come from the BMC);
3. the same name;
4. the same model;
5. the BMC's FirmwareInventory Id equal to the planned component's uuid (one-shot installs plan by Id);
6. one component left on each side.

A planned component left unpaired is not installed: guessing could flash the wrong device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flasher.bmc import BMCComponent
from flasher.install.plan import PlannedInstall


def _same(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and str(a).strip().lower() == str(b).strip().lower()


_PASSES: tuple[Callable[[PlannedInstall, BMCComponent], bool], ...] = (
    lambda item, c: _same(item.component_serial, c.serial),
    lambda item, c: _same(item.component_name, c.name),
    lambda item, c: _same(item.component_model, c.model),
    lambda item, c: item.component_uuid == c.id,
)


def match_components(items: Sequence[PlannedInstall], components: Sequence[BMCComponent]) -> dict[str, BMCComponent]:
    """The BMC component of each planned item that can be told apart, keyed by ``component_uuid``.

    Pairs are one to one (see the module's passes); items left out have no certain match.
    """
    matched: dict[str, BMCComponent] = {}
    for slug in dict.fromkeys(item.component for item in items):
        wanted = [item for item in items if item.component == slug]
        offered = [c for c in components if c.slug == slug]
        if len(wanted) == 1 and len(offered) == 1:
            matched[wanted[0].component_uuid] = offered[0]
            continue
        for same in _PASSES:
            for item in list(wanted):
                fits = [c for c in offered if same(item, c)]
                if len(fits) == 1 and sum(1 for other in wanted if same(other, fits[0])) == 1:
                    matched[item.component_uuid] = fits[0]
                    wanted.remove(item)
                    offered.remove(fits[0])
        if len(wanted) == 1 and len(offered) == 1:
            matched[wanted[0].component_uuid] = offered[0]
    return matched


def describe(component: BMCComponent) -> str:
    """``bios 'BIOS' (Installed-159__BIOS.Setup.1-1)`` for messages."""
    return f"{component.slug} {component.name!r} ({component.id})"
