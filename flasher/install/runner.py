"""The install runner: what a claimed install task does, for the service's worker pool.

:class:`InstallRunner` is called with a :class:`~flasher.task.run.RunContext` and returns a
:class:`~flasher.task.run.RunResult`; it never touches the queue. It

1. reads the server's components and plans the task again (:func:`~flasher.install.modes.build_plan`; a task that
   carries a ``mode`` is planned the same way as at admission);
2. runs the :class:`~flasher.install.engine.InstallEngine` with an :class:`AttributeReporter` (status, progress
   and each component's result written into the attribute under the lease) and the firmware store and file
   server (:class:`~flasher.install.images.StoreImages`);
3. writes the versions the BMC reports into the inventory's components where they differ from what the inventory
   holds (``set_installed_firmwares``: one request for all), retried under the ``inventory_write`` policy; not in a
   dry run;
4. writes the final status: ``success``, ``failed`` with ``error``, or ``cancelled``, with ``completedAt``.

Outcomes: an unplannable task (or a server without a BMC address) fails; the inventory or the BMC unreachable
before anything changed is ``retry``; a lost lease is ``lost`` (nothing written); a shutdown is ``released``; a
replaced attribute is ``replaced`` (nothing more written: the versions are recorded by the next run, which reads
them from the BMC again), also when the task ran to its end first: its result then reaches the new request's
messages through the service (:mod:`flasher.queue.handover`).
"""

from __future__ import annotations

import threading

from loguru import logger

from flasher.install.attribute import initial_power_of, prior_items, started, write_state
from flasher.install.engine import InstallEngine
from flasher.install.images import StoreImages
from flasher.install.modes import build_plan
from flasher.install.plan import PlanError
from flasher.install.state import EngineResult, InstallState, StopReason
from flasher.install.steps import Steps
from flasher.inventory.errors import InventoryError, UnavailableError
from flasher.inventory.models import Component
from flasher.logs import task_context
from flasher.store.fileserver import FileServer
from flasher.store.store import FirmwareStore
from flasher.task.fence import LeaseLostError
from flasher.task.model import InstallTask, TaskStatus
from flasher.task.run import Outcome, RunContext, RunResult
from flasher.task.writer import StatusWriter, TaskReplacedError

_FINAL_STATUS = {
    Outcome.SUCCESS: TaskStatus.SUCCESS,
    Outcome.FAILED: TaskStatus.FAILED,
    Outcome.CANCELLED: TaskStatus.CANCELLED,
}


class AttributeReporter:
    """The engine's :class:`~flasher.install.state.Reporter` for a claimed task: writes through ``writer``.

    A replaced attribute (:class:`~flasher.task.writer.TaskReplacedError`) is remembered, never raised: the engine
    learns it at its next safe point and nothing more is written. ``stopping`` is the service's shutdown event.
    """

    def __init__(self, writer: StatusWriter[InstallTask], stopping: threading.Event) -> None:
        self.writer = writer
        self.stopping = stopping
        self.replaced = False

    def fence(self) -> None:
        """Check the lease (``LeaseLostError`` when it is gone); notes a cancel and a replaced attribute."""
        try:
            self.writer.check()
        except TaskReplacedError:
            self.replaced = True

    def stop_reason(self) -> StopReason | None:
        """Replaced, cancelled (attribute or queue) or shutting down, in that order; ``None`` to go on.

        The attribute is re-read (not written: a write is a window in which an operator's write can be lost), so
        an operator's ``cancel: true`` or a replacing request is seen at this very safe point, not only at the
        next progress write.
        """
        if not self.replaced:
            try:
                self.writer.refresh()
            except TaskReplacedError:
                self.replaced = True
        self.fence()
        if self.replaced:
            return StopReason.REPLACED
        if self.writer.cancel_requested:
            return StopReason.CANCEL
        if self.stopping.is_set():
            return StopReason.SHUTDOWN
        return None

    def report(
        self,
        state: InstallState,
        message: str | None = None,
        *,
        component: str | None = None,
        replace_last: bool = False,
    ) -> None:
        """Write ``state`` and ``message`` into the attribute (kept for later when the inventory is down)."""
        if self.replaced:
            return
        try:
            self.writer.update(
                lambda task: write_state(task, state), message=message, component=component, replace_last=replace_last
            )
        except TaskReplacedError:
            self.replaced = True

    def persist(self, state: InstallState) -> bool:
        """Write ``state`` now and wait until it landed (:meth:`~flasher.task.writer.StatusWriter.update_now`);
        ``False`` when it could not (inventory unavailable until the write timeout, or the attribute replaced)."""
        if self.replaced:
            return False
        try:
            return self.writer.update_now(lambda task: write_state(task, state))
        except TaskReplacedError:
            self.replaced = True
            return False


