"""The simulator's own API, outside Redfish: on each BMC's port under ``/sim/`` and, for the whole fleet, on the
control port under ``/fleet`` (which also works while a BMC is rebooting and its own port is closed).

On a BMC's port (no credentials, no faults)::

    GET    /sim/faults        the active faults
    PUT    /sim/faults        merge faults: {"task_exception": {"component": "bios"}, "slow_seconds": null}
    DELETE /sim/faults        clear every fault
    GET    /sim/state         power, boot override, versions, sessions, tasks, faults
    GET    /sim/audit         installs, power changes, BMC resets, overlapping_installs
    POST   /sim/reset-audit   forget the audit records
    POST   /sim/restore       back to the configured initial state (versions, power, faults; no tasks, sessions
                              or audit records; a reboot in progress ends at once)

On the control port::

    GET    /fleet                     every BMC's port, URL, shape, vendor, model, serials and components
    GET    /fleet/audit               every BMC's audit and the total of overlapping installs
    POST   /fleet/reset-audit         reset every BMC's audit
    POST   /fleet/restore             restore every BMC
    GET|PUT|DELETE /fleet/faults/{port}, GET /fleet/state/{port}, GET /fleet/audit/{port},
    POST   /fleet/reset-audit/{port}, POST /fleet/restore/{port}   the same as /sim/... for the BMC on {port}
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from flasher_sandbox.bmc.pdu import SimulatedPdu
from flasher_sandbox.bmc.simulator import SimulatedBmc


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(doc), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


async def _faults_body(request: web.Request) -> Mapping[str, Any] | web.Response:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, "the body must be a JSON object of faults")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object of faults")
    return body


async def handle(bmc: SimulatedBmc, request: web.Request, action: str) -> web.Response:
    """Serve ``action`` (``faults``, ``state``, ``audit``, ``reset-audit`` or ``restore``) for ``bmc``."""
    method = request.method
    if action == "faults" and method == "GET":
        return _json(bmc.faults.as_json())
    if action == "faults" and method == "PUT":
        body = await _faults_body(request)
        if isinstance(body, web.Response):
            return body
        try:
            bmc.faults.update(body)
        except ValueError as exc:
            return _error(400, str(exc))
        return _json(bmc.faults.as_json())
    if action == "faults" and method == "DELETE":
        bmc.faults.clear()
        return _json({})
    if action == "state" and method == "GET":
        return _json(bmc.state())
    if action == "audit" and method == "GET":
        return _json(bmc.audit.as_json())
    if action == "reset-audit" and method == "POST":
        bmc.audit.clear()
        return _json(bmc.audit.as_json())
    if action == "restore" and method == "POST":
        await bmc.restore()
        return _json(bmc.state())
    known = ("faults", "state", "audit", "reset-audit", "restore")
    return _error(405 if action in known else 404, f"no {method} /sim/{action}")


async def dispatch(bmc: SimulatedBmc, request: web.Request, path: str) -> web.StreamResponse:
    """``/sim/<action>`` on the BMC's own port."""
    return await handle(bmc, request, path.removeprefix("/sim").strip("/"))


def control_app(bmcs: list[SimulatedBmc], pdu: SimulatedPdu | None = None) -> web.Application:
    """The fleet control server's application (``GET /fleet/pdu``: the PDU's outlets and log, when there is one)."""
    by_port = {bmc.port: bmc for bmc in bmcs}

    def lookup(request: web.Request) -> SimulatedBmc | None:
        try:
            return by_port.get(int(request.match_info["port"]))
        except ValueError:
            return None

    async def fleet(request: web.Request) -> web.Response:
        return _json({"count": len(bmcs), "bmcs": [bmc.summary() for bmc in bmcs]})

    async def fleet_audit(request: web.Request) -> web.Response:
        audits = [{"port": bmc.port, **bmc.audit.as_json()} for bmc in bmcs]
        return _json({"overlapping_installs": sum(a["overlapping_installs"] for a in audits), "bmcs": audits})

    async def reset_all(request: web.Request) -> web.Response:
        for bmc in bmcs:
            bmc.audit.clear()
        return _json({"reset": len(bmcs)})

    async def pdu_state(request: web.Request) -> web.Response:
        if pdu is None:
            return _error(404, "this fleet has no PDU (flasher-sandbox bmc --pdu-port)")
        return _json({"port": pdu.port, **pdu.state()})

    async def restore_all(request: web.Request) -> web.Response:
        await asyncio.gather(*(bmc.restore() for bmc in bmcs))
        if pdu is not None:
            await pdu.restore()
        return _json({"restored": len(bmcs)})

    def per_bmc(action: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            bmc = lookup(request)
            if bmc is None:
                return _error(404, f"no simulated BMC on port {request.match_info['port']}")
            return await handle(bmc, request, action)

        return handler

    app = web.Application()
    app.router.add_get("/fleet", fleet)
    app.router.add_get("/fleet/audit", fleet_audit)
    app.router.add_post("/fleet/reset-audit", reset_all)
    for method in ("GET", "PUT", "DELETE"):
        app.router.add_route(method, "/fleet/faults/{port}", per_bmc("faults"))
    app.router.add_get("/fleet/state/{port}", per_bmc("state"))
    app.router.add_get("/fleet/audit/{port}", per_bmc("audit"))
    app.router.add_post("/fleet/reset-audit/{port}", per_bmc("reset-audit"))
    app.router.add_post("/fleet/restore", restore_all)
    app.router.add_get("/fleet/pdu", pdu_state)
    app.router.add_post("/fleet/restore/{port}", per_bmc("restore"))
    return app
