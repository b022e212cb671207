"""The :class:`BMC` driver: one object per BMC, used by the install worker and server control."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import ParamSpec, TypeVar

from loguru import logger
from pydantic import SecretStr

from flasher.bmc import hardware, inventory, power, quirks, taskmonitor
from flasher.bmc.errors import BMCAuthError, BMCError, BMCNotSupportedError, BMCTimeoutError, BMCUnreachableError
from flasher.bmc.install import send_json, start_install, task_uri_from_response
from flasher.bmc.models import BMCComponent, SystemIdentity, TaskHandle, TaskProgress, UpdateCapabilities
from flasher.bmc.quirks import hpe, openbmc, supermicro
from flasher.bmc.session import Connection, ResponseHook
from flasher.bmc.systems import SystemChoice, select_system
from flasher.bmc.updateservice import UpdateService, apply_time_for, choose_method, read_update_service
from flasher.config import BMCSettings
from flasher.metrics import BMC_ERRORS

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _counted(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Count each :class:`BMCError` leaving a public method once in ``flasher_bmc_errors_total``."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except BMCError as exc:
            if not getattr(exc, "_counted", False):
                BMC_ERRORS.labels(error=type(exc).__name__).inc()
                exc._counted = True  # type: ignore[attr-defined]
            raise

    return wrapper


class BMC:
    """A Redfish BMC, over sushy. Use as a context manager (``with BMC(...) as bmc:``) or call :meth:`close`.

    ``address``: ``host``, ``host:port`` or a URL (``https://host:port``); the scheme comes from
    ``settings.scheme`` when absent. The constructor connects and checks the credentials. ``system``: how to
    recognise the server's System when the BMC lists several (its serial or UUID; :mod:`flasher.bmc.systems`);
    without a match every operation that needs the System raises :class:`~flasher.bmc.systems.SeveralSystemsError`
    (a :class:`~flasher.bmc.errors.BMCNotSupportedError`) with one message: the firmware inventory, power, boot,
    and so the install. ``response_hooks``: requests response hooks on every HTTP session with the BMC, to
    observe (count) the requests sent (:class:`~flasher.bmc.session.Connection`).

    Every error is a :class:`~flasher.bmc.errors.BMCError` carrying the BMC's own messages:
    :class:`~flasher.bmc.errors.BMCUnreachableError` (no answer, TLS failure, 5xx),
    :class:`~flasher.bmc.errors.BMCAuthError` (401/403), :class:`~flasher.bmc.errors.BMCNotSupportedError` (the BMC
    lacks a resource, action, method or value), :class:`~flasher.bmc.errors.BMCTaskFailedError`,
    :class:`~flasher.bmc.errors.BMCTimeoutError`, :class:`~flasher.bmc.errors.BMCInterruptedError`. Bad arguments raise
    ``ValueError`` naming the argument.
    """

    @_counted
    def __init__(
        self,
        address: str,
        username: str,
        password: SecretStr | str,
        *,
        settings: BMCSettings,
        system: SystemIdentity | None = None,
        response_hooks: Sequence[ResponseHook] = (),
    ) -> None:
        self.settings = settings
        self._conn = Connection(address, username, password, settings, response_hooks=response_hooks)
        self._service: UpdateService | None = None
        self._identity = system or SystemIdentity()
        self._system: SystemChoice | None = None
        self._system_known = False
        self._vendor: str | None = None
        #: The last full FirmwareInventory reading, until something is sent that may change what it says.
        self._last_inventory: list[BMCComponent] | None = None
        #: Whether :attr:`_service` was read since the last install request (an install may change it).
        self._service_unused = False
        #: When this object last sent something that may change the host's power (monotonic s).
        self._power_sent = float("-inf")
        self._conn.open()

    def identify_system(self, identity: SystemIdentity) -> None:
        """Recognise the server's System by ``identity`` from now on (the runners pass the inventory's serial and
        UUID of the server once the BMC is open)."""
        self._identity = identity
        self._system, self._system_known = None, False

    def _system_choice(self) -> SystemChoice | None:
        if not self._system_known:  # System paths do not change while a BMC runs, nor when it restarts
            self._system = select_system(self._conn, self._identity)
            self._system_known = True
        return self._system

    def _system_path(self) -> str | None:
        choice = self._system_choice()
        return choice.path if choice is not None else None

    @_counted
    def system_uri(self) -> str | None:
        """The ``@odata.id`` of the server's System (``None`` when the BMC lists none). Raises
        :class:`~flasher.bmc.systems.SeveralSystemsError` when the BMC lists several and none is certainly the
        server."""
        return self._system_path()

    @property
    def vendor(self) -> str:
        """The BMC's vendor as it answers (:func:`flasher.bmc.quirks.detect_vendor`: ``dell``, ``hpe``,
        ``supermicro``, ``lenovo``, ``openbmc`` or ``unknown``); the Manager is read only when the service root
        names no vendor."""
        if self._vendor is None:
            root = self._conn.root_json()
            vendor = quirks.detect_vendor(root)
            if vendor == quirks.UNKNOWN:
                vendor = quirks.detect_vendor(root, inventory.manager_model(self._conn))
            self._vendor = vendor
        return self._vendor

    def stages_until_host_reset(self, component: BMCComponent) -> bool:
        """Whether a finished install on ``component`` may only be staged until the host resets (HPE System ROM:
        :mod:`flasher.bmc.quirks.hpe`); the caller reads the version back to know."""
        return hpe.stages_until_host_reset(self.vendor, component.slug)

    def needs_host_off(self, component: BMCComponent) -> bool:
        """Whether installing on ``component`` needs the host powered off (OpenBMC BIOS:
        :mod:`flasher.bmc.quirks.openbmc`)."""
        return openbmc.needs_host_off(self.vendor, component.slug)

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` of this BMC."""
        return self._conn.base_url

    def close(self) -> None:
        """Log out and close the HTTP session (best effort: never raises)."""
        self._conn.close()

    def __enter__(self) -> BMC:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- firmware -----------------------------------------------------------------------------------------------
    @_counted
    def firmware_inventory(self, *, reuse: bool = False) -> list[BMCComponent]:
        """The installed firmware components (rules: :mod:`flasher.bmc.inventory`, :mod:`flasher.bmc.classify`).

        ``reuse``: the last reading (this one's or :meth:`wait_for_version`'s) when nothing that may change a
        version was sent since: no install and no BMC reset through this object. A host power change is not
        such a thing here: it applies only what an install staged, and an install clears the reading.
        Raises :class:`BMCNotSupportedError` when the BMC reports no firmware version at all.
        """
        if reuse and self._last_inventory is not None:
            return list(self._last_inventory)
        components = inventory.read_firmware_inventory(self._conn, self._system_choice())
        self._last_inventory = components
        return list(components)

    @_counted
    def read_hardware(self) -> hardware.HardwareSnapshot:
        """The BMC's hardware resources as raw documents (rules: :mod:`flasher.bmc.hardware`); resources the BMC
        lacks are notes in the snapshot. Raises :class:`BMCUnreachableError` / :class:`BMCAuthError`."""
        return hardware.read_hardware(self._conn)

    def _update_service(self) -> UpdateService:
        if self._service is None:
            self._service = read_update_service(self._conn, fresh=False)
            self._service_unused = True
        return self._service

    @_counted
    def update_capabilities(self) -> UpdateCapabilities:
        """What the UpdateService offers (:class:`BMCNotSupportedError` when the BMC has none)."""
        return self._update_service().capabilities

    @_counted
    def install(
        self,
        component: BMCComponent,
        *,
        image_url: str | None = None,
        image_path: Path | None = None,
        method: str = "auto",
        apply_time: str | None = None,
        keep_going: Callable[[], bool] | None = None,
    ) -> TaskHandle:
        """Start installing an image on ``component``; returns the handle of the BMC's task.

        ``method``: ``auto`` (SimpleUpdate when ``image_url`` is given and its scheme is an allowed transfer
        protocol, else multipart push of ``image_path``, else HttpPushUri), or ``simple_update``, ``multipart``,
        ``http_push``. ``apply_time``: ``@Redfish.OperationApplyTime`` (``Immediate``, ``OnReset``,
        ``OnStartUpdateRequest``...), checked against what the BMC advertises. The image is streamed from disk.
        ``keep_going`` (the caller's fence: false once its lease is lost) is asked before every request after the
        first that starts the install (``StartUpdate`` after a push; on a Supermicro X13 also while the upload is
        verified, which may take minutes): false raises :class:`BMCInterruptedError` and nothing more is sent.

        Raises :class:`BMCNotSupportedError` (method, scheme or apply time not offered, naming what is),
        :class:`BMCTaskFailedError` (the BMC refused the request: image rejected, conflicting job),
        :class:`BMCError` (an answer without a task to follow), ``ValueError`` (bad arguments). The request is
        sent once, never retried: on :class:`BMCUnreachableError` the install may or may not have started, so look
        for it with :meth:`running_tasks` and the installed version.
        """
        service = self._service if self._service_unused else None
        if service is not None and image_path is not None:
            try:
                chosen = choose_method(service, method, image_url, True)
            except BMCNotSupportedError:
                chosen = "http_push"  # decided on a fresh reading below
            if chosen == "http_push":
                service = None
        if service is None:
            # HttpPushUri's targets, busy flag and apply time are shared state that other clients change, and an
            # install may change the UpdateService: read it now. SimpleUpdate and the multipart push use the reading
            # of this task (made before this component, no install since), whose targets do not change.
            service = read_update_service(self._conn)
        self._service = service
        self._service_unused = False
        self._last_inventory = None
        self._power_sent = time.monotonic()  # an install may reset or power the host itself
        return start_install(
            self._conn,
            service,
            component,
            image_url=image_url,
            image_path=image_path,
            method=method,
            apply_time=apply_time,
            keep_going=keep_going,
        )

    @_counted
    def check_install(
        self,
        component: BMCComponent,
        *,
        pull_scheme: str | None,
        image_file: bool = True,
        method: str = "auto",
        apply_time: str | None = None,
    ) -> tuple[str, str | None]:
        """What :meth:`install` would do for ``component``, sending nothing (a dry run): ``(install method, apply
        time or None)``, by the same rules (:func:`~flasher.bmc.updateservice.choose_method`,
        :func:`~flasher.bmc.updateservice.apply_time_for`).

        ``pull_scheme``: the scheme of the image URL the BMC would be given (``http`` for flasher's file server),
        ``None`` when it would be given none; ``image_file``: a file could be pushed. Raises what :meth:`install`
        raises before sending: :class:`BMCNotSupportedError` (no UpdateService, no method or apply time that
        fits, naming what the BMC offers), ``ValueError``.
        """
        self._service = read_update_service(self._conn)
        # Only the URL's scheme takes part in the choice (TransferProtocol); the real URL is made at publish time.
        url = f"{pull_scheme}://flasher-file-server/{component.id}" if pull_scheme else None
        chosen = choose_method(self._service, method, url, image_file)
        return chosen, apply_time_for(self._service, chosen, apply_time)

    # -- tasks --------------------------------------------------------------------------------------------------
    @_counted
    def task_progress(self, handle: TaskHandle) -> TaskProgress:
        """One reading of the task (rules: :mod:`flasher.bmc.taskmonitor`). Raises :class:`BMCUnreachableError` /
        :class:`BMCAuthError` when the BMC does not answer or refuses the session."""
        return taskmonitor.read_task(self._conn, handle)

    @_counted
    def wait_for_task(
        self,
        handle: TaskHandle,
        *,
        timeout: float,
        on_progress: Callable[[TaskProgress], None] | None = None,
        keep_going: Callable[[], bool] | None = None,
        return_on_awaiting_reset: bool = True,
        start_staged: bool = True,
    ) -> TaskProgress:
        """Poll the task until it ends, at most ``settings.poll_interval`` s apart (the waits follow its progress:
        :class:`~flasher.bmc.taskmonitor.PollPacer`); returns the last reading.

        Every reading goes to ``on_progress`` (pseudo-state ``Offline`` while the BMC does not answer). Returns
        early, not failed, when the task waits for a host reset (``awaiting_reset``) unless
        ``return_on_awaiting_reset`` is false (use that after resetting the host). A ``Vanished`` task returns
        as succeeded: the caller must confirm with :meth:`wait_for_version` in every case.

        Raises :class:`BMCTaskFailedError` (the task ended in failure, with the BMC's messages),
        :class:`BMCTimeoutError` (``timeout`` s passed), :class:`BMCUnreachableError` (no good answer for
        ``settings.offline_grace`` s),
        :class:`BMCInterruptedError` (``keep_going`` returned false; checked at least every 0.5 s, and before a
        Supermicro's staged upload is sent ``StartUpdate``).

        ``start_staged``: on a Supermicro, a Verify task left ``Pending`` is sent ``StartUpdate`` first (the caller's
        own upload, whose worker died before it); false for a task the caller did not start, which it must never
        start (it then reads as waiting to be applied).
        """
        # A Supermicro upload staged for StartUpdate: StartUpdate, then its Update task.
        if start_staged and quirks.detect_vendor(self._conn.root_json()) == "supermicro":
            try:
                handle = supermicro.start_staged(
                    self._conn,
                    handle,
                    start_update_target=self._update_service().start_update_target,
                    send_json=send_json,
                    task_uri=task_uri_from_response,
                    keep_going=keep_going,
                )
            except (BMCUnreachableError, BMCAuthError, BMCNotSupportedError) as exc:
                # Not answering (restarting into new firmware?) or no UpdateService: the wait below rides it out.
                logger.debug("BMC {}: not looking for a staged upload: {}", self.base_url, exc)
        return taskmonitor.wait_for_task(
            self._conn,
            handle,
            timeout=timeout,
            poll_interval=self.settings.poll_interval,
            offline_grace=self.settings.offline_grace,
            on_progress=on_progress,
            keep_going=keep_going,
            return_on_awaiting_reset=return_on_awaiting_reset,
        )

    @_counted
    def running_tasks(self) -> list[TaskHandle]:
        """The BMC's tasks that have not ended (to follow after a crash); ``[]`` without a TaskService.

        ``method`` is named from the task's ``Payload.TargetUri`` when it is an install target, else ``unknown``.
        """
        methods: dict[str, str] = {}
        try:
            service = self._update_service()
        except BMCError as exc:
            if isinstance(exc, BMCUnreachableError | BMCAuthError):
                raise
            service = None
        if service is not None:
            caps = service.capabilities
            for uri, method in (
                (service.simple_update_target, "simple_update"),
                (service.start_update_target, "multipart"),  # Supermicro X13's Update task, after StartUpdate
                (caps.multipart_push_uri, "multipart"),
                (caps.http_push_uri, "http_push"),
            ):
                if uri:
                    methods[self._conn.relative(uri).rstrip("/")] = method
        return taskmonitor.running_tasks(self._conn, methods)

    @_counted
    def wait_for_version(self, component: BMCComponent, version: str, *, timeout: float) -> BMCComponent:
        """Re-read the firmware inventory until ``component`` reports ``version``; returns the fresh component.

        The device is found again by identity (Dell FQDD, else member URI; see
        :func:`flasher.bmc.inventory.find_component`). While the BMC restarts (no answer, 5xx, 401) the reads
        are retried with a new session. Raises :class:`BMCTimeoutError` naming the version last seen when ``timeout``
        s pass (e.g. the BMC said Completed but kept the old version).
        """
        deadline = time.monotonic() + timeout
        seen: str | None = "(not read)"
        while True:
            try:
                components = inventory.read_firmware_inventory(self._conn, self._system_choice())
                self._last_inventory = components
                found = inventory.find_component(components, component)
                seen = found.version if found is not None else "(component not listed)"
                if found is not None and inventory.versions_match(found.version, version):
                    logger.info("BMC {}: {} {!r} now reports {}", self.base_url, component.slug, component.id, version)
                    return found
            except (BMCUnreachableError, BMCAuthError) as exc:
                seen = f"(BMC not answering: {exc})"
                self._conn.drop()
            if time.monotonic() >= deadline:
                raise BMCTimeoutError(
                    f"BMC {self.base_url}: {component.slug} {component.name!r} reports {seen} after "
                    f"{timeout:.0f} s, expected {version}"
                )
            time.sleep(min(self.settings.poll_interval, max(deadline - time.monotonic(), 0.01)))

    # -- power, boot, BMC reset ---------------------------------------------------------------------------------
    #: How old a System document read at connect may be to stand for "the power state at the task's start".
    RECENT_POWER_SECONDS = 60.0

    @_counted
    def power_state(self, *, recent: bool = False) -> str:
        """The host's power state now: ``On``, ``Off``, ``PoweringOn``, ``PoweringOff``, or what the BMC says.

        ``recent``: the state the session's connect read (the Systems collection expanded, where the BMC offers
        ``$expand``: :meth:`~flasher.bmc.session.Connection.open`) when it is at most
        :data:`RECENT_POWER_SECONDS` old and nothing that may change the host's power (a power action, an
        install, a BMC reset) was sent through this object since; else read now. For a task's initial power state.
        """
        path = self._system_path()
        if recent and path is not None:
            held = self._conn.held_doc(path.rstrip("/"))
            if held is not None:
                doc, age = held
                state = doc.get("PowerState")
                read_at = time.monotonic() - age
                if isinstance(state, str) and state and age <= self.RECENT_POWER_SECONDS and read_at > self._power_sent:
                    return state
        return power.power_state(self._conn, path)

    @_counted
    def apply_reset(self, *, wait: bool = True, timeout: float = 300.0) -> str:
        """Reset the host so that the BMC applies what waits for a host reset: a warm reset when it is on, power
        on when it is off or powering off (:func:`flasher.bmc.power.apply_reset`; one read of the System). With
        ``wait``, poll until the host reads ``On``. Returns the last state read."""
        self._power_sent = time.monotonic()
        return power.apply_reset(
            self._conn, self._system_path(), wait=wait, timeout=timeout, poll=self.settings.poll_interval
        )

    @_counted
    def set_power(self, action: str, *, wait: bool = True, timeout: float = 300.0) -> str:
        """Power ``action`` (``on``, ``off``, ``soft``, ``cycle``, ``reset``; table in :mod:`flasher.bmc.power`);
        with ``wait``, poll until the host reaches the target state (:class:`BMCTimeoutError` after ``timeout`` s).
        Returns the last state read."""
        self._power_sent = time.monotonic()
        return power.set_power(
            self._conn, self._system_path(), action, wait=wait, timeout=timeout, poll=self.settings.poll_interval
        )

    @_counted
    def set_boot_device(self, target: str, *, persistent: bool = False, uefi: bool = True) -> None:
        """Boot override: ``target`` (``pxe``, ``disk``, ``cdrom``, ``bios``, ``usb``... or a Redfish
        BootSourceOverrideTarget), once or ``persistent``, UEFI or legacy; the target is read back."""
        power.set_boot_device(
            self._conn, self._system_path(), target, persistent=persistent, uefi=uefi, poll=self.settings.poll_interval
        )

    @_counted
    def reset_bmc(self, *, wait: bool = True, timeout: float = 900.0) -> None:
        """Restart the BMC (``Manager.Reset``: GracefulRestart, else ForceRestart); with ``wait``, wait until it
        stops answering and answers again, then log in anew. A reset sent whose answer is lost (the BMC restarts
        while answering) counts as sent; only one that never connected raises :class:`BMCUnreachableError`."""
        self._service = None
        self._last_inventory = None
        self._power_sent = time.monotonic()
        power.reset_bmc(self._conn, wait=wait, timeout=timeout, poll=self.settings.poll_interval)

    @_counted
    def wait_until_reachable(self, timeout: float) -> None:
        """Log in again until the BMC answers (:class:`BMCTimeoutError` after ``timeout`` s)."""
        self._service = None
        power.wait_until_reachable(self._conn, timeout, self.settings.poll_interval)
