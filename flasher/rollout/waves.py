"""Waves: how a rollout's members are split into a canary and the waves after it, and in which order.

``--waves 2,10%,50%,100%`` gives cumulative targets: wave 1 (the canary) is the first 2 members, wave 2 the
members up to 10% of them, wave 3 up to 50%, wave 4 the rest. A percentage is rounded up (10% of 115 members is
12); a target at or below the one before it makes no wave of its own (it is dropped, so waves are numbered 1, 2,
3... without gaps); when the last target leaves members out, they make one more, final wave. ``rollout plan``
and ``rollout create`` show the sizes, so nothing is added unseen.

Order: members are taken in turn from each vendor/model (round robin), so a canary of 2 in a fleet of two
models holds one of each and every wave mixes the models as the fleet does; within one vendor/model they are
taken in turn from each value of the rollout's cap groups (its racks, say: ``spread``), so a wave is spread over
the racks rather than filling one after the other (a wave that fills one rack runs at that rack's cap, and a bad
image would hit one rack's servers first). Ties go by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Final

_TARGET = re.compile(r"^(\d+(?:\.\d+)?)(%?)$")
#: The waves of a rollout created without ``--waves``: everything at once (under its caps).
DEFAULT_WAVES: Final = ("100%",)


class WaveError(ValueError):
    """A wave spec that cannot be read; the message quotes it."""


@dataclass(frozen=True)
class WaveTarget:
    """One cumulative target: ``value`` members, or ``value`` percent of them when ``percent``."""

    value: float
    percent: bool

    def members(self, total: int) -> int:
        """How many members the waves up to this one hold out of ``total``."""
        if self.percent:
            return min(total, math.ceil(self.value * total / 100 - 1e-9))
        return min(total, int(self.value))

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{int(self.value)}"


def parse_waves(items: Sequence[str] | str) -> tuple[WaveTarget, ...]:
    """``"2,10%,50%,100%"`` or ``["2", "10%", ...]`` into targets; raises :class:`WaveError`."""
    texts = [t.strip() for t in (items.split(",") if isinstance(items, str) else items)]
    if not texts or any(not t for t in texts):
        raise WaveError(f"waves {items!r}: give counts or percentages separated by commas, e.g. 2,10%,50%,100%")
    targets = []
    for text in texts:
        match = _TARGET.match(text)
        if match is None:
            raise WaveError(f"waves {items!r}: {text!r} is not a count (5) or a percentage (10%)")
        value, percent = float(match[1]), bool(match[2])
        if percent and not 0 < value <= 100:
            raise WaveError(f"waves {items!r}: {text!r} is not a percentage in (0, 100]")
        if not percent and (value != int(value) or value < 1):
            raise WaveError(f"waves {items!r}: {text!r} is not a whole count of at least 1")
        targets.append(WaveTarget(value, percent))
    return tuple(targets)


def wave_sizes(targets: Sequence[WaveTarget], total: int) -> list[int]:
    """The size of each wave for ``total`` members (module docstring): every size at least 1, their sum
    ``total``; ``[]`` when there are no members."""
    sizes = []
    covered = 0
    for target in targets:
        upto = target.members(total)
        if upto > covered:
            sizes.append(upto - covered)
            covered = upto
    if covered < total:
        sizes.append(total - covered)
    return sizes


def assign_waves(count: int, targets: Sequence[WaveTarget]) -> list[int]:
    """The wave (from 1) of each of ``count`` members in rollout order."""
    waves: list[int] = []
    for number, size in enumerate(wave_sizes(targets, count), start=1):
        waves += [number] * size
    return waves


def _interleave(groups: Sequence[Sequence[str]]) -> list[str]:
    """One item of each group in turn, until every group is used up."""
    return [item for row in zip_longest(*groups) for item in row if item is not None]


def rollout_order(
    members: Sequence[tuple[str, str, str]], spread: Mapping[str, tuple[str, ...]] | None = None
) -> list[str]:
    """Members ``(id, vendor/model, name)`` in rollout order (module docstring); ``spread`` gives each id's values
    in the cap groups (``()`` or absent: none). Returns the ids."""
    spread = spread or {}
    by_kind: dict[str, dict[tuple[str, ...], list[tuple[str, str]]]] = {}
    for member_id, kind, name in members:
        by_kind.setdefault(kind, {}).setdefault(spread.get(member_id, ()), []).append((name, member_id))
    per_kind = []
    for kind in sorted(by_kind):
        groups = by_kind[kind]
        per_kind.append(_interleave([[i for _, i in sorted(groups[value])] for value in sorted(groups)]))
    return _interleave(per_kind)
