"""Run one claimed server-control task: connect to the BMC, perform the action, write the outcome.

The worker pool calls :func:`run_server_control` with a :class:`~flasher.task.run.RunContext` for a task of
kind :attr:`~flasher.task.model.TaskKind.SERVER_CONTROL` and maps the :class:`~flasher.task.run.RunResult` to the
lease:

=======================================================  ==========================================  ========
situation                                                 written into the attribute                  outcome
=======================================================  ==========================================  ========
the action succeeded                                      flipflop's messages, ``success``            success
the BMC refused, failed or never reached the state        the message and ``error``, ``failed``       failed
(in time), bad credentials, no BMC address
``cancel`` before anything was changed on the BMC         ``cancelled``                               cancelled
BMC unreachable at connect, inventory unavailable         a message, nothing final                    retry
the replica stops before anything was changed             nothing                                     released
the lease was lost (:class:`~flasher.task.fence.LeaseLostError`)  nothing more                          lost
the attribute holds another request                       nothing more                                replaced
=======================================================  ==========================================  ========

Once a request that changes something has been sent to the BMC, the action runs to its end (every wait is
bounded by ``settings.control``): a cancel or a shutdown is no longer honoured, because re-running a power
cycle or a BMC reset is not harmless. Every request that changes something on the BMC is preceded by a fence
check. When the final status cannot be written in time (:meth:`~flasher.task.writer.StatusWriter.finish` returns
``False``), the writer stays ``pending`` with :meth:`~flasher.task.writer.StatusWriter.final_attribute` for the
service to write later; the outcome is returned all the same.
"""

from __future__ import annotations

import time

from loguru import logger

from flasher.bmc import BMC, BMCError, BMCServerError, BMCTimeoutError, BMCUnreachableError
from flasher.bmc.pdu import OUTLET_ACTIONS, Outlet, PDUError, check_outlet_url
from flasher.constants import PDU_OUTLET_NAMESPACE
from flasher.control import messages
from flasher.control.actions import ActionFailedError, ActionRun, perform
from flasher.control.provision import ProvisionRun, provision
from flasher.inventory.errors import InventoryError, NotFoundError, UnavailableError
from flasher.logs import task_context
from flasher.metrics import STEP_DURATION
from flasher.task.fence import LeaseLostError
from flasher.task.model import ControlAction, ServerControlTask, TaskStatus
from flasher.task.run import Outcome, RunContext, RunResult
from flasher.task.writer import TaskReplacedError


class _StopError(Exception):
    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


def run_server_control(ctx: RunContext[ServerControlTask]) -> RunResult:
    """Run the server-control task of ``ctx`` (table in the module docstring); never raises for a BMC or
    inventory failure. Unexpected errors (bugs) propagate to the worker, which fails the task with them."""
    with task_context(str(ctx.server.uuid), ctx.writer.task_id):
        try:
            return _ControlRun(ctx).run()
        except LeaseLostError as exc:
            logger.warning("lease lost; stopping without another write: {}", exc)
            return RunResult(Outcome.LOST, str(exc) or "the lease was lost")
        except TaskReplacedError as exc:
            logger.warning("{}; stopping without another write", exc)
            return RunResult(Outcome.REPLACED, str(exc))


