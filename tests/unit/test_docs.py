"""The docs hold to the code: the MkDocs site builds in strict mode (no broken link or anchor, no page left out of
the navigation), every command and option of ``flasher`` and ``flasher-sandbox`` is on its page under the
command's heading, every setting is on the configuration page, and the README indexes every page and stays short.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import BaseModel

import flasher.cli
import flasher_sandbox.cli
from flasher.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

#: Markdown headings outside fenced code blocks: (level, text).
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
#: A link in Markdown: [text](target).
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_ID = re.compile(r'\bid="([^"]+)"')


def _mkdocs() -> str:
    path = Path(sys.executable).parent / "mkdocs"
    found = str(path) if path.exists() else shutil.which("mkdocs")
    if found is None:
        pytest.fail("mkdocs is not installed: run scripts/bootstrap (mkdocs and mkdocs-material are in the test extra)")
    return found


def _build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``project`` (its ``mkdocs.yml`` and ``docs/``) into ``site``."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice about its successor, not about the docs
    return subprocess.run(
        [_mkdocs(), "build", "--strict", "--config-file", str(project / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=env,
    )


def _copy_project(dest: Path) -> Path:
    """The site's sources (``mkdocs.yml`` and ``docs/``) copied under ``dest``, to break on purpose."""
    dest.mkdir(parents=True)
    shutil.copy(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(DOCS, dest / "docs")
    return dest


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as built from the repository, strictly; fails when the build warns about anything."""
    out = tmp_path_factory.mktemp("site")
    result = _build(ROOT, out)
    assert result.returncode == 0, "mkdocs build --strict failed:\n" + result.stdout + result.stderr
    return out


# -- the site -----------------------------------------------------------------------------------------------------


def test_the_site_builds_strictly(site: Path) -> None:
    pages = sorted(path.relative_to(DOCS).with_suffix("").as_posix() for path in DOCS.rglob("*.md"))
    for page in pages:
        built = site / ("index.html" if page == "index" else f"{page}/index.html")
        assert built.is_file(), f"docs/{page}.md was not built into {built}"


def test_a_page_left_out_of_the_navigation_fails_the_build(tmp_path: Path) -> None:
    project = _copy_project(tmp_path / "project")
    (project / "docs" / "orphan.md").write_text("# Orphan\n\nIn no nav.\n")
    result = _build(project, tmp_path / "site")
    assert result.returncode != 0, "a page missing from nav did not fail mkdocs build --strict"
    assert "orphan.md" in result.stdout + result.stderr


def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path) -> None:
    project = _copy_project(tmp_path / "project")
    index = project / "docs" / "index.md"
    index.write_text(index.read_text() + "\n[gone](no-such-page.md) [drifted](queue.md#no-such-heading)\n")
    result = _build(project, tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0, "a broken link did not fail mkdocs build --strict"
    assert "no-such-page.md" in output
    assert "no-such-heading" in output


# -- the README -----------------------------------------------------------------------------------------------------


def test_the_readme_stays_short() -> None:
    lines = README.read_text().count("\n")
    assert lines < 250, f"README.md has {lines} lines; move detail into a page under docs/"


def test_the_readme_indexes_every_page() -> None:
    targets = {link.split("#", 1)[0] for link in _LINK.findall(README.read_text())}
    pages = sorted(path.relative_to(ROOT).as_posix() for path in DOCS.rglob("*.md"))
    missing = [page for page in pages if page not in targets]
    assert not missing, f"README.md links to no {missing}: add them to its index of the docs"


def test_the_readmes_links_into_the_docs_resolve(site: Path) -> None:
    broken = []
    for link in _LINK.findall(README.read_text()):
        if "://" in link:
            continue
        path, _, anchor = link.partition("#")
        if not (ROOT / path).exists():
            broken.append(f"{link}: no file {path}")
        elif anchor and path.startswith("docs/") and path.endswith(".md"):
            page = Path(path).relative_to("docs").with_suffix("").as_posix()
            html = site / ("index.html" if page == "index" else f"{page}/index.html")
            if anchor not in _ID.findall(html.read_text()):
                broken.append(f"{link}: {path} has no heading with the anchor #{anchor}")
    assert not broken, "README.md has broken links:\n" + "\n".join(broken)


# -- the command line -----------------------------------------------------------------------------------------------


def sections(page: Path) -> dict[str, str]:
    """The page's sections by the first code span of their heading (``## `flasher task install`: ...`` is
    ``flasher task install``): each from its heading up to the next heading of the same or a higher level,
    subsections included. Lines in fenced code blocks are never headings."""
    lines = page.read_text().splitlines()
    headings: list[tuple[int, int, str]] = []  # (line, level, text)
    fenced = False
    for number, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match:
            headings.append((number, len(match.group(1)), match.group(2)))
    found: dict[str, str] = {}
    for index, (start, level, text) in enumerate(headings):
        code = re.search(r"`([^`]+)`", text)
        if code is None:
            continue
        end = next((line for line, lvl, _ in headings[index + 1 :] if lvl <= level), len(lines))
        found.setdefault(code.group(1), "\n".join(lines[start:end]))
    return found


@dataclass(frozen=True)
class Command:
    """One command of a CLI: its path (``flasher task install``), its options' long names, its arguments."""

    path: str
    options: tuple[str, ...]
    arguments: tuple[str, ...]


