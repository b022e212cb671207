"""``flasher queue``: what the Redis queue shared by the replicas holds, and removing a server's task from it.

``ls`` shows queued tasks in claim order, delayed retries, in-flight tasks (owner, lease left, attempts) and
dead tasks; ``drop SERVER`` removes whatever Redis holds for one server and says what it was. Redis that cannot
be reached within a few seconds prints one line and exits 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.markup import escape

from flasher.commands.common import console, fail, print_json, print_table, state
from flasher.queue import QueueEntry, QueueError, QueueSnapshot, QueueUnavailableError, TaskQueue

app = typer.Typer(
    name="queue",
    help="Inspect the Redis task queue the flasher replicas share: queued, delayed, in-flight and dead tasks.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
#: Operator commands give up on an unreachable Redis sooner than the service does.
_CLI_RETRY_DEADLINE = 5.0


def _queue(ctx: typer.Context) -> tuple[TaskQueue, str]:
    settings = state(ctx).settings()
    deadline = min(settings.redis.retry_deadline, _CLI_RETRY_DEADLINE)
    return TaskQueue.from_settings(settings, retry_deadline=deadline), settings.redis.url


@contextmanager
def _queue_errors(url: str) -> Iterator[None]:
    """Redis errors become one line on stderr (secrets scrubbed) and exit status 1."""
    try:
        yield
    except QueueUnavailableError as exc:
        fail(escape(f"cannot reach Redis at {url} (setting redis.url): {exc}"))
    except QueueError as exc:
        fail(escape(f"Redis at {url}: {exc}"))


def duration(seconds: float | None) -> str | None:
    """``seconds`` as ``45s``, ``3m04s`` or ``2h05m`` (negative values keep their sign)."""
    if seconds is None:
        return None
    sign, left = ("-" if seconds < 0 else ""), round(abs(seconds))
    if left < 60:
        return f"{sign}{left}s"
    if left < 3600:
        return f"{sign}{left // 60}m{left % 60:02d}s"
    return f"{sign}{left // 3600}h{left % 3600 // 60:02d}m"


def _since(snapshot: QueueSnapshot, moment: float | None) -> str | None:
    return None if moment is None else duration(snapshot.now - moment)


def _until(snapshot: QueueSnapshot, moment: float | None) -> str | None:
    return None if moment is None else duration(moment - snapshot.now)


def _print_snapshot(snap: QueueSnapshot) -> None:
    summary = (
        f"queued {len(snap.queued)} · delayed {len(snap.delayed)} · in flight {len(snap.inflight)} · "
        f"dead {len(snap.dead)}"
    )
    if snap.queued:
        print_table(
            "queued (in claim order)",
            ["#", "server", "kind", "task", "priority", "attempts", "waiting", "last failure"],
            [
                [n, e.server_id, e.kind, e.task_id, e.priority, e.attempts, _since(snap, e.enqueued_at), e.reason]
                for n, e in enumerate(snap.queued, start=1)
            ],
        )
    if snap.delayed:
        print_table(
            "delayed (retry after a failure)",
            ["server", "kind", "task", "priority", "attempts", "claimable in", "last failure"],
            [
                [e.server_id, e.kind, e.task_id, e.priority, e.attempts, _until(snap, e.ready_at), e.reason]
                for e in snap.delayed
            ],
        )
    if snap.inflight:
        print_table(
            "in flight",
            ["server", "kind", "task", "owner", "lease left", "attempts", "cancel"],
            [
                [
                    e.server_id,
                    e.kind,
                    e.task_id,
                    e.owner,
                    duration(snap.lease_left(e)),
                    e.attempts,
                    "requested" if e.cancel_requested else None,
                ]
                for e in snap.inflight
            ],
        )
    if snap.dead:
        print_table(
            "dead (write failed, then forget)",
            ["server", "kind", "task", "attempts", "died", "reason"],
            [
                [e.server_id, e.kind, e.task_id, e.attempts, f"{_since(snap, e.died_at)} ago", e.reason]
                for e in snap.dead
            ],
        )
    console.print(summary, highlight=False)


@app.command("ls")
def ls(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show queued tasks (claim order), delayed retries, in-flight tasks and dead tasks.

    In-flight tasks show their owner (the replica's worker id), lease left and attempts; times come from Redis'
    clock. --json prints the same as one object with Redis times in seconds since the epoch.
    """
    queue, url = _queue(ctx)
    with _queue_errors(url):
        snap = queue.snapshot()
    if json_output:
        print_json(snap.to_dict())
    else:
        _print_snapshot(snap)


def _describe(entry: QueueEntry) -> str:
    text = f"{entry.kind} task {entry.task_id} of server {entry.server_id} ({entry.state.value}"
    text += f", priority {entry.priority}, attempts {entry.attempts}"
    if entry.owner:
        text += f", held by {entry.owner}"
    return text + ")"


@app.command("drop")
def drop(
    ctx: typer.Context,
    server: Annotated[str, typer.Argument(help="The server's id (inventory UUID) whose task to remove.")],
) -> None:
    """Remove whatever Redis holds for SERVER (queued, delayed, in flight or dead) and say what it was.

    The inventory keeps the task attribute: a replica re-queues a task whose status is still queued or active.
    An in-flight task's worker stops at its next lease check. Exits 1 when Redis holds nothing for SERVER.
    """
    queue, url = _queue(ctx)
    with _queue_errors(url):
        entry = queue.take(server)
    if entry is None:
        fail(escape(f"Redis holds no task for server {server}"))
    console.print(f"dropped {escape(_describe(entry))}", highlight=False)
    if entry.owner:
        console.print(f"{escape(entry.owner)} stops at its next lease check", highlight=False)
