"""Streaming an image from an HTTP(S) URL into a file: hashed on the way, retried, resumed with Range.

One :meth:`Downloader.download` call writes the body to ``dest`` chunk by chunk (never the whole image in
memory) and hashes it as it goes. Connection errors, timeouts, a body cut short and HTTP 408/429/5xx are retried
with exponential backoff and jitter (tenacity). A retry resumes where the last attempt stopped with
``Range: bytes=N-`` (RFC 9110 §14.2) guarded by ``If-Range`` with the first answer's strong ETag or
Last-Modified, so a file that changed on the server is not stitched together from two versions. A server that
answers 200 instead of 206 is read again from byte 0; one that said ``Accept-Ranges: none`` is never asked for
a range. Every redirect target is checked against the allowed schemes and hosts before it is requested, and
every connection's peer address once it is connected, before the request goes out (:mod:`flasher.store.urls`).

Checksum verification and the cache are the caller's (:mod:`flasher.store.store`): this module returns the
digest it computed.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import requests
import urllib3
from loguru import logger
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_any,
    stop_before_delay,
    wait_exponential_jitter,
)
from tenacity.stop import stop_base
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from flasher import metrics, redact
from flasher.config import StoreSettings
from flasher.hostrules import HostPattern, parse_patterns
from flasher.logs import warn_once
from flasher.store.errors import DownloadError, ImageTooLargeError, StoreError, TruncatedDownloadError
from flasher.store.urls import check_peer, check_url, display_url

ProgressCallback = Callable[[int, int | None], None]
"""Called with (bytes received so far, total bytes or None when the server did not say) after every chunk."""

_RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_MAX_REDIRECTS = 5
_QUERY = re.compile(r"\?[^\s'\")]*")


@dataclass(frozen=True)
class Downloaded:
    """The result of a download: ``size`` bytes whose ``hexdigest`` (of the algorithm asked for) was computed
    while streaming, after ``attempts`` HTTP requests in ``seconds``."""

    size: int
    hexdigest: str
    attempts: int
    seconds: float


@dataclass
class _Transfer:
    """One download: what was asked for and what has been received so far, across attempts."""

    url: str
    shown: str
    out: IO[bytes]
    algorithm: str
    session: requests.Session
    max_bytes: int
    on_size: Callable[[int], None] | None
    on_progress: ProgressCallback | None
    deadline: float | None
    hasher: Any = None
    received: int = 0
    total: int | None = None
    validator: str | None = None  # strong ETag or Last-Modified of the first answer, for If-Range
    ranges_refused: bool = False  # the server said Accept-Ranges: none
    stalled: int = 0  # attempts in a row that did not resume and get further
    attempts: int = 0
    reserved: int | None = None  # the size on_size was last called with

    def __post_init__(self) -> None:
        self.hasher = hashlib.new(self.algorithm)

    def restart(self) -> None:
        """Forget what was received: the next bytes are the image's first."""
        self.out.seek(0)
        self.out.truncate()
        self.hasher = hashlib.new(self.algorithm)
        self.received = 0

    def write(self, chunk: bytes) -> None:
        self.out.write(chunk)
        self.hasher.update(chunk)
        self.received += len(chunk)


class _StalledAttempts(stop_base):
    """Stop after ``limit`` attempts in a row that got no further than the one before (the first one counts):
    a retry that resumed and received more does not use up the retry budget of a large image on a flaky link."""

    def __init__(self, transfer: _Transfer, limit: int) -> None:
        self.transfer = transfer
        self.limit = limit

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.transfer.stalled >= self.limit


def _peer_checked(base: type[HTTPConnection], scheme: str, patterns: tuple[HostPattern, ...]) -> type[HTTPConnection]:
    """``base`` (urllib3's HTTP or HTTPS connection) that checks the address it connected to before sending
    anything (:func:`~flasher.store.urls.check_peer`): the name was checked, this is where it led."""

    class PeerChecked(base):  # type: ignore[valid-type,misc]  # a class made for one session's rules
        def _new_conn(self) -> socket.socket:
            sock: socket.socket = super()._new_conn()
            try:
                check_peer(scheme, self.host, self.port, str(sock.getpeername()[0]), patterns)
            except BaseException:
                sock.close()
                raise
            return sock

    return PeerChecked


