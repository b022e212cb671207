"""The three install modes, resolved against the inventory into an :class:`~flasher.install.plan.InstallPlan`.

:func:`build_plan` turns an :class:`~flasher.task.model.InstallTask` and the server's inventory into a plan;
:func:`resolve_mode` says which mode a task is in. Firmware versions and sets are read through a
:class:`FirmwareCatalog` (:class:`~flasher.inventory.client.InventoryClient` is one).

Modes (DESIGN.md, "The task attribute"):

* **PredefinedFirmware**: ``Firmware`` is given. Each entry applies to every component of its type; the image is
  the entry's ``updateFileURL``/``updateFileChecksum``, or the inventory's one firmware version matching the
  component's vendor and model, the type and the version.
* **PredefinedFirmwareSet**: ``firmwareSet`` (name or uuid) is given; each firmware of the set is matched to the
  server's components.
* **ResolveFirmware**: neither; the one set labelled with the server's vendor and model
  (``sh.hollow.firmware_set.labels`` against ``sh.hollow.alloy.server_vendor_attributes``).

A task that already carries a ``mode`` (written back by flasher) is planned the same way again: in the set modes
its ``Firmware`` is flasher's report and is re-derived from the set, so planning is idempotent.

Matching: the firmware's ``component`` is the component's type slug, its ``vendor`` the component's vendor (the
server's vendor when the component has none), and the component's model is in the firmware's ``model`` list.
:data:`~flasher.constants.MODEL_AGNOSTIC_COMPONENTS` (BMC, BIOS, CPLD, chassis, backplane, CPU) match without the
component's model, but their images are built for server models: when the firmware lists models and the server's
model is known, the server's model must be among them (a set named for another model must not put that model's
BIOS on this server). All compared case-insensitively. Each of several components of one type (drives, NICs) is its
own planned install. An operator's ``updateFileURL`` is one image for every component of its type, so it is
refused (:class:`PlanError`, naming them) when those components are of several vendors or models (two NIC
models): such firmware must come through the inventory, per model.
Order: :data:`~flasher.constants.INSTALL_ORDER`, then types it does not list (alphabetically), then by component
name and serial.

Errors: :class:`~flasher.install.plan.PlanError` when the task cannot be planned at all (the task should fail
with its message). The inventory refusing a lookup (:class:`~flasher.inventory.errors.BadRequestError`: HTTP 400,
414, 431... for a value it cannot take, such as the nil uuid as ``firmwareSet``) is a :class:`PlanError` naming
the field whose value it was given: asking again would be refused again. Any other
:class:`~flasher.inventory.errors.InventoryError` propagates (transient: retry). Values the operator wrote are cut
to about 80 characters in messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol
from urllib.parse import urlsplit

from flasher.checksum import Checksum, ChecksumError
from flasher.constants import MODEL_AGNOSTIC_COMPONENTS
from flasher.install.plan import Decision, InstallPlan, PlanError, PlannedInstall, decide, install_order_key
from flasher.inventory.errors import BadRequestError, ConflictError, NotFoundError
from flasher.inventory.filters import FilterError
from flasher.inventory.models import Component, FirmwareSet, FirmwareVersion, Server
from flasher.task.model import FirmwareAction, FirmwareSpec, InstallMode, InstallTask, normalise_slug, shorten


class FirmwareCatalog(Protocol):
    """What planning reads from the inventory (:class:`~flasher.inventory.client.InventoryClient` has it)."""

    def list_firmware(
        self,
        vendor: str | None = None,
        model: str | Sequence[str] | None = None,
        version: str | None = None,
        component: str | None = None,
    ) -> list[FirmwareVersion]: ...

    def get_firmware_set(self, uuid_or_name: str) -> FirmwareSet: ...

    def list_firmware_sets(
        self, name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[FirmwareSet]: ...


# --------------------------------------------------------------------------------------------------------------
# Matching


def _shown(value: str) -> str:
    """An operator's value quoted for a message, cut to about 80 characters."""
    return shorten(repr(value))


def _slug(component: Component) -> str:
    return normalise_slug(component.component_type_slug)


def _vendor(component: Component, server: Server) -> str:
    return (component.vendor or server.vendor or "").lower()


def _model_fits(firmware: FirmwareVersion, component: Component, server: Server) -> bool:
    """True when ``firmware``'s model list allows ``component``: it lists the component's model; for a
    model-agnostic type, it lists the server's model, or lists none, or the server's model is unknown."""
    models = {model.lower() for model in firmware.model}
    if _slug(component) in MODEL_AGNOSTIC_COMPONENTS:
        return not models or not server.model or server.model.lower() in models
    return component.model.lower() in models


