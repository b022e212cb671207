"""Who is calling ``flasher api``, and what they may do.

Three modes (``api.auth``):

* ``none``: every request is ``anonymous`` with every scope (the sandbox; never on a network others reach).
* ``tokens``: static bearer tokens listed in ``api.tokens_file`` (YAML), each with its ``subject`` and ``scopes``
  and either the token's SHA-256 in hex (``sha256``) or a file holding the token (``token_file``, e.g. a
  mounted secret). Tokens are compared by their digests in constant time; none is kept in memory in the clear.
* ``oidc``: JWTs signed by an OIDC issuer (RFC 7519). The signature is checked against the issuer's JWKS
  (``oidc.jwks_url``, cached and re-fetched when a token names a key id it does not hold, at most every 30 s; or
  ``oidc.jwks_file``, re-read when it changes) with :mod:`joserfc`, for the configured asymmetric algorithms
  only; ``iss``, ``aud`` and ``exp`` are required and checked (``nbf`` too when present), with ``oidc.leeway``
  seconds of clock skew. Scopes come from ``oidc.scope_claim`` (space-separated text as RFC 8693 §4.2 has it, or
  a list), the subject from ``oidc.subject_claim``.

A token arrives as ``Authorization: Bearer <token>`` (RFC 6750 §2.1) or, for the dashboard in a browser (whose
``EventSource`` cannot set headers), in the ``flasher_token`` cookie the dashboard's sign-in form sets.
Missing or bad tokens are 401 with ``WWW-Authenticate: Bearer error="invalid_token"``; a token without the
scope a request needs is 403 with ``error="insufficient_scope"`` (RFC 6750 §3.1). Error texts never contain the
token.

Scopes (``api.scopes``): ``read`` for GET requests and the event stream; ``write`` to create and cancel tasks;
``power`` as well for tasks that restart a host or a BMC (:func:`restarts_hosts`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import requests
import yaml
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from loguru import logger

from flasher.config import APISettings
from flasher.task.model import TaskKind

#: The cookie the dashboard's sign-in form sets (HttpOnly, SameSite=Strict).
TOKEN_COOKIE: Final = "flasher_token"  # noqa: S105 (a cookie name, not a secret)
#: The subject of every request when ``api.auth`` is ``none``.
ANONYMOUS: Final = "anonymous"
#: Seconds between JWKS fetches triggered by an unknown key id.
_JWKS_REFETCH_MIN = 30.0

#: ``set_power_state`` parameters that take a running host down.
_HOST_RESTARTS: Final = frozenset({"off", "soft", "cycle", "reset"})


class AuthError(Exception):
    """A request that is not authenticated (``status`` 401) or not allowed (403). ``error`` is RFC 6750's code
    (``invalid_token``, ``insufficient_scope``), ``scope`` the scope that was missing."""

    def __init__(self, status: int, error: str, message: str, *, scope: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.scope = status, error, message, scope

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` header value."""
        value = f'Bearer realm="flasher", error="{self.error}", error_description="{self.message}"'
        return value + (f', scope="{self.scope}"' if self.scope else "")


@dataclass(frozen=True)
class Principal:
    """The caller: ``subject`` (written as a task's ``requester``) and the ``scopes`` it holds."""

    subject: str
    scopes: frozenset[str]
    authenticated: bool = True


def restarts_hosts(kind: TaskKind, data: Mapping[str, Any]) -> bool:
    """Whether the request ``data`` of ``kind`` may restart a host or a BMC (and so needs the ``power`` scope).

    Server control: ``set_power_state`` off, soft, cycle or reset, and ``power_cycle_bmc``. Installs: every one
    that is not a dry run (flasher restarts the BMC after a BMC image and resets the host for BIOS and devices).
    """
    if kind is TaskKind.INSTALL:
        return data.get("dryRun") is not True
    action = data.get("action")
    if action == "power_cycle_bmc":
        return True
    return action == "set_power_state" and data.get("action_parameter") in _HOST_RESTARTS


