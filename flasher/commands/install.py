"""``flasher install``: install one firmware image through one BMC, at the console, without inventory or queue.

The same steps as the service (:mod:`flasher.install.engine`): connect, read the installed versions, decide
(upgrade; skip when already there; refuse a downgrade or an incomparable version unless ``--force``), remember
the host's power state, fetch and verify the image, pre-actions, hand it to the BMC (SimpleUpdate from a file
server this command starts on ``fileserver.host:port`` when the BMC pulls, else a push), follow the BMC's task
(resetting the host when a BIOS-type update waits for it), confirm the version, post-actions, restore the power.

``--dry-run`` reads and says what would be done, and succeeds only where the real run would start (image allowed,
checksum right, image reachable; an UpdateService with an install method and an apply time for it); nothing is
downloaded and nothing is changed on the BMC.

Progress is printed as it goes. Ctrl-C asks to cancel: the install stops at the next safe point (never in the
middle of a flash) and restores the host's power; a second Ctrl-C aborts at once. Exit status: 0 installed (or
nothing to do), 1 failed, 2 bad arguments, 130 cancelled.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich.markup import escape
from rich.status import Status

from flasher import redact
from flasher.bmc import BMC, BMCComponent, BMCError
from flasher.checksum import Checksum, ChecksumError
from flasher.commands.bmc import (
    InsecureOption,
    PasswordFileOption,
    SystemOption,
    UsernameOption,
    _password,
    _settings,
    system_identity,
)
from flasher.commands.common import console, fail, print_table, state
from flasher.config import Settings
from flasher.install.engine import InstallEngine
from flasher.install.images import StoreImages
from flasher.install.plan import InstallPlan, PlannedInstall, decide
from flasher.install.state import EngineResult, InstallState, StopReason
from flasher.store.fileserver import FileServer
from flasher.store.store import FirmwareStore, StoreError
from flasher.task.fence import UnfencedTask
from flasher.task.model import FirmwareAction, InstallMode, normalise_slug
from flasher.task.run import Outcome

EXIT_CANCELLED = 130


class ConsoleReporter:
    """The engine's reporter at a console: messages printed as lines, progress on one live status line.

    Never fenced (the operator owns the BMC); ``fence`` is an :class:`~flasher.task.fence.UnfencedTask` whose
    cancel is requested by Ctrl-C.
    """

    def __init__(self, fence: UnfencedTask) -> None:
        self.fence_ = fence
        self._status: Status | None = None

    def fence(self) -> None:
        """Nothing to check: the operator owns the BMC."""

    def stop_reason(self) -> StopReason | None:
        """``cancel`` once Ctrl-C was pressed."""
        return StopReason.CANCEL if self.fence_.check().cancel_requested else None

    def report(
        self,
        state: InstallState,
        message: str | None = None,
        *,
        component: str | None = None,
        replace_last: bool = False,
    ) -> None:
        """Print ``message`` (a progress line updates the status line on a terminal)."""
        if message is None:
            return
        text = redact.scrub(f"[{component}] {message}" if component else message)
        if replace_last and console.is_terminal:
            if self._status is None:
                self._status = console.status(escape(text))
                self._status.start()
            else:
                self._status.update(escape(text))
            return
        self.close()
        console.print(escape(text), highlight=False)

    def persist(self, state: InstallState) -> bool:
        """Nothing to record: no attribute, and no other worker to take the run over."""
        return True

    def close(self) -> None:
        """End the live status line."""
        if self._status is not None:
            self._status.stop()
            self._status = None


@contextmanager
def _ctrl_c_cancels(fence: UnfencedTask) -> Iterator[None]:
    """The first Ctrl-C requests a cancel; the second one interrupts."""
    previous = signal.getsignal(signal.SIGINT)

    def handler(_signum: int, _frame: FrameType | None) -> None:
        if fence.check().cancel_requested:
            raise KeyboardInterrupt
        fence.request_cancel()
        console.print("cancel requested: stopping at the next safe point (Ctrl-C again to abort now)", style="yellow")

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _sha256(path: Path) -> Checksum:
    try:
        with path.open("rb") as handle:
            return Checksum("sha256", hashlib.file_digest(handle, "sha256").hexdigest())
    except OSError as exc:
        fail(f"--file {str(path)!r}: {exc.strerror}", code=2)


def _image(file: Path | None, url: str | None, checksum: str | None) -> tuple[str, Checksum, str, dict[str, Path]]:
    """(image URL, checksum, file name, local files) from the options; exits 2 when they do not fit."""
    if (file is None) == (url is None):
        fail("give the image as --file PATH or as --url URL with --checksum", code=2)
    parsed: Checksum | None = None
    if checksum is not None:
        try:
            parsed = Checksum.parse(checksum)
        except ChecksumError as exc:
            fail(f"--checksum: {exc}", code=2)
    if file is not None:
        path = file.resolve()
        uri = path.as_uri()
        return uri, parsed or _sha256(path), path.name, {uri: path}
    assert url is not None
    if parsed is None:
        fail("--url needs --checksum (sha256:, sha512: or md5: and hex): every image is verified", code=2)
    return url, parsed, url.rsplit("/", 1)[-1] or "firmware.bin", {}


def _plan(
    components: list[BMCComponent],
    *,
    slug: str,
    version: str,
    targets: list[str],
    image: tuple[str, Checksum, str],
    force: bool,
    pre: list[FirmwareAction],
    post: list[FirmwareAction],
    address: str,
) -> InstallPlan:
    """One planned install per BMC component of type ``slug`` (or per ``targets`` Id)."""
    chosen = [c for c in components if c.slug == slug]
    if targets:
        unknown = sorted(set(targets) - {c.id for c in chosen})
        if unknown:
            known = ", ".join(c.id for c in chosen) or "none"
            fail(f"--target {', '.join(unknown)}: not a {slug} component of this BMC (its {slug} Ids: {known})", 2)
        chosen = [c for c in chosen if c.id in targets]
    if not chosen:
        reported = ", ".join(sorted({c.slug for c in components})) or "none"
        fail(f"--component {slug}: the BMC reports no {slug} component (it reports: {reported})")
    url, checksum, filename = image
    items = []
    for component in chosen:
        decision, reason = decide(component.version, version, force=force)
        items.append(
            PlannedInstall(
                component=slug,
                component_uuid=component.id,
                component_name=component.name,
                component_serial=component.serial or "",
                component_vendor=(component.manufacturer or "").lower(),
                component_model=component.model or "",
                installed_version=component.version,
                version_source="bmc",
                version=version,
                image_url=url,
                checksum=str(checksum),
                filename=filename,
                pre_actions=tuple(pre),
                post_actions=tuple(post),
                force=force,
                decision=decision,
                reason=reason,
            )
        )
    return InstallPlan(server_uuid=address, mode=InstallMode.PREDEFINED_FIRMWARE, items=tuple(items))


def _actions(values: list[str], option: str) -> list[FirmwareAction]:
    known = [a.value for a in FirmwareAction]
    out = []
    for value in values:
        if value not in known:
            fail(f"{option} {value!r}: use one of {', '.join(known)}", code=2)
        out.append(FirmwareAction(value))
    return out


class _LazyFileServer:
    """Starts the file server on the first image a BMC pulls; stops it at the end."""

    def __init__(self, settings: Settings, store: FirmwareStore) -> None:
        self.settings = settings
        self.store = store
        self.server: FileServer | None = None

    def __call__(self) -> FileServer | None:
        if not self.settings.fileserver.enabled:
            return None
        if self.server is None:
            server = FileServer(self.settings.fileserver, self.store)
            try:
                server.start()
            except OSError as exc:  # fails the component; the engine still restores the host's power
                raise StoreError(
                    f"cannot start the file server on {server.base_url} (fileserver.host/port): {exc}"
                ) from exc
            console.print(f"serving the image to the BMC from {server.base_url}", highlight=False)
            self.server = server
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def scheme(self) -> str | None:
        """The scheme of the URLs the server will hand out (``None`` when ``fileserver.enabled`` is false)."""
        if not self.settings.fileserver.enabled:
            return None
        public = self.settings.fileserver.public_url
        return public.scheme if public is not None else "http"


def _show(result: EngineResult) -> None:
    if result.state is not None:
        rows = [
            [s.label, s.item.installed_version, s.installed_version, s.status.value, s.message]
            for s in result.state.items
        ]
        print_table(None, ["component", "before", "now", "status", "message"], rows)
    style = "green" if result.outcome is Outcome.SUCCESS else "yellow" if result.outcome is Outcome.CANCELLED else "red"
    console.print(f"[bold {style}]{result.outcome.value}[/]: {escape(result.summary)}", highlight=False)


def command(
    ctx: typer.Context,
    *,
    bmc: Annotated[str, typer.Option("--bmc", help="BMC address: host, host:port or URL.", show_default=False)],
    component: Annotated[
        str, typer.Option("--component", help="Component type to install on: bmc, bios, nic, drive...")
    ],
    version: Annotated[str, typer.Option("--version", help="The image's firmware version, e.g. 2.7.3.")],
    file: Annotated[
        Path | None,
        typer.Option("--file", help="The image as a local file.", exists=True, dir_okay=False, readable=True),
    ] = None,
    url: Annotated[str | None, typer.Option("--url", help="The image's http(s) URL (needs --checksum).")] = None,
    checksum: Annotated[
        str | None,
        typer.Option("--checksum", help="sha256:/sha512:/md5: and hex (needed with --url; checked with --file)."),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", help="Only this FirmwareInventory Id (repeatable); default: every one of the type."),
    ] = None,
    pre_action: Annotated[
        list[str] | None, typer.Option("--pre-action", help="resetBMC, resetHost or powerOffHost (repeatable).")
    ] = None,
    post_action: Annotated[
        list[str] | None, typer.Option("--post-action", help="resetBMC, resetHost or powerOffHost (repeatable).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Install even over the same, a newer or an incomparable version.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read the versions and say what would be done; change nothing.")
    ] = False,
    username: UsernameOption = None,
    password_file: PasswordFileOption = None,
    insecure: InsecureOption = False,
    system: SystemOption = None,
) -> None:
    """Install one firmware image on one BMC's components of one type, showing progress (Ctrl-C cancels)."""
    slug = normalise_slug(component)
    if not slug:
        fail(f"--component {component!r}: not a component type (bmc, bios, nic, drive, ...)", code=2)
    if not version.strip():
        fail("--version: empty", code=2)
    pre, post = _actions(pre_action or [], "--pre-action"), _actions(post_action or [], "--post-action")
    image_url, parsed, filename, local = _image(file, url, checksum)
    settings = state(ctx).settings()
    bmc_settings = _settings(ctx, insecure)
    password = _password(bmc_settings, password_file)
    policy = settings.step("download")
    store = FirmwareStore(settings.store, attempts=policy.attempts, backoff=policy.backoff)
    identity = system_identity(system)
    try:
        opened = BMC(bmc, username or bmc_settings.username, password, settings=bmc_settings, system=identity)
    except ValueError as exc:
        fail(str(exc), code=2)
    except BMCError as exc:
        fail(str(exc))
    try:
        components = opened.firmware_inventory()
    except BMCError as exc:
        opened.close()
        fail(str(exc))
    plan = _plan(
        components,
        slug=slug,
        version=version.strip(),
        targets=target or [],
        image=(image_url, parsed, filename),
        force=force,
        pre=pre,
        post=post,
        address=opened.base_url,
    )
    fence = UnfencedTask()
    reporter = ConsoleReporter(fence)
    fileserver = _LazyFileServer(settings.model_copy(update={"bmc": bmc_settings}), store)
    engine = InstallEngine(
        plan,
        connect=lambda: opened,
        images=StoreImages(store, fileserver, local_files=local, served_scheme=fileserver.scheme),
        reporter=reporter,
        settings=settings.model_copy(update={"bmc": bmc_settings}),
        dry_run=dry_run,
        vendor=(components[0].manufacturer or "unknown").split()[0].lower() if components else "unknown",
    )
    try:
        with _ctrl_c_cancels(fence):
            result = engine.run()
    finally:
        reporter.close()
        fileserver.stop()
        opened.close()
    _show(result)
    if result.outcome is Outcome.CANCELLED:
        raise typer.Exit(EXIT_CANCELLED)
    if result.outcome is not Outcome.SUCCESS:
        raise typer.Exit(1)
