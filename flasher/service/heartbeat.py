"""The heartbeat of one running task: the lease extended and the attribute's ``updatedAt`` moved, every interval.

The lease is extended first: losing the inventory must not lose the lease. A replaced attribute stops the writes
but not the lease (the runner still needs it to reach a safe point); a lost lease stops both.
"""

from __future__ import annotations

import threading
from typing import Any

from loguru import logger

from flasher.logs import task_context
from flasher.queue import Lease, LeaseLostError, QueueError, TaskQueue
from flasher.task.writer import StatusWriter, TaskReplacedError


class Heartbeat:
    """A daemon thread beating every ``interval`` seconds for ``lease`` until :meth:`stop`."""

    def __init__(self, queue: TaskQueue, lease: Lease, writer: StatusWriter[Any], interval: float) -> None:
        self.queue = queue
        self.lease = lease
        self.writer = writer
        self.interval = interval
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{lease.server_id}", daemon=True)

    def start(self) -> Heartbeat:
        """Start beating; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and wait for the thread (at most one beat)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        writes = True
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
                    continue
                if not writes:
                    continue
                try:
                    self.writer.heartbeat()
                except LeaseLostError:
                    self.lost = True
                    return
                except TaskReplacedError:
                    writes = False
