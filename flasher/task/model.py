"""The task attributes: models, statuses and their transitions, validation, status messages.

Three attributes carry work for flasher (``flasher.constants``):

* ``sh.hollow.flasher.task``: an install task, :class:`InstallTask` (DESIGN.md, "The task attribute");
* ``sh.hollow.flasher.server_control``: a server-control task, :class:`ServerControlTask` (the actions of
  metal-toolbox flipflop);
* ``sh.hollow.flasher.inventory``: an inventory task, :class:`InventoryTask` (collect the server's hardware from
  its BMC into the inventory, as metal-toolbox alloy writes it; docs/onboarding-netboot.md).

Keys are those of the original flasher and flipflop designs, so existing tooling keeps working: ``firmwareSet``,
``Firmware``, ``dryRun``, ``preActions``, ``action_parameter``... Python attributes are snake_case with the
attribute's key as alias; :meth:`TaskBase.to_attribute` writes the original keys back.

Only the documented keys mean anything, spelled exactly as documented. Any other key — however close to a known
one: ``dry_run``, ``DryRun``, ``firmware``, ``update_file_url`` — is kept untouched and written back as it was,
and never read: the models hold such keys apart from their fields (:attr:`_AttributeModel.unknown_keys`), so
neither parsing, nor an assignment, nor a copy can take one for a field (pydantic, asked to re-validate a model
on assignment, would otherwise merge its "extra" keys back in by field name). Keys that were absent stay absent
on write-back (only keys present in the attribute or set by flasher are written), so ``parse(to_attribute(t))
== t``.

Parsing never raises anything but :class:`TaskValidationError`, whatever JSON value it is given; the error names
every bad field, its value and the reason: ``field 'priority': value 7 is outside 0..3``. Values and field paths
in messages are cut to about 80 characters (:func:`shorten`); at most :data:`MAX_PROBLEMS_SHOWN` problems are
spelled out. Bounds (``docs/bad-input.md``): a new request's data is at most :data:`MAX_REQUEST_BYTES` of JSON;
no attribute nests deeper than :data:`MAX_DEPTH`; a status message or ``error`` is at most
:data:`MAX_TEXT_CHARS` characters.

Defaults for absent keys: ``status`` ``""`` (new), ``priority`` :data:`DEFAULT_PRIORITY` (1), ``method``
``out-of-band``, ``force``/``dryRun``/``cancel`` false, ``attempts`` 0.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainSerializer,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from flasher import redact
from flasher.checksum import Checksum, ChecksumError
from flasher.constants import INVENTORY_NAMESPACE, SERVER_CONTROL_NAMESPACE, TASK_NAMESPACE

#: Priority of a task whose attribute has none (0 lowest, 3 highest).
DEFAULT_PRIORITY: Final = 1
MIN_PRIORITY: Final = 0
MAX_PRIORITY: Final = 3
#: How many status messages a task keeps (the newest).
MAX_MESSAGES: Final = 10
#: The field name used when the attribute's data as a whole is wrong (not a JSON object, too large, too deep).
DATA_FIELD: Final = "data"
#: The most bytes of JSON (compact, UTF-8) a new request's data may have. Generous: a request for every
#: component of a large server, with instances and flasher's report, is a few KiB. Past it the request fails
#: (``field 'data': is ... bytes of JSON, more than the limit of 65536``) and nothing is planned. Only new requests
#: are measured: what flasher adds while it runs is bounded itself (:data:`MAX_MESSAGES` lines of at most
#: :data:`MAX_TEXT_CHARS`), so a task it admitted stays readable.
MAX_REQUEST_BYTES: Final = 64 * 1024
#: The deepest nesting of objects and lists an attribute may have (the data itself is level 1; flasher's own
#: keys go 4 deep). pydantic cannot serialise past 254 levels; a request nested deeper than this fails.
MAX_DEPTH: Final = 32
#: The most characters of a status message line or of ``error``; a longer text is cut, ending in ``...``.
MAX_TEXT_CHARS: Final = 1024
#: How many characters of a value (or of a field path) an error message shows (:func:`shorten`).
MAX_SHOWN_CHARS: Final = 80
#: How many problems an error message spells out; the rest are counted (``... and 3 more problems``).
MAX_PROBLEMS_SHOWN: Final = 10
#: The longest ``version``, ``firmwareSet`` and ``taskID`` accepted; ``version`` and ``firmwareSet`` go into
#: the inventory's query strings, where a long value is refused (HTTP 414/431) and could never be planned.
MAX_NAME_CHARS: Final = 256


# --------------------------------------------------------------------------------------------------------------
# Errors


class TaskValidationError(ValueError):
    """An attribute that is not a valid task.

    ``problems`` lists every problem as ``(field, value, reason)`` (``value`` ``None`` for a missing key);
    ``field``, ``value`` and ``reason`` are those of the first. ``field`` is the key path in the attribute
    (``priority``, ``Firmware.bmc.updateFileURL``, ``Firmware[1].component``, or ``data`` for the attribute as a
    whole). ``str()`` is one line naming them all, e.g. ``field 'priority': value 7 is outside 0..3``; registered
    secrets are masked.
    """

    def __init__(self, problems: list[tuple[str, Any, str]]) -> None:
        if not problems:
            raise ValueError("TaskValidationError needs at least one problem")
        problems = [(shorten(field), value, reason) for field, value, reason in problems]
        shown = [_describe(*problem) for problem in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"... and {len(problems) - MAX_PROBLEMS_SHOWN} more problems")
        message = redact.scrub("; ".join(shown))
        self.problems = [(field, None if value is _MISSING else value, reason) for field, value, reason in problems]
        self.field, self.value, self.reason = self.problems[0]
        super().__init__(message)


class InvalidTransitionError(ValueError):
    """A status change the task state machine does not allow; ``old`` and ``new`` are the two statuses."""

    def __init__(self, old: TaskStatus, new: TaskStatus, *, by_operator: bool) -> None:
        self.old, self.new = old, new
        allowed = ", ".join(_show_status(s) for s in sorted(allowed_next(old, by_operator=by_operator))) or "none"
        who = "the operator" if by_operator else "flasher"
        super().__init__(
            f"status {_show_status(old)} cannot change to {_show_status(new)} by {who} (allowed: {allowed})"
        )


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``...`` when it was cut: for values and names that
    an operator wrote, in error messages (a 5,000-character value must not come back 5,000 characters long)."""
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def show_value(value: Any) -> str:
    """``value`` as JSON for a message (``"abc"``, ``7``, ``{"a": 1}``), cut to about 80 characters."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return shorten(text)


def _describe(field: str, value: Any, reason: str) -> str:
    if value is _MISSING:
        return f"field {field!r}: {reason}"
    return f"field {field!r}: value {show_value(value)} {reason}"


_MISSING: Final[Any] = object()

# --------------------------------------------------------------------------------------------------------------
# Statuses and transitions


class TaskStatus(StrEnum):
    """A task's ``status``. ``""`` and ``requested`` both mean new (written by the operator)."""

    NEW = ""
    REQUESTED = "requested"
    QUEUED = "queued"
    ACTIVE = "active"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


