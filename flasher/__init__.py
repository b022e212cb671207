"""flasher: installs firmware and runs server-control tasks on bare-metal servers through their BMCs.

Operators flag a server by writing the task attribute (``sh.hollow.flasher.task``) into the inventory
(Serverservice); flasher replicas queue it in Redis, run it against the server's BMC over Redfish and write
the status back into the same attribute. See ``README.md`` and the pages under ``docs/``
(``docs/architecture.md`` is the living design).
"""

__version__ = "0.1.0"
