"""Errors that become the reference server's error responses: ``{"_links":{},"message":...,"error":...}``.

Texts follow the reference server (Go, sqlboiler, lib/pq), since clients may match on them:
``resource not found`` / ``sql: no rows in result set`` for a missing row, ``datastore error`` for other
database failures, and for a unique-constraint violation a 400 with no message and the driver's text, e.g.
``failed to insert into foreign table: models: unable to insert into attributes: pq: duplicate key value
violates unique constraint "idx_attr_server_ns"``.
"""

from __future__ import annotations

NO_ROWS = "sql: no rows in result set"


class ApiError(Exception):
    """An error response: HTTP ``status`` with ``message`` and ``error`` (either may be empty)."""

    def __init__(self, status: int, message: str = "", error: str = "") -> None:
        super().__init__(f"{status} {message}: {error}")
        self.status = status
        self.message = message
        self.error = error


def not_found(error: str = NO_ROWS) -> ApiError:
    """404 ``resource not found``."""
    return ApiError(404, "resource not found", error)


def bad_request(message: str, error: str) -> ApiError:
    """400 with ``message`` and ``error``."""
    return ApiError(400, message, error)


def datastore_error(error: str) -> ApiError:
    """500 ``datastore error``."""
    return ApiError(500, "datastore error", error)


def duplicate_key(operation: str, constraint: str) -> ApiError:
    """400 for a unique-constraint violation; ``operation`` is sqlboiler's prefix, e.g.
    ``models: unable to insert into servers``."""
    return ApiError(400, "", f'{operation}: pq: duplicate key value violates unique constraint "{constraint}"')


def invalid_uuid_syntax(value: str) -> ApiError:
    """500 for a path id that is not a UUID where the reference server hands it to PostgreSQL unparsed."""
    return datastore_error(f'pq: invalid input syntax for type uuid: "{value}"')
