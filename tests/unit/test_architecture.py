"""The import rules of ``docs/architecture.md`` hold (import-linter's contracts in ``pyproject.toml``), and the
page names every package, so that it stays the living design."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _lint_imports() -> str:
    path = Path(sys.executable).parent / "lint-imports"
    found = str(path) if path.exists() else shutil.which("lint-imports")
    if found is None:
        pytest.fail("lint-imports is not installed: run scripts/bootstrap (import-linter is in the test extra)")
    return found


def test_import_rules_hold() -> None:
    result = subprocess.run(
        [_lint_imports(), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_architecture_page_names_every_package() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    packages = sorted(
        f"flasher.{path.parent.name}" for path in (ROOT / "flasher").glob("*/__init__.py") if path.parent.name
    )
    missing = [name for name in packages if f"`{name}`" not in page]
    assert not missing, f"docs/architecture.md does not describe {missing}"
    leaves = sorted(path.stem for path in (ROOT / "flasher").glob("*.py") if path.stem not in ("__init__", "cli"))
    unnamed = [name for name in leaves if name not in page]
    assert not unnamed, f"docs/architecture.md does not name the leaf modules {unnamed}"
