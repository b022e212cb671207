"""Selectors: which servers a rollout (or a plan, or the compliance report) covers.

::

    all                              every server (of ``inventory.facility`` when the settings name one)
    facility=F                       servers of facility F
    vendor=V, model=M                sh.hollow.alloy.server_vendor_attributes vendor / model (the inventory's slugs)
    attr=NS~KEY.PATH~OP~VALUE        a Serverservice attribute filter (OP eq, like, gt, lt)
    component=TYPE[:VENDOR[:MODEL]]  servers with such a component (bios, nic:intel:e810-xxv)
    uuid=U[,U...]                    these servers
    uuids-file=PATH                  the servers whose uuids the file lists (one per line, # comments)

Selectors of different kinds are ANDed; several of one kind (``vendor=dell vendor=supermicro``) are ORed.
What the inventory can filter is sent as filters of one paged ``GET /servers`` (one facility, one vendor or
model, every ``attr``, every component filter); the rest is filtered here. ``uuids-file`` is read when the
selector is parsed and stored as ``uuid=...`` (a rollout's record must not depend on a local file).
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from flasher.constants import SERVER_VENDOR_NAMESPACE
from flasher.inventory.filters import ComponentFilter, FilterError, attr_filter, check_attr_filter
from flasher.inventory.models import Server

KINDS: Final = ("all", "facility", "vendor", "model", "attr", "component", "uuid", "uuids-file")


class SelectorError(ValueError):
    """A selector that cannot be read; the message quotes it and lists the forms."""


_FORMS: Final = (
    "all, facility=F, vendor=V, model=M, attr=NS~KEY~OP~VALUE, component=TYPE[:VENDOR[:MODEL]], uuid=U[,U...],"
    " uuids-file=PATH"
)


@dataclass(frozen=True)
class Selector:
    """One selector: ``kind`` (one of :data:`KINDS` but ``uuids-file``, which becomes ``uuid``) and ``values``."""

    kind: str
    values: tuple[str, ...] = ()

    def text(self) -> str:
        """The selector as stored in a rollout's record: ``model=r6515``, ``uuid=a,b``."""
        return "all" if self.kind == "all" else f"{self.kind}={','.join(self.values)}"


def _uuid(value: str, text: str) -> str:
    try:
        return str(uuidlib.UUID(value.strip()))
    except ValueError:
        raise SelectorError(f"selector {text!r}: {value.strip()!r} is not a server uuid") from None


def read_uuids_file(path: str) -> tuple[str, ...]:
    """The uuids listed in ``path`` (one per line; blank lines and ``#`` comments skipped)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise SelectorError(f"selector 'uuids-file={path}': cannot read the file: {exc.strerror}") from None
    found = []
    for number, line in enumerate(lines, start=1):
        value = line.split("#", 1)[0].strip()
        if value:
            found.append(_uuid(value, f"uuids-file={path} line {number}"))
    if not found:
        raise SelectorError(f"selector 'uuids-file={path}': the file lists no uuid")
    return tuple(found)


def parse_selector(text: str) -> Selector:
    """Read one selector (module docstring); raises :class:`SelectorError` naming it."""
    given = text.strip() if isinstance(text, str) else ""
    if given == "all":
        return Selector("all")
    kind, sep, value = given.partition("=")
    kind = kind.strip()
    if not sep or kind not in KINDS or kind == "all":
        raise SelectorError(f"selector {text!r}: not a selector ({_FORMS})")
    value = value.strip()
    if not value:
        raise SelectorError(f"selector {text!r}: the value is empty")
    if kind == "uuids-file":
        return Selector("uuid", read_uuids_file(value))
    if kind == "uuid":
        return Selector("uuid", tuple(_uuid(v, text) for v in value.split(",") if v.strip()))
    if kind == "attr":
        try:
            check_attr_filter(value, "selector attr")
        except FilterError as exc:
            raise SelectorError(str(exc)) from None
        return Selector("attr", (value,))
    if kind == "component":
        parts = value.split(":")
        if len(parts) > 3 or not parts[0]:
            raise SelectorError(f"selector {text!r}: use component=TYPE[:VENDOR[:MODEL]], e.g. component=bios")
        return Selector("component", (value,))
    if "~" in value:
        raise SelectorError(f"selector {text!r}: the value may not contain '~'")
    return Selector(kind, (value,))


@dataclass
class Selection:
    """Selectors combined (module docstring): what :meth:`query` sends, and :meth:`matches` filters locally."""

    selectors: tuple[Selector, ...]
    attr: list[str] = field(default_factory=list)
    components: list[ComponentFilter] = field(default_factory=list)
    facility: str | None = None
    local: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, texts: Iterable[str]) -> Selection:
        """Combine the selectors ``texts``; raises :class:`SelectorError` (none given, ``all`` with others...)."""
        selectors = tuple(parse_selector(t) for t in texts)
        if not selectors:
            raise SelectorError(f"no selector given ({_FORMS})")
        if any(s.kind == "all" for s in selectors) and len(selectors) > 1:
            raise SelectorError("selector 'all' selects every server: give it alone")
        selection = cls(selectors)
        by_kind: dict[str, list[str]] = {}
        for selector in selectors:
            by_kind.setdefault(selector.kind, []).extend(selector.values)
        for kind, values in by_kind.items():
            if kind == "attr":
                selection.attr += values
            elif kind == "component":
                for value in values:
                    parts = [*value.split(":"), "", ""][:3]
                    selection.components.append(
                        ComponentFilter(type=parts[0], vendor=parts[1] or None, model=parts[2] or None)
                    )
            elif kind == "facility" and len(set(values)) == 1:
                selection.facility = values[0]
            elif kind in ("vendor", "model") and len(set(values)) == 1:
                selection.attr.append(attr_filter(SERVER_VENDOR_NAMESPACE, kind, "eq", values[0]))
            elif kind != "all":
                selection.local[kind] = set(values)
        return selection

    def texts(self) -> list[str]:
        """The selectors as a rollout's record stores them."""
        return [s.text() for s in self.selectors]

    def matches(self, server: Server) -> bool:
        """Whether ``server`` passes the selectors filtered here (the query did the others)."""
        checks = {
            "facility": server.facility,
            "vendor": server.vendor or "",
            "model": server.model or "",
            "uuid": str(server.uuid),
        }
        return all(checks[kind] in wanted for kind, wanted in self.local.items())


def describe(selectors: Sequence[str]) -> str:
    """``model=r6515 and facility=ams1``."""
    return " and ".join(selectors) or "nothing"
