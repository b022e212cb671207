"""The status writer: how a running task's status reaches its attribute in the inventory.

The install steps (:mod:`flasher.install`) and the server-control actions (:mod:`flasher.control`) each run
one claimed task against one server. They report through a :class:`StatusWriter`, which owns the task
attribute in the inventory for the duration of the run (:mod:`flasher.task.run` has the rest of the run's
contract: the context a runner gets and the result it returns).

Status writes follow three rules:

* **Fenced.** Every write first checks the task's lease (:class:`flasher.task.fence.Fence`); a worker that lost
  it gets :class:`~flasher.task.fence.LeaseLostError` and writes nothing more.
* **Owned.** Every write re-reads the attribute first (the first one may check the attribute its caller read just
  before, ``just_read``, within :data:`JUST_READ_FOR` seconds of that read, ``just_read_at``: the claim's read of
  the server). If it no longer
  holds this task (its ``taskID`` or ``createdAt`` differs — the latter: the same request written again and admitted
  anew —, the operator wrote a new request — status ``""``/``requested`` — or deleted the attribute, or wrote
  something that does not parse, or the task ended with a status other than this writer's own final one: an ended
  task never becomes ``active`` again), the writer raises :class:`TaskReplacedError` instead of overwriting the
  operator's words. ``"cancel": true`` written by the operator while the task runs is taken over into the task, so
  it is not lost by the write and the runner sees it.
* **Never blocking the work.** A progress write that fails because the inventory is unavailable is kept and
  written with the next one; only :meth:`StatusWriter.finish` insists, retrying for the ``inventory_write``
  step's timeout while the service keeps the lease alive. Progress is coalesced (at most one write per
  ``min_interval``), and a change made while a write is under way goes with the next one instead of waiting.

The window between the re-read and the write (one inventory round trip) is the only time an operator's
concurrent edit can be overwritten: Serverservice offers no compare-and-swap on attributes. The write is sent
once (never resent later than its re-read); the operator's tools read their write back and write it again when a
status write landed over it (:mod:`flasher.task.request`; ``docs/concurrency.md``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from loguru import logger

from flasher.inventory.errors import InventoryError, NotFoundError
from flasher.inventory.models import Attributes
from flasher.task.fence import Fence, FenceState
from flasher.task.model import (
    InstallTask,
    InventoryTask,
    ServerControlTask,
    TaskBase,
    TaskKind,
    TaskStatus,
    TaskValidationError,
    is_new,
    is_terminal,
    utc_now,
)

#: Seconds for which the attribute a caller read before making the writer (``just_read``) stands for the
#: re-read of the writer's first write, counted from the read (``just_read_at``): the claim reads the server and
#: writes ``active`` right after.
JUST_READ_FOR = 1.0


class TaskReplacedError(Exception):
    """The task attribute no longer holds this task: the operator replaced, re-requested or deleted it."""


class AttributeStore(Protocol):
    """The part of :class:`flasher.inventory.client.InventoryClient` the status writer uses."""

    def get_attribute(self, uuid: str, namespace: str) -> Attributes: ...

    def replace_attribute(self, uuid: str, namespace: str, data: dict[str, Any], *, once: bool = False) -> None: ...


T = TypeVar("T", InstallTask, ServerControlTask, InventoryTask)


class StatusWriter(Generic[T]):
    """Writes one running task's status into its attribute: fenced, owned, never blocking the work.

    ``task`` is the writer's copy of the task; mutate it only through :meth:`update` (the service's heartbeat
    thread writes concurrently). Thread-safe: the copy has its own lock, and one write (a re-read and a PUT) is
    made at a time, so a change never waits on the inventory unless it must be written now.

    ``min_interval`` (seconds; the service passes its heartbeat interval) coalesces progress: an :meth:`update`
    made sooner than that after the last write is kept and goes with the next write (the service's heartbeat
    writes it at the latest one interval later). Every write is a window in which an operator's concurrent write
    can be overwritten (see the module docstring); a run that reported each step as its own write spent most
    of its time in one. ``force=True`` writes at once (status changes the service makes).

    ``just_read``: the attribute's data as the caller read it right before (the claim's read of the server), with
    ``just_read_at``, the ``clock()`` reading taken when that read was sent (required with ``just_read``); the first
    write checks it instead of reading again when it comes within :data:`JUST_READ_FOR` seconds of the read.

    Raises from :meth:`update`, :meth:`heartbeat`, :meth:`refresh` and :meth:`finish`:
    :class:`~flasher.task.fence.LeaseLostError` (stop now, write nothing more), :class:`TaskReplacedError` (stop
    at the next safe point, write nothing more). Inventory errors are not raised: progress is kept and written
    later; :meth:`finish` returns ``False`` when it could not write the final status in time.
    """

    def __init__(
        self,
        inventory: AttributeStore,
        server_id: str,
        kind: TaskKind,
        task: T,
        fence: Fence,
        *,
        write_timeout: float = 300.0,
        retry_interval: float = 2.0,
        min_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        just_read: Any = None,
        just_read_at: float | None = None,
    ) -> None:
        if task.task_id is None:
            raise ValueError("a running task needs its taskID")
        if min_interval < 0:
            raise ValueError(f"min_interval: must be >= 0 seconds (got {min_interval!r})")
        if just_read is not None and just_read_at is None:
            raise ValueError("just_read needs just_read_at: the clock() reading when that read was sent")
        self._inventory = inventory
        self.server_id = server_id
        self.kind = kind
        self._task: T = task
        self._fence = fence
        self._write_timeout = write_timeout
        self._retry_interval = retry_interval
        self._min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._state = threading.RLock()  # the task copy and the counters below
        self._io = threading.Lock()  # one re-read and write at a time
        self._version = 0  # bumped by every change of the copy
        self._written = 0  # the version the inventory holds
        self._cancel = task.cancel
        self._replaced = False
        self._tried_at = float("-inf")  # clock() when a write was last tried
        # The attribute's data as the caller has just read it (the claim) and when it sent that read: the first
        # write within JUST_READ_FOR seconds of the read checks it instead of reading it again. Timed from the read,
        # not from here: whatever the caller did between the two (a slow answer, Redis calls) counts.
        self._just_read: tuple[Any, float] | None = None
        if just_read is not None and just_read_at is not None:
            self._just_read = (just_read, just_read_at)

    @property
    def task(self) -> T:
        """The writer's copy of the task (read-only use; mutate through :meth:`update`)."""
        return self._task

    @property
    def task_id(self) -> str:
        """The running task's id (``taskID``)."""
        assert self._task.task_id is not None
        return self._task.task_id

    @property
    def cancel_requested(self) -> bool:
        """True once the operator asked to cancel (in the attribute, or through the queue's lease), or the task's
        copy says ``cancel`` (written or not)."""
        return self._cancel or self._task.cancel

    @property
    def pending(self) -> bool:
        """True when the newest status has not reached the inventory yet."""
        with self._state:
            return self._version != self._written

    def check(self, *, min_remaining: float = 0.0) -> FenceState:
        """Check the lease without writing (before a step that writes to the BMC).

        Raises :class:`~flasher.task.fence.LeaseLostError` or, when an earlier write found the attribute
        replaced, :class:`TaskReplacedError`.
        """
        if self._replaced:
            raise TaskReplacedError(self._replaced_message())
        state = self._fence.check(min_remaining=min_remaining)
        if state.cancel_requested:
            self._cancel = True
        return FenceState(cancel_requested=self._cancel)

    def update(
        self,
        mutate: Callable[[T], None] | None = None,
        *,
        message: str | None = None,
        component: str | None = None,
        replace_last: bool = False,
        force: bool = False,
    ) -> FenceState:
        """Apply ``mutate`` to the task, add ``message`` (for ``component``), stamp ``updatedAt`` and write it
        (at once with ``force``; else when ``min_interval`` has passed since the last write and no write is
        under way, otherwise with the next write).

        ``replace_last`` replaces the newest message instead of adding one when it is for the same component
        (progress lines such as ``installing 2.7.3: Running 40%`` then ``... 60%``). Returns the fence state
        (``cancel_requested``; the lease is checked either way). An unavailable inventory is not an error here:
        the status is kept and written with the next update.
        """
        with self._state:
            if mutate is not None:
                mutate(self._task)
            if message is not None:
                self._add_message(message, component, replace_last)
            self._task.updated_at = utc_now()
            self._version += 1
        if not force and self._clock() - self._tried_at < self._min_interval:
            return self.check()
        if not self._io.acquire(blocking=force):
            return self.check()  # another write is under way: this change goes with the next one
        try:
            return self._write()
        finally:
            self._io.release()

    def update_now(self, mutate: Callable[[T], None]) -> bool:
        """Apply ``mutate`` and write it at once, waiting until the write landed: ``True`` then, ``False`` when the
        inventory stayed unavailable for the ``write_timeout`` (retried every ``retry_interval``, as :meth:`finish`
        does, the service keeping the lease meanwhile). For a record that must be in the attribute before the
        caller goes on (an install's write-ahead). Raises what :meth:`update` raises."""
        with self._state:
            mutate(self._task)
            self._task.updated_at = utc_now()
            self._version += 1
            mine = self._version
        deadline = self._clock() + self._write_timeout
        while True:
            with self._io:  # not held between tries: the heartbeat (which extends the lease) goes on meanwhile
                if self._written < mine:
                    self._write()
                if self._written >= mine:
                    return True
            if self._clock() >= deadline:
                return False
            self._sleep(self._retry_interval)

    def heartbeat(self, *, if_older_than: float | None = None, blocking: bool = True) -> FenceState:
        """Move ``updatedAt`` (the inventory does not move an attribute's own timestamp on PUT) and write, with
        whatever changed since the last write.

        The service's heartbeat passes ``if_older_than`` (seconds: skip the beat when a write was tried more
        recently) and ``blocking=False`` (skip it while another write is under way), so it never queues behind
        the runner's writes on a slow inventory. A skipped beat returns the fence state known so far.
        """
        if not self._io.acquire(blocking=blocking):
            return FenceState(cancel_requested=self._cancel)
        try:
            if if_older_than is not None and self._clock() - self._tried_at < if_older_than:
                return FenceState(cancel_requested=self._cancel)
            with self._state:
                self._task.updated_at = utc_now()
                self._version += 1
            return self._write()
        finally:
            self._io.release()

    def refresh(self) -> FenceState:
        """Re-read the attribute without writing (at a safe point): raises :class:`TaskReplacedError` when it no
        longer holds this task, takes over an operator's ``"cancel": true``. An unavailable inventory is not an
        error (nothing is learnt); the lease is checked too."""
        state = self.check()
        try:
            current = self._inventory.get_attribute(self.server_id, self.kind.namespace).data
        except NotFoundError:
            self._replaced = True
            raise TaskReplacedError(self._replaced_message() + " (it was deleted)") from None
        except InventoryError as exc:
            logger.debug("attribute of task {} not re-read: {}", self.task_id, exc)
            return state
        self._take_over(self._owned(current))
        return FenceState(cancel_requested=self._cancel)

    def finish(self, status: TaskStatus, *, error: str | None = None, message: str | None = None) -> bool:
        """Write the final ``status`` (``success``, ``failed``, ``cancelled``) with ``error`` and ``message``.

        Retries an unavailable inventory until the ``inventory_write`` timeout; returns ``False`` if the
        status could not be written by then (the caller hands it to the service's pending writes).
        """
        with self._state:
            self._task.transition(status)
            self._task.set_error(error)
            if message is not None:
                self._add_message(message, None, False)
            self._version += 1
        deadline = self._clock() + self._write_timeout
        while True:
            with self._io:  # not held between tries: the heartbeat (which extends the lease) goes on meanwhile
                self._write()
                if not self.pending:
                    return True
            if self._clock() >= deadline:
                return False
            self._sleep(self._retry_interval)

    def final_attribute(self) -> dict[str, Any]:
        """The attribute data as the writer would write it now (for a write handed on after :meth:`finish`)."""
        with self._state:
            return self._task.to_attribute()

    # ------------------------------------------------------------------------------------------------------

    def _add_message(self, text: str, component: str | None, replace_last: bool) -> None:
        task = self._task
        if replace_last and task.messages and _component_of(task.messages[-1]) == component:
            task.messages = task.messages[:-1]
        task.add_message(text, component=component)

    def _replaced_message(self) -> str:
        return f"the {self.kind.namespace} attribute of server {self.server_id} no longer holds task {self.task_id}"

    def _write(self) -> FenceState:
        """One fenced, owned write of the task (the I/O lock held); an unavailable inventory leaves it
        :attr:`pending`."""
        state = self.check()
        self._tried_at = self._clock()
        try:
            self._merge_and_put()
        except InventoryError as exc:
            if isinstance(exc, NotFoundError) and exc.call.startswith("GET"):
                self._replaced = True
                raise TaskReplacedError(self._replaced_message() + " (it was deleted)") from None
            logger.warning("status of task {} not written yet: {}", self.task_id, exc)
        return state

    def _owned(self, current: Any) -> TaskBase:
        """The task ``current`` (the attribute's data) holds, when it is still this one; else marks the writer
        replaced and raises :class:`TaskReplacedError`."""
        try:
            theirs = self.kind.parse(current)
        except TaskValidationError:
            theirs = None
        with self._state:
            created, own_status = self._task.created_at, self._task.status
        if (
            theirs is None
            or theirs.task_id != self.task_id
            or theirs.created_at != created  # the same request, admitted anew: another task
            or is_new(theirs.status)
            or (is_terminal(theirs.status) and theirs.status is not own_status)  # ended, not by this writer
        ):
            self._replaced = True
            raise TaskReplacedError(self._replaced_message())
        return theirs

    def _take_over(self, theirs: TaskBase) -> None:
        """Take an operator's ``"cancel": true`` over into the copy (it goes with the next write)."""
        if theirs.cancel and not self._task.cancel:
            with self._state:
                self._task.cancel = True
                self._version += 1
            self._cancel = True

    def _current(self) -> Any:
        """The attribute's data: what the caller had just read, once and while it is fresh, else read now."""
        just, self._just_read = self._just_read, None
        if just is not None and self._clock() - just[1] <= JUST_READ_FOR:
            return just[0]
        return self._inventory.get_attribute(self.server_id, self.kind.namespace).data

    def _merge_and_put(self) -> None:
        theirs = self._owned(self._current())
        self._take_over(theirs)
        with self._state:
            data, version = self._task.to_attribute(), self._version
        # Sent once: a resend after a transient failure would land later than the re-read above, over whatever
        # an operator wrote meanwhile. The next write re-reads and tries again.
        self._inventory.replace_attribute(self.server_id, self.kind.namespace, data, once=True)
        with self._state:
            self._written = max(self._written, version)


def _component_of(line: str) -> str | None:
    """The component tag of a status message line (``<time> [bios] text`` → ``bios``), or ``None``."""
    parts = line.split(" ", 2)
    if len(parts) > 2 and parts[1].startswith("[") and parts[1].endswith("]"):
        return parts[1][1:-1]
    return None
