"""What the BMC driver hands back (installed components, update capabilities, task handles and task progress) and
the one thing it is told about the server: which System is it (:class:`SystemIdentity`)."""

from __future__ import annotations

from dataclasses import dataclass

#: Install methods (:meth:`flasher.bmc.BMC.install`): Redfish SimpleUpdate (the BMC pulls ``ImageURI``), a
#: multipart POST to ``MultipartHttpPushUri``, a raw POST to ``HttpPushUri``.
INSTALL_METHODS: tuple[str, ...] = ("simple_update", "multipart", "http_push")

#: Redfish TaskState values that end a task (DSP0268, Task schema). Other values, including ones this list
#: does not know (e.g. a vendor's "Scheduled"), mean the task is still going.
TERMINAL_TASK_STATES: frozenset[str] = frozenset({"Completed", "Exception", "Killed", "Cancelled", "Interrupted"})


@dataclass(frozen=True)
class BMCComponent:
    """One installed firmware as the BMC reports it.

    ``id``: the FirmwareInventory member's ``Id`` (or ``Manager:<id>`` / ``System:<id>`` for a component read
    from the Manager's ``FirmwareVersion`` or the System's ``BiosVersion``); ``uri``: the member's URI (the
    Manager or System URI for those); ``slug``: the component type from
    :data:`flasher.constants.INSTALL_ORDER`, or ``unknown`` (see :mod:`flasher.bmc.inventory` for the rules);
    ``version``: as reported, ``None`` when the BMC gives none; ``software_id``: ``SoftwareId``;
    ``manufacturer``/``model``/``serial``: from the related item (``RelatedItem``) where there is one, else the
    member's ``Manufacturer``; ``related_uri``: the first ``RelatedItem``.
    """

    id: str
    uri: str
    slug: str
    name: str
    version: str | None
    updateable: bool
    software_id: str | None
    manufacturer: str | None
    model: str | None
    serial: str | None
    related_uri: str | None


@dataclass(frozen=True)
class UpdateCapabilities:
    """What a BMC's UpdateService offers.

    ``simple_update``: the ``#UpdateService.SimpleUpdate`` action exists; ``transfer_protocols``: its allowed
    ``TransferProtocol`` values (``()`` when the BMC does not say); ``multipart_push_uri`` /
    ``http_push_uri``: ``MultipartHttpPushUri`` / ``HttpPushUri``; ``apply_times``: the
    ``@Redfish.OperationApplyTime`` values the BMC advertises for any method (``()`` when it does not say).
    """

    simple_update: bool
    transfer_protocols: tuple[str, ...]
    multipart_push_uri: str | None
    http_push_uri: str | None
    apply_times: tuple[str, ...]

    @property
    def methods(self) -> tuple[str, ...]:
        """The install methods offered, in :data:`INSTALL_METHODS` order."""
        offered = {
            "simple_update": self.simple_update,
            "multipart": self.multipart_push_uri is not None,
            "http_push": self.http_push_uri is not None,
        }
        return tuple(m for m in INSTALL_METHODS if offered[m])


@dataclass(frozen=True)
class TaskHandle:
    """A BMC task to follow: ``uri`` of the Redfish Task (or of its task monitor when the BMC gave nothing
    else); ``method``: the install method that started it, or ``unknown`` for a task found on the BMC."""

    uri: str
    method: str


@dataclass(frozen=True)
class TaskProgress:
    """One reading of a task.

    ``state``: the Redfish TaskState as the BMC wrote it, or one of the driver's pseudo-states: ``Unknown`` (no
    or malformed TaskState), ``Offline`` (the BMC did not answer; :meth:`~flasher.bmc.BMC.wait_for_task`
    only), ``Vanished`` (the BMC no longer knows the task, typically after rebooting itself: confirm by reading
    the version back). ``percent``: 0..100 or ``None``; ``health``: ``TaskStatus``; ``messages``: the task's
    messages; ``terminal``: the task has ended; ``succeeded``: it ended without failure (still confirm the
    version); ``awaiting_reset``: the BMC applies the update only when the host is reset.
    """

    state: str
    percent: int | None
    health: str | None
    messages: tuple[str, ...]
    terminal: bool
    succeeded: bool
    awaiting_reset: bool


def _uuid_key(value: str) -> str:
    """A UUID as compared: lower case, without braces, hyphens or a ``urn:uuid:`` prefix."""
    return value.strip().lower().removeprefix("urn:uuid:").strip("{}").replace("-", "")


@dataclass(frozen=True)
class SystemIdentity:
    """How to recognise the server among a BMC's Systems: its ``serial`` (the System's ``SerialNumber``) and its
    ``uuid`` (the System's ``UUID``; compared ignoring case, braces and hyphens), as the inventory knows them.
    Either may be ``None``. A BMC with one System needs neither."""

    serial: str | None = None
    uuid: str | None = None

    @property
    def known(self) -> bool:
        """True when there is a serial or a UUID to look for."""
        return bool((self.serial or "").strip() or (self.uuid or "").strip())

    def matches_uuid(self, value: object) -> bool:
        """True when ``value`` (a System's ``UUID``) is this identity's UUID."""
        return (
            bool(self.uuid and self.uuid.strip())
            and isinstance(value, str)
            and (_uuid_key(value) == _uuid_key(self.uuid or ""))
        )

    def matches_serial(self, value: object) -> bool:
        """True when ``value`` (a System's ``SerialNumber``) is this identity's serial (case-insensitive)."""
        return (
            bool(self.serial and self.serial.strip())
            and isinstance(value, str)
            and (value.strip().lower() == (self.serial or "").strip().lower())
        )

    def describe(self) -> str:
        """``serial 'SN1' or UUID '...'``, or ``no serial or UUID`` when nothing is known."""
        parts = [f"{what} {value.strip()!r}" for what, value in (("serial", self.serial), ("UUID", self.uuid)) if value]
        return " or ".join(parts) or "no serial or UUID"
