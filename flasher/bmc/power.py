"""Host power, the boot override, and restarting the BMC itself, through sushy's System and Manager.

Power actions (as metal-toolbox flipflop names them) and the Redfish ``ResetType`` sent, first allowed one
wins (``ResetType@Redfish.AllowableValues``; every value when the BMC does not say):

========  ==============================  ================
action    ResetType                       state waited for
========  ==============================  ================
on        On, ForceOn                     On
off       ForceOff                        Off
soft      GracefulShutdown                Off
cycle     PowerCycle, ForceRestart        On
reset     ForceRestart, PowerCycle        On
========  ==============================  ================

Every function acts on the server's System, whose path the driver chose (:mod:`flasher.bmc.systems`).
``on``/``off``/``soft`` do nothing when the host is already in the target state (iDRAC refuses a ForceOff of an
Off host). ``cycle`` and ``reset`` of a host that is off power it on. The state is read after
``System.refresh()``; a cycle is complete once the host reads ``On`` (a short Off in between may not be seen).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sushy
from loguru import logger

from flasher.bmc.errors import (
    BMCAuthError,
    BMCError,
    BMCNotSupportedError,
    BMCRequestUnansweredError,
    BMCTimeoutError,
    BMCUnreachableError,
    translated,
)
from flasher.bmc.quirks import hpe
from flasher.bmc.session import Connection

POWER_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "on": (("On", "ForceOn"), "On"),
    "off": (("ForceOff",), "Off"),
    "soft": (("GracefulShutdown",), "Off"),
    "cycle": (("PowerCycle", "ForceRestart"), "On"),
    "reset": (("ForceRestart", "PowerCycle"), "On"),
}

#: Boot override targets: flipflop's names (and the Redfish values themselves, any case) → BootSourceOverrideTarget.
BOOT_TARGETS: dict[str, str] = {
    "pxe": "Pxe",
    "disk": "Hdd",
    "hdd": "Hdd",
    "cdrom": "Cd",
    "cd": "Cd",
    "bios": "BiosSetup",
    "biossetup": "BiosSetup",
    "usb": "Usb",
    "floppy": "Floppy",
    "diag": "Diags",
    "diags": "Diags",
    "utilities": "Utilities",
    "uefishell": "UefiShell",
    "uefihttp": "UefiHttp",
    "http": "UefiHttp",
    "sdcard": "SDCard",
    "none": "None",
}


def _member_paths(conn: Connection, key: str) -> list[tuple[str, Any]]:
    path = conn.link(key)
    if path is None:
        raise BMCNotSupportedError(f"BMC {conn.base_url} has no {key}")
    members = conn.get_json(path, action=f"list the BMC's {key}").get("Members")
    out = []
    for member in members if isinstance(members, list) else []:
        if isinstance(member, dict) and isinstance(member.get("@odata.id"), str):
            out.append((str(member["@odata.id"]), member))
    return out


def system(conn: Connection, path: str | None) -> Any:
    """The server's ComputerSystem at ``path`` (as :func:`flasher.bmc.systems.select_system` chose it), freshly
    read (sushy ``System``); :class:`BMCNotSupportedError` when the BMC has none (``path`` is ``None``)."""
    if path is None:
        raise BMCNotSupportedError(f"BMC {conn.base_url} has no System")
    with translated("read the BMC's System"):
        return conn.root.get_system(path)


def manager(conn: Connection) -> Any:
    """The BMC's Manager, freshly read (sushy ``Manager``): the only one, else the first whose ManagerType is
    BMC."""
    paths = _member_paths(conn, "Managers")
    with translated("read the BMC's Manager"):
        if len(paths) == 1:
            return conn.root.get_manager(paths[0][0])
        for path, _ in paths:
            candidate = conn.root.get_manager(path)
            if candidate.json.get("ManagerType") == "BMC":
                return candidate
    raise BMCNotSupportedError(f"BMC {conn.base_url} has {len(paths)} Managers and none of ManagerType BMC")


def power_state(conn: Connection, path: str | None) -> str:
    """The host's ``PowerState`` as the BMC reports it now (``On``, ``Off``, ``PoweringOn``, ``PoweringOff``...)
    for the System at ``path``; the System is read afresh on every call, never from a cache."""
    return _state_of(conn, system(conn, path))


def _state_of(conn: Connection, host: Any) -> str:
    state = host.json.get("PowerState")
    if not isinstance(state, str) or not state:
        raise BMCNotSupportedError(f"BMC {conn.base_url}: the System reports no PowerState")
    return state


def _wait_power(conn: Connection, path: str | None, target: str, timeout: float, poll: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = power_state(conn, path)
        if state == target:
            return state
        if time.monotonic() >= deadline:
            raise BMCTimeoutError(
                f"BMC {conn.base_url}: host power is {state} after {timeout:.0f} s, expected {target}"
            )
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.01)))


def set_power(conn: Connection, path: str | None, action: str, *, wait: bool, timeout: float, poll: float) -> str:
    """Perform power ``action`` (see the module table) on the System at ``path``; returns the power state read
    last."""
    if action not in POWER_ACTIONS:
        raise ValueError(f"power action {action!r}: use {', '.join(POWER_ACTIONS)}")
    candidates, target = POWER_ACTIONS[action]
    host = system(conn, path)
    current = _state_of(conn, host)
    if action in ("cycle", "reset") and current == "Off":
        candidates = POWER_ACTIONS["on"][0]
    elif action in ("on", "off", "soft") and current == target:
        logger.info("BMC {}: host power already {}; {} needs nothing", conn.base_url, current, action)
        return current
    return _send_reset(
        conn, path, host, current, action=action, candidates=candidates, wait=wait, timeout=timeout, poll=poll
    )


def apply_reset(conn: Connection, path: str | None, *, wait: bool, timeout: float, poll: float) -> str:
    """Reset the host of the System at ``path`` so that the BMC applies an update waiting for a host reset: power
    ``reset`` (ForceRestart, else PowerCycle) when it is on, ``on`` when it is ``Off`` or ``PoweringOff`` (booting
    applies it), decided on the one reading of the System that the action needs anyway. Returns the last state
    read (with ``wait``, ``On``; without, the state before)."""
    host = system(conn, path)
    current = _state_of(conn, host)
    action = "on" if current in ("Off", "PoweringOff") else "reset"
    return _send_reset(
        conn,
        path,
        host,
        current,
        action=action,
        candidates=POWER_ACTIONS[action][0],
        wait=wait,
        timeout=timeout,
        poll=poll,
    )


def _send_reset(
    conn: Connection,
    path: str | None,
    host: Any,
    current: str,
    *,
    action: str,
    candidates: tuple[str, ...],
    wait: bool,
    timeout: float,
    poll: float,
) -> str:
    """Send the first allowed of ``candidates`` for ``action`` to ``host`` (read once, state ``current``); with
    ``wait``, poll until the host reads the action's target state."""
    target = POWER_ACTIONS[action][1]
    with translated("read the allowed reset types"):
        allowed = {value.value for value in host.get_allowed_reset_system_values()}
    chosen = next((c for c in candidates if c in allowed), None)
    if chosen is None:
        raise BMCNotSupportedError(
            f"BMC {conn.base_url}: power {action} needs ResetType {' or '.join(candidates)}; "
            f"the BMC allows {', '.join(sorted(allowed)) or 'none'}"
        )
    logger.info("BMC {}: power {} (ResetType {}; host was {})", conn.base_url, action, chosen, current)
    with translated(f"power {action}"):
        host.reset_system(sushy.ResetType(chosen))
    if not wait:
        return current
    return _wait_power(conn, path, target, timeout, poll)


