"""The HTTP side of one simulated BMC: routing, authentication, request faults and the Redfish handlers.

Every request goes through :meth:`RedfishService.dispatch`: a BMC that is rebooting aborts the connection;
``/sim/...`` goes to the simulator's own API (no faults, no credentials); Redfish requests first get the
request faults (delay, 5xx burst), then need Basic credentials or an ``X-Auth-Token`` (except the service root,
``/redfish/v1/odata``, ``/redfish/v1/$metadata`` and the login), then reach a fixed resource, an action or a task,
session or job URI. Trailing slashes are ignored.

What DSP0266 (the Redfish specification) asks of every answer, checked by DMTF's Protocol Validator
(``tests/integration/test_bmc_conformance.py``): a ``GET``/``HEAD`` of a resource carries ``Allow`` (the methods the
URI takes) and ``Link: <schema>; rel=describedby``; a method a URI does not take answers 405 with ``Allow``, one the
service does not know 501 (:mod:`flasher_sandbox.bmc.runner`); an ``OData-Version`` other than 4.0 answers 412;
``$expand`` is supported as DSP0266 states it (:mod:`flasher_sandbox.bmc.expand`, on the fixed resources); any other
query parameter starting with ``$`` answers 501 (``ProtocolFeaturesSupported``: no select, filter, top, skip);
a ``POST`` to a collection's ``/Members`` is a ``POST`` to the collection.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import BasicAuth, BodyPartReader, web

from flasher_sandbox.bmc import expand, installer, simapi
from flasher_sandbox.bmc.errors import BASE, RedfishError, bad_request, conflict, not_found, unauthorized
from flasher_sandbox.bmc.faults import RequestEffects
from flasher_sandbox.bmc.metadata import describedby, metadata_document
from flasher_sandbox.bmc.resources import (
    METADATA,
    SESSIONS,
    SIMPLE_UPDATE,
    UPDATE_SERVICE,
    served_types,
    static_resources,
)
from flasher_sandbox.bmc.shapes import REDFISH, TASK_MONITORS, TASKS
from flasher_sandbox.bmc.simulator import SimulatedBmc
from flasher_sandbox.bmc.tasks import InstallTask
from flasher_sandbox.bmc.vendors import hpe, lenovo, supermicro

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TailHandler = Callable[[web.Request, str], Awaitable[web.StreamResponse]]

_HEADERS: Final = {"OData-Version": "4.0", "Cache-Control": "no-cache"}
_EFFECTS: Final = web.RequestKey("effects", RequestEffects)
_CHUNK: Final = 1 << 16
#: The order methods are listed in ``Allow``.
_METHOD_ORDER: Final = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE")
#: The OData version of every answer; a request asking for another gets 412 (DSP0266 "Request headers").
ODATA_VERSION: Final = "4.0"


def json_response(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer with the Redfish headers."""
    return web.Response(
        status=status, text=json.dumps(doc), content_type="application/json", headers={**_HEADERS, **(headers or {})}
    )


def resource_headers(doc: Any, allowed: list[str]) -> dict[str, str]:
    """``Allow`` and, for a document with an ``@odata.type``, ``Link: <its JSON schema>; rel=describedby``."""
    headers = {"Allow": ", ".join(allowed)} if allowed else {}
    odata_type = doc.get("@odata.type") if isinstance(doc, dict) else None
    if isinstance(odata_type, str):
        headers["Link"] = describedby(odata_type)
    return headers


def _success() -> dict[str, Any]:
    return {
        "@Message.ExtendedInfo": [
            {"MessageId": f"{BASE}.Success", "Message": "Successfully Completed Request", "Severity": "OK"}
        ]
    }


def _etag(doc: dict[str, Any]) -> str:
    return f'W/"{zlib.crc32(json.dumps(doc, sort_keys=True).encode()):08x}"'


