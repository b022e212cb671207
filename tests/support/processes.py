"""Process and port helpers for tests: the sandbox's own (:mod:`flasher_sandbox.procs`), so tests and
``flasher-sandbox up`` start servers the same way."""

from flasher_sandbox.procs import ManagedProcess, free_port, free_port_range, port_open, wait_until

__all__ = ["ManagedProcess", "free_port", "free_port_range", "port_open", "wait_until"]
