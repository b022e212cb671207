"""Connecting to Redis from settings, and retrying calls that hit a connection problem.

Connection problems (refused, reset, timeouts, a Redis still loading its data, a replica that became read-only
during a fail-over, a cluster that is re-sharding) are retried with exponential backoff and jitter until
``retry_deadline`` seconds have passed since the first failure, then raised as
:class:`~flasher.queue.errors.QueueUnavailableError`. Every script of the queue is safe to run twice (see
:mod:`flasher.queue.scripts`), so a call whose reply was lost may be retried.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import ClassVar, TypeVar
from urllib.parse import urlsplit

import redis
from loguru import logger
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import ClusterDownError, ReadOnlyError, TryAgainError
from redis.retry import Retry
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_delay, wait_exponential, wait_random

from flasher import redact
from flasher.config import RedisSettings
from flasher.queue.errors import QueueError, QueueUnavailableError
from flasher.queue.keys import QueueKeys

T = TypeVar("T")

#: Errors that mean "Redis is not there right now", as opposed to "Redis refused this".
RETRYABLE: tuple[type[Exception], ...] = (
    redis.ConnectionError,  # refused, reset, and BusyLoadingError (Redis still loading after a restart)
    redis.TimeoutError,
    ReadOnlyError,  # a fail-over turned the server we talk to into a replica
    TryAgainError,
    ClusterDownError,
)


def transient(exc: BaseException) -> bool:
    """True for errors worth retrying (:data:`RETRYABLE`, but not refused credentials)."""
    return isinstance(exc, RETRYABLE) and not isinstance(exc, redis.AuthenticationError)


def _refused(operation: str, exc: redis.RedisError) -> QueueError:
    return QueueError(f"{operation}: Redis refused the call: {type(exc).__name__}: {exc}")


def client_from_settings(settings: RedisSettings) -> redis.Redis:
    """A client for ``settings.url`` (``redis://``, ``rediss://`` for TLS, ``unix://``; password and db in the URL
    or ``settings.password``). redis-py itself retries a failed command once at once (a pooled connection that
    died with a Redis restart); longer outages are left to :func:`call` and its deadline.
    """
    url_password = urlsplit(settings.url).password
    redact.register(url_password)
    password = settings.password.get_secret_value() if settings.password is not None else None
    return redis.Redis.from_url(
        settings.url,
        password=password,
        socket_timeout=settings.socket_timeout,
        socket_connect_timeout=settings.connect_timeout,
        retry=Retry(NoBackoff(), 1),
    )


def call(operation: str, fn: Callable[[], T], deadline: float) -> T:
    """Run ``fn``; on a connection problem retry it with backoff until ``deadline`` seconds have passed (once
    only, with no retry, when ``deadline`` is 0).

    Raises :class:`QueueUnavailableError` when the deadline passes, :class:`QueueError` when Redis refuses the call
    (authentication, a script error); the redis-py exception is chained as the cause.
    """
    try:
        return fn()  # the common case stays free of tenacity's overhead
    except redis.RedisError as exc:
        if not transient(exc):
            raise _refused(operation, exc) from exc
        if deadline <= 0:  # no retries wanted (a stopping replica's courtesy calls)
            raise QueueUnavailableError(operation, deadline, exc) from exc
        logger.warning(
            "Redis unavailable for {} ({}: {}); retrying for up to {:g} s", operation, type(exc).__name__, exc, deadline
        )

    def _log(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        logger.debug("Redis still unavailable for {} after {} tries: {}", operation, state.attempt_number, exc)

    retrying = Retrying(
        stop=stop_after_delay(deadline),
        wait=wait_exponential(multiplier=0.05, max=2.0) + wait_random(0, 0.1),
        retry=retry_if_exception(transient),
        before_sleep=_log,
        reraise=True,
    )
    try:
        return retrying(fn)
    except redis.RedisError as exc:
        if transient(exc):
            raise QueueUnavailableError(operation, deadline, exc) from exc
        raise _refused(operation, exc) from exc


class RedisPart:
    """A part of the queue's data kept beside its scripts (successors, poll turns): the queue's ``client`` and
    ``keys``, ``retry_deadline`` seconds of retries on connection problems (then
    :class:`~flasher.queue.errors.QueueUnavailableError`), and a ``clock`` in epoch seconds for what it stamps.
    A subclass names the Lua it runs in :attr:`SCRIPTS`; :attr:`scripts` holds them registered on ``client``."""

    #: Lua scripts by name (registered once per instance; redis-py loads them again after a ``NOSCRIPT``).
    SCRIPTS: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        keys: QueueKeys,
        *,
        retry_deadline: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.keys = keys
        self.retry_deadline = retry_deadline
        self._clock = clock
        self.scripts = {name: client.register_script(body) for name, body in self.SCRIPTS.items()}

    def _call(self, operation: str, fn: Callable[[], T], *, retry_deadline: float | None = None) -> T:
        """:func:`call` with this part's ``retry_deadline``, or the given one (0: one try, no retry)."""
        return call(operation, fn, self.retry_deadline if retry_deadline is None else retry_deadline)
