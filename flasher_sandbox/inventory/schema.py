"""The inventory's tables (SQLAlchemy Core), shaped after the reference server's PostgreSQL schema.

Timestamps are integer microseconds since the epoch (UTC). JSON columns hold compact JSON text in ``jsonb``
key order (:func:`flasher_sandbox.inventory.gojson.store_text`). Constraint names that appear in the reference
server's error texts (``idx_attr_server_ns``, ``vendor_component_version_filename_unique``, ``idx_name``) are
kept, because clients may see them.

Indexes serve the list filters: ``attr=`` starts from ``(namespace, server_id)`` and, for equality on
``status``, from an index on ``json_extract(data, '$.status')``, so that listing the servers flagged with a
task touches the flagged servers' rows, not the fleet's.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)

metadata = MetaData()


def _timestamps() -> list[Column[int]]:
    return [Column("created_at", Integer, nullable=False), Column("updated_at", Integer, nullable=False)]


servers = Table(
    "servers",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=True),
    Column("facility_code", String, nullable=True),
    *_timestamps(),
    Column("deleted_at", Integer, nullable=True),
    Index("idx_servers_created_at", "created_at"),
    Index("idx_servers_facility_code", "facility_code", "created_at"),
)

server_component_types = Table(
    "server_component_types",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("slug", String, nullable=False, unique=True),
)

server_components = Table(
    "server_components",
    metadata,
    Column("id", String, primary_key=True),
    Column("server_id", String, ForeignKey("servers.id", ondelete="CASCADE"), nullable=False),
    Column("server_component_type_id", String, ForeignKey("server_component_types.id"), nullable=False),
    Column("name", String, nullable=True),
    Column("vendor", String, nullable=True),
    Column("model", String, nullable=True),
    Column("serial", String, nullable=True),
    *_timestamps(),
    Index("idx_server_components_server", "server_id", "created_at"),
    Index("idx_server_components_type", "server_component_type_id", "server_id"),
    Index("idx_server_components_created_at", "created_at"),
)

attributes = Table(
    "attributes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("server_id", String, ForeignKey("servers.id", ondelete="CASCADE"), nullable=True),
    Column("server_component_id", String, ForeignKey("server_components.id", ondelete="CASCADE"), nullable=True),
    Column("namespace", String, nullable=False),
    Column("data", Text, nullable=False),
    *_timestamps(),
    Index("idx_attr_server_ns", "server_id", "namespace", unique=True, sqlite_where=text("server_id IS NOT NULL")),
    Index(
        "idx_attr_component_ns",
        "server_component_id",
        "namespace",
        unique=True,
        sqlite_where=text("server_component_id IS NOT NULL"),
    ),
    Index("idx_attr_ns_server", "namespace", "server_id"),
    Index("idx_attr_ns_component", "namespace", "server_component_id"),
    Index("idx_attr_ns_status", "namespace", func.json_extract(text("data"), text("'$.status'"))),
)

versioned_attributes = Table(
    "versioned_attributes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("server_id", String, ForeignKey("servers.id", ondelete="CASCADE"), nullable=True),
    Column("server_component_id", String, ForeignKey("server_components.id", ondelete="CASCADE"), nullable=True),
    Column("namespace", String, nullable=False),
    Column("data", Text, nullable=False),
    Column("tally", Integer, nullable=False, server_default="0"),
    *_timestamps(),
    Index("idx_va_server_ns", "server_id", "namespace", "created_at"),
    Index("idx_va_component_ns", "server_component_id", "namespace", "created_at"),
    Index("idx_va_ns_server", "namespace", "server_id", "created_at"),
    Index("idx_va_ns_component", "namespace", "server_component_id", "created_at"),
)

#: Sandbox only (no reference server has it): every write of a server's attribute, in commit order, so tests can
#: tell exactly whose write replaced whose (``op``: ``create``, ``replace`` or ``delete``; ``data`` is the JSON
#: written, null for a delete; ``agent`` the request's ``User-Agent``). Read at ``GET /_sandbox/journal``.
attribute_journal = Table(
    "attribute_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("server_id", String, nullable=False),
    Column("namespace", String, nullable=False),
    Column("op", String, nullable=False),
    Column("data", Text, nullable=True),
    Column("agent", String, nullable=False, server_default=""),
    Column("at", Integer, nullable=False),
    Index("idx_journal_server_ns", "server_id", "namespace", "id"),
)

server_credential_types = Table(
    "server_credential_types",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("slug", String, nullable=False, unique=True),
    Column("builtin", Boolean, nullable=False, default=False),
    *_timestamps(),
)

server_credentials = Table(
    "server_credentials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("server_id", String, ForeignKey("servers.id", ondelete="CASCADE"), nullable=False),
    Column("server_credential_type_id", String, ForeignKey("server_credential_types.id"), nullable=False),
    Column("username", String, nullable=False),
    Column("password", String, nullable=False),
    *_timestamps(),
    UniqueConstraint("server_id", "server_credential_type_id", name="idx_server_credentials_server_type"),
)

component_firmware_version = Table(
    "component_firmware_version",
    metadata,
    Column("id", String, primary_key=True),
    Column("vendor", String, nullable=False),
    Column("model", Text, nullable=False),  # a JSON array of model names
    Column("filename", String, nullable=False),
    Column("version", String, nullable=False),
    Column("component", String, nullable=False),
    Column("checksum", String, nullable=False),
    Column("upstream_url", String, nullable=False),
    Column("repository_url", String, nullable=False),
    *_timestamps(),
    UniqueConstraint("vendor", "component", "version", "filename", name="vendor_component_version_filename_unique"),
)

component_firmware_set = Table(
    "component_firmware_set",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    *_timestamps(),
    UniqueConstraint("name", name="idx_name"),
)

component_firmware_set_map = Table(
    "component_firmware_set_map",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("firmware_set_id", String, ForeignKey("component_firmware_set.id", ondelete="CASCADE"), nullable=False),
    Column(
        "firmware_id",
        String,
        ForeignKey(
            "component_firmware_version.id",
            ondelete="RESTRICT",
            name="fk_firmware_id_ref_component_firmware_version",
        ),
        nullable=False,
    ),
    UniqueConstraint("firmware_set_id", "firmware_id"),
)

attributes_firmware_set = Table(
    "attributes_firmware_set",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("firmware_set_id", String, ForeignKey("component_firmware_set.id", ondelete="CASCADE"), nullable=False),
    Column("namespace", String, nullable=False),
    Column("data", Text, nullable=False),
    *_timestamps(),
    Index("idx_attr_fw_set_ns", "namespace", "firmware_set_id"),
    Index("idx_attr_fw_set_set", "firmware_set_id"),
)
