"""The service: poller, rollout controller, worker pool, file server and HTTP endpoints of one flasher replica,
wired together.

:class:`Service` builds every part from :class:`~flasher.config.Settings`; :meth:`Service.run` starts them,
waits for SIGTERM or SIGINT, and shuts down in order: stop polling and ticking rollouts, stop claiming, let
running work reach a safe point within ``service.shutdown_grace`` (its leases are released, its tasks written
``queued`` for another replica), then stop the file server and the HTTP endpoints. It starts even when Redis
or the inventory is not reachable yet: ``/readyz`` says so, and the poller and workers keep trying.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import requests
from loguru import logger
from requests.adapters import HTTPAdapter

from flasher.asgiserver import BackgroundASGIServer
from flasher.bmc import BMC
from flasher.config import Settings
from flasher.control.runner import run_server_control
from flasher.events import EventPublisher
from flasher.install.runner import InstallRunner
from flasher.inventory.client import InventoryClient
from flasher.onboard.runner import run_inventory
from flasher.queue import TaskQueue
from flasher.rollout.controller import RolloutController
from flasher.rollout.slots import RolloutSlots
from flasher.service.admission import Admission
from flasher.service.collections import CollectionSchedule
from flasher.service.http import create_app
from flasher.service.poller import Poller
from flasher.service.worker import WorkerPool
from flasher.store.fileserver import FileServer
from flasher.store.store import FirmwareStore
from flasher.task.events import EventSink, NoEvents
from flasher.task.model import TaskKind


def _session(pool_size: int) -> requests.Session:
    """A requests session whose connection pool fits every worker thread and the poller at once."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class Service:
    """One flasher replica. Build with settings, then :meth:`run` (blocking) or :meth:`start`/:meth:`stop`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        service = settings.service
        self.worker_id = service.worker_id
        pool = service.concurrency + service.admission_concurrency + 4  # workers, admission threads, the rest
        self.inventory = InventoryClient(settings.inventory, session=_session(pool))
        self.queue = TaskQueue.from_settings(settings)
        download = settings.step("download")
        self.store = FirmwareStore(settings.store, attempts=download.attempts, backoff=download.backoff)
        self.fileserver = FileServer(settings.fileserver, self.store) if settings.fileserver.enabled else None
        self.events: EventSink = (
            EventPublisher(self.queue.client, key_prefix=settings.redis.key_prefix, maxlen=settings.events.maxlen)
            if settings.events.enabled
            else NoEvents()
        )
        self.admission = Admission(self.inventory, self.queue, settings, worker_id=self.worker_id, events=self.events)
        self.poller = Poller(self.inventory, self.queue, self.admission, settings)
        slots = RolloutSlots(
            self.queue.client, key_prefix=settings.redis.key_prefix, retry_deadline=settings.redis.retry_deadline
        )
        self.rollouts = RolloutController(
            self.inventory, slots, settings, worker_id=self.worker_id, admit=self.admission.admit_rollout_member
        )
        self.collections = CollectionSchedule(self.inventory, settings)

        def open_bmc(address: str, username: str, password: str) -> BMC:
            return BMC(address, username, password, settings=settings.bmc)

        self.pool = WorkerPool(
            self.queue,
            self.inventory,
            settings,
            {
                TaskKind.INSTALL: InstallRunner(self.store, self.fileserver),
                TaskKind.SERVER_CONTROL: run_server_control,
                TaskKind.INVENTORY: run_inventory,
            },
            open_bmc,
            worker_id=self.worker_id,
            rollouts=self.rollouts,
            events=self.events,
        )
        self.http = BackgroundASGIServer(
            create_app(
                liveness={"workers": self._workers_alive, "poller": self._poller_alive},
                readiness={"redis": self._redis_ready, "inventory": self._inventory_ready},
            ),
            service.http_host,
            service.http_port,
            name="flasher-http",
        )
        self._stop = threading.Event()

    # -- probes -------------------------------------------------------------------------------------------

    def _workers_alive(self) -> str | None:
        return None if self.pool.alive() else "a worker thread died"

    def _poller_alive(self) -> str | None:
        return None if self.poller.running else "the poller is not scheduled"

    def _redis_ready(self) -> str | None:
        try:
            return None if self.queue.ping() else "Redis did not answer PING"
        except Exception as exc:  # the probe reports, never raises
            return str(exc)

    def _inventory_ready(self) -> str | None:
        return None if self.inventory.ready() else "the inventory's readiness probe failed"

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the file server, the HTTP endpoints, the worker pool, the poller, the collection schedule
        (``service.inventory_interval``) and the rollout controller (in that order)."""
        logger.info(
            "flasher replica {} starting: inventory {}, {} workers, poll every {:.0f} s",
            self.worker_id,
            self.settings.inventory.url,
            self.settings.service.concurrency,
            self.settings.service.poll_interval,
        )
        if self.fileserver is not None:
            self.fileserver.start()
        self.http.start()
        self.pool.start()
        self.poller.start()
        self.collections.start()
        self.rollouts.start()

    def stop(self) -> bool:
        """Stop polling and claiming; give running tasks ``shutdown_grace`` seconds to reach a safe point;
        stop the servers. Returns True when every running task stopped in time."""
        logger.info("flasher replica {} stopping", self.worker_id)
        self.collections.stop()
        self.poller.stop()
        self.rollouts.stop()
        clean = self.pool.stop(self.settings.service.shutdown_grace)
        if self.fileserver is not None:
            self.fileserver.stop()
        self.http.stop()
        logger.info("flasher replica {} stopped{}", self.worker_id, "" if clean else " (some tasks still running)")
        return clean

    def request_stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Ask :meth:`run` to shut down (the SIGTERM/SIGINT handler)."""
        if signum is not None:
            logger.info("received {}: shutting down", signal.Signals(signum).name)
        self._stop.set()

    def run(self) -> int:
        """Start, wait for SIGTERM or SIGINT, stop. Returns the process exit status (0)."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.start()
        try:
            while not self._stop.wait(1.0):
                pass
        finally:
            self.stop()
        return 0
