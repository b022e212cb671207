"""Server-control tasks (``sh.hollow.flasher.server_control``): the actions of metal-toolbox flipflop.

:mod:`~flasher.control.runner` runs one claimed task (:func:`run_server_control`, the worker pool's runner for
:attr:`flasher.task.model.TaskKind.SERVER_CONTROL`); :mod:`~flasher.control.actions` performs the actions against a
BMC; :mod:`~flasher.control.waits` waits for power states; :mod:`~flasher.control.messages` holds flipflop's
status texts.
"""

from flasher.control.actions import ActionFailedError, ActionRun, ControlBMC, perform
from flasher.control.runner import run_server_control

__all__ = ["ActionFailedError", "ActionRun", "ControlBMC", "perform", "run_server_control"]
