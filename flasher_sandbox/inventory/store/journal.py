"""The attribute journal (sandbox only): every write of a server's attribute, in commit order.

The reference server keeps no history of ``attributes`` (a PUT replaces ``data``), so whose write replaced whose
cannot be told from it afterwards. Tests of concurrent writers (operators and flasher replicas) need exactly that,
so the sandbox appends one row per create, replace and delete, in the same transaction as the write: the
journal's order is the order in which the writes took effect.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import Connection, insert, select

from flasher_sandbox.inventory import schema
from flasher_sandbox.inventory.gojson import load_stored, store_text
from flasher_sandbox.inventory.times import now_us

Op = Literal["create", "replace", "delete"]

_JOURNAL = schema.attribute_journal
#: The most entries one read returns (page on with ``after``).
MAX_ENTRIES = 10_000


def record(conn: Connection, server_id: str, namespace: str, *, op: Op, data: Any, agent: str) -> None:
    """Append one write (``data`` is ignored for a delete) to the journal, in the caller's transaction."""
    conn.execute(
        insert(_JOURNAL).values(
            server_id=server_id,
            namespace=namespace,
            op=op,
            data=None if op == "delete" else store_text(data),
            agent=agent[:200],
            at=now_us(),
        )
    )


def entries(
    conn: Connection,
    *,
    server_id: str | None = None,
    namespace: str | None = None,
    after: int = 0,
    limit: int = MAX_ENTRIES,
) -> list[dict[str, Any]]:
    """Journal entries with ``seq`` greater than ``after``, oldest first, optionally of one server and namespace:
    ``{"seq", "server", "namespace", "op", "data", "agent", "at"}`` (``at`` in microseconds since the epoch)."""
    query = select(_JOURNAL).where(_JOURNAL.c.id > after)
    if server_id is not None:
        query = query.where(_JOURNAL.c.server_id == server_id)
    if namespace is not None:
        query = query.where(_JOURNAL.c.namespace == namespace)
    rows = conn.execute(query.order_by(_JOURNAL.c.id).limit(min(max(limit, 1), MAX_ENTRIES)))
    return [
        {
            "seq": row.id,
            "server": row.server_id,
            "namespace": row.namespace,
            "op": row.op,
            "data": None if row.data is None else load_stored(row.data),
            "agent": row.agent,
            "at": row.at,
        }
        for row in rows
    ]