_NEW: Final = frozenset({TaskStatus.NEW, TaskStatus.REQUESTED})
_TERMINAL: Final = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED})

#: The transitions flasher may make: from a status to the statuses it may write next.
#:
#: ===========  ==================================================  ==============================================
#: from         to                                                  why
#: ===========  ==================================================  ==============================================
#: new          queued, failed, cancelled                           admitted; invalid or unplannable; cancel: true
#: queued       active, queued, failed, cancelled                   claimed; re-enqueued; dead; cancel: true
#: active       active, success, failed, cancelled, queued          heartbeat; done; cancel: true; lease released
#:                                                                  or reclaimed
#: terminal     (none)                                              only the operator starts a new request
#: ===========  ==================================================  ==============================================
TRANSITIONS: Final[Mapping[TaskStatus, frozenset[TaskStatus]]] = {
    TaskStatus.NEW: frozenset({TaskStatus.QUEUED, TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.REQUESTED: frozenset({TaskStatus.QUEUED, TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.QUEUED: frozenset({TaskStatus.ACTIVE, TaskStatus.QUEUED, TaskStatus.FAILED, TaskStatus.CANCELLED}),
    TaskStatus.ACTIVE: frozenset(
        {TaskStatus.ACTIVE, TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.QUEUED}
    ),
    TaskStatus.SUCCESS: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}
#: The transitions only an operator makes: a finished task becomes a new request again.
OPERATOR_TRANSITIONS: Final[Mapping[TaskStatus, frozenset[TaskStatus]]] = {status: _NEW for status in _TERMINAL}


def is_new(status: TaskStatus | str) -> bool:
    """True for ``""`` and ``requested``: a request flasher has not admitted yet."""
    return status in _NEW


def is_terminal(status: TaskStatus | str) -> bool:
    """True for ``success``, ``failed`` and ``cancelled``."""
    return status in _TERMINAL


def allowed_next(old: TaskStatus, *, by_operator: bool = False) -> frozenset[TaskStatus]:
    """The statuses ``old`` may change to (flasher's, plus the operator's when ``by_operator``)."""
    allowed = TRANSITIONS[old]
    if by_operator:
        allowed = allowed | OPERATOR_TRANSITIONS.get(old, frozenset())
    return allowed


def check_transition(old: TaskStatus | str, new: TaskStatus | str, *, by_operator: bool = False) -> None:
    """Raise :class:`InvalidTransitionError` unless the table allows ``old`` → ``new``.

    ``by_operator`` also allows what only an operator does (a finished task becomes a new request).
    A status string that is not a :class:`TaskStatus` raises ``ValueError``.
    """
    old_status, new_status = TaskStatus(old), TaskStatus(new)
    if new_status not in allowed_next(old_status, by_operator=by_operator):
        raise InvalidTransitionError(old_status, new_status, by_operator=by_operator)


def _show_status(status: TaskStatus) -> str:
    return '""' if status is TaskStatus.NEW else status.value


# --------------------------------------------------------------------------------------------------------------
# Vocabularies


class InstallMethod(StrEnum):
    """How firmware is installed. Only ``out-of-band`` (through the BMC) is supported so far."""

    OUT_OF_BAND = "out-of-band"
    IN_BAND = "in-band"


#: Methods flasher knows but cannot run yet; their tasks fail saying so (:meth:`InstallTask.unsupported_reason`).
UNSUPPORTED_METHODS: Final = frozenset({InstallMethod.IN_BAND})


class InstallMode(StrEnum):
    """How the firmware to install was chosen (flasher writes it into ``mode``)."""

    PREDEFINED_FIRMWARE = "PredefinedFirmware"
    PREDEFINED_FIRMWARE_SET = "PredefinedFirmwareSet"
    RESOLVE_FIRMWARE = "ResolveFirmware"


class FirmwareAction(StrEnum):
    """A step before (``preActions``) or after (``postActions``) a component's install."""

    RESET_BMC = "resetBMC"
    RESET_HOST = "resetHost"
    POWER_OFF_HOST = "powerOffHost"


class ComponentStatus(StrEnum):
    """A component's (or one instance's) install status, written by flasher into ``Firmware.<slug>.status``."""

    PENDING = "pending"
    ACTIVE = "active"
    INSTALLED = "installed"
    SKIPPED = "skipped"
    FAILED = "failed"


class ControlAction(StrEnum):
    """A server-control ``action`` (metal-toolbox flipflop)."""

    SET_POWER_STATE = "set_power_state"
    GET_POWER_STATE = "get_power_state"
    POWER_CYCLE_BMC = "power_cycle_bmc"
    SET_NEXT_BOOT_DEVICE = "set_next_boot_device"
    PXE_BOOT_PERSISTENT = "pxe_boot_persistent"
    #: flasher's own: set the boot profile, PXE once, power cycle, wait for the booted machine's callback.
    PROVISION = "provision"


#: ``set_power_state`` parameters. ``cycle`` on a server that is off powers it on.
POWER_STATES: Final[tuple[str, ...]] = ("on", "off", "soft", "cycle", "reset")
#: ``set_next_boot_device`` parameters.
BOOT_DEVICES: Final[tuple[str, ...]] = (
    "pxe",
    "disk",
    "cdrom",
    "bios",
    "usb",
    "diag",
    "floppy",
    "none",
    "remote_drive",
    "sd_card",
    "utilities",
)
#: The parameters each action takes; an empty tuple means it takes none.
ACTION_PARAMETERS: Final[Mapping[ControlAction, tuple[str, ...]]] = {
    ControlAction.SET_POWER_STATE: POWER_STATES,
    ControlAction.GET_POWER_STATE: (),
    ControlAction.POWER_CYCLE_BMC: (),
    ControlAction.SET_NEXT_BOOT_DEVICE: BOOT_DEVICES,
    ControlAction.PXE_BOOT_PERSISTENT: (),
    ControlAction.PROVISION: (),
}
#: Actions whose ``action_parameter`` is free text (checked where it is used): ``provision`` takes a boot profile
#: name (optional: without one the server's ``sh.hollow.flasher.boot`` is used as it is).
FREE_PARAMETER_ACTIONS: Final = frozenset({ControlAction.PROVISION})

# --------------------------------------------------------------------------------------------------------------
# Field types

_E = TypeVar("_E", bound=StrEnum)


def _one_of(enum: type[_E], what: str) -> BeforeValidator:
    """A validator accepting exactly the values of ``enum``; the error lists them."""
    values = [member.value for member in enum]

    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"is not a string (a {what}: {', '.join(_quote_empty(v) for v in values)})")
        if value not in values:
            raise ValueError(f"is not a known {what} (known: {', '.join(_quote_empty(v) for v in values)})")
        return value

    return BeforeValidator(check)


def _quote_empty(value: str) -> str:
    return '""' if value == "" else value


#: RFC 3339 ``date-time`` (section 5.6), with ``T``, ``t`` or a space between date and time (section 5.6 allows
#: the space); the offset may be left out (taken as UTC).
_RFC3339: Final = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?")


def _timestamp_text(value: Any) -> Any:
    """Accept an RFC 3339 timestamp string (or a ``datetime``, from flasher's own assignments) and nothing else:
    pydantic alone would also take ``5``, ``"1700000000"`` (Unix times) or a bare date."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("is not an RFC 3339 timestamp")
    return value


def _utc(value: datetime) -> datetime:
    """Timestamps are kept in UTC; one without an offset is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


def rfc3339(value: datetime) -> str:
    """``value`` as RFC 3339 in UTC with a ``Z``: ``2026-11-20T23:55:46Z`` (fractions kept when present)."""
    return _utc(value).isoformat().replace("+00:00", "Z")


def utc_now() -> datetime:
    """The current time in UTC, to the second (what flasher writes into timestamps)."""
    return datetime.now(UTC).replace(microsecond=0)


def _priority(value: int) -> int:
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValueError(f"is outside {MIN_PRIORITY}..{MAX_PRIORITY}")
    return value


def _http_url(value: str) -> str:
    """An ``http``/``https`` URL with a host and, if any, a port from 1 to 65535, without spaces or control
    characters. Checked on the text as written: ``urlsplit`` silently drops tabs, CR and LF (CVE-2022-0391), so
    ``"http://h/a\\r\\nHost: x"`` must be refused before it is split, never "repaired"."""
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ValueError("contains a space or a control character (CR, LF, tab...): encode it (%20) or remove it")
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ValueError("is not an http(s) URL") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise ValueError("is not an http(s) URL")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("has a port that is not a number from 1 to 65535")
    return value


def _checksum(value: str) -> str:
    try:
        Checksum.parse(value)
    except ChecksumError:
        raise ValueError(
            "is not a checksum (use sha256:, sha512: or md5: followed by hex, or plain hex of 32, 64 or 128 digits)"
        ) from None
    return value


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty")
    return value


def _name(value: str) -> str:
    """A non-empty name of at most :data:`MAX_NAME_CHARS` characters (a version, a firmware set)."""
    _non_empty(value)
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"is {len(value)} characters long, more than {MAX_NAME_CHARS}")
    return value


def _identifier(value: str) -> str:
    """A task id: 1 to :data:`MAX_NAME_CHARS` printable characters, no spaces (it names Redis entries and log
    lines; flasher writes ``t-`` and 24 hex digits)."""
    if not value or len(value) > MAX_NAME_CHARS or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"is not a task id (1 to {MAX_NAME_CHARS} printable characters, no spaces)")
    return value


_NO_SET: Final = "leave the key out to resolve the firmware set from the server's vendor and model"


def _set_name(value: Any) -> Any:
    """``firmwareSet``: a name or uuid; ``null`` and an empty or blank string are refused, not read as absent
    (absent means "resolve the set", which installs every component it has)."""
    if value is None:
        raise ValueError(f"is not a firmware set's name or uuid ({_NO_SET})")
    if isinstance(value, str) and not value.strip():
        raise ValueError(f"is empty: give a firmware set's name or uuid, or {_NO_SET}")
    return value


def _non_negative(value: int) -> int:
    if value < 0:
        raise ValueError("is negative")
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp_text),
    AfterValidator(_utc),
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
]
Priority = Annotated[StrictInt, AfterValidator(_priority)]
HttpURL = Annotated[StrictStr, AfterValidator(_http_url)]
ChecksumText = Annotated[StrictStr, AfterValidator(_checksum)]
VersionText = Annotated[StrictStr, AfterValidator(_name)]
NameText = Annotated[StrictStr, AfterValidator(_name)]
TaskID = Annotated[StrictStr, AfterValidator(_identifier)]
Count = Annotated[StrictInt, AfterValidator(_non_negative)]
StatusField = Annotated[TaskStatus, _one_of(TaskStatus, "task status")]
MethodField = Annotated[InstallMethod, _one_of(InstallMethod, "install method")]
ModeField = Annotated[InstallMode, _one_of(InstallMode, "install mode")]
ActionField = Annotated[FirmwareAction, _one_of(FirmwareAction, "firmware action")]
ComponentStatusField = Annotated[ComponentStatus, _one_of(ComponentStatus, "component status")]
ControlActionField = Annotated[ControlAction, _one_of(ControlAction, "server-control action")]


