"""Shared pytest set-up. Fixtures that start real servers live in ``tests/fixtures/`` and are loaded here."""

pytest_plugins = [
    "tests.fixtures.redis",
]
