"""``flasher-sandbox serve``: the sandbox up until told to stop, with an env file for the operator's shell
(:mod:`.command`, :mod:`.session`)."""

from flasher_sandbox.serve.command import command

__all__ = ["command"]
