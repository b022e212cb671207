"""Firmware store benchmark: a large image fetched, verified and cached over loopback HTTP (``run``)."""
