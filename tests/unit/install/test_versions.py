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
    # Supermicro BIOS: a letter after the last number; a differing number decides, else the letter
    ("1.4a", "1.5"),
    ("1.4a", "1.4b"),
    ("2.1", "2.1a"),
    ("2.1a", "2.1b"),
    ("3.2a", "3.3"),
    ("1.1c", "1.2"),
    ("3.4", "3.4a"),
    ("1.4", "1.4.1a"),  # the shorter side has no letter: 1.4 = 1.4.0 < 1.4.1a
    ("1.4a", "1.5.1"),  # decided before the letter matters
    ("1.4A", "1.4b"),  # any case
]

#: Real version strings as each vendor's BMC reports them, (lower, higher), one row per upgrade flasher makes.
VENDOR_UPGRADES: list[tuple[str, str]] = [
    # Supermicro BIOS (X10 to X13) and BMC
    ("3.2", "3.2a"),
    ("1.4a", "1.5a"),
    ("1.4b", "1.5"),
    ("3.8a", "4.0"),
    ("01.02.14", "01.02.20"),
    ("1.73.13", "1.74.11"),
    ("01.01.06", "01.01.10"),
    # Dell iDRAC, BIOS, CPLD, PERC
    ("5.10.50.00", "6.10.80.00"),
    ("6.10.80.00", "7.00.00.171"),
    ("2.9.3", "2.10.2"),
    ("2.11.4", "2.12.2"),
    ("1.0.6", "1.1.1"),
    ("51.16.0-4076", "52.26.0-5179"),
    ("51.16.0-4076", "51.16.0-4296"),
    # HPE iLO (FirmwareInventory and Manager), System ROM, Smart Array
    ("2.78 Apr 28 2023", "2.81 Jul 20 2023"),
    ("2.78 Apr 28 2023", "2.78 May 02 2023"),
    ("iLO 5 v2.44", "iLO 5 v2.78"),
    ("1.55 Oct 03 2023", "1.58 Mar 07 2024"),
    ("U30 v2.80 (05/19/2023)", "U30 v2.90 (10/12/2023)"),
    ("A43 v1.38 (10/30/2020)", "A43 v2.52 (10/29/2021)"),
    ("5.32", "6.22"),
    # Lenovo XCC and UEFI (build id, then version)
    ("TEI3E4D-4.12", "TEI3E6C-4.30"),
    ("7.10", "7.11"),
    # NIC firmware: Broadcom, Mellanox/NVIDIA, Intel E810 (NVM, eTrack, combo image)
    ("22.31.6", "23.10.1"),
    ("222.1.68.0", "223.0.161.0"),
    ("16.35.2000", "16.35.3006"),
    ("28.39.1002", "28.40.1000"),
    ("4.20 0x80017785 1.3346.0", "4.40 0x8001d8b6 1.3429.0"),
    # drive firmware that is numeric
    ("0105", "0108"),
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
    ("2.78 Apr 28 2023", "2.78"),  # a date on one side only does not decide
    ("1.4a", "1.4A"),
    ("iLO 5 v2.78", "ilo 5 V2.78"),
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
    # a letter where the other version goes on with more parts: 1.4a vs 1.4.1 is written nowhere
    ("1.4a", "1.4.1", "'1.4a' ends in letter 'a' where '1.4.1' has more parts: their order is not written anywhere"),
    ("1.4a", "1.4.0", "'1.4a' ends in letter 'a' where '1.4.0' has more parts: their order is not written anywhere"),
    # drive firmware: vendor strings without a numeric version (Samsung, Intel, Micron, Dell, HPE, Seagate)
    ("HXT7404Q", "HXT7904Q", "'HXT7404Q' has no numeric version"),
    ("D3MU001", "D3MU200", "'D3MU001' has no numeric version"),
    ("AS0B", "AS0C", "'AS0B' has no numeric version"),
    ("HPD7", "HPD8", "'HPD7' has no numeric version"),
    # Supermicro CPLD
    ("F1.02.1F", "F1.02.20", "'F1.02.1F' has no numeric version"),
    # Lenovo: two builds of one version, or a build id on one side only
    ("TEI3E4D-4.12", "TEI3E6C-4.12", "builds '3e4d' and '3e6c' of one version have no order"),
    ("TEI3E4D-4.12", "4.30", "'TEI3E4D-4.12' has family 'TEI', '4.30' has no family"),
    # HPE: another iLO generation, another ROM family
    ("iLO 5 v2.78", "iLO 6 v1.55", "'iLO 5 v2.78' has family 'ILO 5', 'iLO 6 v1.55' has family 'ILO 6'"),
    ("U30 v2.80 (05/19/2023)", "U32 v2.90 (10/12/2023)", "has family 'U30'"),
    # Intel E810: the same NVM version, the rest differs and has no order
    ("4.20 0x80017785 1.3346.0", "4.20 0x80017786 1.3346.0", "have no order"),
    # OpenBMC: builds named by commit hash
    ("2.48.89b32e0d", "2.48.a1c3f9e2", "'89b32e0d' and 'a1c3f9e2'"),
]


