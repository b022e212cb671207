"""Sandbox inventory benchmark: bulk seeding and the poll query on large fleets (``run``)."""
