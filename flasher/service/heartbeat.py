"""The heartbeat of one claimed task: two loops that never wait on each other.

* **The lease** is extended every ``interval`` seconds from the moment of the claim, by a thread that talks to
  Redis only. A slow or unavailable inventory can never cost the lease: nothing in this loop waits on it
  (issue 12: with every inventory call taking 4 s, a loop that also wrote the attribute fell behind the lease
  and live workers lost their tasks).
* **The attribute's** ``updatedAt`` (the heartbeat other replicas read: the inventory does not move an
  attribute's own timestamp on PUT) is moved by a second thread once the task's
  :class:`~flasher.task.writer.StatusWriter` exists (:meth:`Heartbeat.attach`). It never queues behind the
  runner's writes: a beat is skipped while a status write is under way or one was written within the interval.
  A slow inventory therefore delays status writes only.

A replaced attribute stops the attribute beat but not the lease (the runner still needs it to reach a safe
point); a lost lease stops both.
"""

from __future__ import annotations

import threading
from typing import Any

from loguru import logger

from flasher.logs import task_context
from flasher.queue import Lease, LeaseLostError, QueueError, TaskQueue
from flasher.task.writer import StatusWriter, TaskReplacedError


class Heartbeat:
    """Keeps ``lease`` every ``interval`` seconds until :meth:`stop`; beats ``writer``'s attribute once attached.

    ``writer`` may be given now or later through :meth:`attach` (the service starts the heartbeat at the claim,
    before it reads the inventory). :attr:`lost` turns true when Redis says the lease is gone. Thread-safe.
    """

    def __init__(
        self, queue: TaskQueue, lease: Lease, writer: StatusWriter[Any] | None = None, interval: float = 2.0
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval: must be > 0 seconds (got {interval!r})")
        self.queue = queue
        self.lease = lease
        self.interval = interval
        self.lost = False
        self._writer: StatusWriter[Any] | None = None
        self._stop = threading.Event()
        self._lease_thread = threading.Thread(target=self._keep_lease, name=f"lease-{lease.server_id}", daemon=True)
        self._beat_thread: threading.Thread | None = None
        if writer is not None:
            self.attach(writer)

    def start(self) -> Heartbeat:
        """Start keeping the lease (and beating the attribute, when a writer is attached); returns self."""
        self._lease_thread.start()
        if self._beat_thread is not None and not self._beat_thread.is_alive():
            self._beat_thread.start()
        return self

    def attach(self, writer: StatusWriter[Any]) -> None:
        """Beat ``writer``'s attribute from now on (at most one writer; ``RuntimeError`` for a second one)."""
        if self._writer is not None:
            raise RuntimeError("the heartbeat already beats a writer")
        self._writer = writer
        self._beat_thread = threading.Thread(
            target=self._beat, args=(writer,), name=f"beat-{self.lease.server_id}", daemon=True
        )
        if self._lease_thread.is_alive():
            self._beat_thread.start()

    def stop(self) -> None:
        """Stop both loops and wait for them (the attribute beat may finish one write first)."""
        self._stop.set()
        current = threading.current_thread()
        for thread in (self._lease_thread, self._beat_thread):
            if thread is not None and thread.is_alive() and thread is not current:
                thread.join()

    def _keep_lease(self) -> None:
        with task_context(self.lease.server_id, self.lease.task_id):
            while not self._stop.wait(self.interval):
                try:
                    self.queue.extend(self.lease)
                except LeaseLostError as exc:
                    logger.warning("heartbeat: {}", exc)
                    self.lost = True
                    return
                except QueueError as exc:
                    logger.warning("heartbeat: lease not extended (will try again): {}", exc)

    def _beat(self, writer: StatusWriter[Any]) -> None:
        with task_context(self.lease.server_id, self.lease.task_id):
            while not self._stop.wait(self.interval):
                if self.lost:
                    return
                try:
                    writer.heartbeat(if_older_than=self.interval, blocking=False)
                except LeaseLostError:
                    return  # the lease loop or the runner says so
                except TaskReplacedError:
                    return
