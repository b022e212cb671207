"""Maintenance windows: when a rollout may start installs, in a named IANA time zone, DST-correct.

Forms (``--window``, repeatable; ``--window-for FACILITY=...`` for one facility)::

    Sat 22:00-Sun 04:00 Europe/Amsterdam     weekly: from Saturday 22:00 to the next Sunday 04:00
    22:00-04:00 UTC                          daily: every day from 22:00 to 04:00 the next morning
    Mon 09:00:30-Mon 10:00 America/New_York  seconds are allowed (HH:MM[:SS])

Days are ``Mon`` .. ``Sun`` (any case, or the full English name). A window whose end is not after its start
ends on the next such day (daily: the next morning; weekly: a week later when the days are equal). Times are
wall-clock times of the zone (``zoneinfo``, with the ``tzdata`` package as the database where the system has
none), so a window keeps its local hours across a DST change: ``Sat 22:00-Sun 04:00 Europe/Amsterdam`` lasts 5
hours on the night the clocks go forward and 7 on the night they go back.

A bound is the first instant at which the zone's wall clock reads it or later: a time that does not exist (the
hour skipped when the clocks go forward) is the moment of the jump; a time that happens twice (the hour
repeated when they go back) is its first occurrence. Several windows are their union: adjoining or
overlapping occurrences merge into one.

An install starts only if it fits: :func:`check` says whether the time from ``now`` to the end of the window
``now`` is in covers the install's expected duration, and otherwise when the next window long enough opens.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Weekday names (``datetime.weekday()`` numbering) and their accepted spellings.
_DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_NAMES: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_BOUND = r"(?:(?P<{d}>[A-Za-z]+)\s+)?(?P<{t}>\d{{1,2}}:\d{{2}}(?::\d{{2}})?)"
_FORM: Final = re.compile(
    r"^\s*"
    + _BOUND.format(d="sday", t="stime")
    + r"\s*-\s*"
    + _BOUND.format(d="eday", t="etime")
    + r"\s+(?P<zone>\S+)\s*$"
)
#: How far around ``now`` occurrences are computed: a weekly window recurs within 7 days.
_BEFORE: Final = timedelta(days=8)
_AFTER: Final = timedelta(days=16)


class WindowError(ValueError):
    """A window that cannot be read; the message quotes it and says what is wrong and what the form is."""


def _day(text: str, window: str) -> int:
    key = text.lower()
    if key in _DAYS:
        return _DAYS.index(key)
    if key in _DAY_NAMES:
        return _DAY_NAMES.index(key)
    raise WindowError(f"window {window!r}: {text!r} is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)")


def _time(text: str, window: str) -> time:
    parts = [int(p) for p in text.split(":")]
    hour, minute, second = [*parts, 0][:3]
    if hour > 23 or minute > 59 or second > 59:
        raise WindowError(f"window {window!r}: {text!r} is not a time of day (00:00 to 23:59)")
    return time(hour, minute, second)


def _zone(name: str, window: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise WindowError(
            f"window {window!r}: {name!r} is not an IANA time zone (e.g. UTC, Europe/Amsterdam, America/New_York)"
        ) from None


def resolve_local(local: datetime, zone: tzinfo) -> datetime:
    """The first UTC instant at which ``zone``'s wall clock reads ``local`` (naive) or later (module docstring)."""
    naive = local.replace(tzinfo=None)
    instant = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == naive:
        return instant
    # ``naive`` falls in a gap (the clocks jumped over it): find the jump by bisection, to the second.
    low, high = instant - timedelta(hours=4), instant
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