_SLUG = re.compile(r"^[a-z0-9][a-z0-9.-]{0,63}$")


def normalise_slug(value: str) -> str:
    """A component type slug as the inventory spells it: lowercase, words joined by ``-``
    (``Storage Controller`` and ``storage_controller`` → ``storage-controller``); ``""`` when ``value`` cannot be
    a slug (only ASCII letters, digits, ``.`` and ``-`` remain in one, at most 64 of them)."""
    slug = "-".join(value.strip().lower().replace("_", " ").split())
    return slug if _SLUG.match(slug) else ""


# --------------------------------------------------------------------------------------------------------------
# Models


_ATTRIBUTE_KEYS: dict[type[BaseModel], frozenset[str]] = {}


class _AttributeModel(BaseModel):
    """A part of a task attribute: its documented keys are the fields (the attribute's key is the alias and the
    only name read: ``validate_by_name`` is off), assignments are validated, and every other key is kept apart in
    :attr:`unknown_keys` and written back after the fields, untouched.

    Unknown keys are not pydantic "extra" fields on purpose: on a validated assignment pydantic re-validates the
    model's fields together with its extra keys by *field name*, so an operator's ``dry_run: false`` beside
    ``dryRun: true`` turned the dry run off as soon as flasher assigned any field (issue 12).
    """

    model_config = ConfigDict(extra="ignore", validate_assignment=True, validate_by_alias=True, validate_by_name=False)

    _unknown: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _keep_unknown_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        """Validate the documented keys; keep every other key, with its value, in :attr:`unknown_keys`. (On an
        assignment ``data`` is the model itself, whose unknown keys stay as they are.)"""
        model = handler(data)
        if isinstance(data, Mapping):
            known = cls.attribute_keys()
            model._unknown = {key: value for key, value in data.items() if key not in known}
        return model

    @model_serializer(mode="wrap")
    def _write_unknown_keys(self, handler: SerializerFunctionWrapHandler) -> Any:
        """The fields as pydantic dumps them, then the unknown keys as they were read (never over a field)."""
        dumped = handler(self)
        if isinstance(dumped, dict):
            for key, value in self._unknown.items():
                dumped.setdefault(key, value)
        return dumped

    @classmethod
    def attribute_keys(cls) -> frozenset[str]:
        """The documented keys of this part of the attribute (the fields' aliases), the only ones read."""
        keys = _ATTRIBUTE_KEYS.get(cls)
        if keys is None:
            keys = _ATTRIBUTE_KEYS[cls] = frozenset(info.alias or name for name, info in cls.model_fields.items())
        return keys

    @property
    def unknown_keys(self) -> Mapping[str, Any]:
        """The keys of the attribute that are not documented keys of this model, with their values, as read."""
        return dict(self._unknown)


