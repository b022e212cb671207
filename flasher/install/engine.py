"""The install engine: the out-of-band steps for one server, from connecting to its BMC to restoring its power.

::

    connect ─▶ read installed versions ─▶ re-check the plan ─▶ remember the host's power state
      ─▶ for each component to install, in install order (safe point before each):
           fetch and verify the image ─▶ (safe point) ─▶ pre-actions ─▶ hand the image to the BMC
           ─▶ follow the BMC's task (a host reset when it waits for one) ─▶ confirm the version ─▶ post-actions
      ─▶ restore the host's power state ─▶ re-read the versions

The engine knows neither the inventory nor the queue: it reports through a :class:`~flasher.install.state.Reporter`
and gets images from an :class:`~flasher.install.state.ImageSource`; the service's runner
(:mod:`flasher.install.runner`) and ``flasher install`` give it theirs.

Rules that keep a server and its task understandable whatever happens:

* **Fenced.** ``reporter.fence()`` before every step that writes to the BMC (install, power, BMC reset), and at
  least every second while a BMC task is followed; an install that takes more than one request gets the fence
  with it (``keep_going``: a Supermicro X13 verifies the upload, for minutes, before its ``StartUpdate``); on
  :class:`~flasher.task.fence.LeaseLostError` the engine stops at once and writes nothing more, not even the
  host's power (the next owner restores it from ``initialPowerState``). Outcome ``lost``.
* **Safe points.** A cancel, a replaced attribute or a shutdown is acted on only before a component starts,
  once its image is fetched (before anything is done to the BMC for it), or during a download: never while a
  BMC flashes. The host's power is then restored and the outcome is ``cancelled``, ``replaced`` or
  ``released``.
* **One failure stops the rest.** Install order encodes dependencies (the BMC before the BIOS, the BIOS before
  devices), so after a failed component the later ones are not attempted; they stay ``pending`` saying why, and
  the task ends ``failed`` with the component's error. Running the task again skips what is already installed.
* **Refusals before anything.** A component the re-checked plan refuses (a downgrade without ``force``, an
  incomparable version) or that the BMC does not certainly report fails the task before anything is installed.
* **Resumed components.** A component an earlier attempt had started (``active`` in the attribute) is not
  installed blindly: the engine follows the BMC task that attempt recorded (or, when none was recorded, the
  BMC's firmware installs under way, as below), re-reads the version, and installs only when the BMC does not
  report the target; on a BMC that stages such an image until a host reset (HPE System ROM), an old version after
  the earlier attempt's task is activated (:meth:`InstallEngine._activate_staged`) rather than installed a second
  time. A component an earlier attempt installed stays installed.
* **Written ahead.** Before an install request is sent, the attribute records it (``bmcTask``
  :data:`~flasher.install.state.SENDING`) and the engine waits for that write to land (:meth:`Reporter.persist
  <flasher.install.state.Reporter.persist>`); not landed, nothing is sent and the component fails. So a worker that
  takes the task over knows which install under way may be its own.
* **One install at a time on a BMC; never one of someone else's applied.** Before any other component is
  installed, the BMC's firmware installs that have not ended are listed. One this task may have sent (its task
  recorded, or a write-ahead whose task never was: an attempt that lost its lease in between) is followed to its
  end first, the same way (a host reset applies one waiting for it), and the version re-read. One flasher did
  not send (an operator's own staged firmware) is waited for, never helped: no host reset, no StartUpdate; one
  waiting to be applied fails the component saying what to do.
* **Dry run.** Connect, read the versions, re-check and report the plan; nothing on the BMC changes. It
  succeeds only where the real run would start: for each component to install, the image is allowed by the
  store's rules, its checksum known, and it is cached or its server answers; the BMC has an UpdateService with
  an install method and an apply time for it. Otherwise the component and the run fail saying why.
* **Host off when asked.** With ``host_off`` (the task's ``requireHostPoweredOff``, conditionorc's
  ``require_host_powered_off``) the host is shut down (gracefully, forced when it does not stop in time) before
  each component's pre-actions and install, so nothing is flashed under a running host, even after an install
  that powered it on to apply itself; the power it had at the start is restored at the end as always. A BMC that
  installs a component only under a host that is off (OpenBMC's BIOS, :meth:`~flasher.bmc.BMC.needs_host_off`)
  gets the same shutdown for that component.
* **Staged is not installed.** On a BMC that reports an image done once it is only staged (HPE's System ROM,
  :meth:`~flasher.bmc.BMC.stages_until_host_reset`) the version is read back after the task; while it is still
  the old one the host is reset to activate it, or, with ``bmc.staged_firmware: wait``, a reboot by someone
  else is waited for (up to the install step's timeout). Success always comes from the version read back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from loguru import logger

from flasher.bmc import (
    BMC,
    BMCComponent,
    BMCError,
    BMCInterruptedError,
    BMCNotSupportedError,
    BMCRequestUnansweredError,
    BMCTaskFailedError,
    BMCTimeoutError,
    BMCUnreachableError,
    TaskHandle,
    TaskProgress,
)
from flasher.bmc.inventory import find_component, versions_match
from flasher.config import Settings
from flasher.install.actions import OFF, final_power, normal_power, ordered, post_actions_to_run, restore_action
from flasher.install.matching import match_components
from flasher.install.plan import Decision, InstallPlan, recheck
from flasher.install.power import HostPower
from flasher.install.state import (
    SENDING,
    EngineResult,
    ImageSource,
    InstallState,
    ItemState,
    PriorItem,
    Reporter,
    StopReason,
)
from flasher.install.steps import Steps
from flasher.store.store import CachedImage, StoreError
from flasher.store.urls import display_url
from flasher.task.fence import LeaseLostError
from flasher.task.model import ComponentStatus, FirmwareAction
from flasher.task.run import Outcome

_MIB = 1024 * 1024
#: Seconds between lease checks while a BMC task is followed, and between download progress reports.
FENCE_EVERY = 1.0
DOWNLOAD_REPORT_EVERY = 2.0

#: How the plan line counts each (status, resumed) after the re-check.
_PLAN_WORDS: dict[tuple[ComponentStatus, bool], str] = {
    (ComponentStatus.PENDING, False): "to install",
    (ComponentStatus.ACTIVE, True): "to resume",
    (ComponentStatus.INSTALLED, False): "installed by an earlier attempt",
    (ComponentStatus.SKIPPED, False): "skipped",
    (ComponentStatus.FAILED, False): "refused",
}

_WHY: dict[StopReason, str] = {
    StopReason.CANCEL: "the task was cancelled",
    StopReason.REPLACED: "the attribute now holds another request",
    StopReason.SHUTDOWN: "flasher is shutting down; the task goes back to the queue",
}


class NotRecordedError(Exception):
    """The write-ahead of an install (``bmcTask`` :data:`~flasher.install.state.SENDING`) did not land in the
    attribute: the install is not sent (the component fails with this message)."""


class _NotOursError(Exception):
    """A firmware install flasher did not send waits on the BMC to be applied (a host reset, or StartUpdate); the
    component fails with this message, nothing being done for it."""


class _StoppedError(Exception):
    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason.value)
        self.reason = reason


@dataclass
class _Every:
    """True at most once per ``seconds`` (monotonic), the first call included."""

    seconds: float
    last: float = float("-inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


def progress_text(version: str, progress: TaskProgress) -> str:
    """The status line for one reading of the BMC task: ``installing 2.7.3: Running 40%``."""
    percent = f" {progress.percent}%" if progress.percent is not None else ""
    if progress.state == "Offline":
        return f"installing {version}: the BMC is not answering (restarting into the new firmware?){percent}"
    if progress.awaiting_reset:
        return f"installing {version}: {progress.state}, waiting for a host reset"
    return f"installing {version}: {progress.state}{percent}"


class InstallEngine:
    """Runs the install steps of ``plan`` on one BMC; :meth:`run` returns an :class:`EngineResult`.

    ``connect()`` opens the BMC (its :class:`~flasher.bmc.BMCUnreachableError` is retried under the ``connect``
    policy; anything else it raises that is not a :class:`~flasher.bmc.BMCError`, e.g. an inventory error
    fetching credentials, propagates). ``prior``: what the attribute says about each component from an earlier
    attempt (:func:`flasher.install.attribute.prior_items`); ``initial_power``: the host's power state an
    earlier attempt recorded. ``vendor`` labels the step metrics. ``sleep`` is the wait between retries.
    ``host_off``: power the host off before each component (the module docstring).
    """

    def __init__(
        self,
        plan: InstallPlan,
        *,
        connect: Callable[[], BMC],
        images: ImageSource,
        reporter: Reporter,
        settings: Settings,
        dry_run: bool = False,
        prior: Mapping[str, PriorItem] | None = None,
        initial_power: str | None = None,
        vendor: str = "unknown",
        sleep: Callable[[float], None] = time.sleep,
        host_off: bool = False,
    ) -> None:
        self.plan = plan
        self.host_off = host_off
        self.connect = connect
        self.images = images
        self.reporter = reporter
        self.dry_run = dry_run
        self.prior = dict(prior or {})
        self.steps = Steps(settings, vendor=vendor, sleep=sleep)
        self.state = InstallState.of(plan, initial_power)
        self._matched: dict[str, BMCComponent] = {}
        self._post_run: list[FirmwareAction] = []
        self._fence_due = _Every(FENCE_EVERY)

    # -- the run ------------------------------------------------------------------------------------------------

    def run(self) -> EngineResult:
        """Run every step (module docstring). Never raises for BMC or image errors: they end in the result."""
        try:
            return self._run()
        except LeaseLostError as exc:
            logger.warning("lease lost; stopping now and writing nothing more: {}", exc)
            return EngineResult(Outcome.LOST, f"stopped: {exc}", str(exc), self.state)

    def _run(self) -> EngineResult:
        # A BMC that an earlier attempt was flashing may be restarting into its new firmware: wait for it as
        # long as a BMC may be away while it flashes itself (bmc.offline_grace), not just the connect policy.
        resuming = any(p.status is ComponentStatus.ACTIVE for p in self.prior.values())
        patience = self.steps.settings.bmc.offline_grace if resuming else None
        try:
            bmc = self.steps.run("connect", self.connect, transient=(BMCUnreachableError,), patience=patience)
        except BMCUnreachableError as exc:
            return EngineResult(Outcome.RETRY, f"BMC unreachable: {exc}", f"BMC unreachable: {exc}")
        except BMCError as exc:
            return EngineResult(Outcome.FAILED, f"cannot use the BMC: {exc}", f"cannot use the BMC: {exc}")
        with bmc:
            return self._with_bmc(bmc)

    def _with_bmc(self, bmc: BMC) -> EngineResult:
        self.reporter.report(self.state, f"connected to the BMC at {bmc.base_url}")
        try:
            components = self.steps.run("read_versions", bmc.firmware_inventory, transient=(BMCUnreachableError,))
        except BMCUnreachableError as exc:
            return EngineResult(Outcome.RETRY, f"BMC unreachable: {exc}", f"BMC unreachable: {exc}", self.state)
        except BMCError as exc:
            return self._result(Outcome.FAILED, f"cannot read the installed firmware: {exc}")
        self._recheck(components)
        refusal = self._refusal()
        if self.dry_run:
            return self._dry_run(bmc, refusal)
        if refusal is not None:
            return self._result(Outcome.FAILED, refusal)
        todo = [s for s in self.state.items if s.status in (ComponentStatus.PENDING, ComponentStatus.ACTIVE)]
        if not todo:
            return self._result(Outcome.SUCCESS)
        power = HostPower(bmc, self.steps)
        self._remember_power(power)
        outcome, error = self._install_all(bmc, power, todo)
        power_error = self._restore_power(power)
        if power_error is not None and outcome is Outcome.SUCCESS:
            outcome, error = Outcome.FAILED, power_error
        self._refresh_versions(bmc)
        return self._result(outcome, error)

    # -- versions and the plan ----------------------------------------------------------------------------------

    def _recheck(self, components: list[BMCComponent]) -> None:
        """Pair the plan with the BMC's components, re-decide it on their versions, and take over what an
        earlier attempt did."""
        self._matched = match_components(self.plan.items, components)
        self.plan = recheck(self.plan, {uuid: c.version for uuid, c in self._matched.items()})
        self.state.plan = self.plan
        items = []
        for item in self.plan.items:
            state = ItemState.planned(item)
            prior = self.prior.get(item.component_uuid)
            if item.component_uuid not in self._matched:
                if item.decision is Decision.INSTALL:
                    state.status = ComponentStatus.FAILED
                    state.message = (
                        f"the BMC reports no {item.component} that is certainly this one (name"
                        f" {item.component_name!r}, serial {item.component_serial!r}); not installing"
                    )
            elif prior is not None:
                state.bmc_task = prior.bmc_task
                at_target = versions_match(state.installed_version, item.version)
                if prior.status is ComponentStatus.INSTALLED and at_target:
                    state.status = ComponentStatus.INSTALLED
                    state.message = f"installed {item.version} by an earlier attempt (the BMC reports it)"
                elif prior.status is ComponentStatus.ACTIVE and item.decision is not Decision.REFUSE:
                    state.status = ComponentStatus.ACTIVE
                    state.resume = True
                    state.message = "started by an earlier attempt; looking at what it left"
            items.append(state)
        self.state.items = items
        self.reporter.report(self.state, f"checked against the BMC's versions: {self._plan_line()}")

    def _plan_line(self) -> str:
        """``1 to install, 1 to resume, 2 skipped (bios 1.4a → 1.5a, bmc 01.02.14 → 01.02.20)``."""
        counts = {what: 0 for what in _PLAN_WORDS.values()}
        for state in self.state.items:
            what = _PLAN_WORDS.get((state.status, state.resume), state.status.value)
            counts[what] = counts.get(what, 0) + 1
        line = ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "nothing planned"
        changes = ", ".join(
            f"{self.state.label(s)} {s.installed_version or '?'} → {s.item.version}"
            for s in self.state.items
            if s.status in (ComponentStatus.PENDING, ComponentStatus.ACTIVE)
        )
        return line + (f" ({changes})" if changes else "")

    def _refusal(self) -> str | None:
        refused = [
            f"{self.state.label(s)}: {s.message}" for s in self.state.items if s.status is ComponentStatus.FAILED
        ]
        return "refused: " + "; ".join(refused) if refused else None

    def _dry_run(self, bmc: BMC, refusal: str | None) -> EngineResult:
        """Say what the real run would do, and succeed only where it would start: for each component to install,
        the image is allowed, its checksum known and it is cached or its server answers
        (:meth:`~flasher.install.state.ImageSource.check`), and the BMC has an UpdateService with an install
        method and apply time for it (:meth:`~flasher.bmc.BMC.check_install`). Nothing is downloaded and nothing
        is sent to the BMC but reads."""
        would, cannot = [], []
        for state in self.state.items:
            if state.status is not ComponentStatus.PENDING:
                continue
            label = self.state.label(state)
            problem, how = self._preflight(bmc, state)
            if problem is not None:
                state.status = ComponentStatus.FAILED
                state.message = f"dry run: the install could not start: {problem}"
                cannot.append(f"{label}: {problem}")
                continue
            state.message = f"dry run: would install ({state.message}; {how})"
            would.append(f"{label} {state.installed_version or '?'} → {state.item.version}")
        problems = [p for p in (refusal, f"the install could not start: {'; '.join(cannot)}" if cannot else None) if p]
        if problems:
            error = "dry run: " + "; ".join(problems)
            self.reporter.report(self.state, error)
            return self._result(Outcome.FAILED, error)
        summary = "dry run: " + (f"would install {', '.join(would)}" if would else "nothing to install")
        summary += "; nothing was changed on the BMC"
        self.reporter.report(self.state, summary)
        return self._result(Outcome.SUCCESS, summary=summary)

    def _preflight(self, bmc: BMC, state: ItemState) -> tuple[str | None, str]:
        """(why the real run could not start this component, or ``None``; how it would install it)."""
        try:
            found = self.images.check(state.item)
        except StoreError as exc:
            return str(exc), ""
        try:
            method, apply_time = self.steps.run(
                "read_versions",
                lambda: bmc.check_install(self._matched[state.key], pull_scheme=self.images.pull_scheme()),
                component=state.item.component,
                transient=(BMCUnreachableError,),
            )
        except BMCError as exc:
            return str(exc), ""
        how = f"by {method.replace('_', ' ')}" + (f", apply time {apply_time}" if apply_time else "")
        return None, f"image: {found}; {how}"

    def _refresh_versions(self, bmc: BMC) -> None:
        """The installed versions at the end (best effort: what gets recorded in the inventory): the last
        reading when no install or BMC reset came after it (the last component's read-back), else read again."""
        try:
            components = bmc.firmware_inventory(reuse=True)
        except BMCError as exc:
            logger.warning("could not re-read the installed versions at the end: {}", exc)
            return
        for state in self.state.items:
            wanted = self._matched.get(state.key)
            found = find_component(components, wanted) if wanted is not None else None
            if found is not None:
                state.installed_version = found.version
                self._matched[state.key] = found

    def _result(self, outcome: Outcome, error: str | None = None, *, summary: str | None = None) -> EngineResult:
        versions = {
            s.key: s.installed_version for s in self.state.items if s.key in self._matched and s.installed_version
        }
        counts = self.state.counts()
        if summary is None:
            summary = {
                Outcome.SUCCESS: counts,
                Outcome.CANCELLED: f"cancelled at a safe point: {counts}",
                Outcome.RELEASED: f"stopped for shutdown at a safe point: {counts}",
                Outcome.REPLACED: f"stopped at a safe point, the attribute holds another request: {counts}",
            }.get(outcome, error or counts)
        return EngineResult(outcome, summary, error, self.state, versions)

    # -- power --------------------------------------------------------------------------------------------------

    def _remember_power(self, power: HostPower) -> None:
        if self.state.initial_power is not None:
            self.reporter.report(
                self.state, f"host power was {self.state.initial_power} when the task started (an earlier attempt)"
            )
            return
        try:
            self.state.initial_power = power.state(recent=True)  # as read at connect, when nothing was sent since
        except BMCError as exc:
            self.reporter.report(self.state, f"host power state unknown ({exc}); it will not be restored")
            return
        self.reporter.report(self.state, f"host power is {self.state.initial_power}")

    def _restore_power(self, power: HostPower) -> str | None:
        """Bring the host back to the power state it should end in; returns an error line, or ``None``."""
        target = final_power(self.state.initial_power, self._post_run)
        if target is None:
            return None
        try:
            action = restore_action(power.state(), target)
            if action is None:
                return None
            self.reporter.fence()
            self.reporter.report(self.state, f"restoring host power to {target}")
            power.set(action)
        except BMCError as exc:
            error = f"host power not restored to {target}: {exc}"
            self.reporter.report(self.state, error)
            return error
        self.reporter.report(self.state, f"host power restored to {target}", replace_last=True)
        return None

    # -- components ---------------------------------------------------------------------------------------------

    def _install_all(self, bmc: BMC, power: HostPower, todo: list[ItemState]) -> tuple[Outcome, str | None]:
        for index, state in enumerate(todo):
            reason = self.reporter.stop_reason()
            try:
                if reason is not None:
                    raise _StoppedError(reason)
                installed = self._install_item(bmc, power, state)
            except _StoppedError as stop:
                self._leave(todo[index:], stop.reason)
                return stop.reason.outcome, None
            if not installed:
                label = self.state.label(state)
                rest = todo[index + 1 :]
                for other in rest:
                    other.status = ComponentStatus.PENDING
                    other.message = f"not attempted: the install stopped after {label} failed"
                if rest:
                    self.reporter.report(self.state, f"not installing the other {len(rest)} component(s)")
                return Outcome.FAILED, f"{label}: {state.message}"
        return Outcome.SUCCESS, None

    def _leave(self, items: list[ItemState], reason: StopReason) -> None:
        """Mark ``items`` not installed because of ``reason`` (a resumed one keeps its earlier attempt's status,
        so the next attempt still looks at what it left)."""
        for state in items:
            if not state.resume:
                state.status = ComponentStatus.PENDING
            state.message = f"not installed: {_WHY[reason]}"
        self.reporter.report(self.state, f"stopping at a safe point: {_WHY[reason]}")

    def _install_item(self, bmc: BMC, power: HostPower, state: ItemState) -> bool:
        """Install one component; ``True`` when installed, ``False`` when it failed (its message says why)."""
        item, label = state.item, self.state.label(state)
        component = self._matched[state.key]
        state.status = ComponentStatus.ACTIVE
        self.reporter.report(
            self.state,
            f"installing {item.version} (installed: {state.installed_version or 'unknown'})",
            component=label,
        )
        confirmed = False
        try:
            if state.resume:
                done, host_reset = self._resume(bmc, power, state, component)
                if done:
                    confirmed = True
                    self._post_actions(power, state, host_reset)
                    return self._installed(state, "by the earlier attempt's BMC task", replace=False)
                state.resume = False
            elif unfinished := self._unfinished(bmc, state):
                done, host_reset = self._resume(bmc, power, state, component, handles=unfinished)
                if done:
                    confirmed = True
                    self._post_actions(power, state, host_reset)
                    return self._installed(state, "by a BMC task already under way", replace=False)
            image = self._fetch(state)
            reason = self.reporter.stop_reason()
            if reason is not None:
                raise _StoppedError(reason)
            if self.host_off:
                self._power_off(power, state)
            elif bmc.needs_host_off(component):
                self._power_off(power, state, why="the BMC updates it only with the host off")
            for action in ordered(item.pre_actions):
                self._action(power, state, action, "pre-action")
            self.reporter.fence()
            url = self._publish(bmc, state, image)
            try:
                handle = self._start(bmc, state, self._matched[state.key], image, url)
                host_reset = self._follow(bmc, power, state, handle)
                host_reset = self._activate_staged(bmc, power, state) or host_reset
            finally:
                if url is not None:
                    self.images.unpublish(url)
            self._confirm(bmc, state)
            confirmed = True
            ran = self._post_actions(power, state, host_reset)
            return self._installed(state, replace=not ran)
        except BMCInterruptedError as exc:  # keep_going said no: the lease is gone
            raise LeaseLostError(str(exc)) from exc
        except (_StoppedError, LeaseLostError):
            raise
        except (BMCError, StoreError, NotRecordedError) as exc:
            error = str(exc)
        except Exception as exc:  # a bug must not skip the power restore: the component fails, the run goes on
            logger.exception("unexpected error while installing {}", label)
            error = f"internal error: {type(exc).__name__}: {exc}"
        state.status = ComponentStatus.FAILED
        state.message = f"installed {item.version}, but {error}" if confirmed else error
        self.reporter.report(self.state, f"failed: {state.message}", component=label)
        return False

    def _installed(self, state: ItemState, how: str = "", *, replace: bool) -> bool:
        """Mark ``state`` installed; its message replaces the previous line (``confirming ...``) unless
        post-actions wrote lines since."""
        state.status = ComponentStatus.INSTALLED
        state.resume = False
        state.message = f"installed {state.item.version}" + (f" {how}" if how else "") + " (confirmed by the BMC)"
        self.reporter.report(self.state, state.message, component=self.state.label(state), replace_last=replace)
        return True

    def _action(self, power: HostPower, state: ItemState, action: FirmwareAction, kind: str) -> None:
        label = self.state.label(state)
        self.reporter.fence()
        self.reporter.report(self.state, f"{kind} {action.value}", component=label)
        done = power.run_action(action, state.item.component)
        self.reporter.report(self.state, f"{kind} {action.value}: {done}", component=label, replace_last=True)

    def _power_off(self, power: HostPower, state: ItemState, why: str = "requireHostPoweredOff") -> None:
        """Shut the host down before this component when it is not off (``requireHostPoweredOff``, or ``why``
        the BMC needs it)."""
        if normal_power(power.state()) == OFF:
            return
        label = self.state.label(state)
        self.reporter.fence()
        self.reporter.report(self.state, f"powering the host off first ({why})", component=label)
        reached = power.off(state.item.component)
        self.reporter.report(
            self.state, f"host powered off for the install (power {reached})", component=label, replace_last=True
        )

    def _post_actions(self, power: HostPower, state: ItemState, host_reset: bool) -> int:
        """Run the component's post-actions; returns how many ran."""
        actions = post_actions_to_run(state.item.post_actions, host_reset_done=host_reset)
        for action in actions:
            self._action(power, state, action, "post-action")
            self._post_run.append(action)
        return len(actions)

    def _fetch(self, state: ItemState) -> CachedImage:
        item, label = state.item, self.state.label(state)
        deadline = time.monotonic() + self.steps.timeout("download")
        every = _Every(DOWNLOAD_REPORT_EVERY)
        every.due()  # the first report comes after DOWNLOAD_REPORT_EVERY seconds

        def on_progress(received: int, total: int | None) -> None:
            if not every.due():
                return
            reason = self.reporter.stop_reason()
            if reason is not None:
                raise _StoppedError(reason)
            share = f"{received * 100 // total}% ({received / _MIB:.1f} of {total / _MIB:.1f} MiB)" if total else ""
            text = f"downloading {item.version}: {share or f'{received / _MIB:.1f} MiB'}"
            self.reporter.report(self.state, text, component=label, replace_last=True)

        self.reporter.report(self.state, f"fetching the image {display_url(item.image_url)}", component=label)
        image = self.steps.run(
            "download",
            lambda: self.images.fetch(item, on_progress=on_progress, deadline=deadline),
            component=item.component,
        )
        digest = f"{image.checksum.algorithm}:{image.checksum.hexdigest[:12]}…"
        self.reporter.report(
            self.state, f"image verified ({digest}, {image.size} bytes)", component=label, replace_last=True
        )
        return image

    def _publish(self, bmc: BMC, state: ItemState, image: CachedImage) -> str | None:
        """A URL for the BMC to pull the image from when it offers SimpleUpdate and images can be served."""
        try:
            caps = self.steps.run(
                "read_versions",
                bmc.update_capabilities,
                component=state.item.component,
                transient=(BMCUnreachableError,),
            )
        except BMCNotSupportedError:
            return None  # the install says what is missing
        if not caps.simple_update:
            return None
        item = state.item
        filename = item.filename or item.image_url.rsplit("/", 1)[-1] or f"{item.component}-{item.version}.bin"
        return self.images.publish(image, filename)

    def _start(
        self, bmc: BMC, state: ItemState, component: BMCComponent, image: CachedImage, url: str | None
    ) -> TaskHandle:
        """Hand the image to the BMC. A request that never reached the BMC is sent again under the ``upload``
        policy. A request that went out but got no answer (:class:`~flasher.bmc.BMCRequestUnansweredError`) may have
        started an install, so it is never sent again: the BMC's newest running task is followed instead, and
        without one the component fails, saying so (a re-run re-reads the installed version first)."""
        item = state.item
        unanswered = [False]
        self._write_ahead(state)

        def attempt() -> TaskHandle:
            self.reporter.fence()
            if unanswered[0]:
                running = bmc.running_tasks()
                if running:
                    logger.warning("BMC {}: an install request got no answer; following task {}", bmc.base_url, running)
                    return running[-1]
                raise BMCTaskFailedError(
                    f"the install request for {item.component} {item.version} got no answer and the BMC shows no"
                    " running task: not sent again, because the BMC may have applied it; run the task again to"
                    " re-read the installed version"
                )
            try:
                # The fence goes with the request: a Supermicro X13 verifies the upload (minutes) before StartUpdate.
                return bmc.install(component, image_url=url, image_path=image.path, keep_going=self._fence_holds)
            except BMCRequestUnansweredError:
                unanswered[0] = True
                raise

        try:
            handle = self.steps.run("upload", attempt, component=item.component, transient=(BMCUnreachableError,))
        except BMCError:
            if not unanswered[0]:
                state.bmc_task = None  # refused, or never reached the BMC: nothing of this install is under way
            raise
        state.bmc_task = handle.uri
        self.reporter.report(
            self.state,
            f"installing {item.version} by {handle.method.replace('_', ' ')}: BMC task {handle.uri}",
            component=self.state.label(state),
        )
        return handle

    def _write_ahead(self, state: ItemState) -> None:
        """Record in the attribute that this component's install is about to be sent (``bmcTask``
        :data:`~flasher.install.state.SENDING`), and go on only once that write landed: a worker that takes the
        task over after this one died between sending and recording the BMC's task then knows that an install under
        way may be its own (:meth:`_own`), and one without the record is not. Raises :class:`_StoppedError` (the
        attribute holds another request), :class:`NotRecordedError` (the inventory did not take it in time)."""
        state.bmc_task = SENDING
        if self.reporter.persist(self.state):
            return
        state.bmc_task = None
        reason = self.reporter.stop_reason()
        if reason is not None:
            raise _StoppedError(reason)
        raise NotRecordedError(
            f"the inventory did not take the record of the {state.item.component} install about to be sent (bmcTask"
            f" {SENDING!r}, steps.inventory_write's timeout): not sent, since a worker taking the task over must know"
            " which install under way is its own; run the task again"
        )

    def _own(self, handle: TaskHandle) -> bool:
        """Whether a BMC task under way may be this task's own: its URI is one this task recorded (this attempt's
        or an earlier one's ``bmcTask``), or a component's record says an install was about to be sent whose task
        was never recorded (:data:`~flasher.install.state.SENDING`: the earlier attempt died in between). Every
        other install under way was sent by someone else (an operator staging firmware, another tool)."""
        recorded = {s.bmc_task for s in self.state.items} | {p.bmc_task for p in self.prior.values()}
        return handle.uri in recorded or SENDING in recorded

    def _follow(
        self,
        bmc: BMC,
        power: HostPower,
        state: ItemState,
        handle: TaskHandle,
        *,
        replace_first: bool = True,
        own: bool = True,
    ) -> bool:
        """Follow the BMC's task to its end, resetting the host when the task waits for that; returns whether the
        host was reset. Raises the driver's errors (a failed task, a timeout...).

        ``own`` false: an install flasher did not send (:meth:`_own`). It is waited for, but nothing is done for
        it: no ``StartUpdate`` of a staged upload, no host reset; one that waits to be applied raises
        :class:`_NotOursError` (flasher never resets a host to apply firmware it did not send, nor installs beside
        it).

        Progress lines replace each other, and the first one the line before it (``replace_first``: the line
        naming the BMC task, whose URI is kept in ``bmcTask``); the first one after a host reset keeps the line
        saying the host was reset.
        """
        item, label = state.item, self.state.label(state)
        replace = [replace_first]

        def on_progress(progress: TaskProgress) -> None:
            text = progress_text(item.version, progress)
            if text == state.message:
                return
            state.message = text
            self.reporter.report(self.state, text, component=label, replace_last=replace[0])
            replace[0] = True

        deadline = time.monotonic() + self.steps.timeout("install")
        self.reporter.fence()  # following may write: a Supermicro upload left staged is sent StartUpdate
        with self.steps.timed("install", item.component):
            progress = bmc.wait_for_task(
                handle,
                timeout=self.steps.timeout("install"),
                on_progress=on_progress,
                keep_going=self._keep_going,
                start_staged=own,
            )
            if not progress.awaiting_reset:
                return False
            if not own:
                raise _NotOursError(
                    f"the BMC has a firmware install that flasher did not send waiting to be applied ({handle.uri},"
                    f" {progress.state}: a host reset, or StartUpdate on a Supermicro): not applying it, nor"
                    " installing beside it; apply it (reset the host) or delete that job on the BMC, then request again"
                )
            self.reporter.fence()
            self.reporter.report(
                self.state,
                f"the BMC applies {item.version} at the next host reset: resetting the host",
                component=label,
            )
            replace[0] = False
            # Not waited for: the BMC's task, followed next, says when the reset applied the update.
            power.apply_reset(item.component, wait=False)
            bmc.wait_for_task(
                handle,
                timeout=max(deadline - time.monotonic(), 1.0),
                on_progress=on_progress,
                keep_going=self._keep_going,
                return_on_awaiting_reset=False,
            )
        return True

    def _activate_staged(
        self, bmc: BMC, power: HostPower, state: ItemState, components: list[BMCComponent] | None = None
    ) -> bool:
        """A BMC that may report an install done once the image is only staged (HPE System ROM,
        :meth:`~flasher.bmc.BMC.stages_until_host_reset`): read the version back (or take ``components``, the
        FirmwareInventory the caller has just read, nothing sent to the BMC since) and, when it is still the old
        one, reset the host to activate it (``bmc.staged_firmware: reset``) or wait for a reboot by someone else
        (``wait``, up to the install step's timeout). Returns whether the host was reset; raises
        :class:`~flasher.bmc.BMCTaskFailedError` when a wait ends without the version."""
        item, label = state.item, self.state.label(state)
        component = self._matched[state.key]
        if not bmc.stages_until_host_reset(component):
            return False
        if components is None:
            components = self.steps.run(
                "read_versions", bmc.firmware_inventory, component=item.component, transient=(BMCUnreachableError,)
            )
        found = find_component(components, component)
        if found is not None and versions_match(found.version, item.version):
            return False
        seen = found.version if found is not None else "no version"
        if self.steps.settings.bmc.staged_firmware == "wait":
            timeout = self.steps.timeout("install")
            self.reporter.report(
                self.state,
                f"the BMC staged {item.version} (it still runs {seen}); it activates at the next host reboot: "
                "waiting for one (bmc.staged_firmware: wait)",
                component=label,
            )
            self.reporter.report(self.state, f"waiting for {item.version} to become active", component=label)
            try:
                with self.steps.timed("install", item.component):
                    self._matched[state.key] = bmc.wait_for_version(component, item.version, timeout=timeout)
            except BMCTimeoutError as exc:
                raise BMCTaskFailedError(
                    f"{item.version} is staged but not active: the host was not rebooted within {timeout:.0f} s "
                    f"(bmc.staged_firmware: wait): {exc}"
                ) from exc
            return False
        self.reporter.fence()
        self.reporter.report(
            self.state,
            f"the BMC staged {item.version} (it still runs {seen}); it activates at the next host reset: "
            "resetting the host",
            component=label,
        )
        reached = power.apply_reset(item.component)
        self.reporter.report(self.state, f"host reset to activate {item.version} (power {reached})", component=label)
        return True

    def _activated(
        self, bmc: BMC, power: HostPower, state: ItemState, components: list[BMCComponent]
    ) -> tuple[bool, bool]:
        """After an earlier attempt's task ended with the old version still running (``components``: the
        FirmwareInventory that said so, just read), on a BMC that only stages such an image until a host reset
        (HPE System ROM: a replica killed between the staging and the reset): the staged-activation path
        (:meth:`_activate_staged`: a host reset, or the wait for a reboot) instead of a second install. Returns
        (the target is confirmed, the host was reset); not confirmed (install again) when the BMC does not stage
        such images, or the reset did not bring the version (nothing was staged after all).
        """
        if not bmc.stages_until_host_reset(self._matched[state.key]):
            return False, False
        host_reset = self._activate_staged(bmc, power, state, components)
        try:
            self._confirm(bmc, state)
        except BMCTimeoutError as exc:
            label = self.state.label(state)
            self.reporter.report(self.state, f"{state.item.version} did not become active: {exc}", component=label)
            return False, host_reset
        return True, host_reset

    def _keep_going(self) -> bool:
        """While a BMC task is followed: False once the lease is lost (checked at most every second)."""
        if not self._fence_due.due():
            return True
        return self._fence_holds()

    def _fence_holds(self) -> bool:
        """The fence checked now: False once the lease is lost (the driver then sends nothing more)."""
        try:
            self.reporter.fence()
        except LeaseLostError:
            return False
        return True

    def _confirm(self, bmc: BMC, state: ItemState) -> None:
        item = state.item
        self.reporter.report(
            self.state,
            f"confirming {item.version}: reading the version back",
            component=self.state.label(state),
            replace_last=True,
        )
        with self.steps.timed("confirm", item.component):
            fresh = bmc.wait_for_version(self._matched[state.key], item.version, timeout=self.steps.timeout("confirm"))
        state.installed_version = fresh.version
        self._matched[state.key] = fresh

    def _unfinished(self, bmc: BMC, state: ItemState) -> list[TaskHandle]:
        """The firmware installs under way on the BMC, before a component is installed or resumed without a
        recorded task.

        A BMC takes one install at a time: one still under way must end before another is sent. It is this task's
        own when :meth:`_own` says so (an attempt that died after sending its install, before the attribute
        recorded the BMC's task: its write-ahead is there), and is then followed as any install of flasher's (a host
        reset applies it). Any other was sent by someone else (an operator's own staged firmware): it is waited
        for, never helped, and one waiting to be applied fails the component (:meth:`_follow`). A BMC that cannot
        list its tasks (other than unreachable) is not held to it: that is said, and the install goes on.

        Only firmware installs are followed: tasks whose ``Payload.TargetUri`` is one of the UpdateService's install
        targets (Redfish Task.v1_3 ``Payload``). Any other task (a BIOS settings job, a job of another tool, a
        task whose BMC does not say what started it) is named in a message and left alone: following it could
        reset the host to apply a change nobody asked flasher for."""
        try:
            running = self.steps.run(
                "read_versions", bmc.running_tasks, component=state.item.component, transient=(BMCUnreachableError,)
            )
        except BMCUnreachableError:
            raise
        except BMCError as exc:
            logger.warning("BMC {}: cannot list its tasks before installing: {}", bmc.base_url, exc)
            return []
        found = [h for h in running if h.method != "unknown"]
        others = [h.uri for h in running if h.method == "unknown"]
        label = self.state.label(state)
        if others:
            self.reporter.report(
                self.state,
                f"the BMC has {len(others)} other task(s) under way, not firmware installs as far as it says"
                f" ({', '.join(others)}): left alone",
                component=label,
            )
        ours = [h.uri for h in found if self._own(h)]
        theirs = [h.uri for h in found if not self._own(h)]
        if ours:
            self.reporter.report(
                self.state,
                f"the BMC has {len(ours)} install(s) under way that this task sent and did not record"
                f" ({', '.join(ours)}): following them to their end first (never two installs at once)",
                component=label,
            )
        if theirs:
            self.reporter.report(
                self.state,
                f"the BMC has {len(theirs)} install(s) under way that flasher did not send ({', '.join(theirs)}):"
                " waiting for them to end first, doing nothing for them (never two installs at once)",
                component=label,
            )
        return found

    def _resume(
        self,
        bmc: BMC,
        power: HostPower,
        state: ItemState,
        component: BMCComponent,
        *,
        handles: list[TaskHandle] | None = None,
    ) -> tuple[bool, bool]:
        """Look at what an earlier attempt left for this component: follow its BMC task (``handles``, found under
        way before a component no attempt had started; else the one it recorded; else the BMC's installs under way,
        :meth:`_unfinished`) and re-read the version. Returns (installed, host was reset).

        Only this task's own installs (:meth:`_own`) are helped to their end (host reset, StartUpdate); one sent by
        someone else is waited for, and fails the component when it waits to be applied."""
        item, label = state.item, self.state.label(state)
        under_way = handles is not None
        if handles is None:
            if state.bmc_task and state.bmc_task != SENDING:
                handles = [TaskHandle(uri=state.bmc_task, method="unknown")]
            else:
                handles = self._unfinished(bmc, state)
        host_reset = False
        followed_own = False
        for handle in handles:
            own = self._own(handle)
            followed_own = followed_own or own
            whose = ("already under way" if under_way else "of an earlier attempt") if own else "flasher did not send"
            self.reporter.report(self.state, f"following BMC task {handle.uri} {whose}", component=label)
            try:
                host_reset = self._follow(bmc, power, state, handle, replace_first=False, own=own) or host_reset
            except _NotOursError as exc:
                raise BMCTaskFailedError(str(exc)) from None  # this component fails saying why; nothing was sent
            except BMCTaskFailedError as exc:
                if own and not under_way:
                    raise
                # Another install that failed on its own: it has ended, which is all this one waited for.
                self.reporter.report(self.state, f"BMC task {handle.uri} ended without success: {exc}", component=label)
        components = self.steps.run(
            "read_versions", bmc.firmware_inventory, component=item.component, transient=(BMCUnreachableError,)
        )
        found = find_component(components, component)
        state.installed_version = found.version if found is not None else None
        if found is not None:
            self._matched[state.key] = found
        if found is not None and versions_match(found.version, item.version):
            return True, host_reset
        if not under_way and followed_own:
            done, reset = self._activated(bmc, power, state, components)
            if done:
                return True, reset or host_reset
            host_reset = reset or host_reset
        after = "those tasks" if under_way or not followed_own else "the earlier attempt"
        self.reporter.report(
            self.state,
            f"the BMC reports {state.installed_version or 'no version'} after {after}: installing",
            component=label,
        )
        state.bmc_task = None
        return False, host_reset
