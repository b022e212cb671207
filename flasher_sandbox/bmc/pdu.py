"""A simulated Redfish PDU: DMTF's public rack-PDU mockup served live, whose outlets switch.

The documents are DMTF's ``public-rackpdu`` mockup (``flasher_sandbox/bmc/mockups/dmtf-public-pdu``, BSD 3-Clause,
its ``LICENSE.md`` beside it), served as they are at their ``@odata.id`` (``/redfish/v1/PowerEquipment/RackPDUs/1
/Outlets/A1``...), with each outlet's ``PowerState`` live. ``POST <outlet>/Outlet.PowerControl`` with
``{"PowerState": "On" | "Off" | "PowerCycle"}`` (DSP0268 Outlet schema, ``PowerControl``) answers 204: On and Off
switch the outlet at once, PowerCycle switches it Off and back On after ``cycle_seconds``. Every request but the
service root needs the PDU's Basic credentials (401 otherwise). Each PowerControl is an audit record (the control
API's ``GET /fleet/pdu``: outlets, their cycle counts and the log).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from importlib import resources
from pathlib import Path
from typing import Any, Final

from aiohttp import BasicAuth, web
from loguru import logger

from flasher_sandbox.bmc.audit import now_iso
from flasher_sandbox.bmc.errors import BASE, RedfishError, bad_request, not_found, unauthorized

#: Where the mockup is (package data).
MOCKUP: Final = Path(str(resources.files("flasher_sandbox.bmc") / "mockups" / "dmtf-public-pdu"))
POWER_CONTROL: Final = "Outlet.PowerControl"
POWER_STATES: Final = ("On", "Off", "PowerCycle")
_HEADERS: Final = {"OData-Version": "4.0", "Cache-Control": "no-cache"}


def load_mockup(root: Path = MOCKUP) -> dict[str, dict[str, Any]]:
    """Every ``index.json`` of the mockup by its ``@odata.id`` (or its path under ``/redfish/v1``)."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("index.json")):
        doc = json.loads(path.read_text())
        relative = path.parent.relative_to(root).as_posix()
        uri = str(doc.get("@odata.id") or ("/redfish/v1" + ("/" + relative if relative != "." else "")))
        docs[uri.rstrip("/")] = doc
    return docs


class SimulatedPdu:
    """One PDU on ``host:port`` with the mockup's outlets; everything runs on the fleet's event loop."""

    def __init__(self, *, host: str, port: int, username: str, password: str, cycle_seconds: float) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.cycle_seconds = cycle_seconds
        self.docs = load_mockup()
        self.outlets: dict[str, str] = {
            uri: str(doc.get("PowerState") or "On")
            for uri, doc in self.docs.items()
            if str(doc.get("@odata.type", "")).startswith("#Outlet.")
        }
        self._initial = dict(self.outlets)
        self.cycles: dict[str, int] = dict.fromkeys(self.outlets, 0)
        self.log: list[dict[str, Any]] = []
        self.scheme = "https"
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None

    def outlet_uri(self, outlet_id: str) -> str:
        """The URI of outlet ``outlet_id`` (``A1``) of the mockup's rack PDU."""
        return next(uri for uri in self.outlets if uri.rsplit("/", 1)[-1] == outlet_id)

    def state(self) -> dict[str, Any]:
        """Outlets (URI → PowerState), PowerCycles per outlet, and the PowerControl log."""
        return {"outlets": dict(self.outlets), "cycles": dict(self.cycles), "log": list(self.log)}

    async def restore(self) -> None:
        """Outlets back to the mockup's states, no cycle in flight, the log empty."""
        for task in list(self._tasks):
            task.cancel()
        self.outlets = dict(self._initial)
        self.cycles = dict.fromkeys(self.outlets, 0)
        self.log = []

    def app(self) -> web.Application:
        """The PDU's aiohttp application."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def start(self, ssl_context: Any) -> None:
        """Serve on ``host:port`` over TLS with ``ssl_context``."""
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port, ssl_context=ssl_context, reuse_address=True).start()

    async def stop(self) -> None:
        """Stop serving."""
        await self.restore()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """GET of a mockup document, POST of an outlet's PowerControl."""
        path = request.path.rstrip("/") or "/"
        try:
            if path not in ("/redfish", "/redfish/v1"):
                self._authenticate(request)
            if request.method == "GET" and path in self.docs:
                return self._json(self._render(path))
            if request.method == "POST" and path.endswith("/" + POWER_CONTROL):
                return await self._power_control(request, path.rsplit("/", 1)[0])
            if path in self.docs:
                raise RedfishError(405, f"{BASE}.OperationNotAllowed", f"{request.method} is not allowed on {path}.")
            raise not_found(path)
        except RedfishError as exc:
            return exc.response()

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        try:
            auth = BasicAuth.decode(header) if header else None
        except ValueError:
            auth = None
        if auth is None:
            raise unauthorized()
        user_ok = secrets.compare_digest(auth.login.encode(), self.username.encode())
        password_ok = secrets.compare_digest(auth.password.encode(), self.password.encode())
        if not (user_ok and password_ok):
            raise unauthorized()

    def _render(self, path: str) -> dict[str, Any]:
        doc = dict(self.docs[path])
        if path in self.outlets:
            doc["PowerState"] = self.outlets[path]
        return doc

    @staticmethod
    def _json(doc: Any, status: int = 200) -> web.Response:
        return web.Response(status=status, text=json.dumps(doc), content_type="application/json", headers=_HEADERS)

    async def _power_control(self, request: web.Request, outlet: str) -> web.StreamResponse:
        if outlet not in self.outlets:
            raise not_found(f"{outlet}/{POWER_CONTROL}")
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise bad_request("MalformedJSON", "The request body is not valid JSON.") from exc
        state = body.get("PowerState") if isinstance(body, dict) else None
        if state not in POWER_STATES:
            raise bad_request(
                "ActionParameterValueNotInList",
                f"The value {state!r} for the parameter PowerState is not one of {', '.join(POWER_STATES)}.",
                str(state),
                "PowerState",
            )
        before = self.outlets[outlet]
        self.log.append({"outlet": outlet, "action": state, "from_state": before, "time": now_iso()})
        logger.info("PDU {}: outlet {} {} (was {})", self.port, outlet, state, before)
        if state == "PowerCycle":
            self.outlets[outlet] = "Off"
            self.cycles[outlet] += 1
            task = asyncio.get_running_loop().create_task(self._back_on(outlet))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self.outlets[outlet] = state
        return web.Response(status=204, headers=_HEADERS)

    async def _back_on(self, outlet: str) -> None:
        await asyncio.sleep(self.cycle_seconds)
        self.outlets[outlet] = "On"
