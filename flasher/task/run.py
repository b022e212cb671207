"""One run of a claimed task, as the service hands it to a runner and takes it back.

The install steps (:mod:`flasher.install`) and the server-control actions (:mod:`flasher.control`) each get a
:class:`RunContext` for one claimed task (the server, the :class:`~flasher.task.writer.StatusWriter` that owns
its attribute, the inventory, the settings, a way to open the BMC) and end with a :class:`RunResult` whose
:class:`Outcome` tells the service what to do with the task's lease: ack, retry, release, or nothing at all.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Generic, Protocol

from flasher import redact
from flasher.bmc.models import SystemIdentity
from flasher.config import Settings
from flasher.inventory.models import Server
from flasher.task.model import TaskKind
from flasher.task.writer import StatusWriter, T

if TYPE_CHECKING:
    from flasher.bmc import BMC
    from flasher.inventory.client import InventoryClient


class Outcome(StrEnum):
    """How a run ended, and so what the service does with the task's lease.

    ==========  ======================================================  =================================
    outcome     meaning                                                 lease
    ==========  ======================================================  =================================
    success     every step done; ``success`` written                    ack
    failed      a permanent failure; ``failed`` written with the error  ack
    cancelled   the operator cancelled; ``cancelled`` written            ack
    retry       a transient failure before anything changed on the BMC  fail with retry (the service
                (BMC unreachable at connect, inventory down); nothing   writes ``queued`` or, past the
                final written                                           attempts, ``failed``)
    released    shutdown reached a safe point; nothing final written    release (the service writes
                                                                        ``queued``)
    lost        the lease was lost; nothing may be written              nothing
    replaced    the attribute holds another request now                 ack (nothing written)
    ==========  ======================================================  =================================
    """

    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    RETRY = "retry"
    RELEASED = "released"
    LOST = "lost"
    REPLACED = "replaced"


@dataclass(frozen=True, slots=True)
class RunResult:
    """The end of one run: ``outcome`` and a one-line ``reason`` for operators (secrets already masked)."""

    outcome: Outcome
    reason: str = ""


class BMCOpener(Protocol):
    """Opens a session to a server's BMC: ``(address, username, password) -> BMC``.

    The service passes :class:`flasher.bmc.BMC` bound to ``settings.bmc``; tests may pass a counting wrapper.
    """

    def __call__(self, address: str, username: str, password: str) -> BMC: ...


@dataclass
class RunContext(Generic[T]):
    """Everything a runner (install steps, server-control action) gets for one claimed task.

    ``server`` is the server as listed by the poll (attributes included; components are read by the runner
    when it needs them). ``attempt`` counts from 1. ``stopping`` is set when the replica shuts down: the
    runner returns :attr:`Outcome.RELEASED` at its next safe point (never in the middle of a flash).
    """

    server: Server
    kind: TaskKind
    writer: StatusWriter[T]
    inventory: InventoryClient
    settings: Settings
    open_bmc: BMCOpener
    stopping: threading.Event
    attempt: int = 1

    @property
    def task(self) -> T:
        """The task as the writer holds it."""
        return self.writer.task

    def connect_bmc(self) -> BMC:
        """Open the server's BMC with the credentials the inventory holds for it, told to recognise the server's
        System by the server's serial and UUID (a BMC may list several Systems; :mod:`flasher.bmc.systems`).

        Raises ``ValueError`` when the inventory has no BMC address for the server, and the inventory's or the
        BMC driver's typed errors otherwise. The password is registered with :mod:`flasher.redact`.
        """
        address = self.server.bmc_address
        if not address:
            raise ValueError(
                f"server {self.server.uuid} has no BMC address (attribute sh.hollow.bmc_info, key address)"
            )
        credentials = self.inventory.get_bmc_credentials(str(self.server.uuid))
        password = credentials.password.get_secret_value()
        redact.register(password)
        bmc = self.open_bmc(address, credentials.username, password)
        bmc.identify_system(SystemIdentity(serial=self.server.serial, uuid=str(self.server.uuid)))
        return bmc