class InstanceResult(_AttributeModel):
    """The result for one of several components of one type (drives, NICs), in ``Firmware.<slug>.instances``.

    ``name`` and ``serial`` identify the component (as the inventory names it); ``version`` is the target version
    for this instance (written only in the set modes, where several firmware of one type may apply to
    different models); ``bmcTask`` the URI of the BMC's task installing it (a resumed task follows it).
    """

    name: StrictStr = ""
    serial: StrictStr = ""
    version: StrictStr | None = None
    status: ComponentStatusField = ComponentStatus.PENDING
    installed_version: StrictStr | None = Field(default=None, alias="installedVersion")
    message: StrictStr | None = None
    bmc_task: StrictStr | None = Field(default=None, alias="bmcTask")


def aggregate_status(statuses: Iterable[ComponentStatus]) -> ComponentStatus:
    """The status of a component type from those of its instances.

    ``failed`` if any failed; else ``active`` if any is active or some are done (installed/skipped) while others
    are pending; ``pending`` if all are pending (or there are none); ``skipped`` if all were skipped; otherwise
    ``installed`` (all done, at least one installed).
    """
    seen = set(statuses)
    if ComponentStatus.FAILED in seen:
        return ComponentStatus.FAILED
    if ComponentStatus.ACTIVE in seen:
        return ComponentStatus.ACTIVE
    if not seen or seen == {ComponentStatus.PENDING}:
        return ComponentStatus.PENDING
    if ComponentStatus.PENDING in seen:
        return ComponentStatus.ACTIVE
    if seen == {ComponentStatus.SKIPPED}:
        return ComponentStatus.SKIPPED
    return ComponentStatus.INSTALLED