class RedfishService:
    """Routes and handlers of one BMC."""

    def __init__(self, bmc: SimulatedBmc) -> None:
        self.bmc = bmc
        shape = bmc.shape
        self.static = static_resources(bmc)
        self.public: set[tuple[str, str]] = {
            ("GET", "/redfish"),
            ("GET", REDFISH),
            ("GET", f"{REDFISH}/odata"),
            ("GET", METADATA),
            ("POST", SESSIONS),
            ("POST", f"{SESSIONS}/Members"),
        }
        self.actions: dict[tuple[str, str], Handler] = {
            ("POST", SESSIONS): self.login,
            ("POST", f"{SESSIONS}/Members"): self.login,
            ("POST", f"{shape.system_uri}/Actions/ComputerSystem.Reset"): self.reset_system,
            ("PATCH", shape.system_uri): self.patch_system,
            ("POST", f"{shape.manager_uri}/Actions/Manager.Reset"): self.reset_manager,
            ("PATCH", UPDATE_SERVICE): self.patch_update_service,
        }
        methods = set(bmc.spec.install_methods or []) if bmc.spec.update_service else set()
        if not bmc.spec.update_service:
            del self.actions[("PATCH", UPDATE_SERVICE)]
        if "SimpleUpdate" in methods:
            self.actions[("POST", SIMPLE_UPDATE)] = self.simple_update
        #: Upload endpoints (``HttpPushUri``, ``MultipartHttpPushUri``): where one shares its URI with a resource
        #: (iDRAC's ``HttpPushUri`` is the FirmwareInventory collection), ``Allow`` lists the resource's methods
        #: only, as the resource's schema defines them (a SoftwareInventoryCollection is read-only).
        self.uploads: set[tuple[str, str]] = set()
        if "MultipartHttpPush" in methods:
            self.actions[("POST", shape.multipart_path)] = self.multipart_push
            self.uploads.add(("POST", shape.multipart_path))
        if "HttpPush" in methods:
            self.actions[("POST", shape.http_push_path)] = self.http_push
            self.uploads.add(("POST", shape.http_push_path))
        if shape.x13_update and "MultipartHttpPush" in methods:
            self.actions[("POST", supermicro.START_UPDATE)] = self.start_update
        self.by_tail: list[tuple[str, str, TailHandler]] = [
            ("GET", SESSIONS, self.get_session),
            ("DELETE", SESSIONS, self.delete_session),
            ("GET", TASKS, self.get_task),
            ("DELETE", TASKS, self.delete_task),
        ]
        if shape.has_task_monitor:
            self.by_tail += [("GET", TASK_MONITORS, self.get_monitor), ("DELETE", TASK_MONITORS, self.delete_monitor)]
        if shape.has_dell_jobs:
            self.by_tail += [
                ("GET", shape.dell_jobs_uri, self.get_job),
                ("GET", f"{shape.manager_uri}/Jobs", self.get_job),
            ]
        self._rebooting = False
        self._metadata: str | None = None
        self._ids = self._component_ids()

    def _component_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.bmc.components)

    def _refresh_resources(self) -> None:
        """Rebuild the URI table when a FirmwareInventory Id changed (Dell-like Ids carry the version)."""
        ids = self._component_ids()
        if ids != self._ids:
            self.static, self._ids = static_resources(self.bmc), ids

    # ---- dispatch -------------------------------------------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """The single aiohttp handler of the BMC's application."""
        bmc = self.bmc
        if not bmc.online:
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        path = request.path.rstrip("/") or "/"
        if path == "/sim" or path.startswith("/sim/"):
            return await simapi.dispatch(bmc, request, path)
        if not path.startswith("/redfish"):
            return not_found(path).response()
        effects = bmc.faults.request_effects(bmc.installing_slugs())
        if effects.unreachable:  # the fault "unreachable": drop the connection, as a BMC that does not answer
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        request[_EFFECTS] = effects
        if effects.delay:
            await asyncio.sleep(effects.delay)
        if effects.status is not None:
            if effects.status == 503:
                error = RedfishError(
                    503,
                    f"{BASE}.ServiceTemporarilyUnavailable",
                    "The service is temporarily unavailable.  Retry in 1 seconds.",
                    args=["1"],
                )
            else:
                error = RedfishError(
                    effects.status,
                    f"{BASE}.InternalError",
                    "The request failed due to an internal service error.  The service is still operational.",
                )
            return error.response()
        try:
            return await self._route(request, path)
        except RedfishError as exc:
            return exc.response()

    async def _route(self, request: web.Request, path: str) -> web.StreamResponse:
        method = "GET" if request.method == "HEAD" else request.method
        odata_version = request.headers.get("OData-Version")
        if odata_version is not None and odata_version.strip() != ODATA_VERSION:
            raise RedfishError(
                412,
                f"{BASE}.HeaderInvalid",
                f"The header 'OData-Version: {odata_version}' is invalid: this service supports {ODATA_VERSION}.",
                args=[f"OData-Version: {odata_version}"],
            )
        if path == "/redfish" and method == "GET":
            return json_response({"v1": f"{REDFISH}/"}, headers={"Allow": "GET, HEAD"})
        if path == METADATA and method == "GET":
            return web.Response(
                text=self.metadata(),
                content_type="application/xml",
                headers={**_HEADERS, "Allow": "GET, HEAD"},
            )
        if (method, path) not in self.public:
            self._authenticate(request)
        self._check_query(request)
        self._refresh_resources()
        if method == "GET" and path in self.static:
            hpe.refuse_network_adapters(self.bmc, path)
            doc = self.static[path]()
            if "$expand" in request.query:
                form, levels = expand.parse(request.query["$expand"])
                doc = expand.expand(doc, form, levels, hpe.expandable(self.bmc, self.static))
            headers = resource_headers(doc, self.allowed(path))
            headers["ETag"] = _etag(doc)
            return json_response(doc, headers=headers)
        handler = self.actions.get((method, path))
        if handler is not None:
            return await handler(request)
        for verb, base, tail_handler in self.by_tail:
            tail = self._tail(path, base)
            if tail and verb == method:
                return await tail_handler(request, tail)
        allowed = self.allowed(path)
        if allowed:
            raise RedfishError(
                405,
                f"{BASE}.OperationNotAllowed",
                f"The method {request.method} is not supported by the resource {path}.",
                headers={"Allow": ", ".join(allowed)},
            )
        raise not_found(path)

    def allowed(self, path: str) -> list[str]:
        """The methods ``path`` takes (``Allow``), ``HEAD`` wherever ``GET`` is; empty for an unknown URI."""
        resource = path in self.static
        methods = {m for m, p in self.actions if p == path and not (resource and (m, p) in self.uploads)}
        if resource:
            methods.add("GET")
        methods |= {verb for verb, base, _ in self.by_tail if self._tail(path, base)}
        if "GET" in methods:
            methods.add("HEAD")
        return [m for m in _METHOD_ORDER if m in methods]

    def metadata(self) -> str:
        """The ``$metadata`` document (built on first use: the types a BMC serves do not change)."""
        if self._metadata is None:
            root = self.static[REDFISH]()
            self._metadata = metadata_document(served_types(self.static), root["@odata.type"])
        return self._metadata

    @staticmethod
    def _check_query(request: web.Request) -> None:
        """501 ``QueryNotSupported`` for a query parameter starting with ``$`` other than ``$expand``
        (DSP0266 "Query parameters": services shall answer 501 for unsupported ``$`` parameters)."""
        unsupported = sorted(key for key in request.query if key.startswith("$") and key != "$expand")
        if unsupported:
            raise RedfishError(
                501,
                f"{BASE}.QueryNotSupported",
                f"Querying is not supported by the implementation: {', '.join(unsupported)}.",
            )

    @staticmethod
    def _tail(path: str, base: str) -> str | None:
        """The last segment of ``path`` when ``path`` is ``base/<segment>``, else ``None``."""
        if not path.startswith(base + "/"):
            return None
        tail = path[len(base) + 1 :]
        return tail if tail and "/" not in tail else None

    def _authenticate(self, request: web.Request) -> None:
        """Accept a live session token or the BMC's Basic credentials. Raises 401."""
        refuse = request[_EFFECTS].refuse_credentials
        token = request.headers.get("X-Auth-Token")
        if token:
            if refuse or self.bmc.sessions.lookup(token) is None:
                raise unauthorized()
            return
        header = request.headers.get("Authorization", "")
        try:
            auth = BasicAuth.decode(header) if header else None
        except ValueError:
            auth = None
        if auth is None:
            raise unauthorized()
        if refuse or not self._credentials_ok(auth.login, auth.password):
            self.bmc.audit.login_refused()
            raise unauthorized()

    def _credentials_ok(self, username: Any, password: Any) -> bool:
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        user_ok = secrets.compare_digest(username.encode(), self.bmc.username.encode())
        password_ok = secrets.compare_digest(password.encode(), self.bmc.password.encode())
        return user_ok and password_ok

    @staticmethod
    async def _body(request: web.Request) -> Any:
        try:
            return await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RedfishError(
                400,
                f"{BASE}.MalformedJSON",
                "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
            ) from exc

    # ---- sessions -------------------------------------------------------------------------------------------

    async def login(self, request: web.Request) -> web.StreamResponse:
        """``POST SessionService/Sessions``: 201 with ``X-Auth-Token`` and ``Location``; 401 on bad credentials."""
        body = await self._body(request)
        if not isinstance(body, dict) or "UserName" not in body or "Password" not in body:
            raise bad_request("PropertyMissing", "The properties UserName and Password are required.", "UserName")
        if request[_EFFECTS].refuse_credentials or not self._credentials_ok(body["UserName"], body["Password"]):
            self.bmc.audit.login_refused()
            raise unauthorized()
        session = self.bmc.sessions.create(body["UserName"])
        uri = f"{SESSIONS}/{session.id}"
        return json_response(
            self._session_doc(session.id), status=201, headers={"X-Auth-Token": session.token, "Location": uri}
        )

    def _session_doc(self, session_id: str) -> dict[str, Any]:
        session = self.bmc.sessions.get(session_id)
        if session is None:
            raise not_found(f"{SESSIONS}/{session_id}")
        return {
            "@odata.type": "#Session.v1_6_0.Session",
            "@odata.id": f"{SESSIONS}/{session.id}",
            "Id": session.id,
            "Name": "User Session",
            "UserName": session.username,
            "CreatedTime": session.created,
        }

    async def get_session(self, request: web.Request, session_id: str) -> web.StreamResponse:
        """A session of the BMC."""
        doc = self._session_doc(session_id)
        return json_response(doc, headers=resource_headers(doc, self.allowed(doc["@odata.id"])))

    async def delete_session(self, request: web.Request, session_id: str) -> web.StreamResponse:
        """Log out: the token stops working."""
        if not self.bmc.sessions.delete(session_id):
            raise not_found(f"{SESSIONS}/{session_id}")
        return web.Response(status=204, headers=_HEADERS)

    # ---- system and manager ---------------------------------------------------------------------------------

    async def reset_system(self, request: web.Request) -> web.StreamResponse:
        """``ComputerSystem.Reset``: starts a power transition taking ``power_seconds``."""
        body = await self._body(request)
        self.bmc.power.reset(body.get("ResetType") if isinstance(body, dict) else None)
        if self.bmc.shape.name == "dell":
            return web.Response(status=204, headers=_HEADERS)
        return json_response(_success())

    async def patch_system(self, request: web.Request) -> web.StreamResponse:
        """``PATCH`` of the System: only ``Boot`` is writable; ``If-Match`` must match the current ETag."""
        if_match = request.headers.get("If-Match")
        if if_match is not None:
            current = _etag(self.static[self.bmc.shape.system_uri]())
            if if_match not in (current, current.removeprefix("W/"), "*"):
                raise RedfishError(412, f"{BASE}.GeneralError", "The ETag in If-Match does not match the resource.")
        body = await self._body(request)
        if not isinstance(body, dict) or not body:
            raise bad_request("EmptyJSON", "The request body submitted contained an empty JSON object.")
        for key in body:
            if key != "Boot":
                raise bad_request("PropertyNotWritable", f"The property {key} is a read only property.", key)
        hpe.refuse_boot_change(self.bmc)
        self.bmc.power.set_boot(body["Boot"])
        return json_response(_success())

    async def reset_manager(self, request: web.Request) -> web.StreamResponse:
        """``Manager.Reset``: the BMC reboots (unreachable for ``offline_seconds``, sessions lost)."""
        body = await self._body(request)
        reset_type = body.get("ResetType") if isinstance(body, dict) else None
        if reset_type not in self.bmc.shape.manager_reset_types:
            raise bad_request(
                "PropertyValueNotInList",
                f"The value {reset_type!r} for the parameter ResetType is not one of "
                f"{', '.join(self.bmc.shape.manager_reset_types)}.",
                str(reset_type),
                "ResetType",
            )
        if self._rebooting:
            raise conflict(f"{BASE}.ResourceInUse", "The BMC is already resetting.")
        self._rebooting = True
        self.bmc.spawn(self._reboot())
        return web.Response(status=204, headers=_HEADERS)

    async def _reboot(self) -> None:
        try:
            await self.bmc.reboot("Manager.Reset")
        finally:
            self._rebooting = False

    # ---- update service -------------------------------------------------------------------------------------

    async def patch_update_service(self, request: web.Request) -> web.StreamResponse:
        """``PATCH`` of ``HttpPushUriTargets`` and ``HttpPushUriOptions.HttpPushUriApplyTime.ApplyTime``."""
        body = await self._body(request)
        if not isinstance(body, dict) or not body:
            raise bad_request("EmptyJSON", "The request body submitted contained an empty JSON object.")
        writable: tuple[str, ...] = ("HttpPushUriTargets", "HttpPushUriOptions")
        if self.bmc.shape.lenovo_push:
            writable += ("HttpPushUriTargetsBusy",)
        for key in body:
            if key not in writable:
                raise bad_request("PropertyNotWritable", f"The property {key} is a read only property.", key)
        targets = self.bmc.http_push_targets
        if "HttpPushUriTargets" in body:
            targets = [c.uri for c in installer.parse_targets(self.bmc, body["HttpPushUriTargets"])]
        apply_time = self.bmc.http_push_apply_time
        options = body.get("HttpPushUriOptions")
        if options is not None:
            try:
                apply_time = options["HttpPushUriApplyTime"]["ApplyTime"]
            except (TypeError, KeyError) as exc:
                raise bad_request(
                    "PropertyMissing", "HttpPushUriOptions needs HttpPushUriApplyTime.ApplyTime.", "ApplyTime"
                ) from exc
            apply_time = installer.parse_apply_time(apply_time) or "Immediate"
        self.bmc.http_push_targets, self.bmc.http_push_apply_time = targets, apply_time
        lenovo.patch_claim(self.bmc, body)
        return json_response(_success())

    async def simple_update(self, request: web.Request) -> web.StreamResponse:
        """``UpdateService.SimpleUpdate``: 202 and a task that downloads ``ImageURI``."""
        task = installer.submit_simple_update(self.bmc, await self._body(request))
        return self._accepted(task)

    async def multipart_push(self, request: web.Request) -> web.StreamResponse:
        """``MultipartHttpPushUri``: parts ``UpdateParameters`` (JSON) and ``UpdateFile``; 202 and a task."""
        if not request.content_type.startswith("multipart/"):
            raise bad_request(
                "UnrecognizedRequestBody",
                f"{self.bmc.shape.multipart_path} takes multipart/form-data, got {request.content_type}.",
            )
        parameters: Any = None
        image: bytes | None = None
        filename = "firmware.bin"
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "UpdateParameters":
                try:
                    parameters = json.loads(await part.text())
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise bad_request("MalformedJSON", "The UpdateParameters part is not valid JSON.") from exc
            elif part.name == "UpdateFile":
                filename = part.filename or filename
                image = await self._read_part(part)
        if image is None or parameters is None:
            missing = "UpdateFile" if image is None else "UpdateParameters"
            raise bad_request(
                "ActionParameterMissing",
                f"The multipart update requires the part {missing}.",
                "MultipartHttpPush",
                missing,
            )
        if not isinstance(parameters, dict):
            raise bad_request("PropertyValueTypeError", "UpdateParameters must be a JSON object.")
        targets = installer.parse_targets(self.bmc, parameters.get("Targets"))
        options: dict[str, Any] = {}
        if self.bmc.shape.x13_update:
            options = supermicro.check_push(self.bmc, parameters, image, targets)
            apply_time: str | None = supermicro.APPLY_TIME
        else:
            apply_time = installer.parse_apply_time(parameters.get("@Redfish.OperationApplyTime"))
        task = installer.submit_push(
            self.bmc, "MultipartHttpPush", image=image, filename=filename, targets=targets, apply_time=apply_time
        )
        if self.bmc.shape.x13_update:
            supermicro.note_preserve(self.bmc, task, options)
        return self._accepted(task)

    async def start_update(self, request: web.Request) -> web.StreamResponse:
        """``UpdateService.StartUpdate`` (Supermicro X13-like): 202 and the Update task."""
        if request.can_read_body:
            await self._body(request)
        return self._accepted(supermicro.start_update(self.bmc, installer.run))

    @staticmethod
    async def _read_part(part: BodyPartReader) -> bytes:
        data = bytearray()
        while chunk := await part.read_chunk(_CHUNK):
            data += chunk
            if len(data) > installer.MAX_IMAGE_BYTES:
                raise RedfishError(413, f"{BASE}.GeneralError", "The image is larger than MaxImageSizeBytes.")
        return bytes(data)

    async def http_push(self, request: web.Request) -> web.StreamResponse:
        """``HttpPushUri``: the image is the body; targets and apply time come from the UpdateService."""
        if request.content_type.startswith("multipart/"):
            raise bad_request(
                "UnrecognizedRequestBody",
                f"{self.bmc.shape.http_push_path} takes the image as the body; use MultipartHttpPushUri for multipart.",
            )
        if self.bmc.shape.lenovo_push:
            image = await lenovo.read_push(self.bmc, request, installer.MAX_IMAGE_BYTES)
        else:
            image = await request.read()
        targets = [c for uri in self.bmc.http_push_targets if (c := self.bmc.component_by_uri(uri)) is not None]
        task = installer.submit_push(
            self.bmc,
            "HttpPush",
            image=image,
            filename="firmware.bin",
            targets=targets,
            apply_time=self.bmc.http_push_apply_time,
        )
        return self._accepted(task)

    def _accepted(self, task: InstallTask) -> web.StreamResponse:
        """202: Dell-like with ``Location`` of the task and an empty body (as iDRAC); Supermicro-like with
        ``Location`` of the task monitor and the Task in the body."""
        if self.bmc.shape.lenovo_push:
            return lenovo.accepted(task, _HEADERS)
        if task.monitor_uri is not None:
            return json_response(task.as_redfish(self.bmc.shape), status=202, headers={"Location": task.monitor_uri})
        return web.Response(status=202, headers={**_HEADERS, "Location": task.uri})

    # ---- tasks and jobs -------------------------------------------------------------------------------------

    def _task(self, task_id: str, uri: str) -> InstallTask:
        task = self.bmc.tasks.get(task_id)
        if task is None or task.purged:
            raise not_found(uri)
        return task

    def _task_answer(self, task: InstallTask) -> web.StreamResponse:
        running = self.bmc.shape.task_answers_202_while_running and not task.terminal
        doc = task.as_redfish(self.bmc.shape)
        return json_response(doc, status=202 if running else 200, headers=resource_headers(doc, self.allowed(task.uri)))

    async def get_task(self, request: web.Request, task_id: str) -> web.StreamResponse:
        """A Task: Dell-like 200 always; Supermicro-like 202 until it ends."""
        return self._task_answer(self._task(task_id, f"{TASKS}/{task_id}"))

    async def get_monitor(self, request: web.Request, task_id: str) -> web.StreamResponse:
        """A task monitor: 202 with the Task while it runs, 200 with the Task once it has ended."""
        task = self.bmc.monitors.get(task_id)
        if task is None or task.purged:
            raise not_found(f"{TASK_MONITORS}/{task_id}")
        if self.bmc.shape.lenovo_push:
            return lenovo.monitor_answer(self.bmc, task, _HEADERS)
        return self._task_answer(task)

    async def delete_task(self, request: web.Request, task_id: str) -> web.StreamResponse:
        """Cancel a task (it ends Killed) or forget an ended one."""
        task = self._task(task_id, f"{TASKS}/{task_id}")
        if task.terminal:
            task.purged = True
        installer.kill(self.bmc, task)
        return web.Response(status=204, headers=_HEADERS)

    async def delete_monitor(self, request: web.Request, task_id: str) -> web.StreamResponse:
        if task_id not in self.bmc.monitors:
            raise not_found(f"{TASK_MONITORS}/{task_id}")
        return await self.delete_task(request, task_id)

    async def get_job(self, request: web.Request, job_id: str) -> web.StreamResponse:
        """A Dell job: kept after its task is purged (the fallback iDRAC users need)."""
        task = self.bmc.tasks.get(job_id)
        if task is None:
            raise not_found(f"{self.bmc.shape.dell_jobs_uri}/{job_id}")
        return json_response(task.as_dell_job(self.bmc.shape))


def build_app(bmc: SimulatedBmc) -> web.Application:
    """The aiohttp application of ``bmc`` (one catch-all route to :meth:`RedfishService.dispatch`)."""
    app = web.Application(client_max_size=installer.MAX_IMAGE_BYTES + (1 << 20))
    service = RedfishService(bmc)
    app.router.add_route("*", "/{tail:.*}", service.dispatch)
    return app
