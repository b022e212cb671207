"""Redfish sessions of one simulated BMC (``SessionService/Sessions``): ``X-Auth-Token`` tokens that expire after
``SessionTimeout`` seconds idle and all die when the BMC reboots."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from flasher_sandbox.bmc.audit import now_iso

#: Idle seconds after which a session expires (the ``SessionTimeout`` the SessionService reports).
SESSION_TIMEOUT = 1800


@dataclass
class Session:
    """One login. ``token`` is the ``X-Auth-Token`` value."""

    id: str
    token: str
    username: str
    created: str
    last_used: float


class SessionStore:
    """The live sessions. Used from the event loop only."""

    def __init__(self, timeout: float = SESSION_TIMEOUT) -> None:
        self.timeout = timeout
        self._by_token: dict[str, Session] = {}
        self._sequence = 0

    def create(self, username: str) -> Session:
        """Open a session for ``username``."""
        self._sequence += 1
        session = Session(str(self._sequence), secrets.token_hex(16), username, now_iso(), time.monotonic())
        self._by_token[session.token] = session
        return session

    def lookup(self, token: str) -> Session | None:
        """The live session with ``token`` (its idle timer restarts), or ``None``."""
        session = self._by_token.get(token)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_used > self.timeout:
            del self._by_token[token]
            return None
        session.last_used = now
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session with Id ``session_id``, or ``None``."""
        return next((s for s in self._by_token.values() if s.id == session_id), None)

    def delete(self, session_id: str) -> bool:
        """Log a session out; False when there is none with that Id."""
        session = self.get(session_id)
        if session is None:
            return False
        del self._by_token[session.token]
        return True

    def clear(self) -> None:
        """Drop every session (a BMC reboot)."""
        self._by_token.clear()

    def all(self) -> list[Session]:
        """The live sessions, oldest first."""
        return sorted(self._by_token.values(), key=lambda s: int(s.id))