class FirmwareSpec(_AttributeModel):
    """One entry of ``Firmware``: what to install on the components of one type.

    Operator keys: ``version`` (required), ``preActions``/``postActions`` (``resetBMC``, ``resetHost``,
    ``powerOffHost``), ``force``, ``updateFileURL`` (http or https), ``updateFileChecksum`` (see
    :mod:`flasher.checksum`). flasher adds ``status``, ``installedVersion``, ``message`` and ``bmcTask`` (the URI
    of the BMC's task installing it); where the server has several components of the type, ``instances`` holds
    one :class:`InstanceResult` each and ``status`` aggregates them (:func:`aggregate_status`).
    """

    version: VersionText
    pre_actions: list[ActionField] = Field(default_factory=list, alias="preActions")
    post_actions: list[ActionField] = Field(default_factory=list, alias="postActions")
    force: StrictBool = False
    update_file_url: HttpURL | None = Field(default=None, alias="updateFileURL")
    update_file_checksum: ChecksumText | None = Field(default=None, alias="updateFileChecksum")
    status: ComponentStatusField | None = None
    installed_version: StrictStr | None = Field(default=None, alias="installedVersion")
    message: StrictStr | None = None
    instances: list[InstanceResult] | None = None
    bmc_task: StrictStr | None = Field(default=None, alias="bmcTask")

    @property
    def checksum(self) -> Checksum | None:
        """``updateFileChecksum`` parsed, or ``None``."""
        return Checksum.parse(self.update_file_checksum) if self.update_file_checksum else None

    def record_instance(
        self,
        name: str,
        serial: str,
        status: ComponentStatus,
        *,
        installed_version: str | None = None,
        message: str | None = None,
    ) -> InstanceResult:
        """Set the result of the instance ``(name, serial)`` (adding it when new) and re-aggregate ``status``.

        ``installed_version``/``message`` given as ``None`` keep the instance's previous values.
        """
        instances = list(self.instances or [])
        current = next((i for i in instances if i.name == name and i.serial == serial), None)
        if current is None:
            current = InstanceResult(name=name, serial=serial)
            instances.append(current)
        current.status = status
        if installed_version is not None:
            current.installed_version = installed_version
        if message is not None:
            current.message = message
        self.instances = instances
        self.status = aggregate_status(i.status for i in instances)
        return current


_NOT_A_SLUG: Final = "is not a component type slug (bmc, bios, drive, ...)"


_EMPTY_FIRMWARE: Final = (
    "is empty: name the components to install, or leave the key out to install the firmware set of the server's"
    " vendor and model"
)


def _firmware_map(value: Any) -> Any:
    """Accept ``Firmware`` as a map (slug → spec) or a list of specs with a ``component`` key; give the map.

    Slugs are normalised (:func:`normalise_slug`); two entries for one component are an error naming it. An
    empty ``Firmware`` (``{}``, ``[]``) or ``null`` is an error: read as absent it would install the whole set.
    """
    problems: list[tuple[str, Any, str]] = []
    result: dict[str, Any] = {}
    if value is None:
        raise _FieldProblemsError([("Firmware", _MISSING, "is null: " + _EMPTY_FIRMWARE.removeprefix("is empty: "))])
    if isinstance(value, Mapping | list) and not value:
        raise _FieldProblemsError([("Firmware", _MISSING, _EMPTY_FIRMWARE)])
    if isinstance(value, Mapping):
        for key, spec in value.items():
            slug = normalise_slug(key) if isinstance(key, str) else ""
            if not slug:
                problems.append((f"Firmware.{key}", key, _NOT_A_SLUG))
            elif slug in result:
                problems.append((f"Firmware.{key}", key, f"names component {slug!r} a second time"))
            else:
                result[slug] = spec
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            where = f"Firmware[{index}]"
            if not isinstance(entry, Mapping):
                problems.append((where, entry, "is not an object"))
                continue
            component = entry.get("component", _MISSING)
            if component is _MISSING:
                problems.append((f"{where}.component", _MISSING, "is missing (each entry names its component)"))
                continue
            slug = normalise_slug(component) if isinstance(component, str) else ""
            if not slug:
                problems.append((f"{where}.component", component, _NOT_A_SLUG))
            elif slug in result:
                problems.append((f"{where}.component", component, f"names component {slug!r} a second time"))
            else:
                result[slug] = {k: v for k, v in entry.items() if k != "component"}
    else:
        return value  # pydantic reports the type
    if problems:
        raise _FieldProblemsError(problems)
    return result