@dataclass(frozen=True)
class Window:
    """One maintenance window: ``start_day``/``end_day`` (``0`` Monday .. ``6`` Sunday; ``None`` for a daily
    window), ``start``/``end`` wall-clock times in ``zone``; ``text`` is what was given."""

    text: str
    zone: ZoneInfo
    start: time
    end: time
    start_day: int | None = None
    end_day: int | None = None

    @classmethod
    def parse(cls, text: str) -> Window:
        """Read one window (module docstring); raises :class:`WindowError` naming the text."""
        if not isinstance(text, str):
            raise WindowError(f"window {text!r}: not a string")
        match = _FORM.match(text)
        if match is None:
            raise WindowError(
                f"window {text!r}: not of the form 'Sat 22:00-Sun 04:00 Europe/Amsterdam' (weekly) or"
                " '22:00-04:00 UTC' (daily)"
            )
        sday, eday = match["sday"], match["eday"]
        if (sday is None) != (eday is None):
            raise WindowError(f"window {text!r}: give a day on both sides (weekly) or on neither (daily)")
        return cls(
            text=text.strip(),
            zone=_zone(match["zone"], text),
            start=_time(match["stime"], text),
            end=_time(match["etime"], text),
            start_day=None if sday is None else _day(sday, text),
            end_day=None if eday is None else _day(eday, text),
        )

    @property
    def zone_name(self) -> str:
        """The zone's IANA name."""
        return self.zone.key

    def occurrences(self, around: datetime) -> list[tuple[datetime, datetime]]:
        """The window's occurrences as UTC ``(start, end)`` intervals, from about 8 days before ``around`` to 16
        after, oldest first; an occurrence that the clocks' jumps make empty is left out."""
        local = around.astimezone(self.zone).date()
        first, last = local - _BEFORE, local + _AFTER
        found = []
        day = first
        while day <= last:
            if self.start_day is None or day.weekday() == self.start_day:
                start_local = datetime.combine(day, self.start)
                end_local = datetime.combine(day + timedelta(days=self._days_to_end()), self.end)
                start, end = resolve_local(start_local, self.zone), resolve_local(end_local, self.zone)
                if end > start:
                    found.append((start, end))
            day += timedelta(days=1)
        return found

    def _days_to_end(self) -> int:
        if self.start_day is None or self.end_day is None:
            return 0 if self.end > self.start else 1
        days = (self.end_day - self.start_day) % 7
        if days == 0 and self.end <= self.start:
            days = 7
        return days

    def describe(self, instant: datetime) -> str:
        """``instant`` as this window's zone shows it: ``Sat 22:00 Europe/Amsterdam``."""
        local = instant.astimezone(self.zone)
        clock = local.strftime("%H:%M:%S" if local.second else "%H:%M")
        return f"{_DAYS[local.weekday()].title()} {clock} {self.zone_name}"


def parse_windows(texts: Iterable[str]) -> tuple[Window, ...]:
    """Every window of ``texts``; raises :class:`WindowError` for the first that cannot be read."""
    return tuple(Window.parse(text) for text in texts)


@dataclass(frozen=True)
class Opening:
    """One merged interval of open time: UTC ``start``/``end``, and the window whose occurrence starts it."""

    start: datetime
    end: datetime
    window: Window


def openings(windows: Sequence[Window], around: datetime) -> list[Opening]:
    """The union of every window's occurrences around ``around``, merged, oldest first."""
    raw = sorted(
        ((start, end, window) for window in windows for start, end in window.occurrences(around)),
        key=lambda item: (item[0], item[1]),
    )
    merged: list[Opening] = []
    for start, end, window in raw:
        if merged and start <= merged[-1].end:
            if end > merged[-1].end:
                merged[-1] = Opening(merged[-1].start, end, merged[-1].window)
            continue
        merged.append(Opening(start, end, window))
    return merged


@dataclass(frozen=True)
class WindowCheck:
    """Whether an install of the given duration may start now: ``fits``; else ``reason`` (for the member's
    waiting message) and ``opens_at`` (UTC, when the next window long enough opens; ``None`` when none does
    within two weeks). ``closes_at``: the end of the window ``now`` is in (``None`` outside windows or when no
    window is set)."""

    fits: bool
    reason: str = ""
    opens_at: datetime | None = None
    closes_at: datetime | None = None


def _minutes(duration: timedelta) -> str:
    minutes = duration.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes >= 1 else f"{duration.total_seconds():.0f} s"


def check(windows: Sequence[Window], now: datetime, needed: timedelta) -> WindowCheck:
    """Whether an install expected to take ``needed`` may start at ``now`` (UTC) under ``windows``.

    No windows: always. Inside an opening with at least ``needed`` left: yes. Otherwise no, with the reason: the
    time left and when the next opening long enough starts, or that no opening is long enough.
    """
    if not windows:
        return WindowCheck(True)
    now = now.astimezone(UTC)
    found = openings(windows, now)
    current = next((o for o in found if o.start <= now < o.end), None)
    if current is not None and current.end - now >= needed:
        return WindowCheck(True, closes_at=current.end)
    upcoming = next((o for o in found if o.start > now and o.end - o.start >= needed), None)
    if upcoming is None:
        longest = max((o.end - o.start for o in found), default=timedelta(0))
        reason = (
            f"no maintenance window is long enough: the install needs {_minutes(needed)}, the longest window is"
            f" {_minutes(longest)}"
        )
        return WindowCheck(False, reason, closes_at=current.end if current else None)
    when = upcoming.window.describe(upcoming.start)
    if upcoming.start - now > timedelta(days=6):
        when += f" ({upcoming.start.astimezone(upcoming.window.zone).date().isoformat()})"
    if current is not None:
        left = current.end - now
        reason = (
            f"{_minutes(left)} left in the maintenance window, the install needs {_minutes(needed)};"
            f" next window opens {when}"
        )
        return WindowCheck(False, reason, upcoming.start, current.end)
    return WindowCheck(False, f"maintenance window opens {when}", upcoming.start)
