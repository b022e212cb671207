"""The Serverservice (inventory) client: servers, attributes, components, firmware, firmware sets, credentials.

One method per operation flasher needs, each returning models of :mod:`flasher.inventory.models` and raising
:class:`~flasher.inventory.errors.InventoryError` subclasses (see :mod:`flasher.inventory.errors`). Endpoints
and shapes: ``serverservice-api.md``. Retries, timeouts, TLS and auth: :mod:`flasher.inventory.transport`.

Idempotency: reads, ``PUT`` and ``DELETE`` are retried on every transient failure; ``POST`` (create) only when the
server cannot have applied it. :meth:`InventoryClient.upsert_attribute` is the write that is safe to retry fully:
a ``POST`` whose first try did land answers duplicate key on the retry, and the upsert then replaces with ``PUT``.

A method given a malformed argument (a server id that is not a UUID, a bad filter) raises ``ValueError``
naming the argument and the value, before any request.
"""

from __future__ import annotations

import copy
import json
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import requests
from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from flasher import redact
from flasher.config import InventorySettings
from flasher.constants import BMC_CREDENTIAL_SLUG, FIRMWARE_SET_LABELS_NAMESPACE, OUTOFBAND_STATUS_NAMESPACE
from flasher.inventory.auth import InventoryAuth
from flasher.inventory.errors import ConflictError, InventoryError, MalformedResponseError, NotFoundError
from flasher.inventory.filters import ComponentFilter, FilterError, attr_filter, check_attr_filter, server_query
from flasher.inventory.models import (
    ANSWER_CONTEXT,
    Attributes,
    BMCCredentials,
    Component,
    ComponentType,
    FirmwareSet,
    FirmwareVersion,
    InventoryModel,
    Server,
    VersionedAttributes,
)
from flasher.inventory.transport import RetryPolicy, Transport, segment

M = TypeVar("M", bound=InventoryModel)

# Call names: the endpoint templates used in errors, logs and the metric's ``call`` label.
LIST_SERVERS = "GET /servers"
GET_SERVER = "GET /servers/{uuid}"
CREATE_SERVER = "POST /servers"
LIST_ATTRIBUTES = "GET /servers/{uuid}/attributes"
GET_ATTRIBUTE = "GET /servers/{uuid}/attributes/{namespace}"
CREATE_ATTRIBUTE = "POST /servers/{uuid}/attributes"
REPLACE_ATTRIBUTE = "PUT /servers/{uuid}/attributes/{namespace}"
DELETE_ATTRIBUTE = "DELETE /servers/{uuid}/attributes/{namespace}"
LIST_VERSIONED = "GET /servers/{uuid}/versioned-attributes"
CREATE_VERSIONED = "POST /servers/{uuid}/versioned-attributes"
LIST_COMPONENTS = "GET /servers/{uuid}/components"
CREATE_COMPONENTS = "POST /servers/{uuid}/components"
UPDATE_COMPONENTS = "PUT /servers/{uuid}/components"
LIST_COMPONENT_TYPES = "GET /server-component-types"
CREATE_COMPONENT_TYPE = "POST /server-component-types"
LIST_FIRMWARE = "GET /server-component-firmwares"
GET_FIRMWARE = "GET /server-component-firmwares/{uuid}"
CREATE_FIRMWARE = "POST /server-component-firmwares"
LIST_FIRMWARE_SETS = "GET /server-component-firmware-sets"
GET_FIRMWARE_SET = "GET /server-component-firmware-sets/{uuid}"
CREATE_FIRMWARE_SET = "POST /server-component-firmware-sets"
UPDATE_FIRMWARE_SET = "PUT /server-component-firmware-sets/{uuid}"
GET_CREDENTIALS = "GET /servers/{uuid}/credentials/{slug}"
SET_CREDENTIALS = "PUT /servers/{uuid}/credentials/{slug}"
DELETE_COMPONENTS = "DELETE /servers/{uuid}/components"

# Component fields the server stores on PUT; it overwrites each of them, so an update must carry them all.
_COMPONENT_FIELDS = (
    "uuid",
    "server_uuid",
    "name",
    "vendor",
    "model",
    "serial",
    "component_type_id",
    "component_type_name",
    "component_type_slug",
)


