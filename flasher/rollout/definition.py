"""What a rollout is: its request (:class:`RolloutSpec`, from ``flasher rollout create`` options or an ``apply``
file) and its record in the inventory (:class:`RolloutRecord`: definition and control state).

The record is the data of attribute ``sh.hollow.flasher.rollout`` on the firmware set named
``flasher-rollout/<name>`` (:mod:`flasher.rollout.store` says why it lives there). Keys are camelCase as in the
task attribute; every value is validated, and a bad one is reported naming the field and the value:
``field 'policy.maxActive': value 0 is less than 1``.

Control state: ``state`` is the operator's (``running``, ``paused``, ``aborted``; ``updatedBy`` says who),
``phase`` says where it is (``creating`` while ``rollout create`` writes the members, ``active`` while the
controller moves it, ``closed`` once every member has ended), ``generation`` is bumped by ``retry-failed``
(the breaker counts failures of the current generation).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from flasher.constants import ROLLOUT_RECORD_PREFIX
from flasher.rollout.groups import Cap, GroupError, GroupSpec, parse_cap, parse_group_names
from flasher.rollout.selectors import SelectorError, parse_selector
from flasher.rollout.waves import DEFAULT_WAVES, WaveError, WaveTarget, parse_waves
from flasher.rollout.windows import Window, WindowError, parse_windows
from flasher.task.model import (
    MAX_PRIORITY,
    MIN_PRIORITY,
    ROLLOUT_NAME_PATTERN,
    RolloutName,
    Timestamp,
    rfc3339,
)

#: The breaker's default: a firmware halts after this many failures (``--max-failures``).
DEFAULT_MAX_FAILURES: Final = 3
#: The default of ``--min-ended``: a failure rate counts once this many members of the firmware have ended.
DEFAULT_MIN_ENDED: Final = 10
#: Lines of ``history`` a record keeps (the newest).
MAX_HISTORY: Final = 50
RECORD_VERSION: Final = 1


class RolloutSpecError(ValueError):
    """A rollout request or record that is not valid. ``lines`` names each bad field and value."""

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = list(lines)
        super().__init__("; ".join(self.lines))


class RolloutState(StrEnum):
    """What the operator asked: ``running``, ``paused`` or ``aborted`` (final)."""

    RUNNING = "running"
    PAUSED = "paused"
    ABORTED = "aborted"


class RolloutPhase(StrEnum):
    """``creating`` (``rollout create`` is writing the members; nothing is admitted yet), ``active`` (the
    controller ticks it) or ``closed`` (every member ended)."""

    CREATING = "creating"
    ACTIVE = "active"
    CLOSED = "closed"


def record_name(name: str) -> str:
    """The name of the firmware set that holds rollout ``name``'s record."""
    return ROLLOUT_RECORD_PREFIX + name


def check_name(name: str) -> str:
    """``name`` when it is a valid rollout name, else :class:`RolloutSpecError` naming it."""
    if not isinstance(name, str) or not ROLLOUT_NAME_PATTERN.match(name):
        raise RolloutSpecError(
            [f"rollout name {name!r} is not valid: 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"]
        )
    return name


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """``30s``, ``10m``, ``2h``, ``1d`` or a number of seconds into seconds; ``ValueError`` otherwise."""
    if isinstance(value, bool):
        raise ValueError("is not a duration (30s, 10m, 2h or seconds)")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip().lower())
        if match is None:
            raise ValueError("is not a duration (30s, 10m, 2h or seconds)")
        seconds = float(match[1]) * _UNITS[match[2] or "s"]
    if seconds < 0:
        raise ValueError("is negative")
    return seconds


def _percent(value: object) -> float:
    text = str(value).strip()
    if isinstance(value, bool):
        raise ValueError("is not a percentage")
    try:
        number = float(text.removesuffix("%"))
    except ValueError:
        raise ValueError("is not a percentage (5%)") from None
    if not 0 < number <= 100:
        raise ValueError("is not a percentage in (0, 100]")
    return number


def _at_least_one(value: int) -> int:
    if value < 1:
        raise ValueError("is less than 1")
    return value


def _priority(value: int) -> int:
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise ValueError(f"is outside {MIN_PRIORITY}..{MAX_PRIORITY}")
    return value


