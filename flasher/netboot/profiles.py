"""Boot profiles: what a server network-boots, from its ``sh.hollow.flasher.boot`` attribute and the settings.

The attribute names a profile of ``netboot.profiles`` (``{"profile": "rescue"}``) or gives one inline
(``{"kernel": URL, "initrd": [URL, ...], "cmdline": "..."}``); ``{"profile": ..., "cmdline": "..."}`` overrides the
named profile's keys it gives. ``{"enabled": false}`` (or no attribute) means: do not network-boot this server
(Pixiecore's 404). Kernel, initrd and command line are templates (:data:`flasher.config.TEMPLATE_FIELDS`):
``{uuid}``, ``{name}``, ``{facility}``, ``{mac}``, ``{token}``, ``{callback_url}``, ``{base_url}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter
from typing import Any

from flasher.config import TEMPLATE_FIELDS, BootProfileSettings


class ProfileError(ValueError):
    """A boot attribute or profile that cannot be used; the message names the field and the value."""


@dataclass(frozen=True)
class BootProfile:
    """A resolved profile (still templates): ``kernel`` URL, ``initrd`` URLs, ``cmdline``; ``name`` of the settings
    profile it came from (``None`` when inline)."""

    kernel: str
    initrd: tuple[str, ...]
    cmdline: str
    name: str | None = None

    def render(self, values: Mapping[str, str]) -> BootProfile:
        """The profile with every placeholder filled from ``values`` (keys of :data:`TEMPLATE_FIELDS`)."""
        return BootProfile(
            render(self.kernel, values, "kernel"),
            tuple(render(i, values, "initrd") for i in self.initrd),
            render(self.cmdline, values, "cmdline"),
            self.name,
        )


def render(template: str, values: Mapping[str, str], field: str = "template") -> str:
    """``template`` with ``{name}`` placeholders filled; :class:`ProfileError` for an unknown one."""
    try:
        names = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ProfileError(f"{field} {template!r}: {exc}") from None
    unknown = names - set(TEMPLATE_FIELDS)
    if unknown:
        raise ProfileError(
            f"{field} {template!r}: unknown placeholder {sorted(unknown)[0]!r} (known: {', '.join(TEMPLATE_FIELDS)})"
        )
    return template.format_map({key: values.get(key, "") for key in TEMPLATE_FIELDS})


def resolve(data: Any, profiles: Mapping[str, BootProfileSettings]) -> BootProfile | None:
    """The profile a boot attribute's ``data`` asks for, or ``None`` when it asks for no network boot.

    Raises :class:`ProfileError` naming the field: an unknown profile (listing the known ones), a kernel that is
    not a string, initrds that are not a list of strings.
    """
    if not isinstance(data, Mapping):
        raise ProfileError(f"boot attribute: value {data!r} is not an object")
    if data.get("enabled") is False:
        return None
    base: BootProfileSettings | None = None
    name = data.get("profile")
    if name is not None:
        if not isinstance(name, str) or name not in profiles:
            known = ", ".join(sorted(profiles)) or "none configured"
            raise ProfileError(f"field 'profile': value {name!r} is not a boot profile (known: {known})")
        base = profiles[name]
    kernel = data.get("kernel", base.kernel if base else None)
    initrd = data.get("initrd", list(base.initrd) if base else [])
    cmdline = data.get("cmdline", base.cmdline if base else "")
    if isinstance(initrd, str):
        initrd = [initrd]
    if not isinstance(kernel, str) or not kernel.strip():
        raise ProfileError(f"field 'kernel': value {kernel!r} is not a URL (give a profile or a kernel)")
    if not isinstance(initrd, list) or not all(isinstance(i, str) for i in initrd):
        raise ProfileError(f"field 'initrd': value {initrd!r} is not a list of URLs")
    if not isinstance(cmdline, str):
        raise ProfileError(f"field 'cmdline': value {cmdline!r} is not a string")
    return BootProfile(kernel, tuple(initrd), cmdline, name if isinstance(name, str) else None)
