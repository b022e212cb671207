"""How the inventory client authenticates: no auth, a static bearer token, or OAuth2 client credentials.

Serverservice checks ``Authorization: Bearer <JWT>`` issued by an OIDC issuer (``serverservice-api.md``,
"Auth"); a server started without OIDC checks nothing. :func:`make_auth` picks the mode from
:class:`~flasher.config.InventorySettings` (``auth: none | token | oauth2``).

OAuth2 uses authlib's ``OAuth2Session`` with the ``client_credentials`` grant (RFC 6749 section 4.4): the token is
fetched on first use and fetched again ``oauth2.refresh_leeway`` seconds before it expires (``expires_in``), or
after the inventory answered 401 (:meth:`InventoryAuth.invalidate`). Every token is registered with
:func:`flasher.redact.register`, so it never reaches a log line or an error message.
"""

from __future__ import annotations

import threading
from typing import Any, Final, Literal, Protocol

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from flasher import redact
from flasher.config import InventorySettings, OAuth2Settings
from flasher.logs import warn_once

#: requests' failures of a token request that was, or may have been, under way: worth retrying.
_TRANSIENT: Final = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    requests.exceptions.RetryError,
)


class TokenError(Exception):
    """No token could be obtained from the OAuth2 issuer.

    ``kind`` says what to do about it: ``unavailable`` (connection error, timeout, an answer cut off in transit,
    429 or 5xx: worth retrying), ``refused`` (the issuer rejected the client: ``invalid_client``,
    ``invalid_scope``, 4xx; or a request that cannot succeed: too many redirects, an invalid URL) or
    ``malformed`` (the issuer's answer is not a token). Every ``requests`` failure is one of these. The message
    names the issuer's error code, never the client secret.
    """

    def __init__(self, kind: Literal["unavailable", "refused", "malformed"], reason: str, status: int | None = None):
        self.kind = kind
        self.status = status
        super().__init__(redact.scrub(reason))


class InventoryAuth(Protocol):
    """What the client needs of an auth mode."""

    #: True when :meth:`invalidate` can lead to different credentials (OAuth2), so a 401 is worth one retry.
    renewable: bool

    def headers(self) -> dict[str, str]:
        """Headers to add to the next request. Raises :class:`TokenError` when no token can be obtained."""
        ...

    def invalidate(self) -> None:
        """Forget a cached token (the inventory refused it); the next :meth:`headers` fetches a new one."""
        ...


class NoAuth:
    """No ``Authorization`` header (a Serverservice started without OIDC, the sandbox)."""

    renewable = False

    def headers(self) -> dict[str, str]:
        """No headers."""
        return {}

    def invalidate(self) -> None:
        """Nothing to forget."""


