"""The ``sandbox`` extra of ``pyproject.toml`` lists every distribution ``flasher_sandbox`` imports, so the
sandbox can be installed and run as a product of its own."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
OWN = {"flasher", "flasher_sandbox", "__future__"}


def _imported_top_level_modules() -> dict[str, str]:
    """Top-level module → the first file importing it, for every absolute import under ``flasher_sandbox/``."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "flasher_sandbox").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_the_sandbox_extra_lists_every_distribution_the_sandbox_imports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = {canonicalize_name(Requirement(line).name) for line in project["optional-dependencies"]["sandbox"]}
    distributions = packages_distributions()
    missing = {}
    for module, where in _imported_top_level_modules().items():
        if module in OWN or module in sys.stdlib_module_names:
            continue
        names = {canonicalize_name(name) for name in distributions.get(module, [module])}
        if not names & listed:
            missing[module] = where
    assert not missing, f"flasher_sandbox imports these without the sandbox extra listing them: {missing}"
