"""The reference server's request structs: JSON fields, Go names and ``binding`` tags (``pkg/api/v1``).

Field order matters: the validator reports failing fields in this order.
"""

from __future__ import annotations

from flasher_sandbox.inventory.binding import Field, Struct

SERVER = Struct(
    "Server",
    (
        Field("uuid", "UUID", "uuid"),
        Field("name", "Name", "string"),
        Field("facility", "FacilityCode", "string"),
    ),
)

ATTRIBUTES = Struct("Attributes", (Field("namespace", "Namespace", "string"), Field("data", "Data", "raw")))

VERSIONED_ATTRIBUTES = Struct(
    "VersionedAttributes",
    (
        Field("namespace", "Namespace", "string", ("required",)),
        Field("data", "Data", "raw", ("required",)),
        Field("tally", "Tally", "int"),
    ),
)

SERVER_COMPONENT = Struct(
    "ServerComponent",
    (
        Field("uuid", "UUID", "uuid"),
        Field("server_uuid", "ServerUUID", "uuid", ("required",)),
        Field("name", "Name", "string", ("required",)),
        Field("vendor", "Vendor", "string"),
        Field("model", "Model", "string"),
        Field("serial", "Serial", "string", ("required",)),
        Field("attributes", "Attributes", "structs", item=ATTRIBUTES),
        Field("versioned_attributes", "VersionedAttributes", "structs", item=VERSIONED_ATTRIBUTES),
        Field("component_type_id", "ComponentTypeID", "string", ("required",)),
        Field("component_type_name", "ComponentTypeName", "string", ("required",)),
        Field("component_type_slug", "ComponentTypeSlug", "string", ("required",)),
    ),
)

SERVER_COMPONENT_TYPE = Struct(
    "ServerComponentType",
    (Field("id", "ID", "string"), Field("name", "Name", "string"), Field("slug", "Slug", "string")),
)

FIRMWARE = Struct(
    "ComponentFirmwareVersion",
    (
        Field("uuid", "UUID", "uuid"),
        Field("vendor", "Vendor", "string", ("required", "lowercase")),
        Field("model", "Model", "strings", ("required",)),
        Field("filename", "Filename", "string", ("required",)),
        Field("version", "Version", "string", ("required",)),
        Field("component", "Component", "string", ("required", "lowercase")),
        Field("checksum", "Checksum", "string", ("required", "lowercase")),
        Field("upstream_url", "UpstreamURL", "string", ("required",)),
        Field("repository_url", "RepositoryURL", "string", ("required",)),
    ),
)

FIRMWARE_SET_REQUEST = Struct(
    "ComponentFirmwareSetRequest",
    (
        Field("name", "Name", "string"),
        Field("attributes", "Attributes", "structs", item=ATTRIBUTES),
        Field("component_firmware_uuids", "ComponentFirmwareUUIDs", "strings"),
        Field("uuid", "ID", "uuid"),
    ),
)

CREDENTIAL_VALUES = Struct(
    "serverCredentialValues", (Field("password", "Password", "string"), Field("username", "Username", "string"))
)

CREDENTIAL_TYPE = Struct("ServerCredentialType", (Field("name", "Name", "string"), Field("slug", "Slug", "string")))
