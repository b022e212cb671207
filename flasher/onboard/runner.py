"""Run one inventory task (``sh.hollow.flasher.inventory``): read the BMC's hardware, write it into the inventory.

The worker pool calls :func:`run_inventory` with a :class:`~flasher.task.run.RunContext` for a task of kind
:attr:`~flasher.task.model.TaskKind.INVENTORY`:

=====================================================  ========================================  ========
situation                                              written into the attribute                outcome
=====================================================  ========================================  ========
collected and written                                  what changed, what the BMC lacks,         success
                                                       ``success``
BMC unreachable at connect or while reading,           a message, nothing final                  retry
inventory unavailable
refused credentials, no BMC address, a BMC without     the reason and ``error``, ``failed``       failed
a System and a Manager
``cancel`` or shutdown before the first write          ``cancelled`` / nothing                   cancelled
                                                                                                 / released
=====================================================  ========================================  ========

Nothing is written to the BMC: collecting only reads. Inventory writes are fenced (``writer.check()`` before
each), so a task whose lease was lost writes nothing more. :func:`collect_server` is the same work without a
task (``flasher onboard`` uses it for a server it has just created).
"""

from __future__ import annotations

from collections.abc import Callable

from loguru import logger

from flasher.bmc import BMC, BMCAuthError, BMCError, BMCTimeoutError, BMCUnreachableError
from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import InventoryError, UnavailableError
from flasher.logs import task_context
from flasher.onboard.collect import Collection, collect
from flasher.onboard.write import InventoryWriter, WriteReport
from flasher.task.fence import LeaseLostError
from flasher.task.model import InventoryTask, TaskStatus
from flasher.task.run import Outcome, RunContext, RunResult
from flasher.task.writer import TaskReplacedError

#: Notes written into the task's messages at most (the attribute keeps the newest 10 messages).
MAX_NOTES = 5


def collect_server(
    bmc: BMC, inventory: InventoryClient, server_uuid: str, *, check: Callable[[], object] = lambda: None
) -> tuple[Collection, WriteReport]:
    """Read ``bmc``'s hardware and write it for ``server_uuid``; returns what was collected and written.

    Raises :class:`~flasher.bmc.BMCError` (the BMC failed while reading) and
    :class:`~flasher.inventory.errors.InventoryError`; a collection with no System and no Manager at all raises
    :class:`~flasher.bmc.BMCError` before anything is written (that BMC is not a server's).
    """
    snapshot = bmc.read_hardware()
    collection = collect(snapshot)
    if not any(c.slug in ("bmc", "bios") for c in collection.components):
        raise BMCError(f"BMC {bmc.base_url} lists neither a System nor a Manager: nothing to collect")
    report = InventoryWriter(inventory).write(server_uuid, collection, check=check)
    return collection, report


def describe(collection: Collection, report: WriteReport) -> str:
    """The final message: ``collected dell r6515 DL000001: 10 components: 10 added, ...``."""
    who = " ".join(x for x in (collection.vendor, collection.model, collection.serial) if x) or "the server"
    return f"collected {who}: {report.summary()}"


def run_inventory(ctx: RunContext[InventoryTask]) -> RunResult:
    """Run the inventory task of ``ctx`` (table in the module docstring); never raises for a BMC or inventory
    failure. Unexpected errors (bugs) propagate to the worker, which fails the task with them."""
    server_id = str(ctx.server.uuid)
    writer = ctx.writer
    with task_context(server_id, writer.task_id):
        try:
            return _run(ctx)
        except LeaseLostError as exc:
            logger.warning("lease lost; stopping without another write: {}", exc)
            return RunResult(Outcome.LOST, str(exc) or "the lease was lost")
        except TaskReplacedError as exc:
            return RunResult(Outcome.REPLACED, str(exc))


def _run(ctx: RunContext[InventoryTask]) -> RunResult:
    writer = ctx.writer
    if writer.cancel_requested:
        writer.finish(TaskStatus.CANCELLED, message="cancelled before the collection started")
        return RunResult(Outcome.CANCELLED, "cancelled before the collection started")
    if ctx.stopping.is_set():
        return RunResult(Outcome.RELEASED, "the replica is stopping; the collection had not started")
    if writer.task.status is not TaskStatus.ACTIVE:
        writer.update(lambda t: t.transition(TaskStatus.ACTIVE))
    writer.update(message=f"collecting the hardware from the BMC at {ctx.server.bmc_address or '?'}")
    try:
        bmc = ctx.connect_bmc()
    except (BMCUnreachableError, BMCTimeoutError, UnavailableError) as exc:
        reason = f"error connecting to the BMC: {exc}"
        writer.update(message=f"{reason} (will retry)")
        return RunResult(Outcome.RETRY, reason)
    except (BMCError, InventoryError, ValueError) as exc:
        return _fail(ctx, f"error connecting to the BMC: {exc}")
    try:
        with bmc:
            collection, report = collect_server(bmc, ctx.inventory, str(ctx.server.uuid), check=writer.check)
    except (BMCUnreachableError, BMCTimeoutError, UnavailableError) as exc:
        reason = f"collection interrupted: {exc}"
        writer.update(message=f"{reason} (will retry)")
        return RunResult(Outcome.RETRY, reason)
    except BMCAuthError as exc:
        return _fail(ctx, f"the BMC refused the session: {exc}")
    except (BMCError, InventoryError, ValueError) as exc:
        return _fail(ctx, f"collection failed: {exc}")
    for note in collection.notes[:MAX_NOTES]:
        writer.update(message=f"skipped: {note}")
    if len(collection.notes) > MAX_NOTES:
        writer.update(message=f"skipped: {len(collection.notes) - MAX_NOTES} more (see the service log)")
        for note in collection.notes[MAX_NOTES:]:
            logger.info("collection note: {}", note)
    final = describe(collection, report)
    if not writer.finish(TaskStatus.SUCCESS, message=final):
        logger.warning("final status success not written yet; the service keeps it for later")
    return RunResult(Outcome.SUCCESS, final)


def _fail(ctx: RunContext[InventoryTask], reason: str) -> RunResult:
    logger.warning("inventory task failed: {}", reason)
    if not ctx.writer.finish(TaskStatus.FAILED, error=reason, message=f"failed: {reason}"):
        logger.warning("final status failed not written yet; the service keeps it for later")
    return RunResult(Outcome.FAILED, reason)
