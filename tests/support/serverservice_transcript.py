"""The reference Serverservice transcript (``tests/data/serverservice-transcript.txt``, a verbatim copy of
``/work/shared/reference/serverservice-transcript.txt``) as test data: each ``### title`` section with its HTTP
status (when the transcript shows one) and its JSON bodies, exactly as the real server sent them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PATH = Path(__file__).resolve().parents[1] / "data" / "serverservice-transcript.txt"


@dataclass
class Section:
    title: str
    status: int | None = None
    bodies: list[Any] = field(default_factory=list)
    #: Body lines that are not valid JSON (the transcript's last section is cut off).
    broken: list[str] = field(default_factory=list)


@cache
def sections() -> tuple[Section, ...]:
    """Every section, in transcript order (titles repeat: the same call made at different times)."""
    found: list[Section] = []
    for line in PATH.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            found.append(Section(line[4:].strip()))
        elif not found:
            continue
        elif line.startswith("HTTP/1.1 "):
            found[-1].status = int(line.split()[1])
        elif line.startswith("{"):
            try:
                found[-1].bodies.append(json.loads(line))
            except json.JSONDecodeError:
                found[-1].broken.append(line)
    return tuple(found)


def body(title: str, occurrence: int = 0, index: int = 0) -> Any:
    """The ``index``-th JSON body of the ``occurrence``-th section titled ``title``; ``KeyError`` if absent."""
    matching = [s for s in sections() if s.title == title]
    if len(matching) <= occurrence or len(matching[occurrence].bodies) <= index:
        raise KeyError(f"transcript has no body {index} in occurrence {occurrence} of {title!r}")
    return json.loads(json.dumps(matching[occurrence].bodies[index]))  # a fresh copy per call