class _PeerCheckedAdapter(HTTPAdapter):
    """requests' adapter whose connections refuse a peer address the store does not allow. Connections through a
    proxy (``HTTPS_PROXY``...) reach the proxy, so there only the names are checked."""

    def __init__(self, patterns: tuple[HostPattern, ...]) -> None:
        self._patterns = patterns
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        http_conn = _peer_checked(HTTPConnection, "http", self._patterns)
        https_conn = _peer_checked(HTTPSConnection, "https", self._patterns)
        http_pool = type("PeerCheckedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
        https_pool = type("PeerCheckedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


class _CheckedSession(requests.Session):
    """A session held to the store's URL rule everywhere: every redirect target is checked before it is
    followed, and every connection's peer address before a request goes out on it."""

    def __init__(self, allowed_schemes: Sequence[str], allowed_hosts: Sequence[str]) -> None:
        super().__init__()
        self.max_redirects = _MAX_REDIRECTS
        self._allowed_schemes = allowed_schemes
        self._patterns = parse_patterns(allowed_hosts)
        adapter = _PeerCheckedAdapter(self._patterns)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target is not None:
            check_url(urljoin(resp.url, target), self._allowed_schemes, self._patterns)
        return target


class Downloader:
    """Downloads image URLs with the timeouts and TLS settings of ``settings`` (``store.*``).

    ``attempts``: how many attempts in a row may fail without getting further than the one before (a server that
    answers 503 gets ``attempts`` requests; a retry that resumed and received more starts the count again; at most
    ``10 * attempts`` requests in all). ``backoff``: the first wait between attempts in seconds,
    doubled each time (with jitter) up to ``max_backoff``.
    """

    def __init__(self, settings: StoreSettings, *, attempts: int, backoff: float, max_backoff: float) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {attempts}")
        self.settings = settings
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max(max_backoff, backoff)
        if not settings.verify_tls:
            warn_once(
                "store.verify_tls",
                "TLS certificate verification is OFF for firmware image downloads (store.verify_tls is false): the"
                " checksum still guards the image, but not the secrecy of pre-signed URLs",
            )

    def download(
        self,
        url: str,
        dest: Path,
        algorithm: str,
        *,
        max_bytes: int,
        on_size: Callable[[int], None] | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> Downloaded:
        """Stream ``url`` into ``dest`` (created or truncated; flushed and fsynced at the end).

        ``algorithm``: hashlib name of the digest to compute. ``max_bytes``: a larger image raises
        :class:`ImageTooLargeError` (checked against the announced size before the body, and while receiving).
        ``on_size(total)`` is called once the server announces the image's size, before the body is read (the
        store makes room there). ``deadline``: monotonic seconds by which the download must be done.

        Raises :class:`DisallowedURLError` for a redirect elsewhere, :class:`DownloadError` (``retriable`` set) when
        retries are exhausted or the answer is final (e.g. 404), :class:`TruncatedDownloadError` when the body stays
        shorter than announced. ``dest`` then holds a partial body the caller must discard.
        """
        started = time.monotonic()
        shown = display_url(url)
        stops: list[stop_base] = [stop_after_attempt(self.attempts * 10)]
        with dest.open("wb") as out, _CheckedSession(self.settings.allowed_schemes, self.settings.allowed_hosts) as s:
            transfer = _Transfer(url, shown, out, algorithm, s, max_bytes, on_size, on_progress, deadline)
            stops.append(_StalledAttempts(transfer, self.attempts))
            if deadline is not None:
                stops.append(stop_before_delay(max(0.0, deadline - started)))
            retrying = Retrying(
                stop=stop_any(*stops),
                wait=wait_exponential_jitter(multiplier=self.backoff, max=self.max_backoff, jitter=self.backoff),
                retry=retry_if_exception(lambda exc: isinstance(exc, StoreError) and exc.retriable),
                before_sleep=lambda state: _log_retry(shown, transfer, state),
                reraise=True,
            )
            for attempt in retrying:
                with attempt:
                    self._attempt(transfer)
            out.flush()
            os.fsync(out.fileno())
        return Downloaded(
            size=transfer.received,
            hexdigest=transfer.hasher.hexdigest(),
            attempts=transfer.attempts,
            seconds=time.monotonic() - started,
        )

    def _verify(self) -> bool | str:
        """requests' ``verify``: the CA bundle when one is set, else whether to verify at all."""
        settings = self.settings
        return str(settings.ca_bundle) if settings.ca_bundle and settings.verify_tls else settings.verify_tls

    def probe(self, url: str) -> int | None:
        """Whether a download of ``url`` could start, asked of the server without fetching the image: one GET for
        its first byte (``Range: bytes=0-0``; a HEAD would be refused by pre-signed URLs, which sign the method),
        under the same rules as :meth:`download` (redirects and peer addresses checked, the same timeouts and
        TLS), never retried. Returns the image's size when the server says it, else ``None``.

        Raises :class:`DisallowedURLError` and :class:`DownloadError` (``retriable`` as for a download).
        """
        shown = display_url(url)
        settings = self.settings
        with _CheckedSession(settings.allowed_schemes, settings.allowed_hosts) as session:
            try:
                response = session.get(
                    url,
                    headers={"Accept-Encoding": "identity", "Range": "bytes=0-0"},
                    stream=True,
                    timeout=(settings.connect_timeout, settings.read_timeout),
                    verify=self._verify(),
                )
            except requests.TooManyRedirects:
                raise DownloadError(shown, f"more than {_MAX_REDIRECTS} redirects", retriable=False) from None
            except requests.exceptions.SSLError as exc:
                raise DownloadError(shown, _describe(exc), retriable=False) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise DownloadError(shown, _describe(exc), retriable=True) from None
            except requests.RequestException as exc:
                raise DownloadError(shown, _describe(exc), retriable=False) from None
            with response:
                status = response.status_code
                if status == 206:
                    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
                    return int(match[3]) if match is not None and match[3] != "*" else None
                if status == 200:
                    length = response.headers.get("Content-Length", "")
                    return int(length) if length.isdigit() else None
                reason = f"HTTP {status} {response.reason or ''}".rstrip()
                raise DownloadError(shown, reason, retriable=status in _RETRIABLE_STATUS)

    def _attempt(self, transfer: _Transfer) -> None:
        transfer.attempts += 1
        before = transfer.received
        try:
            self._request(transfer)
        finally:
            # A retry that got further than the attempt before it resets the budget; the first attempt counts.
            resumed_further = transfer.attempts > 1 and transfer.received > before
            transfer.stalled = 0 if resumed_further else transfer.stalled + 1

    def _request(self, transfer: _Transfer) -> None:
        if transfer.deadline is not None and time.monotonic() >= transfer.deadline:
            raise DownloadError(
                transfer.shown, f"deadline passed after {transfer.received} bytes, before retrying", retriable=False
            )
        headers = {"Accept-Encoding": "identity"}  # the checksum is of the file, not of a gzip of it
        asked_from = transfer.received if transfer.received and not transfer.ranges_refused else 0
        if asked_from:
            headers["Range"] = f"bytes={asked_from}-"
            if transfer.validator:
                headers["If-Range"] = transfer.validator
        else:
            transfer.restart()
        settings = self.settings
        try:
            response = transfer.session.get(
                transfer.url,
                headers=headers,
                stream=True,
                timeout=(
                    _clip(settings.connect_timeout, transfer.deadline),
                    _clip(settings.read_timeout, transfer.deadline),
                ),
                verify=self._verify(),
            )
        except requests.TooManyRedirects:
            raise DownloadError(transfer.shown, f"more than {_MAX_REDIRECTS} redirects", retriable=False) from None
        except requests.exceptions.SSLError as exc:  # a certificate that does not verify will not start to
            raise DownloadError(transfer.shown, _describe(exc), retriable=False) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise DownloadError(transfer.shown, _describe(exc), retriable=True) from None
        except requests.RequestException as exc:  # invalid URL, missing schema, ...
            raise DownloadError(transfer.shown, _describe(exc), retriable=False) from None
        with response:
            self._check_status(response, transfer, asked_from)
            if transfer.total is not None:
                if transfer.total > transfer.max_bytes:
                    raise ImageTooLargeError(transfer.shown, transfer.total, transfer.max_bytes)
                if transfer.on_size is not None and transfer.total != transfer.reserved:
                    transfer.reserved = transfer.total
                    transfer.on_size(transfer.total)
            self._stream(response, transfer)

    def _check_status(self, response: requests.Response, transfer: _Transfer, asked_from: int) -> None:
        """Accept 200 (from byte 0) or 206 (from ``asked_from``) and learn the total size; raise otherwise."""
        status = response.status_code
        if status == 206 and asked_from:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "").strip())
            if match is None or int(match[1]) != asked_from:
                transfer.restart()
                raise DownloadError(
                    transfer.shown,
                    f"asked for bytes from {asked_from}, the server answered Content-Range "
                    f"{response.headers.get('Content-Range')!r}; restarting from byte 0",
                    retriable=True,
                )
            if match[3] != "*":
                if transfer.total is not None and int(match[3]) != transfer.total:
                    transfer.restart()
                    raise DownloadError(transfer.shown, "the image changed size on the server", retriable=True)
                transfer.total = int(match[3])
            logger.info("resuming {} at byte {}", transfer.shown, asked_from)
            return
        if status == 200:
            if asked_from:
                logger.info("{} does not resume (answered 200 to a Range request): from byte 0", transfer.shown)
                transfer.restart()
            length = response.headers.get("Content-Length")
            transfer.total = int(length) if length and length.isdigit() else None
            transfer.ranges_refused = response.headers.get("Accept-Ranges", "").strip().lower() == "none"
            etag = response.headers.get("ETag", "")
            strong_etag = etag if etag.startswith('"') else None  # If-Range needs a strong validator
            transfer.validator = strong_etag or response.headers.get("Last-Modified")
            return
        if status == 416 and asked_from:
            transfer.restart()
            raise DownloadError(transfer.shown, "416 to a Range request; restarting from byte 0", retriable=True)
        reason = f"HTTP {status} {response.reason or ''}".rstrip()
        raise DownloadError(transfer.shown, reason, retriable=status in _RETRIABLE_STATUS)

    def _stream(self, response: requests.Response, transfer: _Transfer) -> None:
        # raw.read1 hands over whatever arrived, so a connection cut mid-chunk keeps the bytes it did deliver
        # (iter_content's read(amt) would drop them with IncompleteRead) and a resume starts exactly there.
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise DownloadError(
                transfer.shown, f"the server sent Content-Encoding {encoding!r} despite identity", retriable=False
            )
        raw = response.raw
        try:
            while chunk := raw.read1(self.settings.chunk_bytes, decode_content=False):
                if transfer.deadline is not None and time.monotonic() > transfer.deadline:
                    raise DownloadError(
                        transfer.shown,
                        f"deadline passed after {transfer.received} of {transfer.total or '?'} bytes",
                        retriable=False,
                    )
                try:
                    transfer.write(chunk)
                except OSError as exc:
                    raise StoreError(f"cannot write {transfer.out.name}: {exc.strerror}") from None
                metrics.BYTES_DOWNLOADED.inc(len(chunk))
                if transfer.received > transfer.max_bytes:
                    raise ImageTooLargeError(transfer.shown, transfer.received, transfer.max_bytes)
                if transfer.on_progress is not None:
                    transfer.on_progress(transfer.received, transfer.total)
        except urllib3.exceptions.ProtocolError as exc:  # connection reset or closed before the announced end
            if transfer.total is not None and transfer.received < transfer.total:
                raise TruncatedDownloadError(transfer.shown, transfer.total, transfer.received) from None
            raise DownloadError(transfer.shown, _describe(exc), retriable=True) from None
        except urllib3.exceptions.HTTPError as exc:  # read timeout, TLS error
            where = f"after {transfer.received} of {transfer.total or '?'} bytes"
            raise DownloadError(transfer.shown, f"{_describe(exc)} {where}", retriable=True) from None
        if transfer.total is not None and transfer.received != transfer.total:
            if transfer.received < transfer.total:
                raise TruncatedDownloadError(transfer.shown, transfer.total, transfer.received)
            raise DownloadError(
                transfer.shown,
                f"received {transfer.received} bytes, more than the {transfer.total} announced",
                retriable=False,
            )


def _clip(timeout: float, deadline: float | None) -> float:
    """``timeout`` seconds, or less when the deadline comes sooner (at least 0.1 s: 0 means no timeout)."""
    if deadline is None:
        return timeout
    return max(0.1, min(timeout, deadline - time.monotonic()))


def _describe(exc: BaseException) -> str:
    """``exc``'s class and urllib3's underlying reason, without query strings (they may hold signatures)."""
    reason: object = exc
    inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
    if inner is not None:
        reason = getattr(inner, "reason", None) or inner  # MaxRetryError wraps the real cause in .reason
    return redact.scrub(_QUERY.sub("?***", f"{type(exc).__name__}: {reason}"))


def _log_retry(shown: str, transfer: _Transfer, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    logger.warning(
        "download of {} (attempt {}) failed: {}; retrying in {:.1f} s from byte {}",
        shown,
        state.attempt_number,
        error,
        state.upcoming_sleep,
        transfer.received if not transfer.ranges_refused else 0,
    )
