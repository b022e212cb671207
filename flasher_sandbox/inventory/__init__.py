"""A Serverservice-compatible inventory server on SQLite (the sandbox's stand-in for metal-toolbox's inventory).

Entry points: ``flasher-sandbox inventory`` (:mod:`flasher_sandbox.inventory.cli`),
:func:`flasher_sandbox.inventory.app.create_app` (the WSGI app), :func:`flasher_sandbox.inventory.seed.load_seed`
(bulk-load a fleet). The seed format and the
differences from the reference server are in ``docs/sandbox.md``.
"""
