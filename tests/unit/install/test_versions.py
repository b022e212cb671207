"""Vendor version comparison: one table of ordered pairs, one of equal pairs, one of pairs that must not compare."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flasher.install.versions import (
    IncomparableVersionsError,
    VersionKind,
    compare_versions,
    parse_version,
    versions_equal,
)

# (lower, higher)
ORDERED: list[tuple[str, str]] = [
    ("2.75.75.75", "2.80.80.80"),  # Dell iDRAC
    ("2.80.80.80", "2.80.80.81"),
    ("2.7.3", "2.7.10"),  # numeric, not text, order
    ("2.7", "2.7.1"),  # missing parts count as 0
    ("1.9", "1.10.0.0"),
    ("v1.45", "1.46"),  # a leading "v" is dropped
    ("version 1.45", "V1.45.1"),
    ("1.45.455b66-rev4", "1.45.455b66-rev5"),  # builds with letters, then a post-release suffix
    ("1.45.455b66", "1.45.455b67"),  # same letters: ordered by the numbers
    ("1.45.455b66-rev4", "1.46.0"),  # an earlier part decides before the build token
    ("1.0.0.0-beta", "1.0.0.0"),  # pre-release before the release
    ("1.0.0.0-alpha", "1.0.0.0-beta"),
    ("1.0.0.0-beta", "1.0.0.0-rc1"),
    ("2.1-rc1", "2.1-rc2"),
    ("1.0.0rc1", "1.0.0"),  # a spelled-out tag glued to the last part
    ("1.0.0.0-dev", "1.0.0.0-alpha"),
    ("2.7.3", "2.7.3-1"),  # a numeric suffix is a post-release
    ("2.7.3", "2.7.3-rev1"),
    ("2.7.3 beta", "2.7.3"),
    ("P79 v1.45", "P79 v1.46"),  # same family
    ("U46_1.20", "U46 v1.22"),
    ("A43 v2.52 (10/29/2021)", "A43 v2.53"),
    ("A43 v2.52 (10/29/2021)", "a43 V2.52 (11/29/2021)"),  # equal versions: the date decides
    ("A43 v2.52 (2021-10-29)", "A43 v2.52 (11/30/2021)"),
    ("10/29/2021", "11/01/2021"),  # BIOS dates alone
    ("10/29/2021", "2021-11-01"),
    ("0x1A", "0x1b"),  # hex builds
    ("0x0B000040", "0x0b000041"),
    ("BIOS 2.7.3", "bios 2.7.4"),  # a word prefix is a family too
    ("22.31.6", "22.36.1010"),  # NIC
    ("1.09", "1.10"),  # zero-padded: numbers and decimals agree
    ("1.05", "1.5.1"),
    ("01.9", "2.0"),  # the first part is a whole number either way
]

EQUAL: list[tuple[str, str]] = [
    ("2.80.80.80", "2.80.80.80"),
    ("GDC5602Q", "gdc5602q"),  # equal text ignoring case, even without a numeric core
    ("  1.2  ", "1.2"),
    ("2.7", "2.7.0"),
    ("U46_1.20", "U46 v1.20"),
    ("P79 v1.45", "p79 V1.45"),
    ("A43 v2.52 (10/29/2021)", "A43 v2.52"),  # a date on one side only does not decide
    ("v1.45", "1.45"),
    ("1.0-rev04", "1.0-rev4"),
    ("1.0.0.0-beta", "1.0.0.0 BETA"),
    ("0x1a", "0x001A"),
    ("1.05", "1.5"),  # equal as numbers: skipped, never installed on a guess
    ("01.02.03", "1.2.3"),
    ("10/29/2021", "2021-10-29"),
]

# (a, b, words the reason must contain)
INCOMPARABLE: list[tuple[str, str, str]] = [
    ("P79 v1.45", "U46 v1.45", "'P79 v1.45' has family 'P79', 'U46 v1.45' has family 'U46'"),
    ("1.20", "U46 v1.20", "'1.20' has no family, 'U46 v1.20' has family 'U46'"),
    ("GDC5602Q", "GDC5702Q", "'GDC5602Q' has no numeric version"),
    ("2.80", "", "'' has no numeric version"),
    ("1.45.455b66", "1.45.3fa9c1", "build tokens '455b66' and '3fa9c1' have no order"),
    ("1.45.455", "1.45.455b66", "'455' and '455b66' are a number and a build token"),
    ("2.1-hotfix", "2.1-rev4", "suffixes '-hotfix' and '-rev4' have no order"),
    ("2.1-b66", "2.1", "suffixes '-b66' and '(none)' have no order"),  # "b66" is not read as "beta 66"
    ("1.2", "0x12", "'1.2' is a dotted version, '0x12' a hex version"),
    ("10/29/2021", "2.52", "'10/29/2021' is a date version, '2.52' a dotted version"),
    # A zero-padded part reads as a decimal fraction too (1.09 < 1.1), and then the two readings disagree.
    ("1.1", "1.09", "'1' and '09' are ordered one way as numbers and the other as decimals (zero-padded)"),
    ("2.010.3", "2.9.3", "'010' and '9' are ordered one way as numbers and the other as decimals (zero-padded)"),
    ("P79 v1.2", "P79 v1.05", "'2' and '05' are ordered one way as numbers and the other as decimals (zero-padded)"),
]


@pytest.mark.parametrize(("lower", "higher"), ORDERED)
def test_ordered(lower: str, higher: str) -> None:
    assert compare_versions(lower, higher) == -1
    assert compare_versions(higher, lower) == 1
    assert not versions_equal(lower, higher)


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_equal(a: str, b: str) -> None:
    assert compare_versions(a, b) == 0
    assert compare_versions(b, a) == 0
    assert versions_equal(a, b)


@pytest.mark.parametrize(("a", "b", "reason"), INCOMPARABLE)
def test_incomparable_says_why(a: str, b: str, reason: str) -> None:
    with pytest.raises(IncomparableVersionsError) as caught:
        compare_versions(a, b)
    error = caught.value
    assert (error.a, error.b) == (a, b)
    assert error.reason == reason
    assert str(error) == f"cannot compare {a!r} with {b!r}: {reason}"
    with pytest.raises(IncomparableVersionsError):
        compare_versions(b, a)
    assert not versions_equal(a, b)


@pytest.mark.parametrize(
    ("raw", "kind", "family", "parts", "suffix"),
    [
        ("2.80.80.80", VersionKind.DOTTED, None, (2, 80, 80, 80), ""),
        ("1.45.455b66-rev4", VersionKind.DOTTED, None, (1, 45, "455b66"), "-rev4"),
        ("P79 v1.45", VersionKind.DOTTED, "p79", (1, 45), ""),
        ("A43 v2.52 (10/29/2021)", VersionKind.DOTTED, "a43", (2, 52), ""),
        ("U46_1.20", VersionKind.DOTTED, "u46", (1, 20), ""),
        ("1.0.0.0-beta", VersionKind.DOTTED, None, (1, 0, 0, 0), "-beta"),
        ("0x1A", VersionKind.HEX, None, (26,), ""),
        ("10/29/2021", VersionKind.DATE, None, (), ""),
        ("GDC5602Q", VersionKind.OPAQUE, None, (), ""),
    ],
)
def test_parse(raw: str, kind: VersionKind, family: str | None, parts: tuple[int | str, ...], suffix: str) -> None:
    parsed = parse_version(raw)
    assert (parsed.kind, parsed.family, parsed.parts, parsed.suffix) == (kind, family, parts, suffix)


def test_an_impossible_date_is_not_a_date() -> None:
    assert parse_version("13/45/2021").kind is VersionKind.OPAQUE
    assert parse_version("A43 v2.52 (13/45/2021)").released is None


versionish = st.from_regex(r"\A([A-Z]\d{2}[ _]v?)?\d{1,3}(\.[0-9a-f]{1,4}){0,3}(-(rev|rc|beta)\d?)?\Z")


@given(versionish, versionish, versionish)
def test_comparison_is_antisymmetric_and_transitive(a: str, b: str, c: str) -> None:
    def cmp(x: str, y: str) -> int | None:
        try:
            return compare_versions(x, y)
        except IncomparableVersionsError:
            return None

    ab, ba = cmp(a, b), cmp(b, a)
    assert (ab is None) == (ba is None)
    if ab is not None and ba is not None:
        assert ab == -ba
    bc, ac = cmp(b, c), cmp(a, c)
    if ab is not None and ab == bc and ab != 0 and ac is not None:
        assert ac == ab


@given(st.text(max_size=30), st.text(max_size=30))
def test_any_text_compares_or_says_why(a: str, b: str) -> None:
    try:
        assert compare_versions(a, b) in (-1, 0, 1)
    except IncomparableVersionsError as error:
        assert error.reason
