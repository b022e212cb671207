"""The sandbox firmware image format (``flasher_sandbox/images.py``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flasher_sandbox.images import MAGIC, ImageHeader, InvalidImageError, make_image, read_header

single_line = st.text(min_size=1, max_size=40).filter(lambda s: "\n" not in s)


def test_an_image_has_the_magic_line_a_json_header_and_its_exact_size() -> None:
    image = make_image("bios", "dell", "2.7.3", ["r6515", "r7515"], size=4096)
    assert len(image) == 4096
    magic, header, _padding = image.split(b"\n", 2)
    assert magic == b"FLASHER-SANDBOX-FIRMWARE/1" == MAGIC
    assert json.loads(header) == {
        "component": "bios",
        "vendor": "dell",
        "models": ["r6515", "r7515"],
        "version": "2.7.3",
    }


def test_the_same_arguments_give_the_same_bytes_and_different_ones_differ() -> None:
    first = make_image("nic", "broadcom", "22.31.6", ["bcm57414"])
    assert first == make_image("nic", "broadcom", "22.31.6", ["bcm57414"])
    assert (
        hashlib.sha256(first).hexdigest()
        != hashlib.sha256(make_image("nic", "broadcom", "22.31.7", ["bcm57414"])).hexdigest()
    )
    assert len(first) == 65536


def test_read_header_from_bytes_and_from_a_file(tmp_path: Path) -> None:
    image = make_image("bmc", "supermicro", "01.02.14", [], size=1 << 20)
    expected = ImageHeader("bmc", "supermicro", (), "01.02.14")
    assert read_header(image) == expected
    path = tmp_path / "bmc.bin"
    path.write_bytes(image)
    assert read_header(path) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"MZ\x90\x00binary", "not a sandbox firmware image"),
        (b"FLASHER-SANDBOX-FIRMWARE/2\n{}\n", "not a sandbox firmware image"),
        (MAGIC + b'\n{"component": "bios"', "truncated"),
        (MAGIC + b"\nnot json\n", "not JSON"),
        (MAGIC + b"\n[1, 2]\n", "must be a JSON object"),
        (MAGIC + b'\n{"vendor": "dell", "models": [], "version": "1"}\n', "'component'"),
        (MAGIC + b'\n{"component": "bios", "vendor": "dell", "models": "r6515", "version": "1"}\n', "'models'"),
        (MAGIC + b'\n{"component": "bios", "vendor": "", "models": [], "version": "1"}\n', "'vendor'"),
    ],
)
def test_read_header_names_what_is_wrong(data: bytes, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        read_header(data)


def test_an_unreadable_file_is_an_invalid_image(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="cannot read image"):
        read_header(tmp_path / "absent.bin")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"component": ""}, "component"),
        ({"version": "1\n2"}, "version"),
        ({"models": "r6515"}, "models"),
        ({"size": 10}, "smaller than"),
    ],
)
def test_make_image_refuses_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"component": "bios", "vendor": "dell", "version": "1.0", "models": [], **kwargs}
    with pytest.raises(ValueError, match=message):
        make_image(**arguments)  # type: ignore[arg-type]


def test_models_match_case_insensitively_and_an_empty_list_matches_anything() -> None:
    assert ImageHeader("nic", "intel", ("X710",), "9.2").applies_to_model("x710")
    assert not ImageHeader("nic", "intel", ("x710",), "9.2").applies_to_model("e810-xxv", "x12stw")
    assert ImageHeader("bios", "dell", (), "1").applies_to_model("anything")


@given(component=single_line, vendor=single_line, version=single_line, models=st.lists(single_line, max_size=4))
def test_any_header_reads_back_as_written(component: str, vendor: str, version: str, models: list[str]) -> None:
    image = make_image(component, vendor, version, models, size=8192)
    assert read_header(image) == ImageHeader(component, vendor, tuple(models), version)
