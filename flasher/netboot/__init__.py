"""Network boot: what a machine boots, chosen by its MAC from the inventory (Pixiecore's API mode, iPXE), and the
one-time callback the booted machine makes.

:mod:`~flasher.netboot.lookup` finds a server by MAC (one query on an exact attribute namespace);
:mod:`~flasher.netboot.profiles` resolves and renders boot profiles; :mod:`~flasher.netboot.tokens` mints and checks
one-time tokens; :mod:`~flasher.netboot.state` is the provision record (``sh.hollow.flasher.provision``);
:mod:`~flasher.netboot.service` answers boot, iPXE and callback requests; :mod:`~flasher.netboot.api` is the ASGI
router (FastAPI) that ``flasher netboot`` serves. See docs/onboarding-netboot.md.
"""
