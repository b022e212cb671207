"""The Serverservice (inventory) client and its models.

``InventoryClient(settings.inventory)`` talks to Serverservice v1; its answers are the models below and its
failures :class:`InventoryError` subclasses. See ``serverservice-api.md`` for the API it speaks.
"""

from flasher.inventory.client import InventoryClient
from flasher.inventory.errors import (
    BadRequestError,
    ConflictError,
    InventoryError,
    MalformedResponseError,
    NotFoundError,
    UnauthorizedError,
    UnavailableError,
)
from flasher.inventory.filters import ComponentFilter, FilterError, attr_filter, check_attr_filter
from flasher.inventory.models import (
    Attributes,
    BMCCredentials,
    Component,
    ComponentType,
    FirmwareSet,
    FirmwareVersion,
    Server,
    VersionedAttributes,
)

__all__ = [
    "Attributes",
    "BMCCredentials",
    "BadRequestError",
    "Component",
    "ComponentFilter",
    "ComponentType",
    "ConflictError",
    "FilterError",
    "FirmwareSet",
    "FirmwareVersion",
    "InventoryClient",
    "InventoryError",
    "MalformedResponseError",
    "NotFoundError",
    "Server",
    "UnauthorizedError",
    "UnavailableError",
    "VersionedAttributes",
    "attr_filter",
    "check_attr_filter",
]
