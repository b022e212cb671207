"""Request payloads decoded and validated like gin's ``ShouldBindJSON`` on the reference server's Go structs.

A :class:`Struct` lists a Go struct's JSON fields with their Go names and ``binding`` tags (``required``,
``lowercase``). :func:`bind` decodes a JSON value into a plain dict (absent fields take Go's zero value),
then validates it; errors carry the exact texts of Go's ``encoding/json``, ``github.com/google/uuid`` and
``go-playground/validator``, e.g. ``Key: 'ComponentFirmwareVersion.Vendor' Error:Field validation for
'Vendor' failed on the 'lowercase' tag``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from flasher_sandbox.inventory.gojson import go_type_name

#: Go package name used in ``cannot unmarshal ... into Go value of type <pkg>.<Struct>``.
GO_PACKAGE = "serverservice"

Kind = Literal["string", "uuid", "strings", "raw", "int", "structs"]


class _Missing:
    """A field absent from the payload (distinct from JSON ``null``)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Field:
    """One struct field: JSON name, Go name, kind, validator tags and, for ``structs``, the element struct."""

    json: str
    go: str
    kind: Kind
    tags: tuple[str, ...] = ()
    item: Struct | None = None


@dataclass(frozen=True)
class Struct:
    """A Go struct the reference server binds request bodies to."""

    name: str
    fields: tuple[Field, ...]


class BindError(ValueError):
    """The payload does not decode or validate; ``str(exc)`` is the text the reference server returns."""


_ZERO: dict[Kind, Any] = {"string": "", "uuid": None, "strings": None, "raw": MISSING, "int": 0, "structs": None}


def parse_uuid(text: str) -> uuid.UUID:
    """``text`` as a UUID; raises :class:`BindError` with ``github.com/google/uuid``'s error text.

    Accepted forms, as there: 36 characters with dashes, 32 hex digits, ``{...}`` and ``urn:uuid:...``.
    """
    if len(text) not in (32, 36, 38, 45):
        raise BindError(f"invalid UUID length: {len(text)}")
    try:
        return uuid.UUID(text)
    except ValueError:
        raise BindError("invalid UUID format") from None


def _field_for(struct: Struct, key: str) -> Field | None:
    for field in struct.fields:
        if field.json == key:
            return field
    folded = key.casefold()
    for field in struct.fields:  # Go's decoder falls back to a case-insensitive match
        if field.json.casefold() == folded:
            return field
    return None


def _type_error(value: Any, where: str, go_type: str) -> BindError:
    return BindError(f"json: cannot unmarshal {go_type_name(value)} into {where} of type {go_type}")


def _decode_value(field: Field, value: Any, where: str) -> Any:
    if field.kind == "raw":
        return value  # json.RawMessage keeps anything, JSON null included
    if value is None:
        return _ZERO[field.kind]  # null leaves Go's zero value
    if field.kind == "string":
        if not isinstance(value, str):
            raise _type_error(value, where, "string")
        return value
    if field.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(value, where, "int")
        return value
    if field.kind == "uuid":
        if not isinstance(value, str):
            raise _type_error(value, where, "uuid.UUID")
        return parse_uuid(value)
    if field.kind == "strings":
        if not isinstance(value, list):
            raise _type_error(value, where, "[]string")
        for item in value:
            if not isinstance(item, str) and item is not None:
                raise _type_error(item, where, "string")
        return ["" if item is None else item for item in value]
    assert field.item is not None
    if not isinstance(value, list):
        raise _type_error(value, where, f"[]{GO_PACKAGE}.{field.item.name}")
    return [decode(field.item, item, where) for item in value]


def decode(struct: Struct, value: Any, where: str | None = None) -> dict[str, Any]:
    """``value`` decoded into ``struct``'s fields (by JSON name); unknown keys are ignored.

    ``where`` names the enclosing field for nested structs (Go's error text names the field path).
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _type_error(value, where or "Go value", f"{GO_PACKAGE}.{struct.name}")
    result: dict[str, Any] = {field.json: _ZERO[field.kind] for field in struct.fields}
    for key, item in value.items():
        field = _field_for(struct, key)
        if field is None:
            continue
        field_where = f"{where}.{field.json}" if where else f"Go struct field {struct.name}.{field.json}"
        result[field.json] = _decode_value(field, item, field_where)
    return result


def _fails(field: Field, value: Any, tag: str) -> bool:
    if tag == "required":
        return value is None or value is MISSING or value == "" or (field.kind == "int" and value == 0)
    if tag == "lowercase":
        return isinstance(value, str) and value != value.lower()
    raise ValueError(f"binding tag {tag!r} is not supported")


def validate(struct: Struct, decoded: dict[str, Any]) -> list[str]:
    """go-playground/validator's error lines for ``decoded`` (empty when valid); one failing tag per field."""
    lines = []
    for field in struct.fields:
        for tag in field.tags:
            if _fails(field, decoded[field.json], tag):
                lines.append(
                    f"Key: '{struct.name}.{field.go}' Error:Field validation for '{field.go}' failed on the '{tag}' tag"
                )
                break
    return lines


def bind(struct: Struct, value: Any) -> dict[str, Any]:
    """Decode and validate one object; raises :class:`BindError` with the reference server's text."""
    decoded = decode(struct, value)
    lines = validate(struct, decoded)
    if lines:
        raise BindError("\n".join(lines))
    return decoded


def bind_slice(struct: Struct, value: Any, slice_name: str) -> list[dict[str, Any]]:
    """Decode and validate a JSON array of ``struct`` (gin validates each element).

    Like gin's ``SliceValidationError``, the ``[i]`` prefixes count the failing elements only.
    """
    if not isinstance(value, list):
        if value is None:
            return []
        raise _type_error(value, "Go value", f"{GO_PACKAGE}.{slice_name}")
    decoded = [decode(struct, item) for item in value]
    failures = [lines for lines in (validate(struct, item) for item in decoded) if lines]
    if failures:
        raise BindError("\n".join(f"[{i}]: " + "\n".join(lines) for i, lines in enumerate(failures)))
    return decoded
