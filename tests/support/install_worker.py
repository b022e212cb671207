"""A worker pool in a process of its own, for crash tests (until ``flasher run`` exists).

``python -m tests.support.install_worker SETTINGS_JSON [PAUSE_AFTER]`` runs a worker pool with the install runner
(settings as JSON, as ``Settings.model_dump(mode="json")`` gives them). With ``PAUSE_AFTER``, the install steps
stop dead right after writing a status message that contains that text (the lease is still heartbeated), so a
test knows which step the worker is in when it kills it. SIGTERM stops the pool gracefully.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

from flasher.config import Settings
from flasher.install.runner import AttributeReporter
from flasher.logs import setup_logging
from tests.support.install_env import build_pool


def _pause_after(text: str) -> None:
    original = AttributeReporter.report

    def report(self: AttributeReporter, state: Any, message: str | None = None, **kwargs: Any) -> None:
        original(self, state, message, **kwargs)
        if message is not None and text in message:
            print(f"paused after {message!r}", flush=True)
            time.sleep(3600)

    AttributeReporter.report = report  # type: ignore[method-assign]


def main() -> None:
    settings = Settings(**json.loads(sys.argv[1]))
    if len(sys.argv) > 2 and sys.argv[2]:
        _pause_after(sys.argv[2])
    setup_logging("INFO")
    pool, fileserver = build_pool(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pool.start()
    stop.wait()
    pool.stop(10)
    fileserver.stop()


if __name__ == "__main__":
    main()
