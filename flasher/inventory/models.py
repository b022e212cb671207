"""Serverservice v1 objects as flasher reads and writes them (pydantic v2).

Shapes follow the reference server (``serverservice-api.md``, "Objects"): keys are snake_case, ids are UUID
strings, timestamps RFC 3339. Two quirks of the server are absorbed here:

- empty arrays inside objects come back as JSON ``null``; every list field reads ``null`` as ``[]``;
- keys this client does not know are ignored, so a newer server does not break an older flasher.

An attribute's ``data`` is whatever JSON the writer stored: an object as a rule, but the server takes any value
(``["oops"]``, ``"x"``, ``5``, ``null``), and one such record must not make a listing of a thousand servers
unreadable. So ``data`` is typed :data:`JSONValue` and kept as stored (``null`` stays ``None``: read as ``{}`` a
``null`` task attribute would be a new request); :meth:`Attributes.as_object` gives the keys of an object, or none.

Fields the server always sends (a server's ``uuid``, an attribute's ``namespace``) are required; an answer
without them fails validation, which :mod:`flasher.inventory.client` reports as
:class:`~flasher.inventory.errors.MalformedResponseError`. Models used to build requests too
(:class:`FirmwareVersion`, :class:`FirmwareSet`) leave ``uuid`` optional; the client still requires it in answers
(validation context ``{"answer": True}``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeAlias, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from flasher.constants import (
    BMC_INFO_NAMESPACE,
    FIRMWARE_SET_LABELS_NAMESPACE,
    OUTOFBAND_STATUS_NAMESPACE,
    SERVER_VENDOR_NAMESPACE,
)

#: Validation context under which the client parses the server's answers (see :class:`InventoryModel`).
ANSWER_CONTEXT: dict[str, Any] = {"answer": True}

#: Any JSON value, checked at its top level only (an attribute's ``data`` can nest deeper than pydantic would
#: validate; what is inside is for the attribute's reader to judge).
JSONValue: TypeAlias = dict[str, Any] | list[Any] | str | bool | int | float | None


def _object(data: JSONValue) -> dict[str, Any]:
    return data if isinstance(data, dict) else {}


class InventoryModel(BaseModel):
    """Base of every inventory object: unknown keys ignored, ``null`` lists read as ``[]``.

    ``_required_in_answer`` names fields that are optional when flasher builds a request but that an answer
    from the server must carry; they are checked when validating with ``context=ANSWER_CONTEXT``.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    _required_in_answer: ClassVar[tuple[str, ...]] = ()

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None or info.field_name is None:
            return value
        origin = get_origin(cls.model_fields[info.field_name].annotation)
        if origin is list:
            return []
        if origin is dict:
            return {}
        return value

    @model_validator(mode="after")
    def _answer_complete(self, info: ValidationInfo) -> InventoryModel:
        if info.context and info.context.get("answer"):
            missing = [name for name in self._required_in_answer if getattr(self, name) in (None, "")]
            if missing:
                raise ValueError(f"the server's answer lacks {', '.join(missing)}")
        return self


class Attributes(InventoryModel):
    """A namespaced JSON object on a server, component or firmware set.

    ``data`` is as stored: a JSON object as a rule, any JSON value in a bad record (see the module docstring).
    The server does not move ``updated_at`` when ``data`` is replaced (PUT), so freshness lives inside ``data``.
    """

    namespace: str
    data: JSONValue = Field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def as_object(self) -> dict[str, Any]:
        """``data`` when it is a JSON object, else ``{}`` (for readers of keys; task parsers take ``data``)."""
        return _object(self.data)


class VersionedAttributes(InventoryModel):
    """One version of a namespaced JSON object; posting identical ``data`` again bumps ``tally``."""

    namespace: str
    data: JSONValue = Field(default_factory=dict)
    tally: int = 0
    last_reported_at: datetime | None = None
    created_at: datetime | None = None

    def as_object(self) -> dict[str, Any]:
        """``data`` when it is a JSON object, else ``{}``."""
        return _object(self.data)


def _newest(items: list[VersionedAttributes], namespace: str) -> VersionedAttributes | None:
    """The newest of ``items`` in ``namespace`` (by ``created_at``; the server's order breaks ties)."""
    matching = [(index, item) for index, item in enumerate(items) if item.namespace == namespace]
    if not matching:
        return None
    # Lists are newest first on the server; an item without a timestamp keeps its position.
    return max(
        matching,
        key=lambda pair: (pair[1].created_at.timestamp() if pair[1].created_at else float("-inf"), -pair[0]),
    )[1]


