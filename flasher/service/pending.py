"""Final statuses the inventory did not take in time, kept by the worker pool and written once it is back.

A final status is written under the lease; when the inventory stays down past the ``inventory_write`` timeout
the pool acks the lease anyway (the work is done; holding the lease would hold a worker) and keeps the status
here. Without a lease, a pending write is made only while the attribute still shows this run's own state:

* the same ``taskID`` and ``createdAt`` (the same request admitted anew is another task), and
* ``status`` ``queued`` (the run's ``active`` never reached the inventory), or ``active`` with this run's
  ``worker`` and ``attempts`` (nobody claimed the task since).

Anything else (the operator's new request, another replica's run of the task, a deleted attribute) means the
write is dropped: the inventory has moved on. The window between the re-read and the write is one round trip.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from loguru import logger

from flasher.inventory.errors import InventoryError, NotFoundError
from flasher.task.model import TaskKind, TaskStatus, TaskValidationError
from flasher.task.writer import AttributeStore


@dataclass(frozen=True)
class PendingWrite:
    """One final status to write: the attribute ``data`` of ``kind``'s task ``task_id`` on ``server_id``, from a
    run by ``worker`` on attempt ``attempts``."""

    server_id: str
    kind: TaskKind
    task_id: str
    worker: str | None
    attempts: int
    data: dict[str, Any]


class PendingWrites:
    """The pool's pending final statuses (thread-safe). :meth:`flush` writes those it can."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writes: dict[tuple[str, str], PendingWrite] = {}

    def add(self, write: PendingWrite) -> None:
        """Keep ``write`` (replacing an older one for the same server and kind)."""
        with self._lock:
            self._writes[(write.server_id, write.kind.value)] = write
        logger.bind(server_id=write.server_id, task_id=write.task_id).warning(
            "final status {} kept for later: the inventory is unavailable", write.data.get("status")
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._writes)

    def flush(self, inventory: AttributeStore) -> int:
        """Try every pending write; returns how many are still pending (the inventory is still down)."""
        with self._lock:
            writes = list(self._writes.values())
        for write in writes:
            try:
                done = _write(inventory, write)
            except InventoryError as exc:
                logger.debug("pending final status of task {} not written yet: {}", write.task_id, exc)
                continue
            with self._lock:
                if self._writes.get((write.server_id, write.kind.value)) is write:
                    del self._writes[(write.server_id, write.kind.value)]
            if done:
                logger.bind(server_id=write.server_id, task_id=write.task_id).info(
                    "pending final status {} written", write.data.get("status")
                )
        return len(self)


def _write(inventory: AttributeStore, write: PendingWrite) -> bool:
    """Write ``write`` if the attribute still shows the run's state; False when it was dropped instead."""
    bound = logger.bind(server_id=write.server_id, task_id=write.task_id)
    try:
        current = inventory.get_attribute(write.server_id, write.kind.namespace).data
    except NotFoundError:
        bound.warning("pending final status dropped: the attribute was deleted")
        return False
    try:
        theirs = write.kind.parse(current)
    except TaskValidationError:
        bound.warning("pending final status dropped: the attribute no longer holds a valid task")
        return False
    try:
        created = write.kind.parse(write.data).created_at
    except TaskValidationError:
        created = None
    ours = (
        theirs.task_id == write.task_id
        and theirs.created_at == created
        and (
            theirs.status is TaskStatus.QUEUED
            or (
                theirs.status is TaskStatus.ACTIVE
                and theirs.worker == write.worker
                and theirs.attempts == write.attempts
            )
        )
    )
    if not ours:
        bound.warning(
            "pending final status dropped: the attribute moved on (task {}, status {}, worker {})",
            theirs.task_id,
            theirs.status.value or '""',
            theirs.worker,
        )
        return False
    inventory.replace_attribute(write.server_id, write.kind.namespace, write.data, once=True)
    return True
