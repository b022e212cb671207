"""A small Server-Sent Events client for tests: reads ``text/event-stream`` with requests in a thread."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass(frozen=True)
class SSEvent:
    """One event: ``event`` (type), ``id``, ``data`` (parsed JSON)."""

    event: str
    id: str | None
    data: Any


@dataclass
class SSEClient:
    """Connects to ``url`` (with ``last_event_id``) and collects events in :attr:`events` until :meth:`close`."""

    url: str
    last_event_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[SSEvent] = field(default_factory=list)
    status: int | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._response: requests.Response | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def start(self, timeout: float = 10.0) -> SSEClient:
        self._thread.start()
        if not self._connected.wait(timeout):
            raise AssertionError(f"SSE connection to {self.url} not established: {self.error}")
        return self

    def _run(self) -> None:
        headers = {"Accept": "text/event-stream", **self.headers}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        try:
            with requests.get(self.url, headers=headers, stream=True, timeout=(5, 60)) as response:
                self._response = response
                self.status = response.status_code
                self._connected.set()
                if response.status_code != 200:
                    self.error = response.text
                    return
                kind: str = "message"
                ident: str | None = None
                data: list[str] = []
                for raw in response.iter_lines(decode_unicode=True):
                    if self._stop.is_set():
                        return
                    line = raw or ""
                    if not line:
                        if data:
                            event = SSEvent(kind, ident, json.loads("\n".join(data)))
                            with self._lock:
                                self.events.append(event)
                        kind, ident, data = "message", None, []
                        continue
                    if line.startswith(":"):
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        kind = value
                    elif name == "id":
                        ident = value
                    elif name == "data":
                        data.append(value)
        except (requests.RequestException, AttributeError, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self._connected.set()

    def snapshot(self) -> list[SSEvent]:
        with self._lock:
            return list(self.events)

    def wait_for(self, check: Any, what: str, timeout: float = 30.0) -> list[SSEvent]:
        deadline = time.monotonic() + timeout
        while True:
            events = self.snapshot()
            if check(events):
                return events
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; got {len(events)} events ({self.error})")
            time.sleep(0.05)

    def close(self) -> None:
        """Drop the connection (as a client that goes away would)."""
        self._stop.set()
        response = self._response
        if response is not None:
            connection = getattr(response.raw, "connection", None)
            sock = getattr(connection, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes the reading thread at once
            response.close()
        self._thread.join(10)