def boot_target(target: str) -> str:
    """The ``BootSourceOverrideTarget`` for ``target`` (a :data:`BOOT_TARGETS` name or a Redfish value)."""
    key = target.strip().lower().replace("-", "").replace("_", "")
    if key in BOOT_TARGETS:
        return BOOT_TARGETS[key]
    for value in sushy.BootSource:
        if value.value.lower() == key:
            return str(value.value)
    raise ValueError(f"boot device {target!r}: use one of {', '.join(sorted(BOOT_TARGETS))}")


def _post_refusal(exc: sushy.exceptions.HTTPError) -> bool:
    """Whether ``exc`` is HPE iLO's ``UnableToModifyDuringSystemPOST`` (the host is in POST)."""
    return exc.status_code == 400 and (
        hpe.is_post_refusal(getattr(exc, "code", None)) or hpe.is_post_refusal(getattr(exc, "extended_info", None))
    )


def _retry_during_post(
    conn: Connection,
    change: Callable[[], Any],
    poll: float,
    *,
    limit: float = hpe.POST_RETRY_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``change``; while the BMC refuses it because the host is in POST (HPE iLO right after a flash or a
    boot: ``UnableToModifyDuringSystemPOST``), run it again every ``poll`` s for up to ``limit`` s, then let the
    refusal through. Other errors pass at once."""
    deadline = clock() + limit
    while True:
        try:
            change()
            return
        except sushy.exceptions.HTTPError as exc:
            if not _post_refusal(exc) or clock() >= deadline:
                raise
            logger.info("BMC {}: the host is in POST; retrying the boot override change", conn.base_url)
        sleep(max(0.01, min(poll, deadline - clock())))


def set_boot_device(
    conn: Connection, path: str | None, target: str, *, persistent: bool, uefi: bool, poll: float = 1.0
) -> None:
    """Set the boot override (sushy ``set_system_boot_options``) of the System at ``path`` and read the target
    back.

    A change refused because the host is in POST (HPE iLO's ``UnableToModifyDuringSystemPOST``, right after a
    flash) is retried every ``poll`` s for up to :data:`flasher.bmc.quirks.hpe.POST_RETRY_SECONDS`.

    Raises :class:`BMCNotSupportedError` when the BMC does not allow the target, :class:`BMCError` when it accepts
    the change but reads back another target (skipped when the System has a ``@Redfish.Settings`` resource,
    where changes apply at the next boot). ``BootSourceOverrideEnabled`` is not checked: sushy-tools, for one,
    always reads back ``Continuous``.
    """
    value = boot_target(target)
    host = system(conn, path)
    enabled = sushy.BootSourceOverrideEnabled.CONTINUOUS if persistent else sushy.BootSourceOverrideEnabled.ONCE
    mode = sushy.BootSourceOverrideMode.UEFI if uefi else sushy.BootSourceOverrideMode.LEGACY
    logger.info("BMC {}: next boot {} ({}, {})", conn.base_url, value, enabled.value, mode.value)
    with translated(f"set the boot device to {value}"):
        _retry_during_post(
            conn, lambda: host.set_system_boot_options(target=sushy.BootSource(value), enabled=enabled, mode=mode), poll
        )
        host.refresh(force=True)
    if "@Redfish.Settings" in host.json:
        return
    boot = host.json.get("Boot")
    got = boot.get("BootSourceOverrideTarget") if isinstance(boot, dict) else None
    # sushy sends UsbCd for Cd to a Supermicro BMC that allows it (virtual media boots only from UsbCd there).
    if got != value and (value, got) != ("Cd", "UsbCd"):
        raise BMCError(f"BMC {conn.base_url} accepted boot device {value} but reads back {got}")


def wait_until_reachable(conn: Connection, timeout: float, poll: float) -> None:
    """Log in again until the BMC answers, for up to ``timeout`` s. Refused credentials count as "not back yet"
    (BMCs answer 401 while their account service starts); :class:`BMCTimeoutError` names the last error."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn.reopen()
            return
        except (BMCUnreachableError, BMCAuthError) as exc:
            if time.monotonic() >= deadline:
                raise BMCTimeoutError(f"BMC {conn.base_url} not reachable after {timeout:.0f} s: {exc}") from exc
            logger.debug("BMC {} not back yet: {}", conn.base_url, exc)
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.01)))


