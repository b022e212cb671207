"""The BMC driver over sushy (Redfish): versions, install, task polling, power, boot, BMC reset.

Modules: :mod:`~flasher.bmc.errors` (typed errors), :mod:`~flasher.bmc.session` (address, TLS, timeouts,
login), :mod:`~flasher.bmc.classify` and :mod:`~flasher.bmc.inventory` (installed firmware),
:mod:`~flasher.bmc.updateservice`, :mod:`~flasher.bmc.multipart` and :mod:`~flasher.bmc.install` (starting an
install), :mod:`~flasher.bmc.taskmonitor` (following a task), :mod:`~flasher.bmc.power` (power, boot override, BMC
reset), :mod:`~flasher.bmc.systems` (which System is the server), :mod:`~flasher.bmc.driver` (the :class:`BMC`
class that ties them together).
"""

from flasher.bmc.driver import BMC
from flasher.bmc.errors import (
    BMCAddressError,
    BMCAuthError,
    BMCError,
    BMCInterruptedError,
    BMCNotSupportedError,
    BMCRequestUnansweredError,
    BMCServerError,
    BMCTaskFailedError,
    BMCTimeoutError,
    BMCUnreachableError,
)
from flasher.bmc.models import (
    INSTALL_METHODS,
    TERMINAL_TASK_STATES,
    BMCComponent,
    SystemIdentity,
    TaskHandle,
    TaskProgress,
    UpdateCapabilities,
)
from flasher.bmc.power import BOOT_TARGETS, POWER_ACTIONS
from flasher.bmc.systems import SeveralSystemsError

__all__ = [
    "BMC",
    "BOOT_TARGETS",
    "INSTALL_METHODS",
    "POWER_ACTIONS",
    "TERMINAL_TASK_STATES",
    "BMCAddressError",
    "BMCAuthError",
    "BMCComponent",
    "BMCError",
    "BMCInterruptedError",
    "BMCNotSupportedError",
    "BMCRequestUnansweredError",
    "BMCServerError",
    "BMCTaskFailedError",
    "BMCTimeoutError",
    "BMCUnreachableError",
    "SeveralSystemsError",
    "SystemIdentity",
    "TaskHandle",
    "TaskProgress",
    "UpdateCapabilities",
]
