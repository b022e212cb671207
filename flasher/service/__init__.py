"""``flasher run``: the poller (admission), the worker pool and the HTTP endpoints, wired together."""