class _FieldProblemsError(ValueError):
    """Problems found by a before-validator, carried to :func:`_parse` with their own field paths."""

    def __init__(self, problems: list[tuple[str, Any, str]]) -> None:
        super().__init__("; ".join(_describe(*p) for p in problems))
        self.problems = problems


class TaskBase(_AttributeModel):
    """What both task attributes share: the operator's ``status``, ``priority``, ``requester``, ``cancel``, and
    what flasher writes: ``worker``, ``taskID``, ``attempts``, ``createdAt``/``updatedAt``/``completedAt``
    (RFC 3339 UTC; ``updatedAt`` is the heartbeat), ``messages`` (the newest :data:`MAX_MESSAGES`), ``error``."""

    status: StatusField = TaskStatus.NEW
    priority: Priority = DEFAULT_PRIORITY
    requester: StrictStr | None = None
    worker: StrictStr | None = None
    cancel: StrictBool = False
    task_id: TaskID | None = Field(default=None, alias="taskID")
    attempts: Count = 0
    created_at: Timestamp | None = Field(default=None, alias="createdAt")
    updated_at: Timestamp | None = Field(default=None, alias="updatedAt")
    completed_at: Timestamp | None = Field(default=None, alias="completedAt")
    messages: list[StrictStr] = Field(default_factory=list)
    error: StrictStr | None = None

    def to_attribute(self) -> dict[str, Any]:
        """The attribute's ``data`` to write back: original key names, unknown keys kept, absent keys left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)

    def set_error(self, text: str | None) -> None:
        """Set ``error`` (secrets masked), or remove the key when ``text`` is ``None``/empty: a task that has no
        error writes no ``error`` key (not ``"error": null``)."""
        if text:
            self.error = shorten(redact.scrub(text), MAX_TEXT_CHARS)
        else:
            self.error = None
            self.model_fields_set.discard("error")

    def add_message(self, text: str, *, component: str | None = None, now: datetime | None = None) -> str:
        """Append ``"<RFC 3339 UTC> [component] text"`` to ``messages``, keep the newest :data:`MAX_MESSAGES`,
        and return the line. Secrets registered with :mod:`flasher.redact` are masked."""
        line = format_message(text, component=component, now=now)
        self.messages = [*self.messages, line][-MAX_MESSAGES:]
        return line

    def transition(self, new: TaskStatus, *, now: datetime | None = None, by_operator: bool = False) -> None:
        """Move ``status`` to ``new`` (:func:`check_transition`), stamping ``updatedAt``, and ``completedAt`` when
        ``new`` is terminal. Raises :class:`InvalidTransitionError` and leaves the task unchanged when refused."""
        check_transition(self.status, new, by_operator=by_operator)
        stamp = now or utc_now()
        self.status = new
        self.updated_at = stamp
        if is_terminal(new):
            self.completed_at = stamp


def _forget(model: _AttributeModel, name: str) -> None:
    """Remove field ``name`` from ``model``: its default again, and not written back."""
    if name in model.model_fields_set:
        setattr(model, name, None)
        model.model_fields_set.discard(name)


def format_message(text: str, *, component: str | None = None, now: datetime | None = None) -> str:
    """A status message line: ``2026-11-20T23:55:46Z [bios] installing 2.7.3: Running 40%`` (secrets masked),
    at most :data:`MAX_TEXT_CHARS` characters."""
    stamp = rfc3339((now or utc_now()).replace(microsecond=0))
    prefix = f"{stamp} [{component}] " if component else f"{stamp} "
    return shorten(redact.scrub(prefix + text), MAX_TEXT_CHARS)


def message_time(line: str) -> datetime | None:
    """The time of a status message line written by :func:`format_message` (its first word), or ``None``."""
    stamp = line.split(" ", 1)[0]
    if not _RFC3339.fullmatch(stamp):
        return None
    try:
        return _utc(datetime.fromisoformat(stamp.replace("z", "Z")))
    except ValueError:
        return None


class InstallTask(TaskBase):
    """The install task attribute (``sh.hollow.flasher.task``).

    The install mode follows from what is given (:mod:`flasher.install.plan`): ``Firmware`` →
    PredefinedFirmware; else ``firmwareSet`` (name or uuid) → PredefinedFirmwareSet; else ResolveFirmware.
    ``force`` applies to every component (a component's own ``force`` to that component): it allows
    downgrades, reinstalls of the installed version, and installs over an unknown or incomparable version.
    ``dryRun``: plan and report, install nothing. ``Firmware`` and ``firmwareSet`` are either absent or say
    something: empty or ``null`` is an error, never read as "resolve the set" (which installs every component).
    flasher adds ``initialPowerState``: the host's power state before the task changed it (a resumed task
    restores it); :meth:`clear_run_state` removes what a previous run left.
    """

    method: MethodField = InstallMethod.OUT_OF_BAND
    firmware_set: Annotated[NameText | None, BeforeValidator(_set_name)] = Field(default=None, alias="firmwareSet")
    firmware: Annotated[dict[str, FirmwareSpec] | None, BeforeValidator(_firmware_map)] = Field(
        default=None, alias="Firmware"
    )
    force: StrictBool = False
    dry_run: StrictBool = Field(default=False, alias="dryRun")
    mode: ModeField | None = None
    initial_power_state: StrictStr | None = Field(default=None, alias="initialPowerState")

    def clear_run_state(self) -> None:
        """Forget what a previous run of this request wrote that a new run would otherwise read back as its own
        (an operator re-runs a finished task by setting ``status`` to ``""``, keeping the rest): the host's
        ``initialPowerState`` and each component's ``bmcTask``. Without this a re-run would restore the power
        state of the previous run, and take that run's BMC task for its own."""
        if "initial_power_state" in self.model_fields_set:
            self.initial_power_state = None
            self.model_fields_set.discard("initial_power_state")
        for spec in (self.firmware or {}).values():
            _forget(spec, "bmc_task")
            for instance in spec.instances or []:
                _forget(instance, "bmc_task")

    def unsupported_reason(self) -> str | None:
        """Why flasher cannot run this task although it is valid (``in-band``), or ``None``."""
        if self.method in UNSUPPORTED_METHODS:
            return f"install method {self.method.value!r} is known but not supported yet (use 'out-of-band')"
        return None


