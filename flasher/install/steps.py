"""Step policies: each install step's timeout and retries (``settings.steps``), run with tenacity and timed.

Steps and what their policy bounds (defaults in :mod:`flasher.config`, from what real BMCs need):

=================  ===========================================================================================
step               timeout bounds / retried on
=================  ===========================================================================================
``connect``        all attempts at logging in to the BMC / BMC unreachable (no answer, TLS, 5xx)
``read_versions``  all attempts at reading the firmware inventory (and the BMC's running tasks) / unreachable
``power``          one power change until the host reports the state; ``on``/``off`` are retried when
                   unreachable (the driver reads the state first, so a repeat is safe), ``reset`` never
``download``       the image fetch, waits for another process's download included (the store retries itself)
``upload``         handing the image to the BMC / unreachable, after first looking for a task the lost request
                   may have started (an install request is never repeated blindly)
``install``        following the BMC's task to its end (one attempt: a flash is never restarted by a timer)
``confirm``        reading the new version back (the BMC may still restart into it)
``bmc_reset``      a BMC restart until it answers again (one attempt)
``inventory_write``  writing installed versions into the inventory / inventory unavailable
=================  ===========================================================================================

Every run of a step is observed in ``flasher_step_duration_seconds`` (step, vendor, component).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, TypeVar

from loguru import logger
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay
from tenacity.stop import stop_base
from tenacity.wait import wait_exponential

from flasher.config import Settings, StepPolicy
from flasher.metrics import STEP_DURATION

T = TypeVar("T")

#: The install steps that have a policy in ``settings.steps``.
STEP_NAMES: Final[tuple[str, ...]] = (
    "connect",
    "read_versions",
    "power",
    "download",
    "upload",
    "install",
    "confirm",
    "bmc_reset",
    "inventory_write",
)
#: The ``component`` label of steps that concern the whole server (connect, power...).
NO_COMPONENT: Final = "-"
#: Longest wait between attempts of a step run with ``patience`` (seconds).
PATIENT_WAIT: Final = 30.0


class Steps:
    """Runs steps of one task under their policies. ``vendor`` labels the duration metric (the server's vendor).

    ``sleep`` is the wait between attempts (tests pass a fake).
    """

    def __init__(self, settings: Settings, *, vendor: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.vendor = vendor or "unknown"
        self._sleep = sleep

    def policy(self, name: str) -> StepPolicy:
        """The policy of step ``name`` (``KeyError`` naming the step when the settings have none)."""
        return self.settings.step(name)

    def timeout(self, name: str) -> float:
        """Step ``name``'s timeout in seconds."""
        return self.policy(name).timeout

    def run(
        self,
        name: str,
        fn: Callable[[], T],
        *,
        component: str = NO_COMPONENT,
        transient: tuple[type[BaseException], ...] = (),
        patience: float | None = None,
    ) -> T:
        """Call ``fn`` under step ``name``'s policy and return its result.

        An exception of a ``transient`` type is retried (exponential backoff from ``backoff`` seconds) until the
        policy's ``attempts`` are used or its ``timeout`` has passed since the first attempt, then re-raised;
        any other exception is raised at once. ``patience`` (seconds) replaces both bounds when longer: retry for
        that long, however many attempts it takes (waits capped at :data:`PATIENT_WAIT`). The duration (all
        attempts) goes to ``STEP_DURATION``.
        """
        policy = self.policy(name)
        started = time.monotonic()
        stop: stop_base
        if patience is not None and patience > policy.timeout:
            stop = stop_after_delay(patience)
            longest = max(policy.backoff, PATIENT_WAIT)
        else:
            stop = stop_after_attempt(policy.attempts) | stop_after_delay(policy.timeout)
            longest = max(policy.backoff, policy.timeout)
        retrying = Retrying(
            stop=stop,
            wait=wait_exponential(multiplier=policy.backoff, max=longest),
            retry=retry_if_exception_type(transient),
            reraise=True,
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(name, component, state),
        )
        try:
            return retrying(fn)
        finally:
            STEP_DURATION.labels(step=name, vendor=self.vendor, component=component).observe(time.monotonic() - started)

    def timed(self, name: str, component: str = NO_COMPONENT) -> _Timer:
        """A context manager observing the block's duration as step ``name`` (steps without retries)."""
        return _Timer(name, self.vendor, component)


class _Timer:
    def __init__(self, step: str, vendor: str, component: str) -> None:
        self._labels = {"step": step, "vendor": vendor, "component": component}
        self._started = 0.0

    def __enter__(self) -> None:
        self._started = time.monotonic()

    def __exit__(self, *_exc: object) -> None:
        STEP_DURATION.labels(**self._labels).observe(time.monotonic() - self._started)


def _log_retry(step: str, component: str, state: RetryCallState) -> None:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    where = "" if component == NO_COMPONENT else f" [{component}]"
    logger.warning(
        "step {}{}: attempt {} failed ({}); retrying in {:.1f} s", step, where, state.attempt_number, error, wait
    )
