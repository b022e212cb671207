"""Following a BMC task to its end, the way real BMCs behave (see ``redfish.md``).

Rules, each from a known failure of naive polling:

* The Task's ``TaskState`` decides, never the HTTP status: a task monitor's 202 only means "the last answer was
  202", and Dell iDRACs answer 200 while the task is ``Running``. Terminal states: Completed, Exception,
  Killed, Cancelled, Interrupted; anything else, including values Redfish does not define (sushy maps them to
  ``None``, so the raw JSON is read), is still going.
* Success is ``Completed`` without ``Critical`` health (``TaskStatus``) and without a Critical message.
* A task waiting for the host to reset is reported with ``awaiting_reset``: TaskState ``Pending`` or
  ``Scheduled``, or a task that is not running (nor failed) whose LAST message is a DMTF
  ``Update.*.AwaitToActivate`` / ``Base.*.ResetRequired`` not naming a Manager, or iDRAC's "Task successfully
  scheduled." (Dell applies BIOS-type updates at the next reboot). Only the last message counts and never while
  the task is Running: messages accumulate, and a stale one must not make the caller reset a host mid-flash.
* Old iDRACs delete a finished task within seconds: a 404 on a ``JID_...`` task is read again from
  ``/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/<JID>`` (Dell iDRAC Redfish API guide, Jobs).
* Any other 404 means the BMC forgot the task, typically because it rebooted into new firmware: the task is
  ``Vanished`` (terminal, not failed) and the caller confirms by reading the version back.
* Polls follow the task (:class:`PollPacer`): the first comes soon after the start, then the wait doubles while
  the task shows nothing new, up to ``poll_interval``; once ``PercentComplete`` moves, the next poll is timed for
  when the task should end at its pace so far (each change placed midway between the reading that shows it and
  the one before; never later than ``poll_interval``, never sooner than the first wait), and a task not over
  when due is polled again after the first wait until three readings in a row show nothing new, then with
  doubling waits. A short task is seen ending soon, a long one costs no more polls than every ``poll_interval``.
* While the BMC flashes itself it drops off the network and its sessions die: connection errors, timeouts, 5xx
  and 401 count as "still installing" (pseudo-state ``Offline``) until ``offline_grace`` seconds pass without a
  good answer; the session is re-established when the BMC answers again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from loguru import logger
from sushy import exceptions as sushy_exc

from flasher.bmc.errors import (
    BMCAuthError,
    BMCInterruptedError,
    BMCNotSupportedError,
    BMCTaskFailedError,
    BMCTimeoutError,
    BMCUnreachableError,
    messages_of,
    translate,
)
from flasher.bmc.models import TERMINAL_TASK_STATES, TaskHandle, TaskProgress
from flasher.bmc.session import Connection

_AWAITING_STATES = frozenset({"Pending", "Scheduled"})
# States in which the BMC is working on the task: never "awaiting a reset", whatever old messages say.
_ACTIVE_STATES = frozenset({"Running", "Starting", "Stopping", "Cancelling"})
_AWAITING_MESSAGE_IDS = re.compile(r"\.(AwaitToActivate|ResetRequired)$")
_AWAITING_TEXT = re.compile(
    r"successfully scheduled|pending (host )?reboot|applied (on|at|after) (the )?next (reboot|restart|reset)",
    re.IGNORECASE,
)
_DELL_JID = re.compile(r"(?:^|/)(JID_\d+)/?$")
DELL_JOBS = "/redfish/v1/Managers/iDRAC.Embedded.1/Oem/Dell/Jobs/"
# iDRAC JobState values (Dell iDRAC Redfish API guide, DellJob).
_DELL_OK = frozenset({"Completed"})
_DELL_FAILED = frozenset({"Failed", "CompletedWithErrors", "RebootFailed"})
_DELL_AWAITING = frozenset({"Scheduled", "RebootPending", "PendingActivation"})


def _percent(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0, min(100, int(value)))


def _has_critical(messages: Any) -> bool:
    if not isinstance(messages, list):
        return False
    return any(isinstance(m, dict) and "Critical" in (m.get("Severity"), m.get("MessageSeverity")) for m in messages)


def _awaiting_from_messages(messages: Any) -> bool:
    """Whether the task's LAST message asks for a host reset. Messages accumulate: an ``AwaitToActivate`` that
    was followed by "being installed" is stale, and acting on it would reset a host that is flashing."""
    if not isinstance(messages, list):
        return False
    entries = [m for m in messages if isinstance(m, dict)]
    if not entries:
        return False
    last = entries[-1]
    if _AWAITING_TEXT.search(str(last.get("Message") or "")):
        return True
    if not _AWAITING_MESSAGE_IDS.search(str(last.get("MessageId") or "")):
        return False
    # A ResetRequired / AwaitToActivate naming a Manager asks for a BMC restart, not a host reset; the pair
    # usually comes together, so look at the trailing run of such messages.
    trailing = []
    for entry in reversed(entries):
        if not _AWAITING_MESSAGE_IDS.search(str(entry.get("MessageId") or "")):
            break
        trailing.append(" ".join(str(a) for a in entry.get("MessageArgs") or [] if a is not None))
    return not any("/Managers/" in args for args in trailing)


def parse_task(doc: Any) -> TaskProgress:
    """A :class:`TaskProgress` from a Redfish Task document (malformed documents give state ``Unknown``)."""
    if not isinstance(doc, dict):
        return TaskProgress("Unknown", None, None, ("the task answer is not a JSON object",), False, False, False)
    raw_state = doc.get("TaskState")
    state = raw_state if isinstance(raw_state, str) and raw_state else "Unknown"
    status = doc.get("Status")
    health = doc.get("TaskStatus")
    if not isinstance(health, str) and isinstance(status, dict):
        health = status.get("Health")
    health = health if isinstance(health, str) else None
    raw_messages = doc.get("Messages")
    messages = messages_of(raw_messages if isinstance(raw_messages, list) else [])
    if state == "Unknown":
        messages = (*messages, "the task has no TaskState")
    terminal = state in TERMINAL_TASK_STATES
    succeeded = state == "Completed" and health != "Critical" and not _has_critical(raw_messages)
    if not terminal:
        active = state in _ACTIVE_STATES
        awaiting = state in _AWAITING_STATES or (not active and _awaiting_from_messages(raw_messages))
    else:
        awaiting = succeeded and _awaiting_from_messages(raw_messages)
    return TaskProgress(state, _percent(doc.get("PercentComplete")), health, messages, terminal, succeeded, awaiting)


def parse_dell_job(doc: dict[str, Any]) -> TaskProgress:
    """A :class:`TaskProgress` from an iDRAC ``DellJob`` document (``JobState``, ``PercentComplete``, ``Message``)."""
    job_state = str(doc.get("JobState") or "Unknown")
    message = doc.get("Message")
    messages = (str(message),) if isinstance(message, str) and message else ()
    terminal = job_state in _DELL_OK or job_state in _DELL_FAILED
    awaiting = job_state in _DELL_AWAITING
    return TaskProgress(
        state=job_state,
        percent=_percent(doc.get("PercentComplete")),
        health=None,
        messages=messages,
        terminal=terminal,
        succeeded=job_state in _DELL_OK,
        awaiting_reset=awaiting,
    )


def _json_or_none(response: Any) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return "malformed"


def read_task(conn: Connection, handle: TaskHandle) -> TaskProgress:
    """One reading of the task (see the module rules). Raises :class:`BMCUnreachableError` / :class:`BMCAuthError`
    when the BMC does not answer or refuses the session, :class:`BMCError` for other HTTP errors."""
    action = f"read task {handle.uri}"
    try:
        response = conn.connector.get(handle.uri)
    except sushy_exc.ResourceNotFoundError as exc:
        jid = _DELL_JID.search(handle.uri)
        if jid is not None:
            try:
                return parse_dell_job(conn.get_json(DELL_JOBS + jid.group(1), action=f"read Dell job {jid.group(1)}"))
            except BMCNotSupportedError:
                pass
        said = messages_of({"error": exc.body} if isinstance(exc.body, dict) else None)
        return TaskProgress(
            "Vanished",
            None,
            None,
            ("the BMC no longer knows this task (it may have restarted); confirm by reading the version", *said),
            True,
            True,
            False,
        )
    except (sushy_exc.SushyError, OSError) as exc:
        raise translate(action, exc) from exc
    body = _json_or_none(response)
    if isinstance(body, dict) and "TaskState" in body:
        return parse_task(body)
    if response.status_code == 202:  # a task monitor without a Task body: still running
        return TaskProgress(
            "Unknown", None, None, ("the task monitor says the operation is running",), False, False, False
        )
    if body is None or (isinstance(body, dict) and set(body) <= {"error", "@Message.ExtendedInfo", "@odata.type"}):
        # A task monitor answers with the operation's own response once it is done.
        said = messages_of(body)
        failed = isinstance(body, dict) and _has_critical(body.get("@Message.ExtendedInfo"))
        return TaskProgress("Completed", 100, None, said, True, not failed, False)
    return parse_task(body)


def running_tasks(conn: Connection, methods: dict[str, str]) -> list[TaskHandle]:
    """The BMC's tasks that have not ended. ``methods`` maps install target URIs (SimpleUpdate action, push
    URIs) to install methods, to name each task's method from its ``Payload.TargetUri``; others are
    ``unknown``. A BMC without a TaskService has none."""
    members = _task_members(conn)
    out = []
    for task in members:
        state = task.get("TaskState")
        if not isinstance(state, str) or state in TERMINAL_TASK_STATES or not isinstance(task.get("@odata.id"), str):
            continue
        payload = task.get("Payload")
        target = payload.get("TargetUri") if isinstance(payload, dict) else None
        method = methods.get(conn.relative(str(target)).rstrip("/"), "unknown") if target else "unknown"
        out.append(TaskHandle(uri=conn.relative(task["@odata.id"]), method=method))
    return out


#: Where DSP0268 puts the TaskService's Tasks collection (TaskService ``Tasks``; the schema's URI pattern).
_TASKS_UNDER_SERVICE = "/Tasks"


def _task_members(conn: Connection) -> list[dict[str, Any]]:
    """The Tasks collection's members, expanded where the BMC offers ``$expand``: read at the URI the schema
    gives it (``<TaskService>/Tasks``: one request), and only when that is missing (404) at the TaskService's
    ``Tasks`` link (the link is then kept for this BMC). ``[]`` without a TaskService or a Tasks collection."""
    service_path = conn.link("Tasks")
    if service_path is None:
        return []
    known = conn.held_value("tasks-collection")
    first = known or service_path.rstrip("/") + _TASKS_UNDER_SERVICE
    try:
        return conn.members(first, action="list the BMC's tasks")
    except BMCNotSupportedError:
        if known:
            return []
    try:
        service = conn.get_json(service_path, action="read the TaskService")
        link = service.get("Tasks")
        if not isinstance(link, dict) or not isinstance(link.get("@odata.id"), str):
            return []
        path = conn.relative(str(link["@odata.id"])).rstrip("/")
        conn.hold_value("tasks-collection", path)
        if path == first:
            return []  # the same collection that was just missing
        return conn.members(path, action="list the BMC's tasks")
    except BMCNotSupportedError:
        return []


def _summary(progress: TaskProgress) -> str:
    text = progress.state + (f" {progress.percent}%" if progress.percent is not None else "")
    return text + (f" ({'; '.join(progress.messages)})" if progress.messages else "")


class PollPacer:
    """When to poll a task next, from its readings (rules in the module docstring).

    ``poll_interval``: the longest wait (seconds); the first is ``poll_interval / 4`` (``FIRST_FRACTION``), and a
    wait is never shorter than that. ``next_wait(progress, now)`` takes each reading and its time (monotonic s).

    The end is estimated from when ``PercentComplete`` changed, not from when a change was read: a reading shows
    a percentage some time after the BMC set it, so each change is placed midway between the reading that first
    shows it and the reading before (unbiased where polls and the BMC's steps are independent). Timed by the
    readings themselves, the estimate runs late by up to a poll, and the poll due at the end lands just before
    it: the end is then seen a whole wait late. A reading at or past the estimated end polls again after the
    first wait, until :attr:`OVERDUE_AT_FIRST_WAIT` readings in a row have shown nothing new; then the wait
    doubles again up to ``poll_interval`` (a task that sits at 99 % costs three polls more than one without a
    percentage, then no more).
    """

    FIRST_FRACTION = 0.25
    #: Readings in a row past the estimated end, showing nothing new, followed by the first wait; after them the
    #: wait doubles again.
    OVERDUE_AT_FIRST_WAIT = 3

    def __init__(self, poll_interval: float) -> None:
        self.longest = poll_interval
        self.shortest = poll_interval * self.FIRST_FRACTION
        self._wait = self.shortest
        self._last: TaskProgress | None = None
        self._with_percent: tuple[float, int] | None = None  # (when, percent) of the last reading with one
        # (when, percent) of the first reading with a percentage, of its first change and of its latest change
        self._first_reading: tuple[float, int] | None = None
        self._first_change: tuple[float, int] | None = None
        self._latest_change: tuple[float, int] | None = None
        self._overdue = 0  # readings at or past the estimated end that showed nothing new

    def next_wait(self, progress: TaskProgress, now: float) -> float:
        """Seconds to wait before the next poll after ``progress`` read at ``now``."""
        previous = self._last
        changed = previous is not None and progress != previous
        self._last = progress
        end = self._track(progress.percent, now)
        if end is not None and end > now:
            self._overdue = 0
            wait = end - now
        elif end is not None:  # due by the task's pace, yet not over
            self._overdue = 0 if changed else self._overdue + 1
            wait = self.shortest if self._overdue <= self.OVERDUE_AT_FIRST_WAIT else self._wait * 2
        elif previous is None or changed:
            wait = self.shortest
        else:
            wait = self._wait * 2
        self._wait = min(max(wait, self.shortest), self.longest)
        return self._wait

    def _track(self, percent: int | None, now: float) -> float | None:
        """Record a reading's percentage; return the estimated end (monotonic s), ``None`` before the pace is
        known. The pace runs from the first change to the latest (from the first reading while there is one
        change); a change is placed midway since the last reading that had a percentage (a reading without one,
        such as a task monitor's bare 202, neither moves nor discards the pace)."""
        if percent is None:
            return None
        last = self._with_percent
        self._with_percent = (now, percent)
        if last is None or percent < last[1]:  # the first percentage, or a new phase that counts from 0 again
            self._first_reading, self._first_change, self._latest_change = (now, percent), None, None
        elif percent > last[1]:
            self._latest_change = ((last[0] + now) / 2, percent)
            self._first_change = self._first_change or self._latest_change
        if self._latest_change is None or self._first_reading is None:
            return None
        anchor = self._first_reading if self._first_change is self._latest_change else self._first_change
        assert anchor is not None
        (t0, p0), (t1, p1) = anchor, self._latest_change
        if t1 <= t0 or p1 <= p0:
            return None
        return t1 + (100 - p1) * (t1 - t0) / (p1 - p0)


def wait_for_task(
    conn: Connection,
    handle: TaskHandle,
    *,
    timeout: float,
    poll_interval: float,
    offline_grace: float,
    on_progress: Callable[[TaskProgress], None] | None = None,
    keep_going: Callable[[], bool] | None = None,
    return_on_awaiting_reset: bool = True,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TaskProgress:
    """Poll the task until it ends, at most ``poll_interval`` s apart (:class:`PollPacer`); see
    :meth:`flasher.bmc.BMC.wait_for_task`."""
    deadline = clock() + timeout
    pacer = PollPacer(poll_interval)
    offline_since: float | None = None
    reopen = False
    last: TaskProgress | None = None
    while True:
        if keep_going is not None and not keep_going():
            where = f" at {_summary(last)}" if last else ""
            raise BMCInterruptedError(f"stopped following task {handle.uri}{where}; the BMC may still be installing")
        try:
            if reopen:
                conn.reopen()
                logger.info("BMC {} answers again; session re-established", conn.base_url)
                reopen = False
            progress = read_task(conn, handle)
            offline_since = None
        except (BMCUnreachableError, BMCAuthError) as exc:
            now = clock()
            offline_since = now if offline_since is None else offline_since
            reopen = True
            if now - offline_since > offline_grace:
                raise BMCUnreachableError(
                    f"BMC {conn.base_url} gave no good answer for {now - offline_since:.0f} s (offline_grace "
                    f"{offline_grace:.0f} s) while following task {handle.uri}: {exc}"
                ) from exc
            logger.info("BMC {} is not answering (still installing?): {}", conn.base_url, exc)
            percent = last.percent if last is not None else None
            progress = TaskProgress("Offline", percent, None, (str(exc),), False, False, False)
        if progress != last:
            logger.debug("BMC {} task {}: {}", conn.base_url, handle.uri, _summary(progress))
        last = progress
        if on_progress is not None:
            on_progress(progress)
        if progress.terminal:
            if not progress.succeeded:
                raise BMCTaskFailedError(
                    f"task {handle.uri} ended {progress.state}"
                    + (f" with health {progress.health}" if progress.health else ""),
                    bmc_messages=progress.messages,
                )
            return progress
        if progress.awaiting_reset and return_on_awaiting_reset:
            return progress
        remaining = deadline - clock()
        if remaining <= 0:
            raise BMCTimeoutError(f"task {handle.uri} has not ended after {timeout:.0f} s: {_summary(progress)}")
        _sleep_responsive(min(pacer.next_wait(progress, clock()), remaining), keep_going, sleep, clock)


def _sleep_responsive(
    seconds: float,
    keep_going: Callable[[], bool] | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    """Sleep ``seconds``, in slices of at most 0.5 s when ``keep_going`` may ask to stop."""
    if keep_going is None:
        sleep(seconds)
        return
    end = clock() + seconds
    while (left := end - clock()) > 0:
        if not keep_going():
            return
        sleep(min(0.5, left))
