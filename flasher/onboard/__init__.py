"""Onboarding: a server's hardware read from its BMC over Redfish and written into the inventory as metal-toolbox
alloy writes it.

:mod:`~flasher.onboard.collect` turns the BMC's Redfish documents into records (pure); :mod:`~flasher.onboard.write`
writes them idempotently; :mod:`~flasher.onboard.runner` runs an inventory task (``sh.hollow.flasher.inventory``);
:mod:`~flasher.onboard.create` puts a server the inventory does not know into it (``flasher onboard``);
:mod:`~flasher.onboard.schedule` re-collects every server on ``service.inventory_interval``.
"""