def commands(app: typer.Typer, name: str) -> list[Command]:
    """Every command of ``app`` (groups and the root included), walked from the click tree typer builds."""
    found: list[Command] = []

    def walk(command: Any, path: str) -> None:
        options: list[str] = []
        arguments: list[str] = []
        for param in command.params:
            if getattr(param, "hidden", False):
                continue
            if param.param_type_name == "option":
                options += [opt for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")]
            else:
                arguments.append(param.metavar or param.name.upper())  # as --help shows it: SERVER
        found.append(Command(path, tuple(options), tuple(arguments)))
        for sub_name, sub in sorted(getattr(command, "commands", {}).items()):
            if not getattr(sub, "hidden", False):
                walk(sub, f"{path} {sub_name}")

    walk(typer.main.get_command(app), name)
    return found


_CLIS = (
    (flasher.cli.app, "flasher", DOCS / "cli.md"),
    (flasher_sandbox.cli.app, "flasher-sandbox", DOCS / "sandbox.md"),
)
_COMMANDS = [(command, page) for app, name, page in _CLIS for command in commands(app, name)]


def missing_from(command: Command, page: Path) -> list[str]:
    """What of ``command`` its page does not say under the command's heading (empty when all is there)."""
    section = sections(page).get(command.path)
    if section is None:
        return [f"a heading naming `{command.path}`"]
    missing = [opt for opt in command.options if not re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", section)]
    missing += [arg for arg in command.arguments if not re.search(rf"\b{re.escape(arg)}\b", section)]
    return missing


def test_the_walk_sees_every_command_group() -> None:
    paths = {command.path for command, _ in _COMMANDS}
    for group in ("inventory", "plan", "task", "queue", "bmc", "install", "run"):
        assert f"flasher {group}" in paths
    assert {"flasher task install", "flasher queue ls", "flasher-sandbox up"} <= paths
    install = next(command for command, _ in _COMMANDS if command.path == "flasher task install")
    assert {"--server", "--firmware-set", "--firmware", "--wait"} <= set(install.options)


@pytest.mark.parametrize(("command", "page"), _COMMANDS, ids=[command.path for command, _ in _COMMANDS])
def test_every_command_and_option_is_documented(command: Command, page: Path) -> None:
    missing = missing_from(command, page)
    assert not missing, f"docs/{page.name} lacks, under the heading of `{command.path}`: {', '.join(missing)}"


def test_an_undocumented_option_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "cli.md"
    page.write_text("## `flasher queue ls`\n\n`--json`: JSON.\n\n## `flasher queue drop`\n\n`--jsonl` and SERVER\n")
    assert missing_from(Command("flasher queue ls", ("--json",), ()), page) == []
    assert missing_from(Command("flasher queue ls", ("--json", "--watch"), ()), page) == ["--watch"]
    # an option named only under another command's heading, or as part of a longer name, does not count
    assert missing_from(Command("flasher queue ls", ("--jsonl",), ("SERVER",)), page) == ["--jsonl", "SERVER"]
    assert missing_from(Command("flasher queue gone", (), ()), page) == ["a heading naming `flasher queue gone`"]


# -- the settings ---------------------------------------------------------------------------------------------------


def settings_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Every setting's dotted name (``inventory.oauth2.client_id``; ``steps.<name>`` per default step)."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys += settings_keys(annotation, f"{prefix}{name}.")
        elif name == "steps" and not prefix:
            keys += [f"steps.{step}" for step in Settings().steps]
        else:
            keys.append(f"{prefix}{name}")
    return keys


def test_every_setting_is_on_the_configuration_page() -> None:
    page = (DOCS / "configuration.md").read_text()
    keys = settings_keys()
    assert "inventory.oauth2.refresh_leeway" in keys and "steps.install" in keys
    missing = [key for key in keys if f"`{key}`" not in page]
    assert not missing, f"docs/configuration.md does not name the settings {missing}"
