"""The ``flasher`` command's sub-commands, one module per group (inventory, plan, queue, bmc, install, task, run).

Each module defines ``app``, a ``typer.Typer`` that :mod:`flasher.cli` mounts. Modules here may import any of
``flasher``; nothing in ``flasher`` imports them.
"""
