"""Seed files: YAML, or JSON when named ``*.json`` (a large seed, which YAML parsers take minutes to read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flasher_sandbox.inventory.seed import SeedError, read_seed_file


def test_a_json_seed_reads_as_json_and_a_yaml_one_as_yaml(tmp_path: Path) -> None:
    seed = {"servers": [{"name": "a", "attributes": {"ns": {"status": ""}}}]}
    (tmp_path / "seed.json").write_text(json.dumps(seed))
    (tmp_path / "seed.yaml").write_text("servers:\n  - name: a\n    attributes: {ns: {status: ''}}\n")
    assert read_seed_file(tmp_path / "seed.json") == seed
    assert read_seed_file(tmp_path / "seed.yaml") == seed


def test_a_json_seed_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "seed.json").write_text("servers:\n  - name: a\n")  # YAML, not JSON
    with pytest.raises(SeedError, match=r"seed file .*seed\.json"):
        read_seed_file(tmp_path / "seed.json")