class Component(InventoryModel):
    """A server component (BMC, BIOS, NIC, drive, ...). ``component_type_slug`` is its type: ``bmc``, ``bios``."""

    uuid: str
    server_uuid: str = ""
    name: str = ""
    vendor: str = ""
    model: str = ""
    serial: str = ""
    attributes: list[Attributes] = Field(default_factory=list)
    versioned_attributes: list[VersionedAttributes] = Field(default_factory=list)
    component_type_id: str = ""
    component_type_name: str = ""
    component_type_slug: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def versioned_attribute(self, namespace: str) -> VersionedAttributes | None:
        """The newest versioned attribute in ``namespace``, or ``None``."""
        return _newest(self.versioned_attributes, namespace)

    def installed_firmware(self, namespace: str = OUTOFBAND_STATUS_NAMESPACE) -> str | None:
        """The installed firmware version: ``data.firmware.installed`` of the newest versioned attribute in
        ``namespace`` (out-of-band status by default; ``INBAND_STATUS_NAMESPACE`` for in-band). ``None`` when
        unknown (no such attribute, no such key, or an empty or non-string value)."""
        newest = self.versioned_attribute(namespace)
        if newest is None:
            return None
        firmware = newest.as_object().get("firmware")
        installed = firmware.get("installed") if isinstance(firmware, dict) else None
        return installed if isinstance(installed, str) and installed else None


class Server(InventoryModel):
    """A server with its attributes (and, where the server includes them, components and versioned attributes)."""

    uuid: str
    name: str = ""
    facility: str = ""
    attributes: list[Attributes] = Field(default_factory=list)
    versioned_attributes: list[VersionedAttributes] = Field(default_factory=list)
    components: list[Component] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None

    @field_validator("deleted_at", mode="after")
    @classmethod
    def _zero_time_is_none(cls, value: datetime | None) -> datetime | None:
        # Go's zero time.Time ("0001-01-01T00:00:00Z") survives omitempty: it means "not deleted".
        return None if value is not None and value.year == 1 else value

    def attribute(self, namespace: str) -> Attributes | None:
        """The attribute in ``namespace``, or ``None`` (a server has at most one per namespace)."""
        return next((a for a in self.attributes if a.namespace == namespace), None)

    def _vendor_field(self, key: str) -> str | None:
        attr = self.attribute(SERVER_VENDOR_NAMESPACE)
        value = attr.as_object().get(key) if attr is not None else None
        return value if isinstance(value, str) and value else None

    @property
    def vendor(self) -> str | None:
        """``data.vendor`` of ``sh.hollow.alloy.server_vendor_attributes`` (e.g. ``dell``), or ``None``."""
        return self._vendor_field("vendor")

    @property
    def model(self) -> str | None:
        """``data.model`` of ``sh.hollow.alloy.server_vendor_attributes`` (e.g. ``r6515``), or ``None``."""
        return self._vendor_field("model")

    @property
    def serial(self) -> str | None:
        """``data.serial`` of ``sh.hollow.alloy.server_vendor_attributes``, or ``None``."""
        return self._vendor_field("serial")

    @property
    def bmc_address(self) -> str | None:
        """``data.address`` of ``sh.hollow.bmc_info`` (host, IP or URL of the BMC), or ``None``."""
        attr = self.attribute(BMC_INFO_NAMESPACE)
        value = attr.as_object().get("address") if attr is not None else None
        return value if isinstance(value, str) and value else None


class ComponentType(InventoryModel):
    """A component type: ``id`` (UUID), ``name`` (``BMC``), ``slug`` (``bmc``)."""

    id: str
    name: str = ""
    slug: str


class FirmwareVersion(InventoryModel):
    """A firmware image the inventory knows: ``vendor``, ``component`` and ``checksum`` are lowercase on the
    server; ``model`` is a list of the models the image fits. ``repository_url`` is where flasher downloads it."""

    _required_in_answer: ClassVar[tuple[str, ...]] = ("uuid",)

    uuid: str | None = None
    vendor: str
    model: list[str] = Field(default_factory=list)
    filename: str = ""
    version: str
    component: str
    checksum: str = ""
    upstream_url: str = ""
    repository_url: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class FirmwareSet(InventoryModel):
    """A named set of firmware versions; its labels (``sh.hollow.firmware_set.labels``) say which servers it
    fits, e.g. ``{"vendor": "dell", "model": "r6515"}``."""

    _required_in_answer: ClassVar[tuple[str, ...]] = ("uuid",)

    uuid: str | None = None
    name: str
    attributes: list[Attributes] = Field(default_factory=list)
    component_firmware: list[FirmwareVersion] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def labels(self) -> dict[str, str]:
        """The set's labels (string values only; others are not labels)."""
        attr = next((a for a in self.attributes if a.namespace == FIRMWARE_SET_LABELS_NAMESPACE), None)
        if attr is None:
            return {}
        return {key: value for key, value in attr.as_object().items() if isinstance(value, str)}


class BMCCredentials(InventoryModel):
    """A server's BMC credentials (``GET /servers/{uuid}/credentials/bmc``). ``password`` prints as ``**********``."""

    username: str
    password: SecretStr
