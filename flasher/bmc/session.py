"""A Redfish session with one BMC over sushy: address, TLS, timeouts, credentials, re-login.

* Address: ``host``, ``host:port``, ``[v6]:port`` or a URL (``https://host:port``, optionally ending in
  ``/redfish/v1``); the scheme comes from :attr:`BMCSettings.scheme` when absent. Credentials inside the URL are
  refused (they would end up in logs and error messages).
* TLS: verified by default, against ``ca_bundle`` when set; ``insecure: true`` (or ``verify_tls: false``) turns
  verification off and logs a warning, once per process (:func:`flasher.logs.warn_once`).
* Timeouts: ``connect_timeout`` and ``read_timeout`` on every request; ``retries`` and ``retry_delay`` bound
  sushy's retries (sushy makes ``server_side_retries`` attempts on connection errors and retries a GET that got
  a 5xx that many times), so a dead BMC fails in seconds, not the ~27 s of sushy's defaults.
* A POST (an action: power, BMC reset, install, log-in) that may have reached the BMC is never repeated by
  that retry: sushy repeats any request that timed out or lost its connection, which would send a second
  PowerCycle or Manager.Reset. Only a POST whose connection was never made (connect timeout, connection
  refused, name not resolved) is retried; whether to send an action again is the caller's decision.
* Credentials: the password is registered with :mod:`flasher.redact`. One log-in per connect, and at most one
  failed one: BMCs lock an account after a few failures (iDRAC after 3 by default, iLO and XCC after 5 or so).
  flasher logs in with a Redfish session and uses HTTP Basic auth only when the BMC has no session service
  (404/405/501 or no ``X-Auth-Token``), never after the BMC refused the session's credentials (401/403): sushy's
  ``SessionOrBasicAuth`` would try Basic then, a second failed login. :meth:`Connection.open` then reads one
  authenticated resource (with Basic auth the first request that carries the credentials), so wrong credentials
  raise :class:`~flasher.bmc.errors.BMCAuthError` at once (``log in to the BMC at ... as 'root': the BMC refused
  the credentials (HTTP 401)``).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import requests
import sushy
from loguru import logger
from pydantic import SecretStr
from sushy import auth as sushy_auth
from sushy import connector as sushy_connector
from sushy import exceptions as sushy_exc

from flasher import httpenv, redact
from flasher.bmc.errors import (
    BMCAddressError,
    BMCAuthError,
    BMCError,
    BMCUnreachableError,
    RequestNotRepeatedError,
    translate,
    translated,
)
from flasher.config import BMCSettings
from flasher.logs import warn_once
from flasher.netfail import never_connected

_ROOT = "/redfish/v1/"


def parse_address(address: str, default_scheme: str) -> str:
    """The base URL (``scheme://host[:port]``) for a BMC ``address``; raises :class:`BMCAddressError`."""
    raw = (address or "").strip()
    if not raw:
        raise BMCAddressError("BMC address is empty")
    if "://" not in raw:
        host_part = raw
        try:  # a bare IPv6 address needs brackets before a scheme can be put in front of it
            if ipaddress.ip_address(host_part).version == 6:
                host_part = f"[{host_part}]"
        except ValueError:
            pass
        raw = f"{default_scheme}://{host_part}"
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise BMCAddressError(f"BMC address {address!r}: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BMCAddressError(f"BMC address {address!r}: scheme must be http or https, got {parts.scheme!r}")
    if parts.username is not None or parts.password is not None:
        raise BMCAddressError("BMC address must not contain credentials; give them separately")
    if not parts.hostname:
        raise BMCAddressError(f"BMC address {address!r} has no host")
    path = parts.path.rstrip("/")
    if path not in ("", "/redfish/v1", "/redfish"):
        raise BMCAddressError(f"BMC address {address!r}: unexpected path {parts.path!r} (give scheme://host[:port])")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def tls_verify(settings: BMCSettings, base_url: str) -> bool | str:
    """requests' ``verify`` for ``settings``: ``False`` (insecure; warned once per process), a CA bundle path, or
    ``True``."""
    if not base_url.startswith("https://"):
        return True
    if settings.insecure or not settings.verify_tls:
        warn_once(
            "bmc.verify_tls",
            "TLS certificate verification is OFF for BMCs (bmc.insecure / bmc.verify_tls), first for {}",
            base_url,
        )
        return False
    if settings.ca_bundle is not None:
        return str(settings.ca_bundle)
    return True


#: Methods sushy's connection-level retry may repeat: reads, and writes that set absolute values (PATCH of the
#: boot override or of HttpPushUriTargets, DELETE of a session). A POST starts something and is not among them.
REPEATABLE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})