class Authenticator:
    """Checks a request's token under ``settings`` (see the module docs). Thread-safe."""

    def __init__(self, settings: APISettings) -> None:
        self.settings = settings
        self.mode = settings.auth
        scopes = settings.scopes
        self._short = {"read": scopes.read, "write": scopes.write, "power": scopes.power}
        self._tokens: dict[bytes, Principal] = {}
        self._jwks: _JWKS | None = None
        if self.mode == "tokens":
            assert settings.tokens_file is not None
            self._tokens = self._load_tokens(settings.tokens_file)
        elif self.mode == "oidc":
            self._jwks = _JWKS(settings)

    @property
    def enabled(self) -> bool:
        """False when ``api.auth`` is ``none``."""
        return self.mode != "none"

    def scope(self, name: str) -> str:
        """The configured scope string for ``read``, ``write`` or ``power``."""
        return self._short[name]

    def _load_tokens(self, path: Path) -> dict[bytes, Principal]:
        try:
            entries = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"api.tokens_file {str(path)!r}: cannot be read: {exc}") from None
        if isinstance(entries, Mapping):
            entries = entries.get("tokens")
        if not isinstance(entries, list):
            raise ValueError(f"api.tokens_file {str(path)!r}: must be a list of {{subject, scopes, sha256|token_file}}")
        tokens: dict[bytes, Principal] = {}
        for index, entry in enumerate(entries):
            where = f"api.tokens_file {str(path)!r} entry {index}"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("subject"), str) or not entry["subject"]:
                raise ValueError(f"{where}: needs a subject")
            scopes = entry.get("scopes", [])
            if isinstance(scopes, str):
                scopes = scopes.split()
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise ValueError(f"{where}: scopes must be a list of names")
            if "sha256" in entry:
                digest_text = str(entry["sha256"]).lower().removeprefix("sha256:")
                try:
                    digest = bytes.fromhex(digest_text)
                except ValueError:
                    digest = b""
                if len(digest) != 32:
                    raise ValueError(f"{where}: sha256 must be 64 hex digits")
            elif "token_file" in entry:
                try:
                    token = Path(str(entry["token_file"])).read_text(encoding="utf-8").strip()
                except OSError as exc:
                    raise ValueError(f"{where}: token_file cannot be read: {exc.strerror}") from None
                if not token:
                    raise ValueError(f"{where}: token_file is empty")
                digest = hashlib.sha256(token.encode()).digest()
            else:
                raise ValueError(f"{where}: give sha256 or token_file")
            names: list[str] = scopes
            tokens[digest] = Principal(entry["subject"], frozenset(self._short.get(name, name) for name in names))
        return tokens

    def authenticate(self, token: str | None) -> Principal:
        """The principal for ``token`` (the bearer token, or ``None`` when the request has none).

        Raises :class:`AuthError` (401) when auth is on and the token is missing or not valid.
        """
        if not self.enabled:
            return Principal(ANONYMOUS, frozenset(self._short.values()), authenticated=False)
        if not token:
            raise AuthError(401, "invalid_token", "a bearer token is required")
        if self.mode == "tokens":
            digest = hashlib.sha256(token.encode()).digest()
            found = None
            for known, principal in self._tokens.items():  # constant time per entry
                if hmac.compare_digest(known, digest):
                    found = principal
            if found is None:
                raise AuthError(401, "invalid_token", "the token is not known")
            return found
        assert self._jwks is not None
        return self._jwks.verify(token)

    def require(self, principal: Principal, scope: str) -> None:
        """Raise :class:`AuthError` (403) unless ``principal`` holds ``scope`` (``read``, ``write``, ``power``)."""
        needed = self._short[scope]
        if needed not in principal.scopes:
            raise AuthError(403, "insufficient_scope", f"this request needs the scope {needed}", scope=needed)


class _JWKS:
    """The OIDC issuer's keys and the JWT checks."""

    def __init__(self, settings: APISettings) -> None:
        self.oidc = settings.oidc
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._loaded_at = 0.0
        self._file_mtime: float | None = None
        self._claims = jwt.JWTClaimsRegistry(
            leeway=int(self.oidc.leeway),
            iss={"essential": True, "value": str(self.oidc.issuer)},
            aud={"essential": True, "value": str(self.oidc.audience)},
            exp={"essential": True},
        )

    def _load(self) -> KeySet:
        if self.oidc.jwks_file is not None:
            path = self.oidc.jwks_file
            text = path.read_text(encoding="utf-8")
            self._file_mtime = path.stat().st_mtime
        else:
            response = requests.get(str(self.oidc.jwks_url), timeout=(3.0, 10.0))
            response.raise_for_status()
            text = response.text
        keys = KeySet.import_key_set(json.loads(text))
        self._keys, self._loaded_at = keys, time.monotonic()
        return keys

    def keys(self, *, refresh: bool = False) -> KeySet:
        """The key set (loaded on first use; re-loaded when stale, when the file changed, or on ``refresh``)."""
        with self._lock:
            now = time.monotonic()
            stale = self._keys is None or now - self._loaded_at > self.oidc.jwks_cache_seconds
            if self.oidc.jwks_file is not None and self._keys is not None:
                try:
                    stale = stale or self.oidc.jwks_file.stat().st_mtime != self._file_mtime
                except OSError:
                    stale = True
            if refresh and now - self._loaded_at >= _JWKS_REFETCH_MIN:
                stale = True
            if not stale and self._keys is not None:
                return self._keys
            try:
                return self._load()
            except (OSError, ValueError, requests.RequestException, JoseError) as exc:
                logger.warning("cannot load the OIDC issuer's JWKS: {}: {}", type(exc).__name__, exc)
                if self._keys is not None:
                    return self._keys
                raise AuthError(401, "invalid_token", "the issuer's keys cannot be loaded now") from None

    def verify(self, token: str) -> Principal:
        algorithms = list(self.oidc.algorithms)
        try:
            try:
                decoded = jwt.decode(token, self.keys(), algorithms=algorithms)
            except InvalidKeyIdError:  # the issuer may have rotated its keys
                decoded = jwt.decode(token, self.keys(refresh=True), algorithms=algorithms)
            self._claims.validate(decoded.claims)
        except JoseError as exc:
            raise AuthError(401, "invalid_token", _describe(exc)) from None
        except (ValueError, TypeError):
            raise AuthError(401, "invalid_token", "the token is not a valid JWT") from None
        claims = decoded.claims
        subject = claims.get(self.oidc.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise AuthError(401, "invalid_token", f"the token has no {self.oidc.subject_claim} claim")
        raw = claims.get(self.oidc.scope_claim, "")
        scopes: list[str] = []
        if isinstance(raw, str):
            scopes = raw.split()
        elif isinstance(raw, list):
            scopes = [s for s in raw if isinstance(s, str)]
        return Principal(subject, frozenset(scopes))


def _describe(exc: JoseError) -> str:
    """A one-line reason for a refused JWT (joserfc's error names and descriptions carry no token content)."""
    name = getattr(exc, "error", "") or type(exc).__name__
    description = getattr(exc, "description", "") or ""
    return f"the token was refused: {name}{': ' + description if description else ''}"
