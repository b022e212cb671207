"""flasher's settings: a YAML file overridden by ``FLASHER_*`` environment variables.

Precedence, highest first: values passed in code, environment (``FLASHER_`` prefix, nested with ``__``:
``inventory.url`` is ``FLASHER_INVENTORY__URL``), the YAML file (``--config``, default
``config/flasher.yaml``; a missing default file is fine, a missing explicit one is an error), defaults.

Secrets (``inventory.token``, ``inventory.oauth2.client_secret``, ``redis.password``, ``bmc.password``) are
``SecretStr``: printed as ``**********``. Each can also be read from a file named by the same key with
``_file`` appended (``inventory.token_file: /run/secrets/ss-token``); the file's content, stripped of the
trailing newline, becomes the secret. Unknown keys are refused, so a typo does not silently fall back to a
default. :func:`load_settings` raises :class:`SettingsError` with one line per bad field.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from flasher import redact
from flasher.hostrules import parse_patterns

DEFAULT_CONFIG_PATH = Path("config/flasher.yaml")

_SECRET_WORDS = ("password", "secret", "token")


class SettingsError(Exception):
    """Settings that cannot be used. ``lines`` holds one message per bad field (``section.key: reason``)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("invalid settings:\n" + "\n".join(f"  {line}" for line in lines))