def _same_bmc_session(conn: Connection, probe: str, session_key: str | None) -> bool:
    """True while the BMC answers ``probe`` on the session it had before the reset. A BMC that restarts drops
    its sessions, and sushy then logs in anew, so a new session key also means "it restarted" (a BMC may
    restart between two polls)."""
    try:
        conn.connector.get(probe)
    except (sushy.exceptions.SushyError, OSError):  # no answer, 5xx, or a refused login while it restarts
        return False
    return session_key is None or conn.session_key() == session_key


def reset_bmc(
    conn: Connection, *, wait: bool, timeout: float, poll: float, sleep: Callable[[float], None] = time.sleep
) -> None:
    """``Manager.Reset`` with GracefulRestart (else ForceRestart); when ``wait``, wait until the BMC stops
    answering and then answers again with a new session, ``timeout`` s in all.

    A reset whose connection drops or whose answer times out after it was sent (a BMC may restart before its
    answer is out) counts as sent: the wait goes on as after an answer. Only a reset that never connected
    raises :class:`BMCUnreachableError`.

    Raises :class:`BMCNotSupportedError` when the Manager has no Reset action (sushy raises a plain AttributeError for
    a Manager without ``Actions``) or allows neither restart; :class:`BMCTimeoutError` when the BMC never went away or
    never came back.
    """
    bmc = manager(conn)
    try:
        with translated("read the Manager's reset types"):
            allowed = {value.value for value in bmc.get_allowed_reset_manager_values()}
    except AttributeError:
        raise BMCNotSupportedError(f"BMC {conn.base_url}: the Manager has no actions, so it cannot be reset") from None
    chosen = next((c for c in ("GracefulRestart", "ForceRestart") if c in allowed), None)
    if chosen is None:
        raise BMCNotSupportedError(
            f"BMC {conn.base_url}: Manager.Reset allows {', '.join(sorted(allowed))}, no restart"
        )
    logger.info("BMC {}: resetting the BMC ({})", conn.base_url, chosen)
    session_key = conn.session_key()
    sent = f"accepted {chosen}"
    try:
        with translated("reset the BMC"):
            bmc.reset_manager(sushy.ResetType(chosen))
    except BMCRequestUnansweredError as exc:
        # A BMC may restart before its answer is out: the connection drops, or the answer never comes.
        logger.warning("BMC {}: no answer to {} ({}); it is probably restarting", conn.base_url, chosen, exc)
        sent = f"was sent {chosen} (its answer was lost)"
    if not wait:
        conn.drop()
        return
    deadline = time.monotonic() + timeout
    while _same_bmc_session(conn, bmc.path, session_key):
        if time.monotonic() >= deadline:
            raise BMCTimeoutError(f"BMC {conn.base_url} {sent} but kept answering for {timeout:.0f} s")
        sleep(min(poll, 0.5))
    logger.info("BMC {} went away; waiting for it to come back", conn.base_url)
    conn.drop()
    wait_until_reachable(conn, max(deadline - time.monotonic(), 0.0), poll)
    logger.info("BMC {} is back after the reset", conn.base_url)
