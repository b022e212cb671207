"""HTTP to Serverservice: URLs, auth headers, timeouts, TLS, retries, error mapping and paging.

Every request goes through :meth:`Transport.request`, which returns the answer's JSON object or raises an
:class:`~flasher.inventory.errors.InventoryError` subclass naming the call. Failures are counted in
``flasher_inventory_errors_total{call, error}``.

Retries (tenacity): connection errors, timeouts, 429 and 5xx are retried with exponential backoff and full
jitter (single waits up to ``retry_max_wait``), until ``retry_deadline`` seconds have passed since the first
attempt (0: no retry). A ``Retry-After`` header (seconds or HTTP date) sets the wait instead; when it points past
the deadline the call gives up at once. Other 4xx are never retried. A new attempt starts no later than the
deadline, so a call takes at most ``retry_deadline`` plus one request's ``connect_timeout + read_timeout``.

Writes that are not idempotent (``POST``, ``retry="unsent"``) are retried only when the server cannot have
applied them: the TCP connection was never made (connection refused, connect timeout), 429, or 503. A read
timeout, a reset connection or another 5xx may come after the server applied the write, so they are raised at
once; a caller that wants the write to happen regardless uses an idempotent form (``upsert_attribute``).
A write made right after re-reading what it replaces (``retry="none"``) is sent once and never again: a resend
would land later than the re-read, over whatever was written meanwhile; its caller re-reads and writes again.

A 401 with OAuth2 drops the token and tries once more with a new one (the issuer may have rotated keys).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

import requests
import tenacity
from loguru import logger

from flasher import httpenv, redact
from flasher.config import InventorySettings
from flasher.inventory.auth import InventoryAuth, TokenError, make_auth, tls_verify
from flasher.inventory.errors import (
    BadRequestError,
    ConflictError,
    InventoryError,
    MalformedResponseError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
)
from flasher.metrics import INVENTORY_ERRORS
from flasher.netfail import never_connected

API_PREFIX = "/api/v1"
#: 400 error text of a unique-constraint violation (``pq: duplicate key value violates unique constraint``).
_DUPLICATE_KEY = "duplicate key"
_SNIPPET = 120

Params = Sequence[tuple[str, str | int]]
RetryPolicy = Literal["all", "unsent", "none"]


@dataclass(frozen=True)
class _Call:
    """One request as the caller described it."""

    name: str
    method: str
    path: str
    params: Params | None
    body: Any
    retry: RetryPolicy
    sensitive: bool


class _RetryableError(Exception):
    """An attempt failed in a way worth retrying; ``error`` is raised when retries run out."""

    def __init__(self, error: InventoryError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def segment(value: str) -> str:
    """``value`` quoted as one URL path segment (``/`` included)."""
    return quote(value, safe="")


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (RFC 9110 10.2.3: delay-seconds or an HTTP date), or ``None``."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _snippet(response: requests.Response) -> str:
    text = " ".join(response.text[: _SNIPPET * 4].split())
    return text[:_SNIPPET] + ("..." if len(text) > _SNIPPET else "")


class Transport:
    """Sends requests to one Serverservice. Thread-safe as far as ``requests.Session`` is (shared pools).

    ``sleep`` and ``clock`` (seconds, monotonic) are for tests that check retry bounds without waiting.
    """

    def __init__(
        self,
        settings: InventorySettings,
        session: requests.Session | None = None,
        *,
        auth: InventoryAuth | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.session = session if session is not None else requests.Session()
        self.auth = auth if auth is not None else make_auth(settings)
        self._timeout = (settings.connect_timeout, settings.read_timeout)
        self._sleep = sleep
        self._clock = clock
        url = str(settings.url).rstrip("/")
        self.root_url = url.removesuffix(API_PREFIX)
        self.base_url = self.root_url + API_PREFIX
        # The environment (proxies, CA bundle variables) read once for the inventory's host, not at every request.
        self._verify = httpenv.settle(self.session, self.root_url, tls_verify(settings))

    # -- one call ---------------------------------------------------------------------------------------------

    def request(
        self,
        call: str,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        retry: RetryPolicy = "all",
        expected: tuple[type[InventoryError], ...] = (),
        sensitive: bool = False,
    ) -> dict[str, Any]:
        """Send ``method`` ``base_url + path`` and return the answer's JSON object (``{}`` for an empty 2xx).

        ``call`` is the endpoint's template for errors, logs and metrics (``"GET /servers/{uuid}"``).
        ``retry="unsent"`` limits retries to failures where the server cannot have applied the request;
        ``retry="none"`` sends it once (a conditional write whose caller re-reads before trying again).
        Errors of a class in ``expected`` are not counted as failures (the caller handles them).
        ``sensitive`` keeps the answer's body out of error messages (credentials). Raises
        :class:`~flasher.inventory.errors.InventoryError` subclasses.
        """
        start = self._clock()
        deadline = 0.0 if retry == "none" else self.settings.retry_deadline
        base_wait = tenacity.wait_random_exponential(multiplier=0.5, max=self.settings.retry_max_wait)

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, _RetryableError) and exc.retry_after is not None:
                return exc.retry_after
            remaining = deadline - (self._clock() - start)
            return max(0.0, min(base_wait(state), remaining))

        def stop(state: tenacity.RetryCallState) -> bool:
            elapsed = self._clock() - start
            return elapsed >= deadline or elapsed + state.upcoming_sleep > deadline

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            logger.warning(
                "{}; retry {} in {:.2f} s",
                exc.error if isinstance(exc, _RetryableError) else exc,
                state.attempt_number,
                state.upcoming_sleep,
            )

        retrying = tenacity.Retrying(
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception_type(_RetryableError),
            before_sleep=before_sleep,
            sleep=self._sleep,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts += 1
                    return self._attempt(_Call(call, method, path, params, json, retry, sensitive))
        except _RetryableError as exc:
            error = exc.error
            elapsed = self._clock() - start
            notes = [f"gave up after {attempts} attempts in {elapsed:.1f} s"] if attempts > 1 else []
            if exc.retry_after is not None and deadline > 0 and elapsed + exc.retry_after > deadline:
                notes.append(f"the server asked to retry after {exc.retry_after:g} s, past inventory.retry_deadline")
            if notes:
                error = type(error)(
                    call,
                    "; ".join([error.reason, *notes]),
                    target=error.target,
                    status=error.status,
                    message=error.message,
                    error=error.error,
                )
            raise self.count(error, expected) from None
        except InventoryError as exc:
            self.count(exc, expected)
            raise
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    @staticmethod
    def count(error: InventoryError, expected: tuple[type[InventoryError], ...] = ()) -> InventoryError:
        """Count ``error`` in ``flasher_inventory_errors_total`` (unless it is of an ``expected`` class);
        returns it, for ``raise transport.count(...)``."""
        if not isinstance(error, expected):
            INVENTORY_ERRORS.labels(call=error.call, error=type(error).__name__).inc()
        return error

    def _attempt(self, req: _Call) -> dict[str, Any]:
        renewed = False
        while True:
            response = self._send(req)
            if response.status_code == 401 and self.auth.renewable and not renewed:
                logger.info("inventory {}: 401 with an OAuth2 token; fetching a new token", req.name)
                self.auth.invalidate()
                renewed = True
                continue
            return self._answer(req, response)

    def _send(self, req: _Call) -> requests.Response:
        call, path = req.name, req.path
        try:
            headers = {"Accept": "application/json", **self.auth.headers()}
        except TokenError as exc:
            if exc.kind == "unavailable":
                raise _RetryableError(UnavailableError(call, str(exc), target=path, status=exc.status)) from None
            if exc.kind == "malformed":
                raise MalformedResponseError(call, str(exc), target=path) from None
            raise UnauthorizedError(call, str(exc), target=path, status=exc.status) from None
        try:
            return self.session.request(
                req.method,
                self.base_url + path,
                params=list(req.params) if req.params else None,
                json=req.body,
                headers=headers,
                timeout=self._timeout,
                verify=self._verify,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            reason = f"TLS failed ({redact.scrub(str(exc.args[0]) if exc.args else type(exc).__name__)[:200]}); "
            reason += "check inventory.url, inventory.ca_bundle and inventory.verify_tls"
            raise UnavailableError(call, reason, target=path) from None
        except requests.ConnectionError as exc:
            error = UnavailableError(call, f"cannot connect to {self.root_url} ({type(exc).__name__})", target=path)
            if req.retry == "all" or never_connected(exc):
                raise _RetryableError(error) from None
            raise UnavailableError(
                call, f"connection lost ({type(exc).__name__}); the write may have been applied", target=path
            ) from None
        except requests.Timeout:
            error = UnavailableError(call, f"no answer within {self.settings.read_timeout:g} s", target=path)
            if req.retry == "all":
                raise _RetryableError(error) from None
            raise UnavailableError(call, f"{error.reason}; the write may have been applied", target=path) from None
        except requests.RequestException as exc:  # invalid URL, too many redirects, ...
            raise UnavailableError(call, f"request failed: {type(exc).__name__}", target=path) from None

    def _answer(self, req: _Call, response: requests.Response) -> dict[str, Any]:
        call, path = req.name, req.path
        status = response.status_code
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            payload = None
        is_object = isinstance(payload, dict)
        message = str(payload.get("message") or "") if isinstance(payload, dict) else ""
        error_text = str(payload.get("error") or "") if isinstance(payload, dict) else ""
        details: dict[str, Any] = {"target": path, "status": status, "message": message, "error": error_text}
        if not is_object and not req.sensitive and response.content:
            details["error"] = f"body: {_snippet(response)}"

        if 200 <= status < 300:
            if isinstance(payload, dict):
                return payload
            raise MalformedResponseError(call, "the answer is not a JSON object", **details)
        if status in (401, 403):
            reason = "not authorised: check inventory.auth and the token's scopes"
            raise UnauthorizedError(call, reason, **details)
        if status == 404:
            if not is_object:  # not the server's JSON: a proxy's page, a wrong inventory.url
                raise MalformedResponseError(
                    call, "HTTP 404 without the server's JSON: is inventory.url right?", **details
                )
            raise NotFoundError(call, "not found", **details)
        if status == 429 or status >= 500:
            error = UnavailableError(call, "the inventory is unavailable", **details)
            if req.retry == "all" or status in (429, 503):
                raise _RetryableError(error, _retry_after(response))
            raise UnavailableError(call, "the inventory failed; the write may have been applied", **details)
        if status == 409 or (status == 400 and _DUPLICATE_KEY in error_text):
            raise ConflictError(call, "already exists", **details)
        if 300 <= status < 400:
            location = response.headers.get("Location", "?")
            raise MalformedResponseError(call, f"unexpected redirect to {location}: is inventory.url right?", **details)
        raise BadRequestError(call, "the inventory refused the request", **details)

    # -- lists ------------------------------------------------------------------------------------------------

    def pages(
        self, call: str, path: str, params: Params = (), *, key: Callable[[Mapping[str, Any]], Any] | None = None
    ) -> Iterator[Mapping[str, Any]]:
        """Yield every record of a paged list, page after page (``page`` from 1, ``limit`` = ``page_size``).

        Follows pages while ``page < total_pages`` (or, without totals, while there is a ``_links.next``); an
        empty page ends the list. ``key`` (e.g. the record's uuid) drops records already yielded: the server
        pages by offset over a newest-first order, so a record created while paging shifts the rest by one and
        the next page repeats a record (one deleted meanwhile may instead be skipped; the next poll sees it).
        A page that repeats only known records ends the list (a server that ignores ``page``).
        """
        seen: set[Any] = set()
        page = 1
        while True:
            body = self.request(call, "GET", path, params=[*params, ("page", page), ("limit", self.settings.page_size)])
            records = body.get("records")
            if records is None:
                records = []
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise self.count(MalformedResponseError(call, "records is not a list of objects", target=path))
            fresh = 0
            for record in records:
                if key is not None:
                    identity = key(record)
                    if identity in seen:
                        continue
                    seen.add(identity)
                fresh += 1
                yield record
            if not records or (key is not None and fresh == 0):
                return
            total_pages = body.get("total_pages")
            links = body.get("_links")
            if isinstance(total_pages, int) and not isinstance(total_pages, bool):
                more = page < total_pages
            else:
                more = isinstance(links, dict) and bool(links.get("next"))
            if not more:
                return
            page += 1

    # -- health -----------------------------------------------------------------------------------------------

    def probe(self, path: str) -> int | None:
        """``GET root_url + path`` once (no auth, no retry); the status, or ``None`` when there is no answer."""
        try:
            response = self.session.get(self.root_url + path, timeout=self._timeout, verify=self._verify)
        except requests.RequestException:
            return None
        return response.status_code
