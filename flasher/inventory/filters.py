"""List filters of Serverservice: attribute filters (``attr=``, ``ver_attr=``) and component filters (``sc_N``).

Syntax (``serverservice-api.md``, "Filters on lists"; the server's ``attribute_list_params.go``)::

    <namespace>                              servers that have the namespace
    <namespace>~<dotted.key>                 ... whose data has the key
    <namespace>~<dotted.key>~<op>~<value>    ... whose value compares: eq, like (``%`` appended when the value
                                             has none), gt, lt (the value is cast to an integer)
    <namespace>~<dotted.key>~<op>~<value>~or OR-ed with the other filters instead of AND-ed

The server silently ignores what it does not understand (an unknown operator turns the filter into a
key-exists test), so :func:`check_attr_filter` refuses such filters before they are sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

#: Comparison operators of attribute filters.
OPERATORS: tuple[str, ...] = ("eq", "like", "gt", "lt")
_LOGICAL = ("and", "or")


class FilterError(ValueError):
    """An attribute or component filter the server would misread; the message names the field and value."""


def check_attr_filter(text: str, field_name: str = "attr") -> str:
    """Return ``text`` when it is a well-formed attribute filter; raise :class:`FilterError` naming
    ``field_name`` and the value otherwise."""
    parts = text.split("~")

    def bad(reason: str) -> FilterError:
        return FilterError(f"{field_name} {text!r}: {reason} (form: namespace[~key.path[~op~value]])")

    if not parts[0].strip():
        raise bad("the namespace is empty")
    if len(parts) == 1:
        return text
    if len(parts) == 3:
        raise bad("an operator needs a value (an empty value is written 'op~')")
    if len(parts) > 5:
        raise bad("too many '~' (a value may not contain '~')")
    if any(not segment for segment in parts[1].split(".")):
        raise bad(f"the key path {parts[1]!r} has an empty segment")
    if len(parts) >= 4:
        op, value = parts[2], parts[3]
        if op not in OPERATORS:
            raise bad(f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
        if op in ("gt", "lt"):
            try:
                int(value)
            except ValueError:
                raise bad(f"{op} compares integers, {value!r} is not one") from None
    if len(parts) == 5 and parts[4] not in _LOGICAL:
        raise bad(f"the last part must be 'and' or 'or', not {parts[4]!r}")
    return text


def attr_filter(namespace: str, key: str | None = None, op: str | None = None, value: str | int | None = None) -> str:
    """Build an attribute filter: ``attr_filter(TASK_NAMESPACE, "status", "eq", "queued")`` gives
    ``"sh.hollow.flasher.task~status~eq~queued"``. ``op`` needs ``key``; ``value`` needs ``op``.
    Raises :class:`FilterError` for a combination the server would misread, and for a namespace, key or value
    that contains ``~``: the server splits on it, so ``dell~or`` would read as ``dell`` OR-ed with the rest."""
    for what, part in (("namespace", namespace), ("key", key), ("value", value)):
        if isinstance(part, str) and "~" in part:
            raise FilterError(f"attr filter on {namespace!r}: the {what} {part!r} may not contain '~'")
    text = namespace
    if key is not None:
        text += f"~{key}"
        if op is not None:
            text += f"~{op}~{'' if value is None else value}"
    elif op is not None:
        raise FilterError(f"attr filter on {namespace!r}: an operator needs a key")
    if op is None and value is not None:
        raise FilterError(f"attr filter on {namespace!r}: a value needs an operator")
    return check_attr_filter(text)


@dataclass(frozen=True)
class ComponentFilter:
    """Servers that have a component matching all of: type slug, vendor, model, name, serial, attribute and
    versioned-attribute filters. Rendered as ``sc_N[type]=bmc``, ``sc_N[vendor]=dell``, ``sc_N_attr=...``,
    ``sc_N_ver_attr=...`` for the N-th filter (``server_component_list_params.go``)."""

    type: str | None = None
    vendor: str | None = None
    model: str | None = None
    name: str | None = None
    serial: str | None = None
    attr: list[str] = field(default_factory=list)
    ver_attr: list[str] = field(default_factory=list)

    def query(self, index: int) -> list[tuple[str, str]]:
        """Query parameters for position ``index``. Raises :class:`FilterError` for an empty filter (the
        server stops reading component filters at the first empty one) or a bad attribute filter."""
        prefix = f"sc_{index}"
        params = [
            (f"{prefix}[{key}]", value)
            for key, value in (
                ("type", self.type),
                ("vendor", self.vendor),
                ("model", self.model),
                ("name", self.name),
                ("serial", self.serial),
            )
            if value
        ]
        params += [(f"{prefix}_attr", check_attr_filter(a, f"{prefix}_attr")) for a in self.attr]
        params += [(f"{prefix}_ver_attr", check_attr_filter(a, f"{prefix}_ver_attr")) for a in self.ver_attr]
        if not params:
            raise FilterError(f"component filter {index}: empty (give a type, vendor, model, name, serial or attr)")
        return params


def server_query(
    attr: Sequence[str] = (),
    ver_attr: Sequence[str] = (),
    facility: str | None = None,
    components: Sequence[ComponentFilter] = (),
    include_deleted: bool = False,
) -> list[tuple[str, str]]:
    """Query parameters of ``GET /servers`` (without paging). Raises :class:`FilterError` for a bad filter."""
    if isinstance(attr, str) or isinstance(ver_attr, str):
        raise FilterError("attr and ver_attr are lists of filters, not one string")
    params = [("attr", check_attr_filter(a, "attr")) for a in attr]
    params += [("ver_attr", check_attr_filter(a, "ver_attr")) for a in ver_attr]
    for index, component in enumerate(components):
        params += component.query(index)
    if facility:
        params.append(("facility-code", facility))
    if include_deleted:
        params.append(("include-deleted", "true"))
    return params