def _check_uuid(value: str, what: str) -> str:
    """``value`` in canonical form; ``ValueError`` naming ``what`` when it is not a UUID."""
    try:
        return str(uuidlib.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{what} {value!r} is not a UUID") from None


def _is_uuid(value: str) -> bool:
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True


def _check_namespace(namespace: str) -> str:
    if not namespace or not namespace.strip() or "/" in namespace:
        raise ValueError(f"attribute namespace {namespace!r} is empty or contains '/'")
    return namespace


def _json_object(data: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``data`` as a JSON-ready dict (datetimes, enums and models converted); ``TypeError`` otherwise.

    Data nested deeper than pydantic converts (254 levels) is sent as it is when it is plain JSON already: an
    operator's attribute that deep is written back ``failed`` with everything it had, not refused every poll.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"{what} must be a JSON object (a mapping), not {type(data).__name__}")
    try:
        converted = to_jsonable_python(dict(data))
    except ValueError:  # "Maximum serialization depth exceeded"
        json.dumps(data)  # TypeError (not JSON) or RecursionError (deeper than Python's JSON can go) propagate
        converted = dict(data)
    assert isinstance(converted, dict)
    return converted


def _component_body(component: Component | Mapping[str, Any], server_uuid: str) -> dict[str, Any]:
    """One item of a components request: the stored fields, plus ``attributes`` and ``versioned_attributes``
    as ``{namespace, data}`` (the server adds every versioned attribute it is given)."""
    if isinstance(component, Component):
        item: dict[str, Any] = {name: getattr(component, name) for name in _COMPONENT_FIELDS}
        item["attributes"] = [{"namespace": a.namespace, "data": a.data} for a in component.attributes]
        item["versioned_attributes"] = [
            {"namespace": v.namespace, "data": v.data} for v in component.versioned_attributes
        ]
    else:
        item = _json_object(component, "a component")
    if not item.get("server_uuid"):
        item["server_uuid"] = server_uuid
    return to_jsonable_python(item)  # type: ignore[no-any-return]


class InventoryClient:
    """A Serverservice v1 client configured from :class:`~flasher.config.InventorySettings`.

    ``session`` is the ``requests.Session`` to send with (default: a new one); ``auth`` overrides the auth mode
    of ``settings``; ``sleep`` and ``clock`` are for tests of the retry bounds. Safe to share between threads.
    """

    def __init__(
        self,
        settings: InventorySettings,
        session: requests.Session | None = None,
        *,
        auth: InventoryAuth | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.transport = Transport(settings, session, auth=auth, sleep=sleep, clock=clock)

    # -- parsing ----------------------------------------------------------------------------------------------

    def _parse(self, call: str, target: str, model: type[M], data: Any) -> M:
        try:
            return model.model_validate(data, context=ANSWER_CONTEXT)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or model.__name__}: {e['msg']}" for e in exc.errors()[:3]
            )
            reason = f"the answer is not a valid {model.__name__}: {problems}"
            raise self.transport.count(MalformedResponseError(call, reason, target=target)) from None

    def _record(self, call: str, target: str, model: type[M], body: Mapping[str, Any]) -> M:
        record = body.get("record")
        if not isinstance(record, dict):
            raise self.transport.count(MalformedResponseError(call, "the answer has no record object", target=target))
        return self._parse(call, target, model, record)

    def _list(
        self,
        call: str,
        path: str,
        model: type[M],
        params: Sequence[tuple[str, str | int]] = (),
        key: str | None = "uuid",
    ) -> Iterator[M]:
        """Parse every record of a paged list; ``key`` names the field that identifies a record (``None``: no
        de-duplication, for versioned attributes)."""
        identity = (lambda record: record.get(key)) if key else None
        for record in self.transport.pages(call, path, params, key=identity):
            yield self._parse(call, path, model, record)

    def _slug(self, call: str, target: str, body: Mapping[str, Any], required: bool = True) -> str:
        slug = body.get("slug")
        if isinstance(slug, str) and slug:
            return slug
        if required:
            raise self.transport.count(MalformedResponseError(call, "the created answer has no slug", target=target))
        return ""

    # -- servers ----------------------------------------------------------------------------------------------

    def iter_servers(
        self,
        attr: Sequence[str] = (),
        ver_attr: Sequence[str] = (),
        facility: str | None = None,
        components: Sequence[ComponentFilter] = (),
        include_deleted: bool = False,
    ) -> Iterator[Server]:
        """Servers matching every filter, page by page (``inventory.page_size`` per request), each once.

        ``attr``/``ver_attr``: filters ``namespace~key.path~op~value`` (see :mod:`flasher.inventory.filters`);
        ``facility``: ``facility-code`` (default ``inventory.facility``; all facilities when both are unset);
        ``components``: servers with a component matching each filter; ``include_deleted``: soft-deleted too.
        Raises ``ValueError`` (:class:`~flasher.inventory.filters.FilterError`) for a bad filter, before any request.
        """
        params = server_query(attr, ver_attr, facility or self.settings.facility, components, include_deleted)
        yield from self._list(LIST_SERVERS, "/servers", Server, params)

    def list_servers(
        self,
        attr: Sequence[str] = (),
        ver_attr: Sequence[str] = (),
        facility: str | None = None,
        components: Sequence[ComponentFilter] = (),
        include_deleted: bool = False,
    ) -> list[Server]:
        """Every server matching the filters, all pages (see :meth:`iter_servers`)."""
        return list(self.iter_servers(attr, ver_attr, facility, components, include_deleted))

    def create_server(self, name: str, facility: str | None = None, uuid: str | None = None) -> str:
        """Create a server named ``name`` in ``facility`` (default ``inventory.facility``), with ``uuid`` when
        given (else the server picks one); returns its uuid. For the sandbox, tests and tooling: flasher itself
        never creates servers."""
        body: dict[str, Any] = {"name": name, "facility": facility or self.settings.facility or ""}
        if uuid is not None:
            body["uuid"] = _check_uuid(uuid, "server uuid")
        answer = self.transport.request(CREATE_SERVER, "POST", "/servers", json=body, retry="unsent")
        return self._slug(CREATE_SERVER, "/servers", answer)

    def get_server(self, uuid: str) -> Server:
        """The server ``uuid`` with its attributes. Raises :class:`NotFoundError` when it does not exist."""
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}"
        return self._record(GET_SERVER, path, Server, self.transport.request(GET_SERVER, "GET", path))

    # -- attributes -------------------------------------------------------------------------------------------

    def list_attributes(self, uuid: str) -> list[Attributes]:
        """Every attribute of server ``uuid``."""
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/attributes"
        return list(self._list(LIST_ATTRIBUTES, path, Attributes, key="namespace"))

    def get_attribute(self, uuid: str, namespace: str) -> Attributes:
        """Server ``uuid``'s attribute ``namespace``. Raises :class:`NotFoundError` when either is missing."""
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/attributes/{segment(_check_namespace(namespace))}"
        return self._record(GET_ATTRIBUTE, path, Attributes, self.transport.request(GET_ATTRIBUTE, "GET", path))

    def create_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any]) -> str:
        """Create attribute ``namespace`` with ``data`` on server ``uuid``; returns the slug (the namespace).

        Raises :class:`ConflictError` when the server already has the namespace (the server answers 400
        duplicate key), :class:`NotFoundError` when the server does not exist.
        """
        return self._create_attribute(uuid, namespace, data, retry_all=False)

    def _create_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any], *, retry_all: bool) -> str:
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/attributes"
        body = {"namespace": _check_namespace(namespace), "data": _json_object(data, "attribute data")}
        answer = self.transport.request(
            CREATE_ATTRIBUTE,
            "POST",
            path,
            json=body,
            retry="all" if retry_all else "unsent",
            expected=(ConflictError,) if retry_all else (),
        )
        return self._slug(CREATE_ATTRIBUTE, path, answer, required=False) or namespace

    def replace_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any], *, once: bool = False) -> None:
        """Replace the ``data`` of server ``uuid``'s attribute ``namespace`` (``PUT {"data": ...}``).

        The server does not move the attribute's ``updated_at`` (it moves the server's): keep freshness inside
        ``data``. ``once``: send it once, never again on a transient failure (a write made right after re-reading
        the attribute: a resend would land later, over whatever an operator wrote meanwhile; the caller re-reads
        and tries again). Raises :class:`NotFoundError` when the attribute does not exist.
        """
        self._replace_attribute(uuid, namespace, data, retry="none" if once else "all")

    def _replace_attribute(
        self,
        uuid: str,
        namespace: str,
        data: Mapping[str, Any],
        expected: tuple[type[InventoryError], ...] = (),
        retry: RetryPolicy = "all",
    ) -> None:
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/attributes/{segment(_check_namespace(namespace))}"
        body = {"data": _json_object(data, "attribute data")}
        self.transport.request(REPLACE_ATTRIBUTE, "PUT", path, json=body, expected=expected, retry=retry)

    def delete_attribute(self, uuid: str, namespace: str) -> None:
        """Delete server ``uuid``'s attribute ``namespace``. Raises :class:`NotFoundError` when it is not there."""
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/attributes/{segment(_check_namespace(namespace))}"
        self.transport.request(DELETE_ATTRIBUTE, "DELETE", path)

    def upsert_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any]) -> None:
        """Create or replace server ``uuid``'s attribute ``namespace`` with ``data``.

        ``PUT`` first (the attribute usually exists: one request, and a token with only update scopes works);
        when there is no such attribute ``POST``; when that meets duplicate key (created meanwhile, or a retried
        ``POST`` whose first try had landed) ``PUT`` once more. Every step is retried on transient failures,
        which is safe for this sequence. Raises :class:`NotFoundError` when the server does not exist.
        """
        try:
            self._replace_attribute(uuid, namespace, data, expected=(NotFoundError,))
            return
        except NotFoundError:
            pass
        try:
            self._create_attribute(uuid, namespace, data, retry_all=True)
            return
        except ConflictError:
            pass
        self._replace_attribute(uuid, namespace, data)

    # -- versioned attributes ---------------------------------------------------------------------------------

    def list_versioned_attributes(self, uuid: str) -> list[VersionedAttributes]:
        """Server ``uuid``'s versioned attributes (the server lists them newest first)."""
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/versioned-attributes"
        return list(self._list(LIST_VERSIONED, path, VersionedAttributes, key=None))

    def create_versioned_attribute(self, uuid: str, namespace: str, data: Mapping[str, Any]) -> str:
        """Add a version of ``namespace`` to server ``uuid`` (identical ``data`` bumps the newest one's
        ``tally``); returns the slug the server gives, or ``""``."""
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/versioned-attributes"
        body = {"namespace": _check_namespace(namespace), "data": _json_object(data, "versioned attribute data")}
        answer = self.transport.request(CREATE_VERSIONED, "POST", path, json=body, retry="unsent")
        return self._slug(CREATE_VERSIONED, path, answer, required=False)

    # -- components -------------------------------------------------------------------------------------------

    def list_components(self, uuid: str) -> list[Component]:
        """Server ``uuid``'s components, each with the newest versioned attribute of every namespace."""
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/components"
        return list(self._list(LIST_COMPONENTS, path, Component))

    def create_components(self, uuid: str, components: Sequence[Component | Mapping[str, Any]]) -> None:
        """Add components to server ``uuid`` (``POST``, a JSON array). Each needs ``uuid``,
        ``component_type_id``, ``component_type_name`` and ``component_type_slug``; ``server_uuid`` defaults
        to ``uuid``. Raises :class:`BadRequestError` with the server's validation text otherwise."""
        server = _check_uuid(uuid, "server uuid")
        path = f"/servers/{server}/components"
        body = [_component_body(c, server) for c in components]
        self.transport.request(CREATE_COMPONENTS, "POST", path, json=body, retry="unsent")

    def update_components(self, uuid: str, components: Sequence[Component | Mapping[str, Any]]) -> None:
        """Update server ``uuid``'s components by their ``uuid`` (``PUT``, a JSON array).

        The server overwrites every stored field (name, vendor, model, serial, type) with what it is given, so
        send whole components, and ADDS every item of ``versioned_attributes``: give only the new versions
        (:meth:`set_installed_firmware` does this for a firmware version).
        """
        server = _check_uuid(uuid, "server uuid")
        path = f"/servers/{server}/components"
        body = [_component_body(c, server) for c in components]
        self.transport.request(UPDATE_COMPONENTS, "PUT", path, json=body)

    def delete_components(self, uuid: str) -> None:
        """Delete EVERY component of server ``uuid`` (``DELETE``; the reference API has no per-component delete),
        their attributes and versioned attributes with them. Callers that remove one component re-create the
        others (:mod:`flasher.onboard.write`)."""
        server = _check_uuid(uuid, "server uuid")
        self.transport.request(DELETE_COMPONENTS, "DELETE", f"/servers/{server}/components")

    def set_installed_firmware(self, server_uuid: str, component: Component, version: str) -> None:
        """Record that ``component`` of ``server_uuid`` now runs firmware ``version``: a new versioned attribute
        ``sh.hollow.alloy.outofband.status`` whose ``data.firmware.installed`` is ``version`` (other keys of the
        newest one are kept), added through :meth:`update_components`."""
        self.set_installed_firmwares(server_uuid, [(component, version)])

    def set_installed_firmwares(self, server_uuid: str, installed: Sequence[tuple[Component, str]]) -> None:
        """:meth:`set_installed_firmware` for several components of ``server_uuid`` in one request (one ``PUT``
        of the components; nothing is sent for an empty list). ``ValueError`` names an empty version or a
        component without its uuid or type id, before anything is sent."""
        updates = []
        for component, version in installed:
            if not isinstance(version, str) or not version.strip():
                raise ValueError(f"firmware version {version!r} is empty")
            _check_uuid(component.uuid, "component uuid")
            if not component.component_type_id:
                raise ValueError(f"component {component.uuid}: component_type_id is empty (read it from the inventory)")
            newest = component.versioned_attribute(OUTOFBAND_STATUS_NAMESPACE)
            data: dict[str, Any] = copy.deepcopy(newest.as_object()) if newest is not None else {}
            firmware = data.get("firmware")
            data["firmware"] = {**(firmware if isinstance(firmware, dict) else {}), "installed": version}
            updates.append(
                component.model_copy(
                    update={
                        "versioned_attributes": [VersionedAttributes(namespace=OUTOFBAND_STATUS_NAMESPACE, data=data)]
                    }
                )
            )
        if updates:
            self.update_components(server_uuid, updates)

    # -- component types --------------------------------------------------------------------------------------

    def list_component_types(self) -> list[ComponentType]:
        """Every component type (``bmc``, ``bios``, ...)."""
        return list(self._list(LIST_COMPONENT_TYPES, "/server-component-types", ComponentType, key="id"))

    def create_component_type(self, name: str, slug: str) -> str:
        """Create a component type (``name`` ``"BMC"``, ``slug`` ``"bmc"``); returns the slug."""
        if not name or not slug:
            raise ValueError(f"component type needs a name and a slug, got {name!r} and {slug!r}")
        path = "/server-component-types"
        answer = self.transport.request(
            CREATE_COMPONENT_TYPE, "POST", path, json={"name": name, "slug": slug}, retry="unsent"
        )
        return self._slug(CREATE_COMPONENT_TYPE, path, answer)

    # -- firmware ---------------------------------------------------------------------------------------------

    def list_firmware(
        self,
        vendor: str | None = None,
        model: str | Sequence[str] | None = None,
        version: str | None = None,
        component: str | None = None,
        *,
        filename: str | None = None,
        checksum: str | None = None,
    ) -> list[FirmwareVersion]:
        """Firmware versions matching every filter given. ``model`` (one or several) matches images whose model
        list contains it; ``vendor``, ``component`` and ``checksum`` are compared lowercase (as stored).
        ``component`` is filtered here: the server has no such filter."""
        params: list[tuple[str, str | int]] = []
        if vendor:
            params.append(("vendor", vendor.lower()))
        models = [model] if isinstance(model, str) else list(model or ())
        params += [("model", m) for m in models if m]
        if version:
            params.append(("version", version))
        if filename:
            params.append(("filename", filename))
        if checksum:
            params.append(("checksum", checksum.lower()))
        found = self._list(LIST_FIRMWARE, "/server-component-firmwares", FirmwareVersion, params)
        wanted = component.lower() if component else None
        return [fw for fw in found if wanted is None or fw.component.lower() == wanted]

    def get_firmware(self, uuid: str) -> FirmwareVersion:
        """Firmware version ``uuid``. Raises :class:`NotFoundError`."""
        path = f"/server-component-firmwares/{_check_uuid(uuid, 'firmware uuid')}"
        return self._record(GET_FIRMWARE, path, FirmwareVersion, self.transport.request(GET_FIRMWARE, "GET", path))

    def create_firmware(self, fw: FirmwareVersion | Mapping[str, Any]) -> str:
        """Register a firmware version; returns its uuid (the slug). ``vendor``, ``component`` and ``checksum``
        are sent lowercase (the server refuses others); ``upstream_url`` and ``repository_url`` are required
        by the server (:class:`BadRequestError` otherwise); a duplicate (vendor, component, version, filename)
        raises :class:`ConflictError`."""
        if isinstance(fw, FirmwareVersion):
            body = fw.model_dump(mode="json", exclude_none=True, exclude={"created_at", "updated_at"})
        else:
            body = _json_object(fw, "firmware")
        for key in ("vendor", "component", "checksum"):
            if isinstance(body.get(key), str):
                body[key] = body[key].lower()
        path = "/server-component-firmwares"
        answer = self.transport.request(CREATE_FIRMWARE, "POST", path, json=body, retry="unsent")
        return self._slug(CREATE_FIRMWARE, path, answer)

    # -- firmware sets ----------------------------------------------------------------------------------------

    def list_firmware_sets(
        self, name: str | None = None, labels: Mapping[str, str] | None = None, attr: Sequence[str] = ()
    ) -> list[FirmwareSet]:
        """Firmware sets named ``name`` and/or carrying every label in ``labels`` (``attr=
        sh.hollow.firmware_set.labels~<key>~eq~<value>``) and matching every attribute filter in ``attr``
        (``namespace~key.path~op~value``, as for servers), with their firmware."""
        if isinstance(attr, str):
            raise FilterError("attr is a list of filters, not one string")
        params: list[tuple[str, str | int]] = []
        if name:
            params.append(("name", name))
        for key, value in (labels or {}).items():
            params.append(("attr", attr_filter(FIRMWARE_SET_LABELS_NAMESPACE, key, "eq", value)))
        params += [("attr", check_attr_filter(a, "attr")) for a in attr]
        return list(self._list(LIST_FIRMWARE_SETS, "/server-component-firmware-sets", FirmwareSet, params))

    def get_firmware_set(self, uuid_or_name: str) -> FirmwareSet:
        """The firmware set with this uuid, or else this name. Raises :class:`NotFoundError` when there is none
        and :class:`ConflictError` (naming their uuids) when several sets share the name."""
        if _is_uuid(uuid_or_name):
            path = f"/server-component-firmware-sets/{_check_uuid(uuid_or_name, 'firmware set uuid')}"
            body = self.transport.request(GET_FIRMWARE_SET, "GET", path)
            return self._record(GET_FIRMWARE_SET, path, FirmwareSet, body)
        if not uuid_or_name:
            raise ValueError("firmware set: give a uuid or a name")
        found = [s for s in self.list_firmware_sets(name=uuid_or_name) if s.name == uuid_or_name]
        target = f"name={uuid_or_name}"
        if not found:
            raise self.transport.count(
                NotFoundError(LIST_FIRMWARE_SETS, "no firmware set has this name", target=target)
            )
        if len(found) > 1:
            uuids = ", ".join(str(s.uuid) for s in found)
            raise self.transport.count(
                ConflictError(LIST_FIRMWARE_SETS, f"{len(found)} firmware sets have this name: {uuids}", target=target)
            )
        return found[0]

    def create_firmware_set(
        self,
        name: str,
        firmware_uuids: Sequence[str],
        labels: Mapping[str, str] | None = None,
        attributes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> str:
        """Create a firmware set of the given firmware versions (the server requires at least one), labelled
        ``labels`` (e.g. ``{"vendor": "dell", "model": "r6515"}``) and carrying ``attributes`` (namespace →
        data); returns its uuid (the slug). A name in use raises :class:`ConflictError` (duplicate key)."""
        if not name:
            raise ValueError("firmware set name is empty")
        attrs = [{"namespace": FIRMWARE_SET_LABELS_NAMESPACE, "data": dict(labels)}] if labels else []
        attrs += [
            {"namespace": _check_namespace(ns), "data": _json_object(data, "attribute data")}
            for ns, data in (attributes or {}).items()
        ]
        body = {
            "name": name,
            "attributes": attrs,
            "component_firmware_uuids": [_check_uuid(u, "firmware uuid") for u in firmware_uuids],
        }
        path = "/server-component-firmware-sets"
        answer = self.transport.request(CREATE_FIRMWARE_SET, "POST", path, json=body, retry="unsent")
        return self._slug(CREATE_FIRMWARE_SET, path, answer)

    def replace_firmware_set_attributes(
        self, uuid: str, name: str, attributes: Mapping[str, Mapping[str, Any]]
    ) -> None:
        """Replace every attribute of firmware set ``uuid`` (named ``name``) with ``attributes`` (namespace → data),
        its firmware unchanged (``PUT`` with no ``component_firmware_uuids``: the reference server adds firmware
        on PUT and replaces the attributes when they are given). Raises :class:`NotFoundError`."""
        set_id = _check_uuid(uuid, "firmware set uuid")
        if not attributes:
            raise ValueError("replace_firmware_set_attributes: give at least one attribute (the server ignores none)")
        body = {
            "uuid": set_id,
            "name": name,
            "attributes": [
                {"namespace": _check_namespace(ns), "data": _json_object(data, "attribute data")}
                for ns, data in attributes.items()
            ],
            "component_firmware_uuids": [],
        }
        path = f"/server-component-firmware-sets/{set_id}"
        self.transport.request(UPDATE_FIRMWARE_SET, "PUT", path, json=body)

    # -- credentials ------------------------------------------------------------------------------------------

    def get_bmc_credentials(self, uuid: str) -> BMCCredentials:
        """Server ``uuid``'s BMC username and password (needs scope ``read:server:credentials``). The password is
        registered with :mod:`flasher.redact` before it is returned. Raises :class:`NotFoundError` when the
        server has no BMC credentials."""
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/credentials/{BMC_CREDENTIAL_SLUG}"
        body = self.transport.request(GET_CREDENTIALS, "GET", path, sensitive=True)
        record = body.get("record")
        if isinstance(record, dict) and isinstance(record.get("password"), str):
            redact.register(record["password"])
        return self._record(GET_CREDENTIALS, path, BMCCredentials, body)

    def set_bmc_credentials(self, uuid: str, username: str, password: str) -> None:
        """Store server ``uuid``'s BMC username and password (``PUT .../credentials/bmc``; needs an update scope
        on credentials). The password is registered with :mod:`flasher.redact` first and never appears in an
        error. Raises :class:`NotFoundError` when the server does not exist."""
        if not username:
            raise ValueError("BMC username is empty")
        if not password:
            raise ValueError("BMC password is empty")
        redact.register(password)
        path = f"/servers/{_check_uuid(uuid, 'server uuid')}/credentials/{BMC_CREDENTIAL_SLUG}"
        body = {"username": username, "password": password}
        self.transport.request(SET_CREDENTIALS, "PUT", path, json=body, sensitive=True)

    # -- health -----------------------------------------------------------------------------------------------

    def ready(self) -> bool:
        """True when the inventory answers its readiness check (``/healthz/readiness``, or ``/healthz`` on
        servers without one). One try, no auth, never raises."""
        status = self.transport.probe("/healthz/readiness")
        if status == 404:
            status = self.transport.probe("/healthz")
        return status is not None and 200 <= status < 300