class ServerControlTask(TaskBase):
    """The server-control attribute (``sh.hollow.flasher.server_control``), as metal-toolbox flipflop has it.

    ``action`` and ``action_parameter``: ``set_power_state`` with one of :data:`POWER_STATES`;
    ``get_power_state``; ``power_cycle_bmc``; ``set_next_boot_device`` with one of :data:`BOOT_DEVICES`
    (``set_next_boot_device_persistent``: every boot rather than the next one; ``set_next_boot_device_efi``: EFI
    rather than legacy); ``pxe_boot_persistent`` (PXE, persistent, EFI, then power on); ``provision`` (flasher's
    own: boot profile ``action_parameter`` or the server's, PXE once, power cycle, wait for the callback; see
    docs/onboarding-netboot.md). Actions without parameters accept an absent or empty ``action_parameter``.
    """

    action: ControlActionField
    action_parameter: StrictStr | None = None
    set_next_boot_device_persistent: StrictBool = False
    set_next_boot_device_efi: StrictBool = False

    @model_validator(mode="after")
    def _parameter_fits_action(self) -> Self:
        valid = ACTION_PARAMETERS[self.action]
        parameter = self.action_parameter
        if self.action in FREE_PARAMETER_ACTIONS:
            if parameter is not None and parameter.strip() != parameter:
                raise _FieldProblemsError([("action_parameter", parameter, "has spaces around it")])
            return self
        if valid and parameter not in valid:
            choices = f"action {self.action.value!r} (valid: {', '.join(valid)})"
            if parameter is None:
                raise _FieldProblemsError([("action_parameter", _MISSING, f"is missing: it is required by {choices}")])
            raise _FieldProblemsError([("action_parameter", parameter, f"is not valid for {choices}")])
        if not valid and parameter:
            raise _FieldProblemsError(
                [("action_parameter", parameter, f"is not valid: action {self.action.value!r} takes no parameter")]
            )
        return self

    @field_validator("action_parameter", mode="before")
    @classmethod
    def _parameter_is_text(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, str):
            raise ValueError("is not a string")
        return value


# --------------------------------------------------------------------------------------------------------------
# Parsing

_TYPE_REASONS: Final[Mapping[str, str]] = {
    "int_type": "is not an integer",
    "int_from_float": "is not an integer",
    "bool_type": "is not a boolean (true or false)",
    "string_type": "is not a string",
    "list_type": "is not a list",
    "dict_type": "is not an object",
    "model_type": "is not an object",
    "model_attributes_type": "is not an object",
    "datetime_type": "is not an RFC 3339 timestamp",
    "datetime_parsing": "is not an RFC 3339 timestamp",
    "datetime_from_date_parsing": "is not an RFC 3339 timestamp",
    "datetime_object_invalid": "is not an RFC 3339 timestamp",
    "missing": "is missing",
}

_T = TypeVar("_T", bound=TaskBase)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or DATA_FIELD


def _problems_of(error: ValidationError) -> list[tuple[str, Any, str]]:
    problems: list[tuple[str, Any, str]] = []
    for item in error.errors(include_url=False):
        loc = tuple(item["loc"])
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, _FieldProblemsError):
            prefix = _field_path(loc) if loc and loc[0] != "Firmware" else ""
            for field, value, reason in cause.problems:
                problems.append((f"{prefix}.{field}" if prefix else field, value, reason))
            continue
        field = _field_path(loc)
        if item["type"] == "missing":
            problems.append((field, _MISSING, "is missing"))
        elif item["type"] == "value_error" and cause is not None:
            problems.append((field, item["input"], str(cause)))
        else:
            reason = _TYPE_REASONS.get(item["type"], f"is not valid ({item['msg']})")
            problems.append((field, item["input"], reason))
    return problems


def _too_deep(data: object) -> str | None:
    """The path of the first value nested deeper than :data:`MAX_DEPTH` in ``data``, or ``None``."""

    def walk(value: object, depth: int) -> list[str] | None:
        if depth > MAX_DEPTH:
            return []
        children: Iterable[tuple[str, object]]
        if isinstance(value, dict):
            children = ((f".{key}", child) for key, child in value.items())
        elif isinstance(value, list):
            children = ((f"[{index}]", child) for index, child in enumerate(value))
        else:
            return None
        for step, child in children:
            if isinstance(child, dict | list) and (below := walk(child, depth + 1)) is not None:
                return [step, *below]
        return None

    found = walk(data, 1)
    return None if found is None else "".join(found).removeprefix(".")