class _Session(requests.Session):
    """requests' session that keeps sushy from repeating a POST that may have reached the BMC.

    ``keep_alive``: connections stay open between requests, except that a request that is not repeatable (a POST)
    goes on a new one: on a kept connection the BMC may have closed meanwhile it could fail after it was sent,
    and it would not be sent again.
    """

    keep_alive = False

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        verb = method.decode() if isinstance(method, bytes) else method
        if self.keep_alive and verb.upper() not in REPEATABLE_METHODS:
            for adapter in self.adapters.values():
                adapter.close()  # the pool's kept connections: this one opens a new connection
        try:
            return super().request(method, url, *args, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            if verb.upper() in REPEATABLE_METHODS or never_connected(exc):
                raise
            raise RequestNotRepeatedError(
                f"{exc} (a {verb.upper()} is not sent again: the BMC may have run it)"
            ) from exc


class Connector(sushy_connector.Connector):  # type: ignore[misc]  # sushy ships no type hints
    """sushy's connector whose connection-level retry never repeats a POST that may have reached the BMC, plus
    :meth:`send_once`, for requests that must not be repeated by a retry of any kind."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        made: requests.Session = self._session
        session = _Session()
        session.headers = made.headers  # sushy's defaults ("Connection: close")
        session.adapters = made.adapters  # and its TLS adapter when it mounted one
        self._session: requests.Session = session

    def share_tls(self, base_url: str) -> None:
        """Resolve once what requests looks up in the environment at every request, and verify HTTPS with one
        shared TLS context (:func:`flasher.httpenv.settle`)."""
        current: bool | str = getattr(self, "_verify", True)  # sushy's, untyped
        self._verify = httpenv.settle(self._session, base_url, current)

    def keep_alive(self) -> None:
        """Keep connections open between requests (``bmc.keep_alive``): no ``Connection: close``, a new
        connection only for requests that are not repeatable (:class:`_Session`)."""
        session = self._session
        session.headers = requests.structures.CaseInsensitiveDict(
            {k: v for k, v in session.headers.items() if k.lower() != "connection"}
        )
        if isinstance(session, _Session):
            session.keep_alive = True

    def send_once(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: Callable[[], Any] | None = None,
        headers: dict[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> requests.Response:
        """Send one request, exactly once: no retry on connection errors or timeouts (sushy's ``_op`` retries
        every method, which could start a second install or replay a half-read upload stream).

        ``body`` makes a fresh payload (bytes or a readable stream) for the request; ``json`` is sent as JSON.
        A 401 from an expired session re-authenticates and sends once more (the BMC refused the first request,
        so nothing ran). Raises sushy's ``ConnectionError`` or ``HTTPError`` subclasses like sushy does.
        """
        url = path if urlsplit(path).netloc else urljoin(self._url, path)
        all_headers = {"OData-Version": "4.0", "Accept-Encoding": "identity", **(headers or {})}
        timeout = (
            self._connect_timeout or self._default_request_timeout,
            read_timeout or self._default_request_timeout,
        )
        for attempt in (1, 2):
            try:
                response = self._session.request(
                    method,
                    url,
                    json=json,
                    data=body() if body is not None else None,
                    headers=all_headers,
                    verify=self._verify,
                    timeout=timeout,
                )
            except requests.RequestException as exc:
                raise sushy_exc.ConnectionError(url=url, error=exc) from exc
            expired = response.status_code == 401 and attempt == 1 and self._auth is not None
            if expired and self._auth.can_refresh_session():
                self._auth.refresh_session()
                continue
            sushy_exc.raise_for_response(method, url, response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover


class SessionAuth(sushy_auth.SessionOrBasicAuth):  # type: ignore[misc]  # sushy ships no type hints
    """sushy's session-or-Basic auth that falls back to Basic only when the BMC has no session service.

    A session login the BMC refuses (sushy ``AccessError``: 401, 403) is final, and so is a connection failure;
    any other failure of the session login (404, 405, 501, no ``X-Auth-Token``) means there is no session service,
    and Basic auth is used (no request is sent for that: the next request carries the credentials).
    """

    def _do_authenticate(self) -> None:
        try:
            sushy_auth.SessionAuth._do_authenticate(self)
        except (sushy_exc.AccessError, sushy_exc.ConnectionError):
            raise
        except sushy_exc.SushyError as exc:
            logger.debug("BMC has no usable session service ({}); using HTTP Basic auth", exc)
            self._fallback_to_basic_authentication()


#: A requests response hook: called with every response the BMC's HTTP session receives (and requests' kwargs).
ResponseHook = Callable[..., Any]


class Connection:
    """A logged-in sushy ``Sushy`` root for one BMC, re-created by :meth:`reopen` after the BMC restarts.

    ``response_hooks`` are requests response hooks put on every HTTP session this connection opens (log-in and
    log-out included): a way to observe the requests sent (benchmarks count them), never to change them.

    Raises, from :meth:`open`: :class:`~flasher.bmc.errors.BMCUnreachableError` (no answer, TLS failure, 5xx),
    :class:`~flasher.bmc.errors.BMCAuthError` (credentials refused), :class:`~flasher.bmc.errors.BMCAddressError`.
    """

    def __init__(
        self,
        address: str,
        username: str,
        password: SecretStr | str,
        settings: BMCSettings,
        *,
        response_hooks: Sequence[ResponseHook] = (),
    ) -> None:
        self.settings = settings
        self._hooks = tuple(response_hooks)
        self.base_url = parse_address(address, settings.scheme)
        self._username = username
        self._password = password if isinstance(password, SecretStr) else SecretStr(password)
        redact.register(self._password.get_secret_value())
        self._verify: bool | str = tls_verify(settings, self.base_url)
        self._root: Any = None
        self._auth: Any = None
        self._connector: Connector | None = None
        self._held: dict[str, dict[str, Any]] = {}
        self._held_at: dict[str, float] = {}
        self._values: dict[str, str] = {}

    # -- lifecycle ----------------------------------------------------------------------------------------------
    def open(self) -> None:
        """Connect, log in and check the credentials; replaces any previous session."""
        self.drop()
        # sushy makes `server_side_retries` connection attempts (3 when given 0) and sleeps
        # `server_side_retries_delay` between them (2 s when given 0): pass values that mean what settings say.
        retries = max(self.settings.retries, 1)
        connector = Connector(
            self.base_url,
            verify=self._verify,
            server_side_retries=retries,
            server_side_retries_delay=self.settings.retry_delay or 0.001,
            default_request_timeout=self.settings.read_timeout,
            connect_timeout=self.settings.connect_timeout,
        )
        connector._session.hooks["response"].extend(self._hooks)
        connector.share_tls(self.base_url)
        if self.settings.keep_alive:
            connector.keep_alive()
        auth = SessionAuth(username=self._username, password=self._password.get_secret_value())
        try:
            with translated(f"connect to the BMC at {self.base_url}"):
                try:
                    root = sushy.Sushy(self.base_url, auth=auth, connector=connector, root_prefix=_ROOT)
                except sushy_exc.AccessError as exc:  # the session login was refused
                    raise self._refused(exc) from exc
                self._root, self._auth, self._connector = root, auth, connector
                self._check_credentials()
        except Exception:
            self.drop()
            connector.close()
            raise
        logger.debug("Redfish session open with BMC {}", self.base_url)

    def _check_credentials(self) -> None:
        """Read the first of the root's collections that needs the credentials (the Systems, as a rule), and keep
        it: its members do not move. Where the BMC offers ``$expand``, the Systems collection is read expanded one
        level, so the server's System (its power state at connect) comes in the same request; that document is
        held with its read time (:meth:`held_doc`), for readers that may use a reading from the task's start."""
        links = self.root_json()
        for key in ("Systems", "Managers", "UpdateService", "Chassis"):
            link = links.get(key)
            if isinstance(link, dict) and isinstance(link.get("@odata.id"), str):
                path = link["@odata.id"]
                query = "?$expand=.($levels=1)" if key == "Systems" and self.expand_levels() > 0 else ""
                try:
                    response = self.connector.get(path + query)
                except sushy_exc.AccessError as exc:
                    raise self._refused(exc) from exc
                except sushy_exc.HTTPError as exc:
                    if not query:
                        raise
                    # An expand the BMC gets wrong (400, 501...): read it plainly, which says what is really wrong.
                    logger.debug("BMC {}: $expand of {} refused ({}); reading it plainly", self.base_url, path, exc)
                    response = self.connector.get(path)
                try:
                    doc = response.json()
                except ValueError:
                    return
                if isinstance(doc, dict):  # a collection's members do not move: readers take it from here
                    self.hold(path, doc)
                    for member in doc.get("Members") or []:
                        if isinstance(member, dict) and isinstance(member.get("@odata.id"), str) and "Id" in member:
                            self.hold(str(member["@odata.id"]).rstrip("/"), member)
                return

    def _refused(self, exc: sushy_exc.AccessError) -> BMCAuthError:
        err = translate(f"log in to the BMC at {self.base_url} as {self._username!r}", exc)
        return BMCAuthError(str(err), bmc_messages=err.bmc_messages)

    def drop(self) -> None:
        """Forget the session without talking to the BMC (it may be down); sushy then cannot log out either."""
        if self._auth is not None:
            self._auth.reset_session_attrs()  # sushy's finaliser would otherwise try to DELETE the session
        if self._connector is not None:
            self._connector.close()
        self._root = self._auth = self._connector = None

    def close(self) -> None:
        """Log out (best effort) and close the HTTP session."""
        if self._auth is not None:
            try:
                self._auth.close()
            except (sushy_exc.SushyError, requests.RequestException) as exc:
                logger.debug("could not log out of BMC {}: {}", self.base_url, exc)
        self.drop()

    def reopen(self) -> None:
        """Log in again with a new session (after the BMC restarted)."""
        self.open()

    @property
    def is_open(self) -> bool:
        return self._root is not None

    def session_key(self) -> str | None:
        """The Redfish session token in use (``None`` with basic auth or no session)."""
        if self._auth is None:
            return None
        key = self._auth.get_session_key()
        return key if isinstance(key, str) else None

    # -- access -------------------------------------------------------------------------------------------------
    @property
    def root(self) -> Any:
        """The ``sushy.Sushy`` root; opens the session first when needed."""
        if self._root is None:
            self.open()
        return self._root

    @property
    def connector(self) -> Connector:
        if self._connector is None:
            self.open()
        assert self._connector is not None
        return self._connector

    def root_json(self) -> dict[str, Any]:
        """The service root document."""
        doc = self.root.json
        return doc if isinstance(doc, dict) else {}

    def link(self, key: str) -> str | None:
        """The ``@odata.id`` of service root property ``key`` (``Systems``, ``UpdateService``, ``Tasks``...)."""
        value = self.root_json().get(key)
        if isinstance(value, dict) and isinstance(value.get("@odata.id"), str):
            return str(value["@odata.id"])
        return None

    def get_json(self, path: str, *, action: str) -> dict[str, Any]:
        """GET ``path`` and return its JSON object; errors are translated with ``action`` for context."""
        with translated(action):
            response = self.connector.get(path)
        try:
            doc = response.json()
        except ValueError:
            raise BMCError(f"{action}: {path} answered with something that is not JSON") from None
        if not isinstance(doc, dict):
            raise BMCError(f"{action}: {path} answered with JSON that is not an object")
        return doc

    def relative(self, uri: str) -> str:
        """``uri`` without this BMC's scheme and host, so it stays valid across sessions."""
        if uri.startswith(self.base_url):
            return uri[len(self.base_url) :] or "/"
        return uri

    def supports_expand(self) -> bool:
        """Whether the service root advertises ``$expand`` (``ProtocolFeaturesSupported.ExpandQuery``)."""
        return self.expand_levels() > 0

    def expand_levels(self) -> int:
        """How deep this BMC expands hyperlinks outside ``Links`` (``$expand=.($levels=n)``): 0 without
        ``$expand``; ``MaxLevels`` when it says (1 when it offers ``$levels`` without a maximum, or only
        ``ExpandAll``). DSP0266 "Query parameters"; ``ProtocolFeaturesSupported.ExpandQuery`` in ServiceRoot."""
        features = self.root_json().get("ProtocolFeaturesSupported")
        expand = features.get("ExpandQuery") if isinstance(features, dict) else None
        if not isinstance(expand, dict) or not (expand.get("Levels") or expand.get("ExpandAll")):
            return 0
        if expand.get("NoLinks") is False and not expand.get("ExpandAll"):
            return 0  # it cannot expand outside Links: Members are outside
        most = expand.get("MaxLevels")
        return most if isinstance(most, int) and not isinstance(most, bool) and most > 0 else 1

    def held(self, path: str, *, action: str) -> dict[str, Any]:
        """The document at ``path``, read once for this BMC: for resources whose answer flasher uses only for
        what does not change while a task runs (a device's manufacturer, model and serial). Errors are
        :meth:`get_json`'s, and are not held."""
        doc = self._held.get(path)
        if doc is None:
            doc = self.get_json(path, action=action)
            self.hold(path, doc)
        return doc

    def hold(self, path: str, doc: dict[str, Any]) -> None:
        """Keep ``doc`` as :meth:`held`'s answer for ``path`` (a document read inside another, expanded)."""
        self._held[path] = doc
        self._held_at[path] = time.monotonic()

    def held_doc(self, path: str) -> tuple[dict[str, Any], float] | None:
        """The document held for ``path`` and its age in seconds (monotonic), or ``None``; reads nothing."""
        doc = self._held.get(path)
        if doc is None:
            return None
        return doc, time.monotonic() - self._held_at.get(path, float("-inf"))

    def held_value(self, key: str) -> str | None:
        """A value a reader kept for this BMC with :meth:`hold_value` (a link that does not move), or ``None``."""
        return self._values.get(key)

    def hold_value(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` for this BMC's lifetime in flasher (across re-logins)."""
        self._values[key] = value

    def members(self, collection: str, *, action: str, levels: int = 1) -> list[dict[str, Any]]:
        """The member documents of a Redfish collection, with one ``$expand`` GET when the BMC supports it
        (``levels`` deep, at most what it offers: 2 brings the members' own hyperlinks, a ``RelatedItem``,
        expanded too), else one GET per member. A member that is missing (404) or malformed is skipped with a
        warning; an unreachable BMC or refused credentials raise, so a partial list is never returned for a
        complete one."""
        doc: dict[str, Any] | None = None
        depth = min(levels, self.expand_levels())
        if depth > 0:
            try:
                doc = self.get_json(f"{collection.rstrip('/')}?$expand=.($levels={depth})", action=action)
            except (BMCAuthError, BMCUnreachableError):
                raise
            except BMCError as exc:  # an expand the BMC gets wrong: read member by member
                logger.debug("$expand of {} failed ({}); reading members one by one", collection, exc)
                doc = None
        if doc is None:
            doc = self.get_json(collection, action=action)
        out: list[dict[str, Any]] = []
        for member in doc.get("Members") or []:
            if not isinstance(member, dict):
                continue
            if len(member) > 1 and "Id" in member:  # expanded
                out.append(member)
                continue
            path = member.get("@odata.id")
            if not isinstance(path, str):
                continue
            try:
                out.append(self.get_json(path, action=action))
            except (BMCAuthError, BMCUnreachableError):
                raise
            except BMCError as exc:  # a member that is gone or malformed; the others still count
                logger.warning("BMC {}: skipping {}: {}", self.base_url, path, exc)
        return out
