"""``flasher-sandbox up``: the whole demo — Redis, the inventory with a fleet, simulated BMCs, images and
flasher replicas — and the building blocks end-to-end tests and benchmarks reuse (:mod:`.scenario`,
:mod:`.stack`)."""

from flasher_sandbox.up.command import command

__all__ = ["command"]
