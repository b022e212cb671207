"""What a BMC's UpdateService offers, read from its raw JSON (sushy's ``UpdateService`` refuses a service
without ``Actions`` and knows neither ``MultipartHttpPushUri`` nor ActionInfo), and the choice of install method.

Sources (DSP0268 UpdateService schema, DSP0266 "Update service"):

* SimpleUpdate: ``Actions["#UpdateService.SimpleUpdate"]``; allowed transfer protocols from the action's
  ``TransferProtocol@Redfish.AllowableValues`` or, when absent, from its ``@Redfish.ActionInfo`` resource's
  ``TransferProtocol`` parameter (the DMTF mockup does it this way). Whether the action advertises ``Targets``
  (``Targets@Redfish.AllowableValues`` or a ``Targets`` ActionInfo parameter) is recorded, but the install sends
  the targets it resolved either way (:func:`flasher.bmc.install.simple_update`).
* Push: ``MultipartHttpPushUri`` (multipart/form-data with ``UpdateParameters`` and ``UpdateFile``) and
  ``HttpPushUri`` (the raw image; targets through ``HttpPushUriTargets``).
* Apply times: ``MultipartHttpPushUri@Redfish.OperationApplyTimeSupport.SupportedValues``, the SimpleUpdate
  action's ``@Redfish.OperationApplyTimeSupport.SupportedValues``, and
  ``HttpPushUriOptions.HttpPushUriApplyTime.ApplyTime@Redfish.AllowableValues``.
* ``#UpdateService.StartUpdate``: starts images pushed with apply time ``OnStartUpdateRequest``
  (Supermicro X12/X13 and others).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flasher.bmc.errors import BMCError, BMCNotSupportedError
from flasher.bmc.models import INSTALL_METHODS, UpdateCapabilities
from flasher.bmc.session import Connection

_SIMPLE_UPDATE = "#UpdateService.SimpleUpdate"
_START_UPDATE = "#UpdateService.StartUpdate"


@dataclass(frozen=True)
class UpdateService:
    """The parsed UpdateService: the public :class:`UpdateCapabilities` plus what installing needs."""

    uri: str
    capabilities: UpdateCapabilities
    simple_update_target: str | None
    simple_update_takes_targets: bool
    start_update_target: str | None
    http_push_takes_targets: bool
    http_push_targets_busy: bool
    http_push_apply_times: tuple[str, ...]
    #: ``HttpPushUriOptions.HttpPushUriApplyTime.ApplyTime`` as the BMC reports it now (a setting of the whole
    #: UpdateService: it stays as the last client left it), ``None`` when absent.
    http_push_apply_time: str | None = None


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if isinstance(v, str))


def _target(action: Any) -> str | None:
    target = action.get("target") if isinstance(action, dict) else None
    return target if isinstance(target, str) else None


def _supported_apply_times(annotated: Any) -> tuple[str, ...]:
    if not isinstance(annotated, dict):
        return ()
    support = annotated.get("@Redfish.OperationApplyTimeSupport")
    return _strings(support.get("SupportedValues")) if isinstance(support, dict) else ()


def _action_info_parameters(conn: Connection, action: dict[str, Any]) -> dict[str, dict[str, Any]]:
    path = action.get("@Redfish.ActionInfo")
    if not isinstance(path, str):
        return {}
    try:
        info = conn.held(path, action="read the SimpleUpdate ActionInfo")  # what an action takes does not change
    except BMCNotSupportedError:
        return {}
    params = info.get("Parameters")
    if not isinstance(params, list):
        return {}
    return {str(p["Name"]): p for p in params if isinstance(p, dict) and isinstance(p.get("Name"), str)}


def parse_update_service(conn: Connection, doc: dict[str, Any]) -> UpdateService:
    """Parse an UpdateService document (reading the SimpleUpdate ActionInfo when it is needed)."""
    actions = doc.get("Actions") if isinstance(doc.get("Actions"), dict) else {}
    assert isinstance(actions, dict)
    simple = actions.get(_SIMPLE_UPDATE)
    simple = simple if isinstance(simple, dict) and isinstance(simple.get("target"), str) else None
    protocols: tuple[str, ...] = ()
    takes_targets = False
    apply_times: list[str] = []
    if simple is not None:
        protocols = _strings(simple.get("TransferProtocol@Redfish.AllowableValues"))
        takes_targets = "Targets@Redfish.AllowableValues" in simple
        params = _action_info_parameters(conn, simple) if not protocols or not takes_targets else {}
        if not protocols and "TransferProtocol" in params:
            protocols = _strings(params["TransferProtocol"].get("AllowableValues"))
        takes_targets = takes_targets or "Targets" in params
        apply_times.extend(_supported_apply_times(simple))
    multipart = doc.get("MultipartHttpPushUri") if isinstance(doc.get("MultipartHttpPushUri"), str) else None
    apply_times.extend(
        _supported_apply_times(
            {"@Redfish.OperationApplyTimeSupport": doc.get("MultipartHttpPushUri@Redfish.OperationApplyTimeSupport")}
        )
    )
    push = doc.get("HttpPushUri") if isinstance(doc.get("HttpPushUri"), str) else None
    options = doc.get("HttpPushUriOptions")
    push_apply: tuple[str, ...] = ()
    push_apply_now: str | None = None
    if isinstance(options, dict) and isinstance(options.get("HttpPushUriApplyTime"), dict):
        push_apply = _strings(options["HttpPushUriApplyTime"].get("ApplyTime@Redfish.AllowableValues"))
        current = options["HttpPushUriApplyTime"].get("ApplyTime")
        push_apply_now = current if isinstance(current, str) else None
    apply_times.extend(push_apply)
    start = actions.get(_START_UPDATE)
    capabilities = UpdateCapabilities(
        simple_update=simple is not None,
        transfer_protocols=protocols,
        multipart_push_uri=multipart,
        http_push_uri=push,
        apply_times=tuple(dict.fromkeys(apply_times)),
    )
    return UpdateService(
        uri=str(doc.get("@odata.id") or ""),
        capabilities=capabilities,
        simple_update_target=str(simple["target"]) if simple is not None else None,
        simple_update_takes_targets=takes_targets,
        start_update_target=_target(start),
        http_push_takes_targets="HttpPushUriTargets" in doc,
        http_push_targets_busy=doc.get("HttpPushUriTargetsBusy") is True,
        http_push_apply_times=push_apply,
        http_push_apply_time=push_apply_now,
    )


def read_update_service(conn: Connection, *, fresh: bool = True) -> UpdateService:
    """The BMC's UpdateService; :class:`BMCNotSupportedError` when it has none. ``fresh``: read it now (push
    targets and busy flags change), and hold that answer; else the answer the connection holds, when it holds
    one (what it offers: methods, protocols, apply times)."""
    path = conn.link("UpdateService")
    if path is None:
        raise BMCNotSupportedError(f"BMC {conn.base_url} has no UpdateService")
    action = "read the UpdateService"
    if fresh:
        doc = conn.get_json(path, action=action)
        conn.hold(path, doc)
    else:
        doc = conn.held(path, action=action)
    return parse_update_service(conn, doc)


def transfer_protocol(service: UpdateService, image_url: str) -> str | None:
    """The ``TransferProtocol`` for ``image_url``: the allowed value matching its scheme (case-insensitive), the
    scheme in upper case when the BMC does not list allowed values, or ``None`` when the scheme is not allowed."""
    scheme = urlsplit(image_url).scheme.upper()
    if not scheme:
        return None
    allowed = service.capabilities.transfer_protocols
    if not allowed:
        return scheme
    for value in allowed:
        if value.upper() == scheme:
            return value
    return None


def describe(capabilities: UpdateCapabilities) -> str:
    """A one-line summary of the install methods offered, for error messages and the CLI."""
    parts = []
    if capabilities.simple_update:
        protocols = ", ".join(capabilities.transfer_protocols) or "protocols not listed"
        parts.append(f"simple_update ({protocols})")
    if capabilities.multipart_push_uri:
        parts.append(f"multipart ({capabilities.multipart_push_uri})")
    if capabilities.http_push_uri:
        parts.append(f"http_push ({capabilities.http_push_uri})")
    return "; ".join(parts) or "no install method"


def choose_method(service: UpdateService, method: str, image_url: str | None, has_path: bool) -> str:
    """The install method to use.

    ``auto``: SimpleUpdate when ``image_url`` is given and its scheme is an allowed transfer protocol, else
    multipart push when an image file is given and the BMC has ``MultipartHttpPushUri``, else ``HttpPushUri``
    with the image file. An explicit ``method`` must be offered and have its input (``simple_update`` needs
    ``image_url``; the push methods need an image file). Raises :class:`BMCNotSupportedError` naming what the BMC
    offers, ``ValueError`` for an unknown method or missing input.
    """
    caps = service.capabilities
    if method not in ("auto", *INSTALL_METHODS):
        raise ValueError(f"install method {method!r}: use auto, {', '.join(INSTALL_METHODS)}")
    if image_url is None and not has_path:
        raise ValueError("install needs image_url (for SimpleUpdate) or image_path (for a push)")
    url_ok = image_url is not None and caps.simple_update and transfer_protocol(service, image_url) is not None
    if method == "auto":
        if url_ok:
            return "simple_update"
        if has_path and caps.multipart_push_uri:
            return "multipart"
        if has_path and caps.http_push_uri:
            return "http_push"
        given = " and ".join(
            what for what, present in (("an image URL", image_url is not None), ("an image file", has_path)) if present
        )
        raise BMCNotSupportedError(f"no install method of this BMC fits {given}; it offers: {describe(caps)}")
    if method not in caps.methods:
        raise BMCNotSupportedError(f"the BMC does not offer install method {method!r}; it offers: {describe(caps)}")
    if method == "simple_update":
        if image_url is None:
            raise ValueError("install method 'simple_update' needs image_url")
        if not url_ok:
            raise BMCNotSupportedError(
                f"SimpleUpdate does not allow the scheme of {image_url!r}; allowed transfer protocols: "
                f"{', '.join(caps.transfer_protocols)}"
            )
    elif not has_path:
        raise ValueError(f"install method {method!r} needs image_path")
    return method


def apply_time_for(service: UpdateService, method: str, requested: str | None) -> str | None:
    """The ``@Redfish.OperationApplyTime`` to send.

    A ``requested`` value is checked against what the BMC advertises (when it advertises anything; else it is
    sent as given). Without one: ``Immediate`` when allowed or nothing is advertised, else ``OnReset``, else
    ``OnStartUpdateRequest`` (multipart only, followed by ``StartUpdate``); SimpleUpdate and HttpPushUri send
    none unless asked, so the BMC's default applies.
    """
    advertised = service.http_push_apply_times if method == "http_push" else service.capabilities.apply_times
    if requested is not None:
        if advertised and requested not in advertised:
            raise BMCNotSupportedError(
                f"apply time {requested!r} is not offered; the BMC offers {', '.join(advertised)}"
            )
        return requested
    if method != "multipart":
        return None
    for candidate in ("Immediate", "OnReset", "OnStartUpdateRequest"):
        if not advertised or candidate in advertised:
            return candidate
    raise BMCError(f"the BMC offers no apply time flasher can use: {', '.join(advertised)}")
