"""JSON as the reference server writes and stores it: Go's ``encoding/json`` output, PostgreSQL ``jsonb`` order.

- :func:`dumps` writes compact JSON with Go's HTML escaping (``&`` as ``\\u0026``, also ``<``, ``>``, U+2028,
  U+2029) and non-ASCII characters as they are, like ``json.Marshal``.
- :func:`normalize` reorders object keys the way ``jsonb`` stores them (shorter keys first, then byte order;
  a repeated key keeps its last value), so an attribute reads back exactly as from the reference server:
  ``{"method": ..., "status": ..., "priority": ...}``.
- :func:`loads_request` decodes a request body like gin's ``ShouldBindJSON`` (one JSON value, Go's error texts).
"""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_DECODER = json.JSONDecoder()


def dumps(value: Any) -> str:
    """``value`` as compact JSON, escaped like Go's ``json.Marshal``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if any(ch in text for ch in _GO_ESCAPES):
        for ch, escaped in _GO_ESCAPES.items():
            text = text.replace(ch, escaped)
    return text


def _jsonb_key(key: str) -> tuple[int, bytes]:
    raw = key.encode("utf-8", "surrogatepass")
    return (len(raw), raw)


def normalize(value: Any) -> Any:
    """``value`` with every object's keys in ``jsonb`` order (length, then bytes); arrays keep their order."""
    if isinstance(value, dict):
        return {key: normalize(value[key]) for key in sorted(value, key=_jsonb_key)}
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def store_text(value: Any) -> str:
    """The text stored in a data column for ``value``: normalized, compact, UTF-8."""
    return json.dumps(normalize(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def load_stored(text: str | None) -> Any:
    """A data column's value (``None`` stays ``None``)."""
    return None if text is None else json.loads(text)


class GoJSONError(ValueError):
    """A request body that Go's JSON decoder would reject; ``str(exc)`` is Go's error text."""


_CONTEXTS = {
    "Expecting value": "looking for beginning of value",
    "Expecting ':' delimiter": "after object key",
    "Expecting property name enclosed in double quotes": "looking for beginning of object key string",
    "Expecting ',' delimiter": "after object key:value pair",
    "Invalid control character at": "in string literal",
}


def _go_syntax_error(body: str, exc: json.JSONDecodeError) -> str:
    if exc.pos >= len(body.rstrip()):
        return "unexpected EOF"
    char = body[exc.pos]
    context = _CONTEXTS.get(exc.msg, "looking for beginning of value")
    if exc.msg == "Expecting ',' delimiter" and _inside_array(body, exc.pos):
        context = "after array element"
    return f"invalid character {char!r} {context}"


def _inside_array(body: str, pos: int) -> bool:
    depth: list[str] = []
    in_string = escaped = False
    for ch in body[:pos]:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth.append(ch)
        elif ch in "]}" and depth:
            depth.pop()
    return bool(depth) and depth[-1] == "["


def loads_request(body: bytes) -> Any:
    """The first JSON value of ``body`` (trailing data is ignored, as by Go's ``json.Decoder``).

    Raises :class:`GoJSONError` with Go's text: ``EOF`` for an empty body, ``unexpected EOF`` for a truncated
    one, ``invalid character 'x' looking for beginning of value`` and the like otherwise.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise GoJSONError("invalid character in request body: not UTF-8") from None
    start = len(text) - len(text.lstrip())
    if start == len(text):
        raise GoJSONError("EOF")
    try:
        value, _end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        raise GoJSONError(_go_syntax_error(text, exc)) from None
    return value


def go_type_name(value: Any) -> str:
    """The JSON kind Go's decoder names in ``cannot unmarshal <kind> into ...`` errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def json_equal(left: Any, right: Any) -> bool:
    """Deep equality of two decoded JSON values, as Go's ``reflect.DeepEqual`` after ``json.Unmarshal``.

    Numbers compare by value (Go decodes both as ``float64``); ``true`` never equals ``1``.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)
