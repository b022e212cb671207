"""The sandbox's image server serving a directory (as ``flasher-sandbox up``/``serve`` do) beside in-memory
files: the same answers, ``Range`` resumes from disk, ``HEAD``, nothing outside the directory. Its fault knobs
are exercised by the firmware-store tests (``test_store.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from flasher_sandbox.images import make_image, read_header
from flasher_sandbox.servers import ImageServer

pytestmark = pytest.mark.integration


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ImageServer, bytes]]:
    root = tmp_path / "images"
    (root / "dell").mkdir(parents=True)
    image = make_image("bios", "dell", "2.12.2", ["r6515"], size=200_000)
    (root / "dell" / "bios 2.12.2.bin").write_bytes(image)
    (tmp_path / "secret.txt").write_text("outside the root")
    server = ImageServer(root).start()
    yield server, image
    server.stop()


def test_a_file_under_the_root_is_served_whole_with_its_etag(served: tuple[ImageServer, bytes]) -> None:
    server, image = served
    response = requests.get(server.url("dell/bios%202.12.2.bin"), timeout=10)

    assert response.status_code == 200
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(image).digest()
    assert read_header(response.content).version == "2.12.2"
    assert response.headers["Accept-Ranges"] == "bytes" and response.headers["ETag"].startswith('"')


def test_a_range_resumes_from_disk_and_if_range_guards_it(served: tuple[ImageServer, bytes]) -> None:
    server, image = served
    url = server.url("/dell/bios%202.12.2.bin")
    etag = requests.head(url, timeout=10).headers["ETag"]

    part = requests.get(url, headers={"Range": "bytes=150000-", "If-Range": etag}, timeout=10)
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 150000-{len(image) - 1}/{len(image)}"
    assert part.content == image[150000:]

    stale = requests.get(url, headers={"Range": "bytes=150000-", "If-Range": '"other"'}, timeout=10)
    assert stale.status_code == 200 and stale.content == image
    past = requests.get(url, headers={"Range": f"bytes={len(image)}-"}, timeout=10)
    assert past.status_code == 416


def test_head_answers_the_headers_only(served: tuple[ImageServer, bytes]) -> None:
    server, image = served
    response = requests.head(server.url("dell/bios%202.12.2.bin"), timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(image)) and response.content == b""


@pytest.mark.parametrize("path", ["../secret.txt", "%2e%2e/secret.txt", "dell", "dell/missing.bin"])
def test_nothing_outside_the_root_and_no_directory_is_served(served: tuple[ImageServer, bytes], path: str) -> None:
    server, _ = served
    response = requests.get(f"{server.base_url}/{path}", timeout=10)

    assert response.status_code == 404
    assert b"outside the root" not in response.content


def test_an_added_file_wins_over_the_directory_and_every_request_is_recorded(served: tuple[ImageServer, bytes]) -> None:
    server, _ = served
    url = server.add("dell/bios%202.12.2.bin", b"replaced")

    assert requests.get(url, timeout=10).content == b"replaced"
    assert [r.path for r in server.gets("/dell/bios%202.12.2.bin")] == ["/dell/bios%202.12.2.bin"]