class _Section(BaseModel):
    """Base of every settings section: unknown keys refused, ``<secret>_file`` keys read into ``<secret>``."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, value in data.items():
            if not key.endswith("_file") or value in (None, ""):
                continue
            target = key.removesuffix("_file")
            field = cls.model_fields.get(target)
            if field is None or field.annotation not in (SecretStr, SecretStr | None):
                continue
            path = Path(str(value))
            try:
                content = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"{key}: cannot read secret file {str(path)!r}: {exc.strerror}") from None
            if out.get(target) not in (None, ""):
                raise ValueError(f"give either {target} or {key}, not both")
            out[target] = content
        return out

    @model_validator(mode="after")
    def _register_secrets(self) -> _Section:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                redact.register(value.get_secret_value())
        return self


class OAuth2Settings(_Section):
    """OAuth2 client-credentials grant against an OIDC issuer (Serverservice's ``auth: oauth2``)."""

    token_url: HttpUrl | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    scopes: list[str] = Field(
        default_factory=lambda: [
            "read:server",
            "update:server",
            "read:server:credentials",
            "read:server-component-firmwares",
            "read:server-component-firmware-sets",
        ]
    )
    audience: str | None = None
    #: Refresh the token this many seconds before it expires.
    refresh_leeway: float = Field(60.0, ge=0)


class InventorySettings(_Section):
    """How to reach Serverservice (the inventory)."""

    url: HttpUrl = HttpUrl("http://127.0.0.1:8800")
    auth: Literal["none", "token", "oauth2"] = "none"
    token: SecretStr | None = None
    token_file: Path | None = None
    oauth2: OAuth2Settings = Field(default_factory=OAuth2Settings)
    #: False turns off TLS verification of the inventory and its token issuer; logs a warning (once per process).
    verify_tls: bool = True
    ca_bundle: Path | None = None
    #: Seconds to open a TCP connection / to wait for an answer.
    connect_timeout: float = Field(3.0, gt=0)
    read_timeout: float = Field(15.0, gt=0)
    #: Retries on connection errors, timeouts, 429 and 5xx stop once this many seconds have passed in total.
    retry_deadline: float = Field(60.0, ge=0)
    #: Longest single wait between retries (exponential backoff with jitter up to this).
    retry_max_wait: float = Field(10.0, gt=0)
    page_size: int = Field(100, ge=1, le=1000)
    #: Only servers in this facility (``facility-code``); all when unset.
    facility: str | None = None

    @model_validator(mode="after")
    def _auth_complete(self) -> InventorySettings:
        if self.auth == "token" and self.token is None:
            raise ValueError("auth is 'token' but neither token nor token_file is set")
        if self.auth == "oauth2":
            missing = [
                name for name in ("token_url", "client_id", "client_secret") if getattr(self.oauth2, name) is None
            ]
            if missing:
                raise ValueError("auth is 'oauth2' but oauth2 lacks " + ", ".join(missing))
        return self


class RedisSettings(_Section):
    """The Redis that holds the shared queue. ``url``: ``redis://`` or ``rediss://`` with optional db path."""

    url: str = "redis://127.0.0.1:6379/0"
    password: SecretStr | None = None
    password_file: Path | None = None
    #: Keys are ``{<key_prefix>}:...``: one hash tag, so every key lands in one Redis Cluster slot.
    key_prefix: str = Field("flasher", pattern=r"^[A-Za-z0-9_.:-]+$")
    socket_timeout: float = Field(5.0, gt=0)
    connect_timeout: float = Field(3.0, gt=0)
    #: Connection errors are retried with backoff for this many seconds, then raised as a typed error.
    retry_deadline: float = Field(30.0, ge=0)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


class QueueSettings(_Section):
    """Lease and retry policy of the Redis queue."""

    lease_seconds: float = Field(120.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    #: Fail-with-retry delay: base * 2**(attempts-1), capped at retry_max_delay (seconds).
    retry_base_delay: float = Field(30.0, ge=0)
    retry_max_delay: float = Field(600.0, ge=0)


class BMCSettings(_Section):
    """How flasher talks to BMCs over Redfish."""

    verify_tls: bool = True
    ca_bundle: Path | None = None
    #: Explicit opt-out of TLS verification; logs a warning (once per process).
    insecure: bool = False
    #: Default scheme when the inventory's BMC address has none.
    scheme: Literal["https", "http"] = "https"
    #: Credentials for one-shot operator commands when the inventory is not used.
    username: str = "root"
    password: SecretStr | None = None
    password_file: Path | None = None
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    #: sushy's server-side retries (HTTP 5xx) and their delay, kept low so a dead BMC fails in seconds.
    retries: int = Field(2, ge=0)
    retry_delay: float = Field(1.0, ge=0)
    #: Seconds between polls of a BMC's task or power state.
    poll_interval: float = Field(5.0, gt=0)
    #: How long a BMC may be unreachable (or answer 5xx) while it flashes itself before it counts as failed.
    offline_grace: float = Field(900.0, gt=0)
    #: How long a push waits for a BMC that is busy with another update (HTTP 503, or push targets another client
    #: has claimed: Lenovo XCC) before it fails.
    busy_wait: float = Field(600.0, gt=0)
    #: An image the BMC reports done but only staged until the host reboots (HPE System ROM): ``reset`` the host
    #: to activate it, or ``wait`` (up to the install step's timeout) for someone else to reboot it.
    staged_firmware: Literal["reset", "wait"] = "reset"
    #: Keep each BMC session's connection open between requests (one TLS handshake per task instead of one per
    #: request). Off by default, as sushy has it ("some BMCs choke at long-running persistent connections");
    #: a request that starts something (a POST) always goes on a new connection.
    keep_alive: bool = False


class StepPolicy(_Section):
    """Timeout (seconds) and retry policy of one install or control step."""

    timeout: float = Field(gt=0)
    attempts: int = Field(3, ge=1)
    #: First wait between attempts (seconds), doubled each time.
    backoff: float = Field(2.0, ge=0)


def _default_steps() -> dict[str, StepPolicy]:
    # Defaults from what real BMCs need: reads take seconds; a BMC reset or a BIOS flash takes minutes.
    return {
        "connect": StepPolicy(timeout=60, attempts=3, backoff=5),
        "read_versions": StepPolicy(timeout=120, attempts=3, backoff=5),
        "power": StepPolicy(timeout=600, attempts=2, backoff=10),
        "download": StepPolicy(timeout=3600, attempts=3, backoff=10),
        "upload": StepPolicy(timeout=1800, attempts=2, backoff=10),
        "install": StepPolicy(timeout=3600, attempts=1, backoff=0),
        "confirm": StepPolicy(timeout=900, attempts=3, backoff=10),
        "bmc_reset": StepPolicy(timeout=900, attempts=1, backoff=0),
        "inventory_write": StepPolicy(timeout=300, attempts=10, backoff=2),
    }


class StoreSettings(_Section):
    """The firmware store: a checksum-keyed cache of images on local disk."""

    cache_dir: Path = Path("var/firmware-cache")
    #: Cache size cap in bytes; least recently used images are evicted beyond it.
    max_bytes: int = Field(20 * 1024**3, gt=0)
    allowed_schemes: list[Literal["http", "https"]] = Field(default_factory=lambda: ["http", "https"])  # type: ignore[arg-type]
    #: Hosts images may come from: names, IP addresses or ``*.example.com``, each optionally with ``:port``; empty
    #: means any host but loopback, link-local and the cloud metadata services, which only an entry naming them
    #: allows (:mod:`flasher.hostrules`).
    allowed_hosts: list[str] = Field(default_factory=list)
    #: False turns off TLS verification of image downloads; logs a warning (once per process).
    verify_tls: bool = True
    ca_bundle: Path | None = None
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(60.0, gt=0)
    chunk_bytes: int = Field(1024 * 1024, ge=4096)

    @field_validator("allowed_hosts")
    @classmethod
    def _host_patterns(cls, value: list[str]) -> list[str]:
        parse_patterns(value)  # raises ValueError naming the entry that is wrong
        return value


class FileServerSettings(_Section):
    """The HTTP server that hands cached images to BMCs (SimpleUpdate's ImageURI)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(8890, ge=0, le=65535)
    #: Base URL BMCs use to reach this server; default ``http://<host>:<port>``.
    public_url: HttpUrl | None = None
    #: Unused since the file server runs on uvicorn; kept so that settings files that set it still load.
    threads: int = Field(8, ge=1)


class ServiceSettings(_Section):
    """``flasher run``: poller, worker pool and HTTP endpoints."""

    #: This replica's name, written into the task attribute's ``worker``.
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    concurrency: int = Field(4, ge=1, le=256)
    poll_interval: float = Field(15.0, gt=0)
    poll_jitter: float = Field(3.0, ge=0)
    #: Every this many polls (and the first), list every flagged server, not only open tasks: finds attributes
    #: without a ``status`` and refreshes the counts of ended tasks. One replica at a time runs it for all
    #: (:mod:`flasher.queue.pollshare`).
    full_poll_every: int = Field(20, ge=1)
    #: Seconds a poll may spend admitting new requests; the rest wait for the next poll.
    admission_budget: float = Field(30.0, gt=0)
    #: New requests a poll admits at once (threads; each admission waits on a few inventory round trips). They
    #: start in admission order (priority, then age); with more than 1, two started together may be queued in
    #: either order.
    admission_concurrency: int = Field(4, ge=1, le=32)
    #: Seconds a new request may go on failing to be planned because the inventory is unavailable (5xx,
    #: time-outs, once ``inventory.retry_deadline`` is spent) before it fails; counted from the ``waiting:
    #: inventory unavailable`` message flasher writes into it the first time. Meanwhile it stays new.
    plan_retry_deadline: float = Field(1800.0, gt=0)
    #: An ``active`` task whose heartbeat (``updatedAt``) is older than this, with no lease, is reclaimed.
    stale_after: float = Field(300.0, gt=0)
    #: Seconds a heartbeat may be late before the lease is extended anyway.
    heartbeat_interval: float = Field(10.0, gt=0)
    shutdown_grace: float = Field(60.0, ge=0)
    #: Re-collect every server's hardware from its BMC this often (seconds; ``0``: never): each server gets an
    #: inventory task once per interval, at its own point in it (spread by server uuid).
    inventory_interval: float = Field(0.0, ge=0)
    #: At most this many inventory tasks open at once (new, queued or running) from the schedule.
    inventory_concurrency: int = Field(2, ge=1)
    http_host: str = "127.0.0.1"
    http_port: int = Field(9090, ge=0, le=65535)


class ControlSettings(_Section):
    """Server-control actions: how long to wait for the BMC to report the requested state."""

    power_timeout: float = Field(300.0, gt=0)
    bmc_reset_timeout: float = Field(900.0, gt=0)
    boot_timeout: float = Field(60.0, gt=0)
    #: ``provision``: how long the booted machine has to call back after the power cycle.
    provision_timeout: float = Field(1800.0, gt=0)


class PDUSettings(_Section):
    """Power through a server's Redfish PDU outlet when its BMC does not answer (the inventory names the outlet:
    attribute ``sh.hollow.flasher.pdu_outlet``). Off unless ``fallback`` is true."""

    #: Fall back to the PDU outlet for ``set_power_state`` (on, off, cycle, reset) when the BMC does not answer.
    fallback: bool = False
    username: str = "root"
    password: SecretStr | None = None
    password_file: Path | None = None
    ca_bundle: Path | None = None
    verify_tls: bool = True
    #: Seconds per request to the PDU.
    timeout: float = Field(10.0, gt=0)
    #: How long a PowerCycle may take to read On again.
    cycle_timeout: float = Field(120.0, gt=0)


class BootProfileSettings(_Section):
    """One boot profile: the kernel, initrds and kernel command line a machine network-boots.

    Each value is a template: ``{uuid}``, ``{name}``, ``{facility}``, ``{mac}``, ``{token}``, ``{callback_url}``
    and ``{base_url}`` are filled in per server (``{{`` and ``}}`` are literal braces); others are refused.
    """

    kernel: str
    initrd: list[str] = Field(default_factory=list)
    cmdline: str = ""

    @model_validator(mode="after")
    def _templates(self) -> BootProfileSettings:
        from string import Formatter

        for field_name, text in (
            ("kernel", self.kernel),
            ("cmdline", self.cmdline),
            *(("initrd", i) for i in self.initrd),
        ):
            try:
                names = {name for _, name, _, _ in Formatter().parse(text) if name is not None}
            except ValueError as exc:
                raise ValueError(f"{field_name} {text!r}: {exc}") from None
            unknown = names - set(TEMPLATE_FIELDS)
            if unknown:
                raise ValueError(
                    f"{field_name} {text!r}: unknown placeholder {sorted(unknown)[0]!r} "
                    f"(known: {', '.join(TEMPLATE_FIELDS)})"
                )
        if not self.kernel.strip():
            raise ValueError("kernel is empty")
        return self


#: The placeholders a boot profile may use (filled by flasher.netboot.profiles).
TEMPLATE_FIELDS: tuple[str, ...] = ("uuid", "name", "facility", "mac", "token", "callback_url", "base_url")


class NetbootSettings(_Section):
    """``flasher netboot``: the Pixiecore API, iPXE and callback endpoints, and the boot profiles."""

    host: str = "127.0.0.1"
    port: int = Field(8891, ge=0, le=65535)
    #: Base URL booted machines use to reach these endpoints (``{base_url}``, ``{callback_url}``); default
    #: ``http://<host>:<port>``.
    public_url: HttpUrl | None = None
    #: Key of the one-time tokens (HMAC-SHA256); every replica needs the same. Unset: a random key per process
    #: (one replica only; logged as a warning).
    token_secret: SecretStr | None = None
    token_secret_file: Path | None = None
    #: Seconds a token minted at boot without a ``provision`` stays valid.
    token_ttl: float = Field(3600.0, gt=0)
    #: Files served under ``/assets/`` (kernels, initrds), when set.
    assets_dir: Path | None = None
    profiles: dict[str, BootProfileSettings] = Field(default_factory=dict)


def _default_expected_minutes() -> dict[str, float]:
    # What a firmware install of each component type takes on real BMCs, flash and the restarts it needs
    # included (vendors' release notes: a BIOS 10-20 min with its host restart, a BMC 10-15 min with its own).
    return {"bmc": 15, "bios": 20, "cpld": 20, "nic": 10, "drive": 10, "storage-controller": 15, "psu": 10}


class RolloutSettings(_Section):
    """Fleet rollouts (:mod:`flasher.rollout`): how long installs are expected to take (maintenance windows) and
    how often the controller moves each rollout."""

    #: Minutes one install of a component type is expected to take; a member starts inside a maintenance window
    #: only when the sum over its planned installs fits in what is left of the window.
    expected_minutes: dict[str, float] = Field(default_factory=_default_expected_minutes)
    #: Minutes for a component type ``expected_minutes`` does not name.
    default_minutes: float = Field(15.0, gt=0)
    #: Seconds between two controller ticks of this replica (a member ending here ticks sooner)...
    tick_interval: float = Field(5.0, gt=0)
    #: ... but never sooner than this after the previous tick started (a tick lists every member of a rollout).
    min_tick_gap: float = Field(1.0, ge=0)
    #: The lock that lets one replica at a time tick a rollout expires after this many seconds.
    lock_seconds: float = Field(60.0, gt=0)
    #: Members one tick admits at once (each admission plans the member and writes its attribute).
    admit_threads: int = Field(4, ge=1, le=64)

    @field_validator("expected_minutes")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {slug: minutes for slug, minutes in value.items() if minutes <= 0}
        if bad:
            raise ValueError(f"minutes must be > 0, got {bad}")
        return value


class EventSettings(_Section):
    """Task events: every task attribute write is published to a capped Redis Stream (``flasher api`` streams it)."""

    enabled: bool = True
    #: Entries the stream keeps (about 300 bytes each); a listener further behind is told to re-read.
    maxlen: int = Field(100_000, ge=100)


class OIDCSettings(_Section):
    """``api.auth: oidc``: JWT bearer tokens signed by an OIDC issuer, checked against its JWKS."""

    #: The ``iss`` a token must carry.
    issuer: str | None = None
    #: The ``aud`` a token must carry (one of, when it lists several).
    audience: str | None = None
    #: Where the issuer's JWKS is: a URL (fetched, cached ``jwks_cache_seconds``, re-fetched for an unknown key id)
    #: or a file.
    jwks_url: HttpUrl | None = None
    jwks_file: Path | None = None
    jwks_cache_seconds: float = Field(300.0, gt=0)
    #: Signature algorithms accepted (asymmetric only).
    algorithms: list[
        Literal["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
    ] = Field(default_factory=lambda: ["RS256", "ES256"])  # type: ignore[arg-type]
    #: Seconds of clock skew allowed on ``exp`` and ``nbf``.
    leeway: float = Field(30.0, ge=0)
    #: The claim holding the token's scopes (space-separated text, or a list).
    scope_claim: str = "scope"
    #: The claim naming who the token is for (written as the task's ``requester``).
    subject_claim: str = "sub"

    @model_validator(mode="after")
    def _one_jwks(self) -> OIDCSettings:
        if self.jwks_url is not None and self.jwks_file is not None:
            raise ValueError("give jwks_url or jwks_file, not both")
        return self


class ScopeSettings(_Section):
    """The scope names ``flasher api`` requires (as the issuer spells them)."""

    #: GET requests and the event stream.
    read: str = "flasher:read"
    #: Creating and cancelling tasks.
    write: str = "flasher:write"
    #: Tasks that restart hosts or BMCs: power off/soft/cycle/reset, BMC reset, firmware installs (not dry runs).
    power: str = "flasher:power"


class APISettings(_Section):
    """``flasher api``: the HTTP API, its event stream and the dashboard."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    #: ``none`` (the sandbox: every request may do everything, as ``anonymous``), ``tokens`` (static bearer tokens
    #: from ``tokens_file``), ``oidc`` (JWTs, see ``oidc``).
    auth: Literal["none", "tokens", "oidc"] = "none"
    #: YAML list of ``{subject, scopes, sha256 | token_file}``: the SHA-256 (hex) of a token, or a file holding it.
    tokens_file: Path | None = None
    oidc: OIDCSettings = Field(default_factory=OIDCSettings)
    scopes: ScopeSettings = Field(default_factory=ScopeSettings)
    #: Inventory attribute holding the map of roller worker ids to server uuids (``POST /api/v1/jobs?tc_worker_id=``):
    #: ``data`` of this namespace on any server, ``{"<tc_worker_id>": "<server uuid>"}``, or on the server itself
    #: ``{"tc_worker_id": "<id>"}``.
    worker_ids_namespace: str = "sh.hollow.flasher.worker_ids"
    #: Page size of ``GET /api/v1/tasks`` when the client gives none (and its maximum, ten times that).
    page_size: int = Field(100, ge=1, le=1000)

    @model_validator(mode="after")
    def _auth_complete(self) -> APISettings:
        if self.auth == "tokens" and self.tokens_file is None:
            raise ValueError("auth 'tokens' needs tokens_file")
        if self.auth == "oidc":
            missing = [n for n in ("issuer", "audience") if getattr(self.oidc, n) in (None, "")]
            if self.oidc.jwks_url is None and self.oidc.jwks_file is None:
                missing.append("jwks_url or jwks_file")
            if missing:
                raise ValueError(f"auth 'oidc' needs oidc.{', oidc.'.join(missing)}")
        return self


class Settings(BaseSettings):
    """All of flasher's settings. Load with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="FLASHER_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        validate_default=True,
    )

    inventory: InventorySettings = Field(default_factory=InventorySettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    bmc: BMCSettings = Field(default_factory=BMCSettings)
    steps: dict[str, StepPolicy] = Field(default_factory=_default_steps)
    store: StoreSettings = Field(default_factory=StoreSettings)
    fileserver: FileServerSettings = Field(default_factory=FileServerSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)
    control: ControlSettings = Field(default_factory=ControlSettings)
    pdu: PDUSettings = Field(default_factory=PDUSettings)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    api: APISettings = Field(default_factory=APISettings)
    netboot: NetbootSettings = Field(default_factory=NetbootSettings)

    _yaml_file: ClassVar[Path | None] = None

    @field_validator("steps", mode="before")
    @classmethod
    def _merge_step_defaults(cls, value: Any) -> Any:
        # A YAML file that sets one step's policy keeps the defaults of the others.
        if isinstance(value, dict):
            merged: dict[str, Any] = {k: v.model_dump() for k, v in _default_steps().items()}
            for name, policy in value.items():
                base = merged.get(name, {})
                merged[name] = {**base, **policy} if isinstance(policy, dict) else policy
            return merged
        return value

    def step(self, name: str) -> StepPolicy:
        """The policy of step ``name``; raises ``KeyError`` naming the step when there is none."""
        try:
            return self.steps[name]
        except KeyError:
            raise KeyError(f"no policy for step {name!r}; known: {', '.join(sorted(self.steps))}") from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=cls._yaml_file))
        return tuple(sources)


def _error_lines(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(settings)"
        message = error["msg"].removeprefix("Value error, ")
        secret = any(word in location.lower() for word in _SECRET_WORDS)
        if error["type"] not in ("missing", "extra_forbidden") and not secret and "input" in error:
            given = error["input"]
            if not isinstance(given, dict | list):
                message = f"{message} (got {redact.scrub(repr(given))})"
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"{location}: {message}")
    return lines


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from ``path`` (YAML; default ``config/flasher.yaml`` if it exists) and the environment.

    ``overrides`` are keyword values with the highest precedence (tests, the sandbox). Raises
    :class:`SettingsError` with one line per bad field; a secret's value never appears in it.
    """
    explicit = path is not None
    yaml_path = path if path is not None else DEFAULT_CONFIG_PATH
    if not yaml_path.exists():
        if explicit:
            raise SettingsError([f"--config: file {str(yaml_path)!r} does not exist"])
        yaml_path = None  # type: ignore[assignment]
    elif not yaml_path.is_file():
        raise SettingsError([f"--config: {str(yaml_path)!r} is not a file"])

    bound = type("Settings", (Settings,), {"_yaml_file": yaml_path, "__module__": __name__})
    try:
        return bound(**overrides)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise SettingsError(_error_lines(exc)) from None
    except (ValueError, yaml.YAMLError) as exc:  # YAML that does not parse, or not a mapping
        raise SettingsError([f"{yaml_path}: {exc}"]) from None
