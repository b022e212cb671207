"""List filters of the reference server, parsed from the query string and turned into SQL.

``attr=<namespace>~<dotted.key>~<op>~<value>`` (repeatable, ANDed) as in the reference server's
``parseQueryAttributesListParams``: one part means "has the namespace", a key without a known operator means
"the key exists", ``op`` is ``eq``, ``like`` (``%`` appended when the value has none), ``gt`` or ``lt``
(integer comparison). Values compare as PostgreSQL's ``json_extract_path_text`` renders them (strings
unquoted, ``true``/``false``, numbers as text). ``ver_attr=`` is the same against the newest versioned
attribute of the namespace. ``sc_N[type|name|vendor|model|serial]``, ``sc_N_attr``, ``sc_N_ver_attr``
select servers with a component matching all of group N.

Everything is evaluated in SQLite. An equality on a plain string value is written as
``json_extract(data, '$.path') = ?`` so that the ``(namespace, json_extract(data, '$.status'))`` index answers
a poll for ``status eq requested`` without reading other rows. A 5th ``~or``/``~and`` part is not supported
(it is ignored, so such filters AND).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    select,
)

from flasher_sandbox.inventory import schema
from flasher_sandbox.inventory.errors import datastore_error

OPERATORS = ("eq", "like", "gt", "lt")
COMPONENT_FIELDS = ("name", "vendor", "model", "serial", "type")

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_TEXT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class AttributeFilter:
    """One ``attr=``/``ver_attr=`` value: ``keys`` empty means "has the namespace", ``operator`` empty means
    "the key exists"."""

    namespace: str
    keys: tuple[str, ...] = ()
    operator: str = ""
    value: str = ""


def parse_attribute_filter(text: str) -> AttributeFilter:
    """One ``ns~key.path~op~value`` string, read as the reference server reads it."""
    parts = text.split("~")
    if len(parts) == 1:
        return AttributeFilter(parts[0])
    keys = tuple(parts[1].split("."))
    operator = value = ""
    if len(parts) in (4, 5) and parts[2] in OPERATORS:
        operator, value = parts[2], parts[3]
        if operator == "like" and "%" not in value:
            value += "%"
    return AttributeFilter(parts[0], keys, operator, value)


def parse_attribute_filters(values: list[str]) -> list[AttributeFilter]:
    """Every value of a repeated ``attr``-style parameter."""
    return [parse_attribute_filter(value) for value in values]


@dataclass(frozen=True)
class ComponentFilter:
    """One ``sc_N`` group: exact ``fields`` (``type`` is the component type's slug) plus attribute filters."""

    fields: dict[str, str] = field(default_factory=dict)
    attributes: list[AttributeFilter] = field(default_factory=list)
    versioned_attributes: list[AttributeFilter] = field(default_factory=list)


def parse_component_filters(params: list[tuple[str, str]]) -> list[ComponentFilter]:
    """``sc_0...``, ``sc_1...``, ... until the first index with no parameter (as the reference server)."""
    groups: list[ComponentFilter] = []
    index = 0
    while True:
        prefix = f"sc_{index}"
        fields: dict[str, str] = {}
        for key, value in params:
            if key.startswith(prefix + "[") and key.endswith("]") and key.index("]") == len(key) - 1:
                name = key[len(prefix) + 1 : -1]
                if name and name not in fields:  # gin's QueryMap keeps the first value
                    fields[name] = value
        attrs = parse_attribute_filters([v for k, v in params if k == f"{prefix}_attr"])
        ver_attrs = parse_attribute_filters([v for k, v in params if k == f"{prefix}_ver_attr"])
        if not fields and not attrs and not ver_attrs:
            return groups
        known = {name: value for name, value in fields.items() if name in COMPONENT_FIELDS}
        groups.append(ComponentFilter(known, attrs, ver_attrs))
        index += 1


def _json_path(keys: tuple[str, ...]) -> tuple[ColumnElement[str], bool]:
    """The SQLite JSON path of ``keys`` and whether it is a literal (which an expression index can match)."""
    if all(_PLAIN_KEY.fullmatch(key) for key in keys):
        return literal_column("'$." + ".".join(keys) + "'", String), True
    quoted = "$" + "".join(f'."{key}"' for key in keys)
    return bindparam(None, quoted, type_=String), False


def _pg_text(data: ColumnElement[str], path: ColumnElement[str]) -> ColumnElement[str]:
    """``json_extract_path_text``'s rendering: strings unquoted, ``true``/``false``, numbers and JSON as text."""
    kind = func.json_type(data, path)
    return case(
        (kind == "true", "true"),
        (kind == "false", "false"),
        else_=cast(func.json_extract(data, path), String),
    )


def like_to_glob(pattern: str) -> str:
    """A PostgreSQL ``LIKE`` pattern (``%``, ``_``, ``\\`` escapes; case-sensitive) as an SQLite ``GLOB``."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(_glob_literal(pattern[index]))
        elif char == "%":
            out.append("*")
        elif char == "_":
            out.append("?")
        else:
            out.append(_glob_literal(char))
        index += 1
    return "".join(out)


def _glob_literal(char: str) -> str:
    return f"[{char}]" if char in "*?[" else char


def _integer(value: str) -> int:
    if not _INTEGER.fullmatch(value.strip()):
        raise datastore_error(f'pq: invalid input syntax for type integer: "{value}"')
    return int(value)


def attribute_condition(table: FromClause, flt: AttributeFilter) -> ColumnElement[bool]:
    """``flt`` against a table (or alias) with ``namespace`` and ``data`` columns.

    Raises :class:`~flasher_sandbox.inventory.errors.ApiError` (500, as PostgreSQL's cast fails there) when a
    ``gt``/``lt`` value is not an integer.
    """
    namespace = table.c.namespace == flt.namespace
    if not flt.keys:
        return namespace
    data = table.c.data
    path, literal = _json_path(flt.keys)
    if flt.operator == "":
        return and_(namespace, func.json_type(data, path).is_not(None))
    if flt.operator == "eq":
        if literal and not _NUMBER_TEXT.fullmatch(flt.value) and flt.value not in ("true", "false"):
            # only a JSON string can render as this text: compare json_extract directly (indexable)
            return and_(namespace, func.json_extract(data, path) == flt.value)
        return and_(namespace, _pg_text(data, path) == flt.value)
    if flt.operator == "like":
        return and_(namespace, _pg_text(data, path).op("GLOB")(like_to_glob(flt.value)))
    number = _integer(flt.value)
    as_int = cast(_pg_text(data, path), Integer)
    return and_(namespace, as_int > number if flt.operator == "gt" else as_int < number)


#: A second name for versioned_attributes in "newest of its namespace" subqueries (built once: aliases are
#: costly to build per request).
NEWER_VERSIONS = schema.versioned_attributes.alias("newer_versions")


def newest_version(table: FromClause, owner: str) -> ColumnElement[bool]:
    """``table`` (versioned_attributes) is the newest row of its owner and namespace."""
    newer = NEWER_VERSIONS
    newest = (
        select(func.max(newer.c.created_at))
        .where(newer.c[owner] == table.c[owner], newer.c.namespace == table.c.namespace)
        .scalar_subquery()
    )
    return table.c.created_at == newest


def owners_with_attribute(owner: str, flt: AttributeFilter) -> Select[tuple[str]]:
    """Ids (``owner``: ``server_id`` or ``server_component_id``) that have an attribute matching ``flt``."""
    attrs = schema.attributes
    return select(attrs.c[owner]).where(attribute_condition(attrs, flt))


def owners_with_versioned_attribute(owner: str, flt: AttributeFilter) -> Select[tuple[str]]:
    """Ids whose newest versioned attribute of ``flt.namespace`` matches ``flt``."""
    versions = schema.versioned_attributes
    return select(versions.c[owner]).where(attribute_condition(versions, flt), newest_version(versions, owner))


def component_conditions(table: FromClause, flt: ComponentFilter) -> list[ColumnElement[bool]]:
    """Conditions on one server_components row (or alias) for an ``sc_N`` group."""
    conditions: list[ColumnElement[bool]] = []
    for name in ("name", "vendor", "model", "serial"):
        if flt.fields.get(name):
            conditions.append(table.c[name] == flt.fields[name])
    if flt.fields.get("type"):
        types = schema.server_component_types
        conditions.append(
            table.c.server_component_type_id.in_(select(types.c.id).where(types.c.slug == flt.fields["type"]))
        )
    for attr in flt.attributes:
        conditions.append(table.c.id.in_(owners_with_attribute("server_component_id", attr)))
    for ver_attr in flt.versioned_attributes:
        conditions.append(table.c.id.in_(owners_with_versioned_attribute("server_component_id", ver_attr)))
    return conditions


def servers_with_component(flt: ComponentFilter) -> Select[tuple[str]]:
    """Ids of servers that have one component matching every condition of the ``sc_N`` group ``flt``."""
    components = schema.server_components
    return select(components.c.server_id).where(*component_conditions(components, flt))