def json_size(data: object) -> int:
    """Bytes of ``data`` as compact JSON in UTF-8 (as the inventory stores it, give or take its spacing)."""
    return len(
        json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
    )


def _bounds_problem(data: Mapping[str, Any]) -> tuple[str, Any, str] | None:
    """The data's problem with :data:`MAX_DEPTH`, or (for a new request) with :data:`MAX_REQUEST_BYTES`."""
    if (where := _too_deep(data)) is not None:
        return (DATA_FIELD, _MISSING, f"nests more than {MAX_DEPTH} levels deep (at {shorten(where)!r})")
    status = data.get("status", "")
    if not isinstance(status, str) or is_new(status):
        size = json_size(data)
        if size > MAX_REQUEST_BYTES:
            return (DATA_FIELD, _MISSING, f"is {size} bytes of JSON, more than the limit of {MAX_REQUEST_BYTES}")
    return None


def _parse(model: type[_T], data: object) -> _T:
    if not isinstance(data, Mapping):
        raise TaskValidationError([(DATA_FIELD, data, "is not a JSON object")])
    try:
        problem = _bounds_problem(data)
        if problem is None:
            return model.model_validate(dict(data))
    except ValidationError as exc:
        raise TaskValidationError(_problems_of(exc)) from None
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:  # defence in depth: one error type only
        raise TaskValidationError([(DATA_FIELD, _MISSING, f"cannot be read: {shorten(str(exc))}")]) from None
    raise TaskValidationError([problem])


class InventoryTask(TaskBase):
    """The inventory task attribute (``sh.hollow.flasher.inventory``): read the server's hardware from its BMC and
    write it into the inventory as metal-toolbox alloy does (``flasher.onboard``). It takes no keys of its own
    beyond :class:`TaskBase`'s; ``{}`` (or ``{"status": "requested"}``) asks for a collection. flasher writes the
    outcome there: ``messages`` name what was added, updated, removed, and what the BMC lacks."""


def parse_install_task(data: object) -> InstallTask:
    """Validate an install task attribute's ``data`` (any JSON value); raise :class:`TaskValidationError`."""
    return _parse(InstallTask, data)


def parse_server_control_task(data: object) -> ServerControlTask:
    """Validate a server-control attribute's ``data`` (any JSON value); raise :class:`TaskValidationError`."""
    return _parse(ServerControlTask, data)


def parse_inventory_task(data: object) -> InventoryTask:
    """Validate an inventory task attribute's ``data`` (any JSON value); raise :class:`TaskValidationError`."""
    return _parse(InventoryTask, data)


#: Where :func:`failed_attribute` keeps data that was not a JSON object (``["oops"]``, ``"x"``, ``5``, ``null``).
INVALID_DATA_KEY: Final = "invalidData"


def failed_attribute(data: object, error: TaskValidationError | str, *, now: datetime | None = None) -> dict[str, Any]:
    """The ``data`` to write back for an attribute that cannot be run: the operator's keys kept, ``status``
    ``failed``, ``error`` the reason, a message, ``updatedAt``/``completedAt`` stamped.

    For attributes that do not parse (so no task object exists); ``data`` that is not an object becomes an
    object that keeps it under :data:`INVALID_DATA_KEY` (so nothing the operator wrote is lost).
    Callers apply it to new requests only (``status`` absent, ``""`` or ``requested``): see :func:`is_new`.
    """
    stamp = rfc3339(now or utc_now())
    result: dict[str, Any] = dict(data) if isinstance(data, Mapping) else {INVALID_DATA_KEY: data}
    reason = shorten(redact.scrub(str(error)), MAX_TEXT_CHARS)
    old = result.get("messages")
    messages = [m for m in old if isinstance(m, str)] if isinstance(old, list) else []
    messages.append(format_message(f"failed: {reason}", now=now))
    result.update(
        status=TaskStatus.FAILED.value,
        error=reason,
        updatedAt=stamp,
        completedAt=stamp,
        messages=messages[-MAX_MESSAGES:],
    )
    return result


class TaskKind(StrEnum):
    """The kinds of task flasher runs; the value is the queue's ``kind``. A server runs one task at a time,
    whatever its kind (the queue holds one entry per server)."""

    INSTALL = "install"
    SERVER_CONTROL = "server_control"
    INVENTORY = "inventory"

    @property
    def namespace(self) -> str:
        """The attribute namespace that carries this kind of task."""
        return _NAMESPACES[self]

    def parse(self, data: object) -> TaskBase:
        """Parse an attribute's ``data`` as this kind of task; raises ``TaskValidationError``."""
        return _PARSERS[self](data)


_NAMESPACES: Final[Mapping[TaskKind, str]] = {
    TaskKind.INSTALL: TASK_NAMESPACE,
    TaskKind.SERVER_CONTROL: SERVER_CONTROL_NAMESPACE,
    TaskKind.INVENTORY: INVENTORY_NAMESPACE,
}
_PARSERS: Final[Mapping[TaskKind, Callable[[object], TaskBase]]] = {
    TaskKind.INSTALL: parse_install_task,
    TaskKind.SERVER_CONTROL: parse_server_control_task,
    TaskKind.INVENTORY: parse_inventory_task,
}
