"""Comparing firmware versions as vendors write them, refusing to guess when they cannot be ordered.

Forms understood (case-insensitive; surrounding whitespace ignored):

==============================  ================================================================================
form                            read as
==============================  ================================================================================
``2.80.80.80``, ``2.7.3``       dotted numbers, compared numerically; missing trailing parts count as 0
                                (``2.7`` == ``2.7.0``, ``2.9`` < ``2.10``)
``v1.45``, ``version 1.45``     the same (a leading ``v``/``ver``/``version`` word is dropped)
``1.4a``, ``3.2b``, ``2.1``     a letter after the last number (Supermicro BIOS): a differing number decides
                                (``1.4a`` < ``1.5``); an equal numeric prefix is decided by the letter, none
                                first (``2.1`` < ``2.1a`` < ``2.1b``)
``1.45.455b66-rev4``            dotted parts that may hold letters (builds such as ``455b66``), then a suffix
``1.0.0.0-beta``, ``2.1-rc2``   a suffix of PEP 440 pre/post/dev words: ``dev`` < ``alpha`` < ``beta`` <
                                ``rc``/``pre``/``preview`` < (none) < ``post``/``rev``/``-N``
``P79 v1.45``, ``U46_1.20``     a family prefix (HPE ROM families, ...) before the version; only versions of
``iLO 5 v2.78``                 the same family compare (a generation number before ``v`` belongs to it)
``TEI3E4D-4.12``                a Lenovo build id before the version: its three letters are the family
                                (``TEI``), the rest is the build; equal versions of two builds do not compare
``A43 v2.52 (10/29/2021)``      a release date after the version, in brackets (``mm/dd/yyyy`` or ``yyyy-mm-dd``)
``2.78 Apr 28 2023``            or as HPE iLO writes it; it breaks ties between equal versions of the same family
``10/29/2021``, ``2021-10-29``  a BIOS date alone; compares only with another date
``0x1a``, ``0x0B000040``        a hex number (CPLD, microcode); compares only with another hex number
==============================  ================================================================================

A value that says the version is unknown (``N/A``, ``Unknown``, ``-``, empty) is not a version:
:func:`is_unknown_version` tells it apart, and callers treat it as "not reported".

Two versions whose text is equal ignoring case and spacing are equal, whatever their form. Otherwise
:func:`compare_versions` raises :class:`IncomparableVersionsError`, saying why, rather than guess:

* different families (``P79 v1.45`` vs ``U46 v1.45``), or a family on one side only;
* no numeric core on a side (``GDC5602Q``, drive firmware and the like are vendor-specific strings);
* a date, a hex number and a dotted version compared with each other;
* two numbers after the first dot, one zero-padded (``09``) and the other of another width, that are ordered
  one way as numbers and the other as decimal fractions (``1.1`` vs ``1.09``: 1 < 9, but 1.1 > 1.09), since a
  zero-padded part suggests the vendor writes decimals; when both readings agree (``1.09`` < ``1.10``) or the
  numbers are equal (``1.05`` == ``1.5``) they decide as numbers;
* a letter after the last number of the shorter version where the longer one goes on (``1.4a`` vs ``1.4.1``:
  whether the letter comes before or after ``.1`` is not written anywhere);
* a number against a build token at the same place (``1.45.455`` vs ``1.45.455b66``), or two build tokens whose
  letters differ (``455b66`` vs ``3fa9c1``: such tokens are often commit hashes, which have no order);
  tokens with the same letters compare by their numbers (``455b66`` < ``455b67``);
* suffixes that are not PEP 440 pre/post/dev words and differ (``-hotfix`` vs ``-custom``);
* two Lenovo builds of the same version (``TEI3E4D-4.12`` vs ``TEI3E6C-4.12``).

Library choice: the ordering of pre-, post- and dev-release suffixes is delegated to ``packaging.version``
(PyPA's implementation of PEP 440, the most widely used version code in Python), which knows every spelling of
them (``-beta.2`` = ``b2``, ``-rev4`` = ``.post4``, ``-1`` = ``.post1``). It cannot be used for whole vendor
versions: PEP 440 has no families or dates, and it would read the build ``455b66`` as "beta 66", so flasher only
hands it a suffix whose words are spelled out in full. ``looseversion`` (distutils' ``LooseVersion``) was
rejected: it orders any two strings by comparing their pieces, so it guesses where flasher must refuse
(``455b66`` vs ``3fa9c1``), puts ``1.0-beta`` after ``1.0``, and raises ``TypeError`` comparing a number with a
word. The family, date, hex and build-token rules are flasher's own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final

from packaging.version import InvalidVersion, Version


class IncomparableVersionsError(ValueError):
    """Two versions that cannot be ordered. ``a`` and ``b`` are the versions, ``reason`` says why."""

    def __init__(self, a: str, b: str, reason: str) -> None:
        self.a, self.b, self.reason = a, b, reason
        super().__init__(f"cannot compare {a!r} with {b!r}: {reason}")


class VersionKind(StrEnum):
    """What a version string is made of (see the module's table)."""

    DOTTED = "dotted"
    DATE = "date"
    HEX = "hex"
    OPAQUE = "opaque"


@dataclass(frozen=True, slots=True)
class VendorVersion:
    """A parsed version. ``parts`` are ints and lowercase build tokens, ``written`` the same parts as written
    (``"09"``); ``suffix`` is lowercase with its leading separator (``-rev4``), ``""`` when none; ``family`` is
    lowercase or ``None``; ``letter``: the letter after the last number (``1.4a`` → ``a``), ``""`` when none;
    ``build``: a Lenovo build id's build part (``TEI3E4D`` → ``3e4d``), ``None`` when none."""

    raw: str
    kind: VersionKind
    family: str | None = None
    parts: tuple[int | str, ...] = ()
    suffix: str = ""
    released: date | None = None
    written: tuple[str, ...] = ()
    letter: str = ""
    build: str | None = None


_WORD_PREFIX = re.compile(r"^(?:version|ver|v)\.?\s*(?=\d)")
#: A family word (``p79``, ``u46``, ``bios``), or a word and a generation before ``v`` (``ilo 5 v2.78``).
_FAMILY = re.compile(r"^(?P<family>[a-z]+\d*(?:\s+\d+(?=\s*v\d))?)(?:[\s_]+(?:version|ver|v)?\.?\s*|\s*v)(?=\d)")
#: A Lenovo build id before the version (``TEI3E4D-4.12``): three letters (the firmware's line), then the build.
_LENOVO_BUILD = re.compile(r"^(?P<family>[a-z]{3})(?P<build>\d[0-9a-z]{2}[a-z])[-\s](?=\d)")
_MDY = r"(?P<m>\d{1,2})/(?P<d>\d{1,2})/(?P<y>\d{4})"
_YMD = r"(?P<y2>\d{4})-(?P<m2>\d{2})-(?P<d2>\d{2})"
_MONTHS: Final = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MON = rf"(?P<mon>{'|'.join(_MONTHS)})\.?\s+(?P<d3>\d{{1,2}}),?\s+(?P<y3>\d{{4}})"
_TRAILING_DATE = re.compile(rf"(?:\s*\(\s*(?:{_MDY}|{_YMD})\s*\)|\s+{_MON})$")
_WHOLE_DATE = re.compile(rf"^(?:{_MDY}|{_YMD})$")
_HEX = re.compile(r"^0x(?P<hex>[0-9a-f]+)$")
_DOTTED = re.compile(r"^(?P<main>\d[0-9a-z]*(?:\.[0-9a-z]+)*)(?P<suffix>(?:[-_+. ].*)?)$")
#: A last part such as ``0rc1``: digits then a pre/post word spelled out (never a single letter: ``455b66``).
_TAGGED_PART = re.compile(r"^(?P<number>\d+)(?P<tag>(?:alpha|beta|rc|pre|preview|dev|post|rev)\d*)$")
#: A last part with one letter after its number (Supermicro BIOS ``1.4a``): the number, then the letter.
_LETTER_PART = re.compile(r"^(?P<number>\d+)(?P<letter>[a-z])$")
#: Suffix words handed to ``packaging`` (single letters such as ``b`` are builds, not "beta").
_SUFFIX_WORDS: Final = frozenset({"alpha", "beta", "rc", "pre", "preview", "dev", "post", "rev"})
_RUNS = re.compile(r"\d+|[a-z]+")


def _date_of(match: re.Match[str]) -> date | None:
    groups = match.groupdict()
    if groups["y"]:
        year, month, day = groups["y"], groups["m"], groups["d"]
    elif groups["y2"]:
        year, month, day = groups["y2"], groups["m2"], groups["d2"]
    else:
        year, month, day = groups["y3"], str(_MONTHS.index(groups["mon"]) + 1), groups["d3"]
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def parse_version(raw: str) -> VendorVersion:
    """Read ``raw`` into a :class:`VendorVersion`; never raises (text it cannot read is ``OPAQUE``)."""
    text = _normalised(raw)
    if (whole := _WHOLE_DATE.match(text)) and (day := _date_of(whole)):
        return VendorVersion(raw, VersionKind.DATE, released=day)
    if hex_match := _HEX.match(text):
        return VendorVersion(raw, VersionKind.HEX, parts=(int(hex_match["hex"], 16),))
    released = None
    if (trailing := _TRAILING_DATE.search(text)) and (day := _date_of(trailing)):
        released, text = day, text[: trailing.start()]
    family = build = None
    if prefix := _WORD_PREFIX.match(text):
        text = text[prefix.end() :]
    elif lenovo := _LENOVO_BUILD.match(text):
        family, build, text = lenovo["family"], lenovo["build"], text[lenovo.end() :]
    elif family_match := _FAMILY.match(text):
        family, text = " ".join(family_match["family"].split()), text[family_match.end() :]
    dotted = _DOTTED.match(text)
    if dotted is None:
        return VendorVersion(raw, VersionKind.OPAQUE, family=family, released=released)
    pieces = dotted["main"].split(".")
    suffix = dotted["suffix"]
    letter = ""
    if not suffix and (tagged := _TAGGED_PART.match(pieces[-1])):
        pieces[-1], suffix = tagged["number"], "-" + tagged["tag"]
    elif lettered := _LETTER_PART.match(pieces[-1]):
        pieces[-1], letter = lettered["number"], lettered["letter"]
    parts = tuple(int(p) if p.isdigit() else p for p in pieces)
    return VendorVersion(
        raw,
        VersionKind.DOTTED,
        family=family,
        parts=parts,
        suffix=suffix,
        released=released,
        written=tuple(pieces),
        letter=letter,
        build=build,
    )


def _sign(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def _compare_parts(a: int | str, b: int | str) -> int | str:
    """-1/0/1, or a reason string when the two parts cannot be ordered."""
    if isinstance(a, int) and isinstance(b, int):
        return _sign(a, b)
    if a == b:
        return 0
    if isinstance(a, int) or isinstance(b, int):
        return f"{str(a)!r} and {str(b)!r} are a number and a build token"
    runs_a, runs_b = _RUNS.findall(a), _RUNS.findall(b)
    letters_a = [r if not r.isdigit() else "#" for r in runs_a]
    letters_b = [r if not r.isdigit() else "#" for r in runs_b]
    if letters_a != letters_b or "".join(runs_a) != a or "".join(runs_b) != b:
        return f"build tokens {a!r} and {b!r} have no order"
    return _sign(
        tuple(int(r) for r in runs_a if r.isdigit()),
        tuple(int(r) for r in runs_b if r.isdigit()),
    )


def _decimal_conflict(a: str, b: str) -> str | None:
    """Why two numeric parts after the first dot cannot be ordered, or ``None``: one is zero-padded, their widths
    differ, and reading them as decimal fractions (``.1`` vs ``.09``) orders them against reading them as
    numbers (1 vs 9)."""
    zero_padded = any(len(part) > 1 and part.startswith("0") for part in (a, b))
    if len(a) == len(b) or not zero_padded:
        return None
    as_numbers = _sign(int(a), int(b))
    width = max(len(a), len(b))
    as_decimals = _sign(int(a.ljust(width, "0")), int(b.ljust(width, "0")))
    if as_numbers * as_decimals < 0:
        return f"{a!r} and {b!r} are ordered one way as numbers and the other as decimals (zero-padded)"
    return None


def _suffix_version(suffix: str) -> Version | None:
    """The suffix as a PEP 440 version ``0<suffix>``, when it is made of spelled-out pre/post/dev words."""
    if not suffix:
        return Version("0")
    words = re.findall(r"[a-z]+", suffix)
    if any(word not in _SUFFIX_WORDS for word in words):
        return None
    try:
        parsed = Version("0" + re.sub(r"^[\s_]+", "-", suffix))
    except InvalidVersion:
        return None
    return parsed if parsed.local is None else None


def _compare_suffixes(a: str, b: str) -> int | str:
    if a == b:
        return 0
    version_a, version_b = _suffix_version(a), _suffix_version(b)
    if version_a is None or version_b is None:
        return f"suffixes {a or '(none)'!r} and {b or '(none)'!r} have no order"
    return _sign(version_a, version_b)


def _show_family(version: VendorVersion) -> str:
    return f"family {version.family.upper()!r}" if version.family else "no family"


def _kind_reason(a: VendorVersion, b: VendorVersion) -> str | None:
    """Why two parsed versions cannot be compared at all (before looking at numbers), or ``None``."""
    for side in (a, b):
        if side.kind is VersionKind.OPAQUE:
            return f"{side.raw.strip()!r} has no numeric version"
    if a.family != b.family:
        return f"{a.raw.strip()!r} has {_show_family(a)}, {b.raw.strip()!r} has {_show_family(b)}"
    if (a.build is None) != (b.build is None):
        lenovo = a if a.build is not None else b
        return f"{lenovo.raw.strip()!r} has a build id, the other has none"
    if a.kind is not b.kind:
        return f"{a.raw.strip()!r} is a {a.kind.value} version, {b.raw.strip()!r} a {b.kind.value} version"
    return None


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is lower than, equal to or higher than ``b``.

    Raises :class:`IncomparableVersionsError` (with both values and the reason) when they cannot be ordered; see the
    module's documentation for the forms and rules.
    """
    if _normalised(a) == _normalised(b):
        return 0
    pa, pb = parse_version(a), parse_version(b)
    if reason := _kind_reason(pa, pb):
        raise IncomparableVersionsError(a, b, reason)
    if pa.kind is VersionKind.DATE:
        return _sign(pa.released, pb.released)
    width = max(len(pa.parts), len(pb.parts))
    padded_a = pa.parts + (0,) * (width - len(pa.parts))
    padded_b = pb.parts + (0,) * (width - len(pb.parts))
    written_a = pa.written + ("0",) * (width - len(pa.written))
    written_b = pb.written + ("0",) * (width - len(pb.written))
    # A letter ends its version: past the last part of a shorter version with a letter there is no order.
    lettered_end = min((len(p.parts) for p in (pa, pb) if p.letter and len(p.parts) < width), default=width)
    for index, (part_a, part_b) in enumerate(zip(padded_a, padded_b, strict=True)):
        result = _compare_parts(part_a, part_b)
        if isinstance(result, str):
            raise IncomparableVersionsError(a, b, result)
        numbers = isinstance(part_a, int) and isinstance(part_b, int)
        if result and index > 0 and numbers and (conflict := _decimal_conflict(written_a[index], written_b[index])):
            raise IncomparableVersionsError(a, b, conflict)
        if result and index >= lettered_end:
            raise IncomparableVersionsError(a, b, _letter_reason(pa, pb))
        if result:
            return result
    if pa.letter != pb.letter:
        if lettered_end < width:
            raise IncomparableVersionsError(a, b, _letter_reason(pa, pb))
        return _sign(pa.letter, pb.letter)
    result = _compare_suffixes(pa.suffix, pb.suffix)
    if isinstance(result, str):
        raise IncomparableVersionsError(a, b, result)
    if result == 0 and pa.build != pb.build:
        raise IncomparableVersionsError(a, b, f"builds {pa.build!r} and {pb.build!r} of one version have no order")
    if result == 0 and pa.released and pb.released:
        return _sign(pa.released, pb.released)
    return result


def _letter_reason(a: VendorVersion, b: VendorVersion) -> str:
    shorter, longer = (a, b) if len(a.parts) < len(b.parts) else (b, a)
    return (
        f"{shorter.raw.strip()!r} ends in letter {shorter.letter!r} where {longer.raw.strip()!r} has more parts: "
        "their order is not written anywhere"
    )


#: What BMCs and inventory collectors write for a version they could not read (compared case-insensitively,
#: after stripping): not a version at all.
UNKNOWN_VERSION_MARKERS: Final = frozenset({"", "n/a", "unknown", "-"})


def is_unknown_version(version: str | None) -> bool:
    """True when ``version`` is missing or says it is unknown: ``None``, empty or blank, or one of
    :data:`UNKNOWN_VERSION_MARKERS` (``N/A``, ``Unknown``, ``-``; any case, surrounding spaces ignored). Such a
    value is no version to compare: :func:`compare_versions` would call it incomparable."""
    return version is None or version.strip().lower() in UNKNOWN_VERSION_MARKERS


def versions_equal(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` name the same version (equal text ignoring case, or equal by
    :func:`compare_versions`); False when they differ or cannot be compared."""
    try:
        return compare_versions(a, b) == 0
    except IncomparableVersionsError:
        return False