def _fits(firmware: FirmwareVersion, component: Component, server: Server) -> bool:
    """True when ``firmware`` is for ``component``: same type and vendor, and a model that fits
    (:func:`_model_fits`)."""
    slug = _slug(component)
    if normalise_slug(firmware.component) != slug or firmware.vendor.lower() != _vendor(component, server):
        return False
    return _model_fits(firmware, component, server)


def _describe_firmware(firmware: FirmwareVersion) -> str:
    models = ",".join(firmware.model) or "any model"
    return f"{firmware.component} {firmware.vendor} [{models}] {firmware.version}"


def _describe_components(components: Sequence[Component]) -> str:
    kinds = sorted({f"{_slug(c)} {c.vendor or '?'} {c.model or '?'}" for c in components})
    return ", ".join(kinds) or "none"


def _image(firmware: FirmwareVersion) -> tuple[str, str, str] | str:
    """``(url, checksum, filename)`` of an inventory firmware, or the reason it cannot be installed."""
    url = firmware.repository_url or firmware.upstream_url
    if not url:
        return f"firmware {firmware.uuid} ({firmware.filename}) has no repository_url or upstream_url"
    try:
        checksum = str(Checksum.parse(firmware.checksum))
    except ChecksumError as exc:
        return f"firmware {firmware.uuid} ({firmware.filename}) has an unusable checksum: {exc}"
    return url, checksum, firmware.filename


def _item(
    component: Component,
    server: Server,
    *,
    version: str,
    image: tuple[str, str, str] | str,
    firmware_uuid: str | None,
    force: bool,
    pre: Sequence[FirmwareAction] = (),
    post: Sequence[FirmwareAction] = (),
) -> PlannedInstall:
    installed = component.installed_firmware()
    if isinstance(image, str):
        url, checksum, filename = "", "", ""
        decision, reason = Decision.REFUSE, image
    else:
        url, checksum, filename = image
        decision, reason = decide(installed, version, force=force)
    return PlannedInstall(
        component=_slug(component),
        component_uuid=component.uuid,
        component_name=component.name,
        component_serial=component.serial,
        component_vendor=_vendor(component, server),
        component_model=component.model,
        installed_version=installed,
        version=version,
        image_url=url,
        checksum=checksum,
        filename=filename,
        firmware_uuid=firmware_uuid,
        pre_actions=tuple(pre),
        post_actions=tuple(post),
        force=force,
        decision=decision,
        reason=reason,
    )


def _of_type(components: Sequence[Component], slug: str) -> list[Component]:
    return [c for c in components if _slug(c) == slug]


# --------------------------------------------------------------------------------------------------------------
# Modes


def _plan_predefined(
    task: InstallTask, server: Server, components: Sequence[Component], inventory: FirmwareCatalog
) -> list[PlannedInstall]:
    items: list[PlannedInstall] = []
    lookups: dict[tuple[str, str, str, str], list[FirmwareVersion]] = {}
    for slug, spec in (task.firmware or {}).items():
        matching = _of_type(components, slug)
        if not matching:
            raise PlanError(
                f"Firmware.{slug}: server {server.uuid} has no {slug} component"
                f" (its components: {_describe_components(components)})"
            )
        force = task.force or spec.force
        if spec.update_file_url:
            # A task carrying a mode was checked when first planned, and its URL may be flasher's own fill-in
            # from one inventory firmware that lists every model: only the first planning checks the models.
            _check_operator_image(slug, spec, server, matching, models=task.mode is None)
        for component in matching:
            firmware_uuid: str | None = None
            if spec.update_file_url:
                image: tuple[str, str, str] | str = (
                    spec.update_file_url,
                    str(spec.checksum),
                    urlsplit(spec.update_file_url).path.rsplit("/", 1)[-1],
                )
            else:
                vendor = _vendor(component, server)
                model = "" if slug in MODEL_AGNOSTIC_COMPONENTS else component.model
                key = (vendor, model.lower(), slug, spec.version)
                if key not in lookups:
                    lookups[key] = _lookup(inventory, spec, component, server)
                found = lookups[key]
                if model:
                    sought = f"vendor {vendor!r}, model {model!r}"
                elif server.model:
                    sought = f"vendor {vendor!r}, server model {server.model!r}"
                else:
                    sought = f"vendor {vendor!r}, any model"
                sought += f", component {slug!r}, version {_shown(spec.version)}"
                if spec.checksum is not None:
                    sought += f", checksum {spec.checksum}"
                if not found:
                    raise PlanError(f"Firmware.{slug}: no firmware in the inventory matches {sought}")
                if len(found) > 1:
                    listed = "; ".join(f"{fw.uuid} ({fw.filename}, {_describe_firmware(fw)})" for fw in found)
                    raise PlanError(
                        f"Firmware.{slug}: {len(found)} firmware in the inventory match {sought}: {listed}"
                        " (give updateFileURL and updateFileChecksum to choose)"
                    )
                image, firmware_uuid = _image(found[0]), found[0].uuid
            items.append(
                _item(
                    component,
                    server,
                    version=spec.version,
                    image=image,
                    firmware_uuid=firmware_uuid,
                    force=force,
                    pre=spec.pre_actions,
                    post=spec.post_actions,
                )
            )
    return items