Positive = Annotated[StrictInt, AfterValidator(_at_least_one)]
Priority = Annotated[StrictInt, AfterValidator(_priority)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class CapSpec(_Model):
    """One cap as stored: ``group`` (a spec or a ``groups`` name) and ``max`` members at once per value."""

    group: StrictStr
    max: Positive

    def text(self) -> str:
        """``rack=2``."""
        return f"{self.group}={self.max}"


class Policy(_Model):
    """How a rollout moves: waves, soak, caps, breaker, windows, power. ``rollout plan``/``status`` explain it."""

    waves: list[StrictStr] = Field(default_factory=lambda: list(DEFAULT_WAVES))
    soak_seconds: float = Field(0.0, alias="soakSeconds", ge=0)
    max_active: Positive | None = Field(None, alias="maxActive")
    max_active_per: list[CapSpec] = Field(default_factory=list, alias="maxActivePer")
    max_reboots_per: list[CapSpec] = Field(default_factory=list, alias="maxRebootsPer")
    groups: dict[str, StrictStr] = Field(default_factory=dict)
    max_failures: Positive = Field(DEFAULT_MAX_FAILURES, alias="maxFailures")
    max_failure_rate: float | None = Field(None, alias="maxFailureRate", gt=0, le=100)
    min_ended: Positive = Field(DEFAULT_MIN_ENDED, alias="minEnded")
    windows: list[StrictStr] = Field(default_factory=list)
    windows_for: dict[str, list[StrictStr]] = Field(default_factory=dict, alias="windowsFor")
    power_off_required: StrictBool = Field(False, alias="powerOffRequired")

    @field_validator("waves")
    @classmethod
    def _waves(cls, value: list[str]) -> list[str]:
        try:
            parse_waves(value)
        except WaveError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("windows")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        try:
            parse_windows(value)
        except WindowError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("windows_for")
    @classmethod
    def _windows_for(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for facility, texts in value.items():
            if not facility:
                raise ValueError("has an empty facility")
            try:
                parse_windows(texts)
            except WindowError as exc:
                raise ValueError(f"facility {facility!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _caps(self) -> Policy:
        try:
            names = parse_group_names(self.groups)
            for cap in [*self.max_active_per, *self.max_reboots_per]:
                parse_cap(cap.text(), names)
        except GroupError as exc:
            raise ValueError(str(exc)) from None
        return self

    def compile(self) -> CompiledPolicy:
        """The policy with its texts parsed (they were checked on validation, so this does not raise)."""
        names = parse_group_names(self.groups)
        return CompiledPolicy(
            targets=parse_waves(self.waves),
            soak=timedelta(seconds=self.soak_seconds),
            max_active=self.max_active,
            caps=tuple(parse_cap(c.text(), names) for c in self.max_active_per),
            reboot_caps=tuple(parse_cap(c.text(), names) for c in self.max_reboots_per),
            max_failures=self.max_failures,
            max_failure_rate=self.max_failure_rate,
            min_ended=self.min_ended,
            windows=parse_windows(self.windows),
            windows_for={facility: parse_windows(texts) for facility, texts in self.windows_for.items()},
            power_off_required=self.power_off_required,
        )


@dataclass(frozen=True)
class CompiledPolicy:
    """A :class:`Policy` with its texts parsed: what :func:`flasher.rollout.policy.evaluate` works with."""

    targets: tuple[WaveTarget, ...]
    soak: timedelta
    max_active: int | None
    caps: tuple[Cap, ...]
    reboot_caps: tuple[Cap, ...]
    max_failures: int
    max_failure_rate: float | None
    min_ended: int
    windows: tuple[Window, ...]
    windows_for: Mapping[str, tuple[Window, ...]]
    power_off_required: bool

    def windows_of(self, facility: str) -> tuple[Window, ...]:
        """The windows that apply to a server in ``facility``: its own when given, else the rollout's."""
        return self.windows_for.get(facility, self.windows)

    def groups(self) -> tuple[GroupSpec, ...]:
        """Every group a cap reads, once each."""
        found: dict[str, GroupSpec] = {}
        for cap in (*self.caps, *self.reboot_caps):
            found.setdefault(cap.group.text, cap.group)
        return tuple(found.values())

    def budget(self) -> str:
        """The breaker in words: ``3 failures per firmware`` (``or 5% of at least 10 ended``)."""
        text = f"{self.max_failures} failure{'s' if self.max_failures != 1 else ''} per firmware"
        if self.max_failure_rate is not None:
            text += f" or {self.max_failure_rate:g}% of at least {self.min_ended} ended"
        return text


class Baseline(_Model):
    """What members install: ``firmwareSet`` (name or uuid), or none for ResolveFirmware (each server's set by
    its vendor and model labels); ``force`` as in the task attribute."""

    firmware_set: StrictStr | None = Field(None, alias="firmwareSet")
    force: StrictBool = False

    def describe(self) -> str:
        """``firmware set dell-r6515`` or ``the firmware set labelled with each server's vendor and model``."""
        what = (
            f"firmware set {self.firmware_set}"
            if self.firmware_set
            else "the firmware set labelled with each server's vendor and model"
        )
        return what + (" (force)" if self.force else "")


class ServerNote(_Model):
    """A server the rollout left out at create time, and why."""

    server: StrictStr
    name: StrictStr = ""
    reason: StrictStr


class RolloutRecord(_Model):
    """The record (module docstring). ``members`` is how many members create made; ``waveSizes`` their waves'
    sizes; ``skipped``/``refused`` the selected servers that are not members, with the reason."""

    version: StrictInt = RECORD_VERSION
    name: RolloutName
    state: RolloutState = RolloutState.RUNNING
    phase: RolloutPhase = RolloutPhase.ACTIVE
    generation: Positive = 1
    selectors: list[StrictStr] = Field(default_factory=list)
    baseline: Baseline = Field(default_factory=Baseline)
    policy: Policy = Field(default_factory=Policy)
    priority: Priority = 1
    requester: StrictStr = ""
    created_at: Timestamp | None = Field(None, alias="createdAt")
    updated_at: Timestamp | None = Field(None, alias="updatedAt")
    updated_by: StrictStr = Field("", alias="updatedBy")
    closed_at: Timestamp | None = Field(None, alias="closedAt")
    members: StrictInt = 0
    wave_sizes: list[StrictInt] = Field(default_factory=list, alias="waveSizes")
    skipped: list[ServerNote] = Field(default_factory=list)
    refused: list[ServerNote] = Field(default_factory=list)
    history: list[StrictStr] = Field(default_factory=list)

    def to_data(self) -> dict[str, Any]:
        """The attribute's data (camelCase keys, RFC 3339 times)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    @classmethod
    def from_data(cls, data: object) -> RolloutRecord:
        """Validate an attribute's data; raises :class:`RolloutSpecError` naming each bad field and value."""
        if not isinstance(data, Mapping):
            raise RolloutSpecError([f"the rollout record is not a JSON object (got {data!r:.80})"])
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise RolloutSpecError(problem_lines(exc)) from None

    def with_event(self, text: str, *, by: str, now: datetime, **changes: Any) -> RolloutRecord:
        """A copy with ``changes`` applied, ``updatedAt``/``updatedBy`` stamped and ``text`` added to the history."""
        line = f"{rfc3339(now)} {text}"
        update = {**changes, "updated_at": now, "updated_by": by, "history": [*self.history, line][-MAX_HISTORY:]}
        return self.model_copy(update=update)


def problem_lines(exc: ValidationError) -> list[str]:
    """One line per problem: ``field 'policy.maxActive': value 0 is less than 1``."""
    lines = []
    for item in exc.errors(include_url=False):
        field = ".".join(str(part) for part in item["loc"]) or "data"
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "missing":
            lines.append(f"field {field!r}: is missing")
        elif item["type"] == "extra_forbidden":
            lines.append(f"field {field!r}: is not a known field")
        else:
            shown = repr(item.get("input"))
            lines.append(f"field {field!r}: value {shown[:80]} {message}")
    return lines


# --------------------------------------------------------------------------------------------------------------
# The request


def _list(value: Any) -> Any:
    """A single value where a list is expected becomes a one-item list (``window: "..."`` in a YAML file)."""
    if value is None:
        return []
    if isinstance(value, str | int | float):
        return [value]
    return value


def _waves_value(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    if isinstance(value, list):
        return [str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v for v in value]
    return value


def _name_value_map(value: Any) -> Any:
    """``["ams1=Sat 22:00-...", ...]`` (the CLI form) or a mapping into a mapping of lists."""
    if isinstance(value, Mapping):
        return {k: _list(v) for k, v in value.items()}
    out: dict[str, list[Any]] = {}
    for item in _list(value):
        name, sep, text = str(item).partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not NAME=VALUE")
        out.setdefault(name.strip(), []).append(text.strip())
    return out


class RolloutSpec(_Model):
    """What an operator asks for, field for field the options of ``flasher rollout create`` (the keys of an
    ``apply`` file are the option names: ``max-active-per``, ``window-for``...).

    ``select``: selectors (:mod:`flasher.rollout.selectors`); ``firmware-set`` or ``resolve``; ``waves``
    (``2,10%,50%,100%``); ``soak`` (``10m``); ``max-active``; ``max-active-per``/``max-reboots-per``
    (``rack=2``); ``group`` (``rack=attr:sh.example.location~rack``); ``max-failures``; ``max-failure-rate``
    (``5%``) over at least ``min-ended`` ended; ``window`` and ``window-for`` (``FACILITY=window``);
    ``power-off-required``; ``priority``; ``requester``.
    """

    name: StrictStr
    select: Annotated[list[StrictStr], BeforeValidator(_list)] = Field(default_factory=list)
    firmware_set: StrictStr | None = Field(None, alias="firmware-set")
    resolve: StrictBool = False
    force: StrictBool = False
    waves: Annotated[list[StrictStr], BeforeValidator(_waves_value)] = Field(
        default_factory=lambda: list(DEFAULT_WAVES)
    )
    soak: Annotated[float, BeforeValidator(parse_duration)] = 0.0
    max_active: Positive | None = Field(None, alias="max-active")
    max_active_per: Annotated[list[StrictStr], BeforeValidator(_list)] = Field(
        default_factory=list, alias="max-active-per"
    )
    max_reboots_per: Annotated[list[StrictStr], BeforeValidator(_list)] = Field(
        default_factory=list, alias="max-reboots-per"
    )
    group: Annotated[dict[str, list[StrictStr]], BeforeValidator(_name_value_map)] = Field(default_factory=dict)
    max_failures: Positive = Field(DEFAULT_MAX_FAILURES, alias="max-failures")
    max_failure_rate: Annotated[float | None, BeforeValidator(lambda v: None if v is None else _percent(v))] = Field(
        None, alias="max-failure-rate"
    )
    min_ended: Positive = Field(DEFAULT_MIN_ENDED, alias="min-ended")
    window: Annotated[list[StrictStr], BeforeValidator(_list)] = Field(default_factory=list)
    window_for: Annotated[dict[str, list[StrictStr]], BeforeValidator(_name_value_map)] = Field(
        default_factory=dict, alias="window-for"
    )
    power_off_required: StrictBool = Field(False, alias="power-off-required")
    priority: Priority = 1
    requester: StrictStr | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ROLLOUT_NAME_PATTERN.match(value):
            raise ValueError("is not a rollout name (1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit)")
        return value

    @field_validator("select")
    @classmethod
    def _selectors(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("is empty: give at least one selector (all, facility=F, model=M, ...)")
        for text in value:
            try:
                parse_selector(text)
            except SelectorError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("waves")
    @classmethod
    def _waves(cls, value: list[str]) -> list[str]:
        try:
            parse_waves(value)
        except WaveError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("window")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        try:
            parse_windows(value)
        except WindowError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("window_for")
    @classmethod
    def _windows_for(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for facility, texts in value.items():
            try:
                parse_windows(texts)
            except WindowError as exc:
                raise ValueError(f"facility {facility!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_baseline(self) -> RolloutSpec:
        if bool(self.firmware_set) == self.resolve:
            raise ValueError(
                "give firmware-set (a set's name or uuid) or resolve (each server's labelled set), not both or neither"
            )
        return self

    def policy(self) -> Policy:
        """The record's :class:`Policy`; raises :class:`RolloutSpecError` for a cap, wave or window that is wrong."""
        groups = {}
        for name, specs in self.group.items():
            if len(specs) != 1:
                raise RolloutSpecError([f"field 'group': {name!r} is defined {len(specs)} times"])
            groups[name] = specs[0]
        try:
            return Policy(
                waves=self.waves,
                soak_seconds=self.soak,
                max_active=self.max_active,
                max_active_per=[_cap(text) for text in self.max_active_per],
                max_reboots_per=[_cap(text) for text in self.max_reboots_per],
                groups=groups,
                max_failures=self.max_failures,
                max_failure_rate=self.max_failure_rate,
                min_ended=self.min_ended,
                windows=self.window,
                windows_for=self.window_for,
                power_off_required=self.power_off_required,
            )
        except ValidationError as exc:
            raise RolloutSpecError(problem_lines(exc)) from None

    def baseline(self) -> Baseline:
        """The record's :class:`Baseline`."""
        return Baseline(firmware_set=self.firmware_set if not self.resolve else None, force=self.force)

    @classmethod
    def from_data(cls, data: object, *, where: str = "rollout") -> RolloutSpec:
        """Validate an ``apply`` file's mapping; raises :class:`RolloutSpecError` naming each bad field."""
        if not isinstance(data, Mapping):
            raise RolloutSpecError([f"{where}: expected a mapping of create's options, got {data!r:.80}"])
        try:
            spec = cls.model_validate(dict(data))
            spec.policy()
        except ValidationError as exc:
            raise RolloutSpecError([f"{where}: {line}" for line in problem_lines(exc)]) from None
        except RolloutSpecError as exc:
            raise RolloutSpecError([f"{where}: {line}" for line in exc.lines]) from None
        return spec


def _cap(text: str) -> CapSpec:
    group, sep, limit = text.rpartition("=")
    if not sep:
        raise RolloutSpecError([f"cap {text!r}: use GROUP=COUNT, e.g. rack=2"])
    try:
        return CapSpec(group=group.strip(), max=int(limit))
    except (ValueError, ValidationError):
        raise RolloutSpecError([f"cap {text!r}: the count {limit!r} is not a whole number of at least 1"]) from None
