"""The error a sandbox server's own control API answers with (the inventory's ``/_sandbox``, the BMC fleet's
``/fleet``)."""

from __future__ import annotations


class SandboxControlError(RuntimeError):
    """A control call got an HTTP error: ``method``, ``path``, ``status`` and the answer's ``body`` (text)."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        super().__init__(f"{method} {path}: HTTP {status} {body[:500]}")
