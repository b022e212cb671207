"""Typed BMC errors, and the translation of sushy's and requests' exceptions into them.

Every error carries the BMC's own words when it gave any: the ``Message`` of each entry of a Redfish error
body's ``error.@Message.ExtendedInfo`` (DSP0266, "Error responses"), else ``error.message``, else the entries'
``MessageId`` (a registry key such as ``Base.1.0.GeneralError`` says less than the BMC's sentence: sushy-tools
answers ``{"message": "Missing ImageURI and/or Targets.", "@Message.ExtendedInfo": [{"MessageId":
"Base.1.0.GeneralError"}]}``). An error for HTTP 404 names the resource that is missing. Messages are passed
through :func:`flasher.redact.scrub`, so a registered credential never appears in one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from sushy import exceptions as sushy_exc

from flasher import redact


class BMCError(Exception):
    """Base of every BMC error. ``bmc_messages``: what the BMC itself said (ExtendedInfo messages), if anything."""

    def __init__(self, message: str, *, bmc_messages: tuple[str, ...] = ()) -> None:
        self.bmc_messages = tuple(redact.scrub(m) for m in bmc_messages)
        text = redact.scrub(message)
        extra = [m for m in self.bmc_messages if m not in text]
        if extra:
            text = f"{text} (BMC says: {'; '.join(extra)})"
        super().__init__(text)
        self.message = text


class BMCUnreachableError(BMCError):
    """The BMC did not answer: connection refused or reset, timeout, TLS failure, or HTTP 5xx."""


class BMCServerError(BMCUnreachableError):
    """The BMC answered, with HTTP 5xx (busy, updating itself, restarting its services): unreachable for every
    retry rule, but alive, so never a reason to cut its power (the PDU fallback)."""


class BMCRequestUnansweredError(BMCUnreachableError):
    """A write request went out but no answer came back (read timeout, connection reset after sending): the BMC
    may have acted on it. Never send it again blindly: look at the BMC's tasks and versions first."""


class BMCAuthError(BMCError):
    """The BMC refused the credentials (HTTP 401) or the operation (HTTP 403, e.g. a licence is missing)."""


class BMCNotSupportedError(BMCError):
    """The BMC lacks what was asked for: a resource, an action, an install method or an allowed value."""


class BMCTaskFailedError(BMCError):
    """A BMC task ended in failure (Exception, Killed, Cancelled, Interrupted, or Completed with Critical health),
    or the BMC refused to start one (e.g. the image was rejected)."""


class BMCTimeoutError(BMCError):
    """A wait ran out: a task, a power state, a version read-back, or the BMC coming back after a reset."""


class BMCInterruptedError(BMCError):
    """The caller's ``keep_going`` said stop; the BMC may still be working on the task."""


class BMCAddressError(BMCError, ValueError):
    """A BMC address that cannot be used (empty, bad scheme, credentials inside the URL)."""


