"""Waiting for the BMC to report a host power state, riding out a BMC that briefly does not answer.

Every wait polls ``read()`` (the BMC's ``PowerState``, read afresh) every ``poll`` seconds for up to
``timeout`` seconds (tenacity). A read that fails with :class:`~flasher.bmc.BMCUnreachableError` (no answer, HTTP
5xx) is retried like a state that is not there yet: BMCs answer 5xx in bursts while the host changes state.
Other BMC errors (refused credentials, a missing System) end the wait at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from flasher.bmc import BMCTimeoutError, BMCUnreachableError

ON: Final = "On"
OFF: Final = "Off"
#: Redfish ``PowerState`` values that mean "on the way": wait for them to settle before acting.
TRANSITIONAL: Final = frozenset({"PoweringOn", "PoweringOff", "Paused"})


class _NotYetError(Exception):
    def __init__(self, state: str) -> None:
        super().__init__(state)
        self.state = state


def poll_power(
    read: Callable[[], str],
    done: Callable[[str], bool],
    *,
    timeout: float,
    poll: float,
    expected: str,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Read the power state until ``done(state)``; return that state.

    ``expected`` names what is waited for in the error. Raises :class:`~flasher.bmc.BMCTimeoutError` after
    ``timeout`` s: ``the BMC reports power state On after 300 s, expected Off`` or, when the last read failed,
    ``the BMC did not answer for 300 s ...: <its error>``; other :class:`~flasher.bmc.BMCError` at once.
    """
    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(poll),
        retry=retry_if_exception_type((_NotYetError, BMCUnreachableError)),
        reraise=True,
        sleep=sleep,
    )
    try:
        for attempt in retrying:
            with attempt:
                state = read()
                if not done(state):
                    raise _NotYetError(state)
                return state
    except _NotYetError as exc:
        raise BMCTimeoutError(
            f"the BMC reports power state {exc.state} after {timeout:g} s, expected {expected}"
        ) from None
    except BMCUnreachableError as exc:
        raise BMCTimeoutError(f"the BMC did not answer for {timeout:g} s while waiting for {expected}: {exc}") from exc
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


def read_power_state(
    read: Callable[[], str], *, timeout: float, poll: float, sleep: Callable[[float], None] = time.sleep
) -> str:
    """One power state reading, retried while the BMC does not answer (for up to ``timeout`` s)."""
    return poll_power(read, lambda _: True, timeout=timeout, poll=poll, expected="an answer", sleep=sleep)


def settled_power_state(
    read: Callable[[], str], *, timeout: float, poll: float, sleep: Callable[[float], None] = time.sleep
) -> str:
    """The power state once it is not :data:`TRANSITIONAL` (a change in progress would refuse another)."""
    return poll_power(
        read, lambda s: s not in TRANSITIONAL, timeout=timeout, poll=poll, expected="On or Off", sleep=sleep
    )


def wait_for_power(
    read: Callable[[], str],
    target: str,
    *,
    timeout: float,
    poll: float,
    restart_window: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Wait until the host reads ``target`` (``On`` or ``Off``).

    ``restart_window`` > 0 is for a restart (``cycle``, ``reset``) of a host that was on: right after the
    request the host still reads ``On``, so ``On`` counts only once another state was seen in between, or
    once ``restart_window`` s have passed (BMCs whose restart never shows ``Off``).
    """
    started = time.monotonic()
    seen_away = restart_window <= 0

    def done(state: str) -> bool:
        nonlocal seen_away
        if state != target:
            seen_away = True
            return False
        return seen_away or time.monotonic() - started >= restart_window

    return poll_power(read, done, timeout=timeout, poll=poll, expected=target, sleep=sleep)


def restart_window(poll: float, timeout: float) -> float:
    """How long a restarted host may read ``On`` before that counts as "back on": three polls, at least 1 s,
    never more than ``timeout``."""
    return min(max(3 * poll, 1.0), timeout)
