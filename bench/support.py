"""Helpers shared by the service benchmarks (``bench.rollout``, ``bench.detection``, ``bench.poll``, ``bench.scale``,
``bench.bmcsim``): CPU time and memory of processes from ``/proc``, the machine's load while a benchmark runs,
percentiles, counting server states in the sandbox inventory, an in-process poller whose inventory requests are
counted by route, and a work directory that is always removed.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

from flasher.config import Settings
from flasher.constants import TASK_NAMESPACE
from flasher.inventory import InventoryClient
from flasher.queue import TaskQueue
from flasher.service.admission import Admission
from flasher.service.poller import Poller

_TICKS = os.sysconf("SC_CLK_TCK")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far: ``utime + stime`` of ``/proc/<pid>/stat``, which
    counts every thread of the process, the ended ones included. ``ProcessLookupError`` when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        raise ProcessLookupError(pid) from None
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) ": field 3 (state) is fields[0]
    return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14 and 15: utime, stime


def memory_mib(pid: int) -> dict[str, float]:
    """``rss`` (VmRSS) and ``peak`` (VmHWM) of process ``pid`` in MiB, from ``/proc/<pid>/status``."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found["rss" if key == "VmRSS" else "peak"] = int(value.split()[0]) / 1024
    return found


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q ≤ 100) of ``values`` (not empty)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


def spread(values: Sequence[float]) -> dict[str, float]:
    """``min``, ``median``, ``p95``, ``max`` and ``mean`` of ``values`` (not empty)."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "p95": percentile(values, 95),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


class LoadSampler:
    """Samples the 1-minute load average every ``every`` seconds in a daemon thread, between :meth:`start` and
    :meth:`stop`; :meth:`summary` gives min, mean and max (the machine is shared: figures need it beside them)."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every):
                return

    def start(self) -> LoadSampler:
        """Start sampling (one sample at once)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        """``"load average 3.1-6.0 (mean 4.2) on 2 cores"``."""
        cores = os.cpu_count() or 0
        if not self.samples:
            return f"load average unknown on {cores} cores"
        low, high, mean = min(self.samples), max(self.samples), statistics.fmean(self.samples)
        return f"load average {low:.1f}-{high:.1f} (mean {mean:.1f}) on {cores} cores"


def status_count(session: requests.Session, inventory_url: str, status: str, namespace: str = TASK_NAMESPACE) -> int:
    """How many servers' ``namespace`` attribute has ``status`` (one query for a page of one record)."""
    response = session.get(
        f"{inventory_url}/api/v1/servers",
        params=[("attr", f"{namespace}~status~eq~{status}"), ("limit", "1")],
        timeout=60,
    )
    response.raise_for_status()
    return int(response.json().get("total_record_count") or 0)


class RequestCounter:
    """A ``requests`` response hook counting requests by ``"METHOD /path"`` (uuids replaced by ``{id}``)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        path = (request.path_url or "").split("?", 1)[0]
        self.counts[f"{request.method} {_UUID.sub('{id}', path)}"] += 1

    def take(self) -> Counter[str]:
        """The counts since the last call, then start again."""
        counts, self.counts = self.counts, Counter()
        return counts


def counted_poller(settings: Settings, session: requests.Session, worker_id: str) -> tuple[Poller, RequestCounter]:
    """The service's :class:`Poller` in this process (with admission as ``worker_id`` and the queue, no workers),
    its inventory client on ``session`` (the caller closes it), and the :class:`RequestCounter` hooked on that
    session."""
    counter = RequestCounter()
    session.hooks["response"].append(counter)
    client = InventoryClient(settings.inventory, session=session)
    queue = TaskQueue.from_settings(settings)
    return Poller(client, queue, Admission(client, queue, settings, worker_id=worker_id), settings), counter


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A fresh temporary directory, removed at the end (unless ``keep``: then its path is logged to stderr)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
