"""The sandbox's servers, each started once here and used by ``flasher-sandbox up``/``serve``, the tests and the
benchmarks: Redis (:class:`RedisServer`), the inventory (:class:`InventoryServer`), the simulated BMC fleet
(:class:`BmcFleet`) and the image server (:class:`ImageServer`). Each binds to 127.0.0.1 on a free port and is
stopped by whoever started it; the processes stand on :mod:`flasher_sandbox.procs`.
"""

from flasher_sandbox.servers.bmcs import BmcFleet
from flasher_sandbox.servers.errors import SandboxControlError
from flasher_sandbox.servers.imageserver import ImageServer, Recorded
from flasher_sandbox.servers.inventory import InventoryServer
from flasher_sandbox.servers.redis import RedisServer

__all__ = ["BmcFleet", "ImageServer", "InventoryServer", "Recorded", "RedisServer", "SandboxControlError"]