@pytest.mark.parametrize(("lower", "higher"), ORDERED)
def test_ordered(lower: str, higher: str) -> None:
    assert compare_versions(lower, higher) == -1
    assert compare_versions(higher, lower) == 1
    assert not versions_equal(lower, higher)


@pytest.mark.parametrize(("lower", "higher"), VENDOR_UPGRADES)
def test_real_vendor_upgrades_are_ordered(lower: str, higher: str) -> None:
    assert compare_versions(lower, higher) == -1
    assert compare_versions(higher, lower) == 1


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
    assert reason in error.reason
    assert str(error) == f"cannot compare {a!r} with {b!r}: {error.reason}"
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
        ("1.4a", VersionKind.DOTTED, None, (1, 4), ""),
        ("iLO 5 v2.78", VersionKind.DOTTED, "ilo 5", (2, 78), ""),
        ("TEI3E4D-4.12", VersionKind.DOTTED, "tei", (4, 12), ""),
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


def test_letters_and_dates_are_parsed() -> None:
    assert parse_version("3.2b").letter == "b"
    assert parse_version("455b66").letter == ""  # a build token, not a letter
    assert parse_version("2.78 Apr 28 2023").released is not None
    assert parse_version("TEI3E4D-4.12").build == "3e4d"


def _cmp(x: str, y: str) -> int | None:
    try:
        return compare_versions(x, y)
    except IncomparableVersionsError:
        return None


#: Supermicro-style versions: 1 to 4 numbers (some zero-padded), maybe a letter after the last, maybe a suffix.
lettered = st.from_regex(r"\A\d{1,2}(\.\d{1,2}){0,3}[a-d]?(-(rc|beta|rev)\d?)?\Z")


@given(lettered, lettered, lettered)
def test_letter_suffixes_are_antisymmetric_and_transitive(a: str, b: str, c: str) -> None:
    ab, ba = _cmp(a, b), _cmp(b, a)
    assert (ab is None) == (ba is None)
    if ab is not None and ba is not None:
        assert ab == -ba
    bc, ac = _cmp(b, c), _cmp(a, c)
    if ab is not None and bc is not None and ac is not None:
        if ab <= 0 and bc <= 0:
            assert ac <= 0, (a, b, c)
        if ab >= 0 and bc >= 0:
            assert ac >= 0, (a, b, c)
        if ab == 0 and bc == 0:
            assert ac == 0, (a, b, c)


@given(
    st.lists(st.integers(0, 30), min_size=1, max_size=3),
    st.integers(1, 30),
    st.integers(1, 30),
    st.sampled_from(["", "a", "b", "c"]),
    st.sampled_from(["", "a", "b", "c"]),
)
def test_a_differing_number_decides_else_the_letter(
    prefix: list[int], last_a: int, last_b: int, letter_a: str, letter_b: str
) -> None:
    head = ".".join(str(n) for n in prefix)
    a, b = f"{head}.{last_a}{letter_a}", f"{head}.{last_b}{letter_b}"
    expected = (last_a > last_b) - (last_a < last_b) or (letter_a > letter_b) - (letter_a < letter_b)
    assert compare_versions(a, b) == expected