class StaticToken:
    """A fixed bearer token (``inventory.token`` or ``inventory.token_file``)."""

    renewable = False

    def __init__(self, token: str) -> None:
        if not token.strip():
            raise ValueError("inventory.token: the bearer token is empty")
        self._token = token.strip()
        redact.register(self._token)

    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer <token>``."""
        return {"Authorization": f"Bearer {self._token}"}

    def invalidate(self) -> None:
        """A static token cannot be renewed."""


class OAuth2ClientCredentials:
    """Bearer tokens from an OIDC issuer's token endpoint (client-credentials grant), renewed before expiry.

    Thread-safe: worker threads share one instance; only one of them fetches a token at a time.
    ``verify`` is ``requests``' TLS setting (``True``, ``False`` or a CA bundle path); ``timeout`` is
    ``(connect, read)`` seconds.
    """

    renewable = True

    def __init__(
        self,
        settings: OAuth2Settings,
        *,
        verify: bool | str = True,
        timeout: tuple[float, float] = (3.0, 15.0),
        session: OAuth2Session | None = None,
    ) -> None:
        if settings.token_url is None or settings.client_id is None or settings.client_secret is None:
            raise ValueError("inventory.oauth2: token_url, client_id and client_secret are required")
        self._token_url = str(settings.token_url)
        self._audience = settings.audience
        self._leeway = settings.refresh_leeway
        self._timeout = timeout
        self._oauth = session or OAuth2Session(
            client_id=settings.client_id,
            client_secret=settings.client_secret.get_secret_value(),
            scope=" ".join(settings.scopes) or None,
            token_endpoint=self._token_url,
            grant_type="client_credentials",
            leeway=int(settings.refresh_leeway),
        )
        self._oauth.verify = verify
        self._lock = threading.Lock()
        self._access_token: str | None = None

    def headers(self) -> dict[str, str]:
        """``Authorization: Bearer <token>``, fetching a token first when there is none or it expires within
        ``refresh_leeway`` seconds. Raises :class:`TokenError`."""
        with self._lock:
            token = self._oauth.token
            if self._access_token is None or token is None or token.is_expired(leeway=self._leeway):
                self._fetch()
            assert self._access_token is not None
            return {"Authorization": f"Bearer {self._access_token}"}

    def invalidate(self) -> None:
        """Drop the current token; the next request fetches a new one."""
        with self._lock:
            self._access_token = None

    def _fetch(self) -> None:
        extra: dict[str, Any] = {"audience": self._audience} if self._audience else {}
        try:
            token = self._oauth.fetch_token(
                self._token_url, grant_type="client_credentials", timeout=self._timeout, **extra
            )
        except OAuthError as exc:
            # The issuer's error code (invalid_client, invalid_scope, ...) and description; no secret in them.
            raise TokenError("refused", f"the OAuth2 issuer refused the token request: {exc}") from None
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            kind: Literal["unavailable", "refused"] = (
                "unavailable" if status is None or status == 429 or status >= 500 else "refused"
            )
            raise TokenError(kind, f"the OAuth2 token endpoint answered HTTP {status}", status) from None
        except _TRANSIENT as exc:
            raise TokenError("unavailable", f"cannot reach the OAuth2 token endpoint: {type(exc).__name__}") from None
        except requests.JSONDecodeError as exc:  # a 2xx answer that is not JSON
            raise TokenError("malformed", f"the OAuth2 token endpoint's answer is not a token: {exc}") from None
        except requests.RequestException as exc:  # too many redirects, an invalid URL or header: retrying won't help
            reason = f"the OAuth2 token request cannot be made: {type(exc).__name__}"
            raise TokenError("refused", f"{reason} (check inventory.oauth2.token_url)") from None
        except ValueError as exc:  # an answer that is not a JSON object
            raise TokenError("malformed", f"the OAuth2 token endpoint's answer is not a token: {exc}") from None
        access_token = token.get("access_token") if isinstance(token, dict) else None
        if not isinstance(access_token, str) or not access_token:
            raise TokenError("malformed", "the OAuth2 token endpoint's answer has no access_token")
        redact.register(access_token)
        self._access_token = access_token


def tls_verify(settings: InventorySettings) -> bool | str:
    """``requests``' ``verify`` for the inventory and its issuer: ``False`` when ``verify_tls`` is off (a warning,
    once per process), else the ``ca_bundle`` path when one is set, else ``True`` (the system's CAs)."""
    if not settings.verify_tls:
        warn_once(
            "inventory.verify_tls",
            "TLS certificate verification is OFF for the inventory at {} and its token issuer (inventory.verify_tls"
            " is false): anyone on the path can read and change what flasher reads and writes",
            str(settings.url),
        )
        return False
    return str(settings.ca_bundle) if settings.ca_bundle is not None else True


def make_auth(settings: InventorySettings) -> InventoryAuth:
    """The auth mode ``settings.auth`` names, configured from ``settings`` (TLS and timeouts included)."""
    if settings.auth == "token":
        if settings.token is None:
            raise ValueError("inventory.auth is 'token' but inventory.token is not set")
        return StaticToken(settings.token.get_secret_value())
    if settings.auth == "oauth2":
        return OAuth2ClientCredentials(
            settings.oauth2, verify=tls_verify(settings), timeout=(settings.connect_timeout, settings.read_timeout)
        )
    return NoAuth()