class _ControlRun:
    """One run of one task (the state between the steps of :func:`run_server_control`)."""

    def __init__(self, ctx: RunContext[ServerControlTask]) -> None:
        self.ctx = ctx
        self.writer = ctx.writer
        #: True once a request that may change something was sent to the BMC.
        self.changed = False

    def guard(self) -> None:
        """The fence check before a BMC write; before the first one, also the cancel and shutdown checks."""
        self.writer.check()
        if not self.changed:
            self.writer.refresh()  # the attribute as it is now: an operator's cancel or new request stops it here
            self.not_started_checks()
        self.changed = True

    def progress(self, text: str) -> None:
        self.writer.update(message=text)

    def run(self) -> RunResult:
        task = self.writer.task
        try:
            self.not_started_checks()
            self.writer.update(_activate, message=messages.running(task.action.value, task.action_parameter))
            bmc = self.connect()
            if isinstance(bmc, RunResult):
                return bmc
            with bmc:
                return self.perform(bmc)
        except _StopError as stop:
            if stop.outcome is Outcome.CANCELLED:
                self.finish(TaskStatus.CANCELLED, message=stop.reason)
            else:
                logger.info("{}", stop.reason)
            return RunResult(stop.outcome, stop.reason)

    def not_started_checks(self) -> None:
        """While nothing was changed on the BMC: a cancel ends the run ``cancelled``, a shutdown ``released``."""
        if self.writer.cancel_requested:
            raise _StopError(Outcome.CANCELLED, messages.CANCELLED_BEFORE_START)
        if self.ctx.stopping.is_set():
            raise _StopError(Outcome.RELEASED, "the replica is stopping; the action had not started")

    def connect(self) -> BMC | RunResult:
        """The BMC session, or the result when there is none: unreachable or inventory down → retry (with a
        message), anything else → failed."""
        try:
            return self.ctx.connect_bmc()
        except (BMCUnreachableError, BMCTimeoutError, UnavailableError) as exc:
            if isinstance(exc, BMCUnreachableError):
                through_pdu = self.pdu_fallback(exc)
                if through_pdu is not None:
                    return through_pdu
            reason = messages.failure(messages.ERR_CONNECT, exc)
            self.progress(f"{reason} (will retry)")
            return RunResult(Outcome.RETRY, reason)
        except (BMCError, InventoryError, ValueError) as exc:
            return self.fail(messages.failure(messages.ERR_CONNECT, exc))

    def pdu_fallback(self, unanswered: BMCUnreachableError) -> RunResult | None:
        """``set_power_state`` through the server's PDU outlet (:mod:`flasher.bmc.pdu`) when ``pdu.fallback`` is on,
        the action is one a PDU can do and the inventory names the outlet; ``None`` (no fallback) otherwise.

        Cutting a server's power is the last resort: only when the BMC gave no answer at all (an HTTP 5xx is a BMC
        that is alive, perhaps flashing itself: :class:`~flasher.bmc.errors.BMCServerError`) and only on the task's
        last attempt (``queue.max_attempts``), the earlier ones having retried the BMC. An inventory that cannot say
        which outlet (any :class:`~flasher.inventory.errors.InventoryError` but a 404, which means none) is
        ``retry``: nothing was changed. Whatever the PDU does wrong, a non-JSON answer included, is a
        :class:`~flasher.bmc.pdu.PDUError` and fails the task saying so."""
        task = self.writer.task
        parameter = task.action_parameter or ""
        if not self.ctx.settings.pdu.fallback or isinstance(unanswered, BMCServerError):
            return None
        if self.ctx.attempt < self.ctx.settings.queue.max_attempts:
            logger.info(
                "the BMC did not answer (attempt {} of {}): retrying the BMC before the PDU fallback",
                self.ctx.attempt,
                self.ctx.settings.queue.max_attempts,
            )
            return None
        if task.action is not ControlAction.SET_POWER_STATE or parameter not in OUTLET_ACTIONS:
            return None
        try:
            data = self.ctx.inventory.get_attribute(str(self.ctx.server.uuid), PDU_OUTLET_NAMESPACE).data
        except NotFoundError:
            logger.info("the BMC did not answer and the inventory names no PDU outlet for the server")
            return None
        except InventoryError as exc:  # nothing was changed: try again, as when the inventory fails at connect
            reason = f"the BMC did not answer ({unanswered}); the PDU outlet could not be read from the inventory"
            reason += f": {exc}"
            self.progress(f"{reason} (will retry)")
            return RunResult(Outcome.RETRY, reason)
        try:
            url = check_outlet_url(data.get("outlet") if isinstance(data, dict) else None)
        except ValueError as exc:
            return self.fail(f"the BMC did not answer ({unanswered}); no PDU fallback: {exc}")
        self.guard()
        self.progress(f"the BMC did not answer; power {parameter} through PDU outlet {url}")
        outlet = Outlet(url, self.ctx.settings.pdu)
        try:
            state = outlet.power_control(parameter)
        except PDUError as exc:
            return self.fail(f"the BMC did not answer ({unanswered}); the PDU fallback failed: {exc}")
        finally:
            outlet.close()
        final = f"power {parameter} done through PDU outlet {url} (the BMC did not answer); outlet {state}"
        self.finish(TaskStatus.SUCCESS, message=final)
        return RunResult(Outcome.SUCCESS, final)

    def perform(self, bmc: BMC) -> RunResult:
        task = self.writer.task
        run = ActionRun(
            bmc=bmc,
            timeouts=self.ctx.settings.control,
            poll=self.ctx.settings.bmc.poll_interval,
            progress=self.progress,
            guard=self.guard,
        )
        started = time.monotonic()
        extra = ProvisionRun(self.ctx.inventory, str(self.ctx.server.uuid), self.ctx.settings, check=self.writer.check)
        try:
            final = perform(task, run, lambda: provision(task, run, extra))
        except ActionFailedError as exc:
            self._observe(task, started)
            return self.fail(str(exc))
        self._observe(task, started)
        self.finish(TaskStatus.SUCCESS, message=final)
        return RunResult(Outcome.SUCCESS, final)

    def _observe(self, task: ServerControlTask, started: float) -> None:
        STEP_DURATION.labels(step=task.action.value, vendor=self.ctx.server.vendor or "unknown", component="-").observe(
            time.monotonic() - started
        )

    def fail(self, reason: str) -> RunResult:
        logger.warning("server-control task failed: {}", reason)
        self.finish(TaskStatus.FAILED, error=reason, message=reason)
        return RunResult(Outcome.FAILED, reason)

    def finish(self, status: TaskStatus, *, error: str | None = None, message: str) -> None:
        if not self.writer.finish(status, error=error, message=message):
            logger.warning("final status {} not written yet; the service keeps it for later", status.value)


def _activate(task: ServerControlTask) -> None:
    """Move a claimed task to ``active`` (the worker may have done so already)."""
    if task.status is not TaskStatus.ACTIVE:
        task.transition(TaskStatus.ACTIVE)