class InstallRunner:
    """Runs claimed install tasks: ``runner(ctx) -> RunResult`` (the module docstring says how).

    ``store`` fetches and verifies images; ``fileserver`` serves them to BMCs that pull (``None``: push only).
    Both are shared by every task the pool runs.
    """

    def __init__(self, store: FirmwareStore, fileserver: FileServer | None) -> None:
        self.store = store
        self.fileserver = fileserver

    def __call__(self, ctx: RunContext[InstallTask]) -> RunResult:
        server_id = str(ctx.server.uuid)
        with task_context(server_id, ctx.writer.task_id):
            try:
                return self._run(ctx, server_id)
            except LeaseLostError as exc:
                return RunResult(Outcome.LOST, str(exc))
            except TaskReplacedError as exc:
                return RunResult(Outcome.REPLACED, str(exc))

    def _run(self, ctx: RunContext[InstallTask], server_id: str) -> RunResult:
        task = ctx.task
        try:
            components = ctx.inventory.list_components(server_id)
            plan = build_plan(task, ctx.server, components, ctx.inventory)
        except PlanError as exc:
            return _finish(ctx.writer, Outcome.FAILED, f"cannot plan the install: {exc}")
        except InventoryError as exc:
            return RunResult(Outcome.RETRY, f"inventory unavailable: {exc}")
        if not ctx.server.bmc_address:
            return _finish(
                ctx.writer,
                Outcome.FAILED,
                f"server {server_id} has no BMC address (attribute sh.hollow.bmc_info, key address)",
            )
        prior = prior_items(task, plan)
        if started(prior):
            ctx.writer.update(message=f"resuming (attempt {ctx.attempt}): re-reading the installed versions first")
        engine = InstallEngine(
            plan,
            connect=ctx.connect_bmc,
            images=StoreImages(self.store, self.fileserver),
            reporter=AttributeReporter(ctx.writer, ctx.stopping),
            settings=ctx.settings,
            dry_run=task.dry_run,
            prior=prior,
            initial_power=initial_power_of(task),
            vendor=ctx.server.vendor or "unknown",
            host_off=task.require_host_powered_off,
        )
        try:
            result = engine.run()
        except InventoryError as exc:  # the BMC's credentials could not be read: nothing changed yet
            return RunResult(Outcome.RETRY, f"inventory unavailable: {exc}")
        if result.outcome in (Outcome.LOST, Outcome.RETRY, Outcome.RELEASED, Outcome.REPLACED):
            return RunResult(result.outcome, result.error or result.summary)
        note = None if task.dry_run else _record_versions(ctx, components, result)
        return _finish(ctx.writer, result.outcome, result.error, summary=result.summary, note=note)


def _finish(
    writer: StatusWriter[InstallTask],
    outcome: Outcome,
    error: str | None,
    *,
    summary: str | None = None,
    note: str | None = None,
) -> RunResult:
    """Write the final status for ``outcome``; the service keeps it for later when the inventory is down."""
    status = _FINAL_STATUS[outcome]
    message = f"{status.value}: {summary or error or ''}".rstrip(": ")
    if note:
        message += f" ({note})"
    try:
        written = writer.finish(status, error=error, message=message)
    except TaskReplacedError:  # a new request replaced it while it ran to its end: that request reports it
        return RunResult(Outcome.REPLACED, f"ran to its end ({message}); its final status was not written")
    if not written:
        logger.warning("final status {} not written yet: the inventory is unavailable", status.value)
    return RunResult(outcome, error or summary or "")


def _record_versions(ctx: RunContext[InstallTask], components: list[Component], result: EngineResult) -> str | None:
    """Write the versions the BMC reports into the inventory's components where they differ; returns a note for
    the final message when some could not be written."""
    steps = Steps(ctx.settings, vendor=ctx.server.vendor or "unknown")
    by_uuid = {c.uuid: c for c in components}
    changed = [
        (by_uuid[uuid], version)
        for uuid, version in result.versions.items()
        if uuid in by_uuid and by_uuid[uuid].installed_firmware() != version
    ]
    if not changed:
        return None
    labels = [f"{c.component_type_slug} {v}" for c, v in changed]
    written, failed = [], []
    ctx.writer.check()
    try:  # one request for every component that changed
        steps.run(
            "inventory_write",
            lambda: ctx.inventory.set_installed_firmwares(str(ctx.server.uuid), changed),
            component=",".join(sorted({c.component_type_slug for c, _ in changed})),
            transient=(UnavailableError,),
        )
        written = labels
    except InventoryError as exc:
        logger.warning("installed versions {} not recorded in the inventory: {}", ", ".join(labels), exc)
        failed = labels
    if written:
        logger.info("inventory components updated: {}", ", ".join(written))
    if failed:
        return f"installed versions not recorded in the inventory: {', '.join(failed)}"
    return None
