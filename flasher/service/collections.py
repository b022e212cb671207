"""Re-collecting every server on ``service.inventory_interval``, spread over the interval, a few at a time.

Each server has its own point in the interval: ``sha256(uuid) mod interval`` seconds after each multiple of the
interval (Unix time), so a fleet's collections spread evenly and every replica agrees on them. A server is
*due* when that point passed since its last collection (the ``completedAt`` of its ``sh.hollow.flasher.inventory``
attribute; a server never collected is due at once). Every ``service.poll_interval`` seconds :meth:`
CollectionSchedule.tick` counts the inventory tasks open in the inventory (new, queued, running: one filtered
query per open status) and writes requests for the due servers, oldest point first, while fewer than
``service.inventory_concurrency`` are open. A request is an ordinary inventory task (``{"status": "requested",
"requester": "flasher (service.inventory_interval)", "scheduledFor": <the point>}``) that admission queues like
any other, so it waits for a server's install or server-control task; its content is the same on every replica,
and so is its ``taskID``.

The list of servers (those with a BMC address, ``sh.hollow.bmc_info``) is refreshed every quarter interval, at
most every 10 minutes; before writing, the server's inventory attribute is read again and left alone when it is
open or was collected since.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from loguru import logger

from flasher.config import Settings
from flasher.constants import BMC_INFO_NAMESPACE, INVENTORY_NAMESPACE
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError, NotFoundError
from flasher.service.poller import OPEN_STATUSES
from flasher.task.model import TaskStatus, TaskValidationError, is_terminal, parse_inventory_task, rfc3339

REQUESTER = "flasher (service.inventory_interval)"
#: The server list is refreshed at least this often (seconds).
MAX_REFRESH = 600.0


def offset(server_uuid: str, interval: float) -> float:
    """The server's point in the interval, in seconds after each multiple of ``interval`` (from its uuid)."""
    digest = int.from_bytes(hashlib.sha256(server_uuid.encode()).digest()[:8], "big")
    return (digest % int(interval * 1000)) / 1000.0 if interval >= 0.001 else 0.0


def due_point(server_uuid: str, interval: float, now: float) -> float:
    """The latest point of the server at or before ``now`` (Unix seconds)."""
    start = offset(server_uuid, interval)
    return now - ((now - start) % interval)


@dataclass
class TickReport:
    """What one tick did: requests ``written`` (server uuids), ``open`` tasks counted, ``due`` servers seen."""

    written: list[str] = field(default_factory=list)
    open: int = 0
    due: int = 0
    errors: list[str] = field(default_factory=list)


class CollectionSchedule:
    """The ``service.inventory_interval`` schedule of one replica (off when the interval is 0)."""

    def __init__(
        self,
        inventory: InventoryClient,
        settings: Settings,
        *,
        clock: Callable[[], float] = lambda: datetime.now(UTC).timestamp(),
    ) -> None:
        self.inventory = inventory
        self.settings = settings
        self.clock = clock
        self.interval = settings.service.inventory_interval
        self._servers: list[str] = []
        self._listed_at: float | None = None
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """True when ``service.inventory_interval`` is set."""
        return self.interval > 0

    def _refresh(self, now: float) -> None:
        every = min(self.interval / 4, MAX_REFRESH)
        if self._listed_at is not None and now - self._listed_at < every:
            return
        servers = self.inventory.list_servers(attr=[BMC_INFO_NAMESPACE], facility=self.settings.inventory.facility)
        self._servers = sorted(str(s.uuid) for s in servers)
        self._listed_at = now

    def _open(self) -> set[str]:
        found: set[str] = set()
        for status in OPEN_STATUSES:
            query = f"{INVENTORY_NAMESPACE}~status~eq~{status}"
            found |= {
                str(s.uuid)
                for s in self.inventory.list_servers(attr=[query], facility=self.settings.inventory.facility)
            }
        return found

    def _last(self, server_uuid: str) -> tuple[float | None, bool] | None:
        """``(last collection time, open)`` of the server's inventory attribute; ``(None, False)`` without one;
        ``None`` when it does not parse (left to admission to fail it)."""
        try:
            data = self.inventory.get_attribute(server_uuid, INVENTORY_NAMESPACE).data
        except NotFoundError:
            return None, False
        try:
            task = parse_inventory_task(data)
        except TaskValidationError:
            return None
        if not is_terminal(task.status):
            return None, True
        stamp = task.completed_at or task.updated_at
        return (stamp.timestamp() if stamp else None), False

    def tick(self) -> TickReport:
        """Write the requests that are due now (module docstring). Never raises: errors are reported."""
        report = TickReport()
        if not self.enabled or not self._lock.acquire(blocking=False):
            return report
        try:
            now = self.clock()
            self._refresh(now)
            busy = self._open()
            report.open = len(busy)
            room = self.settings.service.inventory_concurrency - len(busy)
            points = sorted((due_point(uuid, self.interval, now), uuid) for uuid in self._servers if uuid not in busy)
            for point, uuid in points:
                if room <= 0:
                    break
                seen = self._last(uuid)
                if seen is None or seen[1] or (seen[0] is not None and seen[0] >= point):
                    continue
                report.due += 1
                data = {
                    "status": TaskStatus.REQUESTED.value,
                    "requester": REQUESTER,
                    "scheduledFor": rfc3339(datetime.fromtimestamp(point, UTC).replace(microsecond=0)),
                }
                self.inventory.upsert_attribute(uuid, INVENTORY_NAMESPACE, data)
                report.written.append(uuid)
                room -= 1
            if report.written:
                logger.info("inventory schedule: {} collections requested ({} open)", len(report.written), report.open)
        except InventoryError as exc:
            report.errors.append(str(exc))
            logger.warning("inventory schedule: {}", exc)
        finally:
            self._lock.release()
        return report

    def start(self) -> None:
        """Tick every ``service.poll_interval`` seconds in a background thread (nothing when disabled)."""
        if not self.enabled:
            return
        scheduler = BackgroundScheduler(daemon=True)
        scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=self.settings.service.poll_interval),
            id="inventory-schedule",
            coalesce=True,
            max_instances=1,
        )
        scheduler.start()
        self._scheduler = scheduler

    def stop(self) -> None:
        """Stop ticking (a tick in progress is waited for)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
