"""The reference server's response envelope (Go's ``ServerResponse``), filled and omitted the same way.

Field order: ``page_size, page, page_count, total_pages, total_record_count, _links, message, error, slug,
record, records``. Every field but ``_links`` is left out when empty or zero (``omitempty``); ``_links`` is
always there, ``{}`` when it has no link. A list's ``self`` link is the request URI as received; ``first``,
``previous``, ``next`` and ``last`` re-encode the query like Go's ``url.Values.Encode`` (keys sorted, values
escaped with ``QueryEscape``), so ``last`` of an empty list says ``page=0``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from flask import Response
from werkzeug.http import HTTP_STATUS_CODES

from flasher_sandbox.inventory.gojson import dumps

CONTENT_TYPE = "application/json; charset=utf-8"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100

_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


def json_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """``body`` encoded like Go's ``json.Marshal`` with the reference server's content type."""
    reason = HTTP_STATUS_CODES.get(status, "")
    response = Response(dumps(body), status=f"{status} {reason}".strip(), content_type=CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def envelope(
    *,
    links: dict[str, str] | None = None,
    message: str = "",
    error: str = "",
    slug: str = "",
    record: Any = None,
    records: Any = None,
    page_size: int = 0,
    page: int = 0,
    page_count: int = 0,
    total_pages: int = 0,
    total_record_count: int = 0,
) -> dict[str, Any]:
    """A ``ServerResponse`` with Go's ``omitempty`` rules; ``links`` maps link names to hrefs."""
    body: dict[str, Any] = {}
    for key, number in (
        ("page_size", page_size),
        ("page", page),
        ("page_count", page_count),
        ("total_pages", total_pages),
        ("total_record_count", total_record_count),
    ):
        if number:
            body[key] = number
    body["_links"] = {name: {"href": href} for name, href in (links or {}).items() if href}
    for key, text in (("message", message), ("error", error), ("slug", slug)):
        if text:
            body[key] = text
    if record is not None:
        body["record"] = record
    if records is not None:
        body["records"] = records
    return body


def error_response(status: int, message: str, error: str) -> Response:
    """``{"_links":{},"message":...,"error":...}`` (either text omitted when empty)."""
    return json_response(status, envelope(message=message, error=error))


def created_response(path: str, slug: str) -> Response:
    """201 with ``Location: <path>/<slug>`` and ``{"_links":{"self":...},"message":"resource created","slug":...}``."""
    href = f"{path}/{slug}"
    return json_response(201, envelope(links={"self": href}, message="resource created", slug=slug), {"Location": href})


def updated_response(path: str, slug: str) -> Response:
    """200 ``{"_links":{"self":<path>},"message":"resource updated","slug":...}``."""
    return json_response(200, envelope(links={"self": path}, message="resource updated", slug=slug))


def deleted_response() -> Response:
    """200 ``{"_links":{},"message":"resource deleted"}``."""
    return json_response(200, envelope(message="resource deleted"))


def item_response(request_uri: str, record: Any) -> Response:
    """200 ``{"_links":{"self":<request URI>},"record":...}``."""
    return json_response(200, envelope(links={"self": request_uri}, record=record))


@dataclass(frozen=True)
class Pager:
    """``page`` and ``limit`` as the reference server parses them (non-numbers read as 0, like ``Atoi``)."""

    limit: int = DEFAULT_PAGE_SIZE
    page: int = 1

    @classmethod
    def from_query(cls, params: list[tuple[str, str]]) -> Pager:
        """The last ``limit`` and ``page`` values of the query, each defaulting as on the reference server."""
        limit, page = DEFAULT_PAGE_SIZE, 1
        for key, value in params:
            if key == "limit":
                limit = _atoi(value)
            elif key == "page":
                page = _atoi(value)
        return cls(limit=limit, page=page)

    @property
    def limit_used(self) -> int:
        """The page size in effect: ``limit`` capped at 1000, 100 when not positive."""
        if self.limit > MAX_PAGE_SIZE:
            return MAX_PAGE_SIZE
        return self.limit if self.limit > 0 else DEFAULT_PAGE_SIZE

    @property
    def offset(self) -> int:
        """Rows to skip: ``(page - 1) * limit_used`` (page 0 reads as page 1, negative pages as page 1)."""
        return max(self.page - 1, 0) * self.limit_used


def _atoi(text: str) -> int:
    try:
        return int(text, 10) if text.strip() == text else 0
    except ValueError:
        return 0


def parse_go_query(raw_query: str) -> list[tuple[str, str]]:
    """``raw_query`` parsed like Go's ``url.ParseQuery``: pairs with ``;`` or a bad escape are dropped."""
    pairs = []
    for part in raw_query.split("&"):
        if not part or ";" in part:
            continue
        key, _, value = part.partition("=")
        if _BAD_ESCAPE.search(key) or _BAD_ESCAPE.search(value):
            continue
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def _with_query_set(path: str, params: list[tuple[str, str]], key: str, value: str) -> str:
    grouped: dict[str, list[str]] = {}
    for name, item in params:
        if name != key:
            grouped.setdefault(name, []).append(item)
    grouped[key] = [value]
    encoded = "&".join(
        f"{quote_plus(name, safe='')}={quote_plus(item, safe='')}" for name in sorted(grouped) for item in grouped[name]
    )
    return f"{path}?{encoded}"


def list_response(request_uri: str, records: list[Any], total_count: int, pager: Pager) -> Response:
    """200 list envelope: counts, paging links (``next``/``previous`` only where they exist) and ``records``.

    ``total_count`` 0 leaves out ``total_pages`` and ``total_record_count`` and makes ``last`` say
    ``page=0``, as the reference server does for lists it does not count (a server's components).
    """
    path, _, raw_query = request_uri.partition("?")
    params = parse_go_query(raw_query)
    total_pages = math.ceil(total_count / pager.limit_used)
    links = {
        "self": request_uri,
        "first": _with_query_set(path, params, "page", "1"),
        "previous": _with_query_set(path, params, "page", str(pager.page - 1)) if pager.page != 1 else "",
        "next": _with_query_set(path, params, "page", str(pager.page + 1)) if pager.page < total_pages else "",
        "last": _with_query_set(path, params, "page", str(total_pages)),
    }
    body = envelope(
        page_size=pager.limit_used,
        page=pager.page,
        page_count=len(records),
        total_pages=total_pages,
        total_record_count=total_count,
        links=links,
        records=records,
    )
    return json_response(200, body)
