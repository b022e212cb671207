"""Where an install task's run goes, from the replicas' logs of a kept rollout benchmark.

    .venv/bin/python -m bench.rollout.run --servers 1000 --point 2,8,5 --keep      # prints "kept <dir>"
    .venv/bin/python -m bench.rollout.phases <dir>

Reads every ``flasher-*.log`` under the directory (the JSON lines ``flasher run --log-format json`` writes), groups
the lines by ``task_id`` and times, for each install task with one component, four phases between lines the
install writes at INFO:

* ``to install``: from the task's first line to "install of ... runs as task" (log in, versions, plan, image);
* ``to reset``: from there to "power reset" (a BMC that applies the update at a host reset; 0 for the others);
* ``install``: from the install (or the reset) to "... now reports <version>" (the BMC's task and the read-back);
* ``to end``: from there to "install task ended" (components, status).

Tasks are grouped by their install method (the ``by <method>`` of "installing ... by <method>": the Supermicro-like
BMCs push a ``multipart`` image, the Dell-like ones take a ``simple_update``). Prints the median and mean of each
phase per method, in seconds (``--json``: the same as JSON). Tasks without every line (failed, or more than one
component) are left out and counted.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

PHASES = ("to install", "to reset", "install", "to end")
_METHOD = re.compile(r"installing .* by (\w+)")


@dataclass(frozen=True)
class TaskPhases:
    """One task's install method and its :data:`PHASES`, in seconds."""

    method: str
    seconds: tuple[float, float, float, float]


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_lines(paths: Iterable[Path]) -> dict[str, list[tuple[float, str]]]:
    """``{task_id: [(epoch seconds, message), ...]}`` from JSON log lines, in time order; other lines are skipped."""
    by_task: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for path in paths:
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
                task, when, message = record.get("task_id"), _when(record["time"]), str(record["message"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            if task and task != "-":
                by_task[task].append((when, message))
    for lines in by_task.values():
        lines.sort()
    return dict(by_task)


def phases_of(lines: list[tuple[float, str]]) -> TaskPhases | None:
    """The phases of one task's ``lines`` (as :func:`read_lines` gives them), ``None`` without every line needed
    or with more than one install."""

    def first(text: str) -> float | None:
        return next((when for when, message in lines if text in message), None)

    if sum(1 for _, message in lines if "runs as task" in message) != 1:
        return None
    method = next((m.group(1) for _, message in lines if (m := _METHOD.search(message))), None)
    sent, reported, ended = first("runs as task"), first(" now reports "), first("install task ended")
    if method is None or sent is None or reported is None or ended is None:
        return None
    reset = first("power reset") or sent
    start = lines[0][0]
    return TaskPhases(method, (sent - start, reset - sent, reported - reset, ended - reported))


def summary(tasks: Iterable[TaskPhases]) -> dict[str, dict[str, dict[str, float]]]:
    """``{method: {"tasks": {"count": n}, phase: {"median": s, "mean": s}, ...}}``."""
    by_method: dict[str, list[TaskPhases]] = defaultdict(list)
    for task in tasks:
        by_method[task.method].append(task)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for method, found in sorted(by_method.items()):
        out[method] = {"tasks": {"count": len(found)}}
        for i, phase in enumerate(PHASES):
            values = [t.seconds[i] for t in found]
            out[method][phase] = {"median": statistics.median(values), "mean": statistics.fmean(values)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.rollout.phases", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="a work directory bench.rollout.run --keep kept")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    paths = sorted(args.directory.rglob("flasher-*.log"))
    if not paths:
        parser.error(f"directory: no flasher-*.log under {args.directory}")
    lines = read_lines(paths)
    found = [p for p in (phases_of(task) for task in lines.values()) if p is not None]
    result = summary(found)
    if args.json:
        print(json.dumps({"tasks": len(lines), "timed": len(found), "by_method": result}, indent=2))
        return 0
    print("| method | tasks | " + " | ".join(f"{p}, median / mean (s)" for p in PHASES) + " |")
    print("|---|---:|" + "---:|" * len(PHASES))
    for method, figures in result.items():
        cells = " | ".join(f"{figures[p]['median']:.3f} / {figures[p]['mean']:.3f}" for p in PHASES)
        print(f"| {method} | {int(figures['tasks']['count'])} | {cells} |")
    print(f"\n{len(found)} of {len(lines)} tasks timed (the others failed, or ran more than one install)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