def _check_operator_image(
    slug: str, spec: FirmwareSpec, server: Server, components: Sequence[Component], *, models: bool = True
) -> None:
    """Refuse an operator's ``updateFileURL`` without a checksum, or (``models``) for components of several vendors
    or models: the one image would go to each of them (two NIC models, say), so one would get the other's firmware."""
    if spec.checksum is None:
        raise PlanError(f"Firmware.{slug}: updateFileURL is given without updateFileChecksum; every image is verified")
    kinds = {(_vendor(c, server), c.model.lower()): f"{_vendor(c, server)} {c.model or '?'}" for c in components}
    if models and len(kinds) > 1:
        raise PlanError(
            f"Firmware.{slug}: updateFileURL gives one image to every {slug} component, but server {server.uuid}"
            f" has {slug} components of {len(kinds)} vendors or models ({', '.join(sorted(kinds.values()))});"
            " give the firmware through the inventory instead (a firmware version per model, named here by"
            " version without updateFileURL, or a firmware set)"
        )


def _lookup(
    inventory: FirmwareCatalog, spec: FirmwareSpec, component: Component, server: Server
) -> list[FirmwareVersion]:
    """The inventory's firmware for one entry and ``component``: the filters, then an exact check of each (the
    server's filters are looser: case, model list containment), models by :func:`_model_fits`."""
    slug, vendor = _slug(component), _vendor(component, server)
    model = "" if slug in MODEL_AGNOSTIC_COMPONENTS else component.model
    try:
        listed = inventory.list_firmware(vendor=vendor, model=model or None, version=spec.version, component=slug)
    except BadRequestError as exc:
        raise PlanError(
            f"Firmware.{slug}.version: the inventory refused to look up firmware version {_shown(spec.version)}"
            f" (vendor {vendor!r}, component {slug!r}): {exc}"
        ) from None
    found = sorted(listed, key=lambda fw: (fw.filename, fw.uuid or ""))
    checksum = spec.checksum
    result = []
    for fw in found:
        if fw.vendor.lower() != vendor or normalise_slug(fw.component) != slug:
            continue
        if fw.version.strip().lower() != spec.version.strip().lower():
            continue
        if not _model_fits(fw, component, server):
            continue
        if checksum is not None:
            try:
                if Checksum.parse(fw.checksum) != checksum:
                    continue
            except ChecksumError:
                continue
        result.append(fw)
    return result


def _plan_set(
    firmware_set: FirmwareSet, task: InstallTask, server: Server, components: Sequence[Component]
) -> tuple[list[PlannedInstall], list[str]]:
    items: list[PlannedInstall] = []
    used: set[int] = set()
    for component in components:
        fits = [(i, fw) for i, fw in enumerate(firmware_set.component_firmware) if _fits(fw, component, server)]
        if not fits:
            continue
        if len(fits) > 1:
            listed = "; ".join(f"{fw.uuid} ({_describe_firmware(fw)})" for _, fw in fits)
            raise PlanError(
                f"firmware set {firmware_set.name!r} has {len(fits)} firmware for {_slug(component)}"
                f" {component.name or component.uuid} (vendor {_vendor(component, server)!r},"
                f" model {component.model!r}): {listed}"
            )
        index, firmware = fits[0]
        used.add(index)
        items.append(
            _item(
                component,
                server,
                version=firmware.version,
                image=_image(firmware),
                firmware_uuid=firmware.uuid,
                force=task.force,
            )
        )
    unmatched = [_describe_firmware(fw) for i, fw in enumerate(firmware_set.component_firmware) if i not in used]
    if not items:
        offered = "; ".join(_describe_firmware(fw) for fw in firmware_set.component_firmware) or "no firmware"
        raise PlanError(
            f"firmware set {firmware_set.name!r} has no firmware for any component of server {server.uuid}"
            f" (the set has: {offered}; the server has: {_describe_components(components)})"
        )
    return items, unmatched


def _named_set(task: InstallTask, inventory: FirmwareCatalog) -> FirmwareSet:
    wanted = task.firmware_set or ""
    try:
        return inventory.get_firmware_set(wanted)
    except NotFoundError:
        raise PlanError(f"firmwareSet: no firmware set has the name or uuid {_shown(wanted)}") from None
    except ConflictError as exc:
        raise PlanError(f"firmwareSet: the name {_shown(wanted)} is ambiguous: {exc.reason}") from None
    except BadRequestError as exc:
        raise PlanError(f"firmwareSet: the inventory refused to look up {_shown(wanted)}: {exc}") from None


