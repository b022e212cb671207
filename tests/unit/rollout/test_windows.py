"""Maintenance windows: the forms, DST-correct occurrences (skipped and repeated hours), merging, and whether an
install of a given duration fits (with properties over random windows and instants)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flasher.rollout.windows import Window, WindowError, check, openings, parse_windows, resolve_local

AMS = ZoneInfo("Europe/Amsterdam")
NY = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_forms() -> None:
    weekly = Window.parse("Sat 22:00-Sun 04:00 Europe/Amsterdam")
    assert (weekly.start_day, weekly.end_day, weekly.zone_name) == (5, 6, "Europe/Amsterdam")
    daily = Window.parse("22:00-04:00 UTC")
    assert daily.start_day is None and daily.end.hour == 4
    assert Window.parse("saturday 01:02:03-Sunday 04:05:06 UTC").start.second == 3
    assert Window.parse("  mon 9:00 - mon 10:00   America/New_York ").start.hour == 9


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Sat 22:00-Sun 04:00", "not of the form"),
        ("Sat 22:00-04:00 UTC", "a day on both sides"),
        ("Sab 22:00-Sun 04:00 UTC", "'Sab' is not a day"),
        ("25:00-04:00 UTC", "'25:00' is not a time of day"),
        ("22:00-04:00 Mars/Olympus", "'Mars/Olympus' is not an IANA time zone"),
        ("", "not of the form"),
    ],
)
def test_bad_windows_name_the_text(text: str, says: str) -> None:
    with pytest.raises(WindowError, match=says) as caught:
        Window.parse(text)
    assert repr(text) in str(caught.value)


def test_weekly_window_keeps_local_hours_across_dst() -> None:
    window = Window.parse("Sat 22:00-Sun 04:00 Europe/Amsterdam")
    spring = {s: e - s for s, e in window.occurrences(utc(2026, 3, 28, 12))}
    assert spring[utc(2026, 3, 21, 21)] == timedelta(hours=6)  # winter time
    assert spring[utc(2026, 3, 28, 21)] == timedelta(hours=5)  # the clocks go forward that night
    assert spring[utc(2026, 4, 4, 20)] == timedelta(hours=6)  # summer time
    autumn = {s: e - s for s, e in window.occurrences(utc(2026, 10, 24, 12))}
    assert autumn[utc(2026, 10, 24, 20)] == timedelta(hours=7)  # the clocks go back that night


def test_a_skipped_local_time_is_the_moment_of_the_jump() -> None:
    # 2026-03-29 02:30 does not exist in Amsterdam: the clocks go from 02:00 CET to 03:00 CEST (01:00 UTC).
    assert resolve_local(datetime(2026, 3, 29, 2, 30), AMS) == utc(2026, 3, 29, 1)
    window = Window.parse("02:30-03:30 Europe/Amsterdam")
    day = [(s, e) for s, e in window.occurrences(utc(2026, 3, 29, 0)) if s.date() == datetime(2026, 3, 29).date()]
    assert day == [(utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30))]


def test_a_repeated_local_time_is_its_first_occurrence() -> None:
    # 2026-11-01 01:30 happens twice in New York (EDT, then EST): the first is 05:30 UTC.
    assert resolve_local(datetime(2026, 11, 1, 1, 30), NY) == utc(2026, 11, 1, 5, 30)


def test_check_inside_outside_and_not_enough_left() -> None:
    windows = parse_windows(["Sat 22:00-Sun 04:00 Europe/Amsterdam"])
    inside = utc(2026, 6, 6, 21)  # Sat 23:00 CEST
    assert check(windows, inside, timedelta(minutes=30)).fits
    late = utc(2026, 6, 7, 1, 50)  # Sun 03:50 CEST: 10 minutes left
    verdict = check(windows, late, timedelta(minutes=30))
    assert not verdict.fits
    assert verdict.reason == (
        "10 min left in the maintenance window, the install needs 30 min; next window opens Sat 22:00"
        " Europe/Amsterdam (2026-06-13)"  # more than 6 days away: the date too
    )
    assert verdict.opens_at == utc(2026, 6, 13, 20)
    outside = check(windows, utc(2026, 6, 3, 12), timedelta(minutes=30))
    assert outside.reason == "maintenance window opens Sat 22:00 Europe/Amsterdam"
    assert outside.opens_at == utc(2026, 6, 6, 20)


def test_no_window_long_enough() -> None:
    verdict = check(parse_windows(["01:00-01:20 UTC"]), utc(2026, 6, 1, 12), timedelta(minutes=30))
    assert not verdict.fits and verdict.opens_at is None
    assert (
        "no maintenance window is long enough: the install needs 30 min, the longest window is 20 min" in verdict.reason
    )


def test_no_windows_means_always_and_windows_merge() -> None:
    assert check((), utc(2026, 6, 1, 12), timedelta(hours=10)).fits
    windows = parse_windows(["22:00-23:00 UTC", "23:00-23:30 UTC"])
    assert check(windows, utc(2026, 6, 1, 22, 10), timedelta(minutes=75)).fits  # 80 min left across both
    merged = [o for o in openings(windows, utc(2026, 6, 1, 12)) if o.start.date() == datetime(2026, 6, 1).date()]
    assert [(o.start, o.end) for o in merged] == [(utc(2026, 6, 1, 22), utc(2026, 6, 1, 23, 30))]


def test_a_window_far_away_gives_its_date() -> None:
    windows = parse_windows(["Mon 10:00-Mon 11:00 UTC"])
    verdict = check(windows, utc(2026, 6, 1, 10, 59), timedelta(minutes=30))  # Monday, 1 minute left
    assert verdict.reason.endswith("next window opens Mon 10:00 UTC (2026-06-08)")


zones = st.sampled_from(["UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
days = st.one_of(st.none(), st.sampled_from(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]))
clock = st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC, microsecond=0)
)


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start_day = draw(days)
    end_day = None if start_day is None else draw(days.filter(lambda d: d is not None))
    (sh, sm), (eh, em) = draw(clock), draw(clock)
    zone = draw(zones)
    left = f"{start_day} {sh:02d}:{sm:02d}" if start_day else f"{sh:02d}:{sm:02d}"
    right = f"{end_day} {eh:02d}:{em:02d}" if end_day else f"{eh:02d}:{em:02d}"
    return Window.parse(f"{left}-{right} {zone}")


@settings(max_examples=300, deadline=None)
@given(st.lists(windows(), min_size=1, max_size=3), instants, st.integers(1, 600))
def test_check_is_consistent_with_the_openings(given_windows: list[Window], now: datetime, minutes: int) -> None:
    needed = timedelta(minutes=minutes)
    verdict = check(given_windows, now, needed)
    found = openings(given_windows, now)
    current = next((o for o in found if o.start <= now < o.end), None)
    if verdict.fits:
        assert current is not None and current.end - now >= needed
        assert verdict.closes_at == current.end
    else:
        assert current is None or current.end - now < needed
        assert verdict.reason
        if verdict.opens_at is not None:
            assert verdict.opens_at > now
            opening = next(o for o in found if o.start == verdict.opens_at)
            assert opening.end - opening.start >= needed
    for earlier, later in itertools.pairwise(found):  # merged: disjoint and ordered
        assert earlier.end < later.start


naive_times = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@settings(max_examples=500, deadline=None)
@given(naive_times, zones)
def test_a_bound_is_the_first_instant_the_wall_clock_reads_it(local: datetime, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)
    instant = resolve_local(local, zone)
    assert instant.astimezone(zone).replace(tzinfo=None) >= local
    assert (instant - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None) < local


@settings(max_examples=200, deadline=None)
@given(windows(), instants)
def test_occurrences_are_non_empty_and_ordered(window: Window, around: datetime) -> None:
    found = window.occurrences(around)
    assert found, "a window recurs at least weekly"
    for start, end in found:
        assert end > start
        assert end - start <= timedelta(days=7, hours=3)
    assert [s for s, _ in found] == sorted(s for s, _ in found)
    assert any(s <= around for s, _ in found) and any(s > around for s, _ in found)