def messages_of(body: Any) -> tuple[str, ...]:
    """The human-readable messages of a Redfish error body or of a list of Redfish ``Message`` objects.

    Accepts ``{"error": {"message": ..., "@Message.ExtendedInfo": [...]}}``, ``{"@Message.ExtendedInfo": [...]}``
    (some BMCs answer an action so), a bare list of messages (a Task's ``Messages``), or anything else (→ ``()``).
    The ``Message`` of each entry that has one; when none has, the error's own ``message``; when there is none
    either, each entry's ``MessageId``. Duplicates are dropped, the order kept.
    """
    entries: Any = None
    fallback: str | None = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            entries = error.get("@Message.ExtendedInfo")
            if isinstance(error.get("message"), str):
                fallback = error["message"]
        else:
            entries = body.get("@Message.ExtendedInfo")
    elif isinstance(body, list):
        entries = body
    if isinstance(entries, dict):
        entries = [entries]
    listed = [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []
    out = _texts(entry.get("Message") for entry in listed)
    if not out:
        out = _texts([fallback])
    if not out:
        out = _texts(entry.get("MessageId") for entry in listed)
    return tuple(out)


def _texts(values: Any) -> list[str]:
    out: list[str] = []
    for value in values:
        if isinstance(value, str) and value.strip() and value.strip() not in out:
            out.append(value.strip())
    return out


#: How sushy's ``HTTPError`` names the request that failed (its message templates, sushy 5.x: ``HTTP GET <url>
#: returned code ...``, and ``Resource <url> not found`` for a 404).
_FAILED_REQUEST = re.compile(r"^(?:HTTP \S+ (?P<url>\S+) returned code|Resource (?P<missing>\S+) not found)")


def failed_path(exc: sushy_exc.HTTPError) -> str | None:
    """The path (and query) of the request that got ``exc``, from sushy's message; ``None`` when it is not there."""
    match = _FAILED_REQUEST.match(str(exc))
    if match is None:
        return None
    parts = urlsplit(match["url"] or match["missing"])
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


_CONNECTION_REASONS: tuple[tuple[str, str], ...] = (
    ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted (set bmc.ca_bundle, or bmc.insecure)"),
    ("SSLError", "TLS handshake failed"),
    ("Connection refused", "connection refused"),
    ("Read timed out", "no answer within the read timeout"),
    ("ConnectTimeout", "connection timed out"),
    ("timed out", "timed out"),
    ("Name or service not known", "the name does not resolve"),
    ("NameResolutionError", "the name does not resolve"),
    ("Network is unreachable", "network unreachable"),
    ("No route to host", "no route to host"),
    ("RemoteDisconnected", "the BMC closed the connection"),
    ("Connection reset", "the BMC reset the connection"),
    ("Connection aborted", "the BMC closed the connection"),
)


def connection_reason(text: str) -> str:
    """A short reason for a connection failure (``connection refused``...) from requests'/urllib3's long text;
    the text itself when no known cause is in it."""
    lowered = text.lower()
    for marker, reason in _CONNECTION_REASONS:
        if marker.lower() in lowered:
            return reason
    return text


def _http_error(action: str, exc: sushy_exc.HTTPError) -> BMCError:
    body = {"error": exc.body} if isinstance(exc.body, dict) else None
    said = messages_of(body)
    status = exc.status_code
    if isinstance(exc, sushy_exc.AccessError):
        if status == 403:
            return BMCAuthError(f"{action}: the BMC refused the operation (HTTP 403)", bmc_messages=said)
        return BMCAuthError(f"{action}: the BMC refused the credentials (HTTP {status})", bmc_messages=said)
    if isinstance(exc, sushy_exc.ServerSideError):
        return BMCServerError(f"{action}: the BMC answered HTTP {status}", bmc_messages=said)
    if isinstance(exc, sushy_exc.ResourceNotFoundError):
        path = failed_path(exc)
        what = f"no resource {path}" if path else "no such resource"
        return BMCNotSupportedError(f"{action}: the BMC has {what} (HTTP 404)", bmc_messages=said)
    if status == 405:
        return BMCNotSupportedError(f"{action}: the BMC does not allow this method (HTTP 405)", bmc_messages=said)
    return BMCError(f"{action}: the BMC answered HTTP {status}", bmc_messages=said)


class RequestNotRepeatedError(requests.RequestException):
    """Raised by the BMC session (:mod:`flasher.bmc.session`) for a write that may have reached the BMC and must
    not be sent again by a hidden retry. It is a plain ``RequestException`` on purpose: sushy's connector
    retries only its ``ConnectionError``/``Timeout`` family, and turns this one into its ``ConnectionError`` at
    once. :func:`translate` turns it into :class:`BMCRequestUnansweredError`."""


def _went_out_unanswered(exc: BaseException) -> bool:
    """True when a :class:`RequestNotRepeatedError` is in ``exc``'s chain of causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, RequestNotRepeatedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def translate(action: str, exc: BaseException) -> BMCError:
    """The :class:`BMCError` for ``exc`` raised while doing ``action`` (a short phrase: "read the task").

    sushy ``ConnectionError`` and requests exceptions → :class:`BMCUnreachableError`
    (:class:`BMCRequestUnansweredError` for a write that went out and got no answer); HTTP 401/403 →
    :class:`BMCAuthError`; 5xx → :class:`BMCUnreachableError`; 404/405, missing attributes or actions, values the BMC
    does not allow, no default System/Manager → :class:`BMCNotSupportedError`; other HTTP errors → :class:`BMCError`.
    """
    if isinstance(exc, BMCError):
        return exc
    if isinstance(exc, sushy_exc.HTTPError):
        return _http_error(action, exc)
    if isinstance(exc, sushy_exc.ConnectionError | requests.RequestException):
        reason = f"{action}: the BMC did not answer: {connection_reason(str(exc))}"
        return BMCRequestUnansweredError(reason) if _went_out_unanswered(exc) else BMCUnreachableError(reason)
    if isinstance(
        exc,
        sushy_exc.MissingAttributeError
        | sushy_exc.MissingActionError
        | sushy_exc.UnknownDefaultError
        | sushy_exc.InvalidParameterValueError,
    ):
        return BMCNotSupportedError(f"{action}: {exc}")
    if isinstance(exc, sushy_exc.SushyError):
        return BMCError(f"{action}: {exc}")
    return BMCError(f"{action}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Within this block, sushy and requests exceptions are raised as the matching :class:`BMCError`."""
    try:
        yield
    except BMCError:
        raise
    except (sushy_exc.SushyError, requests.RequestException) as exc:
        raise translate(action, exc) from exc
