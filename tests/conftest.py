"""Shared pytest set-up.

Test helpers live in ``tests/support/``. Fixtures that start real servers (Redis, the sandbox inventory,
simulated BMCs, sushy-tools) live in ``tests/support/fixtures/<name>.py``; every module there is loaded as a
plugin, so adding one needs no change here.
"""

from pathlib import Path

import pytest

# Assertions in helpers get pytest's rewriting too, also in a fixture module another one imports before pytest
# registers it as a plugin (otherwise: PytestAssertRewriteWarning, and plain AssertionErrors from helpers).
pytest.register_assert_rewrite("tests.support")

pytest_plugins = sorted(
    f"tests.support.fixtures.{path.stem}"
    for path in (Path(__file__).parent / "support" / "fixtures").glob("*.py")
    if not path.stem.startswith("_")
)