def _describe_sets(sets: Iterable[FirmwareSet]) -> str:
    return "; ".join(
        f"{s.name} ({s.uuid}, labels {', '.join(f'{k}={v}' for k, v in sorted(s.labels.items())) or 'none'})"
        for s in sorted(sets, key=lambda s: (s.name, s.uuid or ""))
    )


def _resolved_set(server: Server, inventory: FirmwareCatalog) -> FirmwareSet:
    vendor, model = server.vendor, server.model
    if not vendor or not model:
        raise PlanError(
            f"server {server.uuid} has no vendor and model in sh.hollow.alloy.server_vendor_attributes"
            f" (vendor {vendor!r}, model {model!r}); give firmwareSet or Firmware"
        )

    def labelled(candidate: FirmwareSet, **wanted: str) -> bool:
        labels = {k.lower(): v.lower() for k, v in candidate.labels.items()}
        return all(labels.get(k) == v.lower() for k, v in wanted.items())

    try:
        by_labels = inventory.list_firmware_sets(labels={"vendor": vendor, "model": model})
    except (FilterError, BadRequestError) as exc:  # a value the attribute filter cannot carry ('~'), or refused
        raise PlanError(
            f"server {server.uuid}: cannot look up firmware sets labelled vendor={shorten(vendor)},"
            f" model={shorten(model)}: {exc}; give firmwareSet or Firmware"
        ) from None
    found = [s for s in by_labels if labelled(s, vendor=vendor, model=model)]
    if len(found) == 1:
        return found[0]
    if found:
        raise PlanError(
            f"{len(found)} firmware sets are labelled vendor={vendor}, model={model}; give firmwareSet to choose:"
            f" {_describe_sets(found)}"
        )
    near = [s for s in inventory.list_firmware_sets(labels={"vendor": vendor}) if labelled(s, vendor=vendor)]
    candidates = _describe_sets(near) if near else "none"
    raise PlanError(
        f"no firmware set is labelled vendor={vendor}, model={model}; sets for vendor {vendor}: {candidates}"
    )


def resolve_mode(task: InstallTask) -> InstallMode:
    """The install mode of ``task``: its recorded ``mode`` when it has one, else PredefinedFirmware when
    ``Firmware`` has entries, PredefinedFirmwareSet when ``firmwareSet`` is non-empty, else ResolveFirmware."""
    if task.mode is not None:
        return task.mode
    if task.firmware:
        return InstallMode.PREDEFINED_FIRMWARE
    if task.firmware_set:
        return InstallMode.PREDEFINED_FIRMWARE_SET
    return InstallMode.RESOLVE_FIRMWARE


def build_plan(
    task: InstallTask, server: Server, components: list[Component], inventory: FirmwareCatalog
) -> InstallPlan:
    """The plan for ``task`` on ``server`` with its ``components`` (installed versions read from them).

    Firmware versions and sets are read through ``inventory``. Raises :class:`PlanError` when the task cannot
    be planned: an unsupported install method, a PredefinedFirmware entry for a type the server lacks, an
    entry's ``updateFileURL`` without a checksum or for components of several vendors or models, no or several
    matching firmware versions, a missing or ambiguous set, zero or several sets for ResolveFirmware (or a
    vendor or model with a '~', which no label filter can carry), a set with nothing for this server, a recorded
    mode whose input is gone. Inventory errors propagate.
    """
    if reason := task.unsupported_reason():
        raise PlanError(reason)
    mode = resolve_mode(task)
    firmware_set: FirmwareSet | None = None
    unmatched: list[str] = []
    if mode is InstallMode.PREDEFINED_FIRMWARE:
        if not task.firmware:
            raise PlanError("mode is PredefinedFirmware but Firmware is empty")
        items = _plan_predefined(task, server, components, inventory)
    else:
        if mode is InstallMode.PREDEFINED_FIRMWARE_SET:
            if not task.firmware_set:
                raise PlanError("mode is PredefinedFirmwareSet but firmwareSet is empty")
            firmware_set = _named_set(task, inventory)
        else:
            firmware_set = _resolved_set(server, inventory)
        items, unmatched = _plan_set(firmware_set, task, server, components)
    return InstallPlan(
        server_uuid=server.uuid,
        mode=mode,
        firmware_set_name=firmware_set.name if firmware_set else None,
        firmware_set_uuid=firmware_set.uuid if firmware_set else None,
        items=tuple(sorted(items, key=install_order_key)),
        unmatched=tuple(unmatched),
    )
