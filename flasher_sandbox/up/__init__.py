"""``flasher-sandbox up``: the whole demo — Redis, the inventory with a fleet, simulated BMCs, images and
flasher replicas — and the building blocks ``flasher-sandbox serve``, the end-to-end tests and the benchmarks
reuse (:mod:`.scenario`, :mod:`.stack`)."""

from flasher_sandbox.up.command import command

__all__ = ["command"]
