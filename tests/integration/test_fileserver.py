"""The file server that hands cached images to BMCs, served by uvicorn on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import REGISTRY

from flasher.config import FileServerSettings, StoreSettings
from flasher.store.fileserver import FileServer
from flasher.store.store import CachedImage, FirmwareStore, ImageNotCachedError
from flasher_sandbox.procs import wait_until

pytestmark = pytest.mark.integration

DATA = hashlib.shake_256(b"bios image").digest(300_000)
CHECKSUM = "sha256:" + hashlib.sha256(DATA).hexdigest()


def _served_total() -> float:
    return REGISTRY.get_sample_value("flasher_firmware_bytes_served_total") or 0.0


def _wait_served(before: float, expected: int) -> None:
    """Wait for the metric: a chunk counts once the server has taken it from the app,
    which may happen just after the client has read the last byte."""
    wait_until(lambda: _served_total() - before >= expected, 5, "bytes served metric")
    assert _served_total() - before == expected


@pytest.fixture
def store(tmp_path: Path) -> FirmwareStore:
    return FirmwareStore(StoreSettings(cache_dir=tmp_path / "cache"))


@pytest.fixture
def image(store: FirmwareStore, tmp_path: Path) -> CachedImage:
    source = tmp_path / "bios.bin"
    source.write_bytes(DATA)
    return store.add_file(source, CHECKSUM)


def _server(store: FirmwareStore, **settings: Any) -> FileServer:
    return FileServer(FileServerSettings(host="127.0.0.1", port=0, **settings), store)


@pytest.fixture
def server(store: FirmwareStore) -> Iterator[FileServer]:
    fileserver = _server(store)
    fileserver.start()
    yield fileserver
    fileserver.stop()


def test_published_image_is_served_with_length_and_etag(server: FileServer, image: CachedImage) -> None:
    before = _served_total()

    url = server.publish(image, "BIOS_2.7.3.exe")
    response = requests.get(url, timeout=10)

    assert url.startswith(server.base_url + "/images/")
    assert url.endswith("/BIOS_2.7.3.exe")
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.headers["ETag"] == f'"{CHECKSUM}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    _wait_served(before, len(DATA))


def test_paths_are_unguessable_and_unique(server: FileServer, image: CachedImage) -> None:
    first = server.publish(image, "bios.bin")
    second = server.publish(image, "bios.bin")

    token = first.rsplit("/", 2)[1]
    assert first != second
    assert len(token) >= 40  # 32 random bytes, URL-safe base64


def test_head_sends_headers_only(server: FileServer, image: CachedImage) -> None:
    url = server.publish(image, "bios.bin")
    before = _served_total()

    response = requests.head(url, timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(DATA))
    assert response.content == b""
    assert _served_total() == before


def test_range_request_gets_206_with_those_bytes(server: FileServer, image: CachedImage) -> None:
    url = server.publish(image, "bios.bin")
    before = _served_total()

    response = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    tail = requests.get(url, headers={"Range": "bytes=-100"}, timeout=10)

    assert response.status_code == 206
    assert response.content == DATA[1000:2000]
    assert response.headers["Content-Range"] == f"bytes 1000-1999/{len(DATA)}"
    assert tail.status_code == 206
    assert tail.content == DATA[-100:]
    _wait_served(before, 1100)


def test_unsatisfiable_range_gets_416(server: FileServer, image: CachedImage) -> None:
    url = server.publish(image, "bios.bin")

    response = requests.get(url, headers={"Range": f"bytes={len(DATA) + 10}-"}, timeout=10)

    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(DATA)}"


def test_multiple_ranges_get_416_as_werkzeug_answers_them(server: FileServer, image: CachedImage) -> None:
    # werkzeug builds no multipart/byteranges answer; a BMC that asks for several ranges gets 416.
    url = server.publish(image, "bios.bin")

    response = requests.get(url, headers={"Range": "bytes=0-9,100-109"}, timeout=10)
    malformed = requests.get(url, headers={"Range": "bytes=abc"}, timeout=10)

    assert response.status_code == 416
    assert malformed.status_code == 416


def test_if_range_with_a_stale_etag_gets_the_whole_image(server: FileServer, image: CachedImage) -> None:
    url = server.publish(image, "bios.bin")

    response = requests.get(url, headers={"Range": "bytes=10-", "If-Range": '"sha256:other"'}, timeout=10)

    assert response.status_code == 200
    assert response.content == DATA


@pytest.mark.parametrize(
    "path",
    ["/", "/images/", "/images", "/images/../cache/images", "/etc/passwd", "/images/%2e%2e/%2e%2e/etc/passwd"],
)
def test_anything_not_published_is_404(server: FileServer, image: CachedImage, path: str) -> None:
    server.publish(image, "bios.bin")

    response = requests.get(server.base_url + path, timeout=10)

    assert response.status_code == 404
    assert DATA[:100] not in response.content


def test_a_guessed_token_is_404(server: FileServer, image: CachedImage) -> None:
    url = server.publish(image, "bios.bin")
    prefix, token, name = url.rsplit("/", 2)
    guessed = f"{prefix}/{token[:-1]}{'A' if token[-1] != 'A' else 'B'}/{name}"

    assert requests.get(guessed, timeout=10).status_code == 404
    assert requests.get(f"{prefix}/{token}/other.bin", timeout=10).status_code == 404


def test_other_methods_are_refused(server: FileServer, image: CachedImage) -> None:
    url = server.publish(image, "bios.bin")

    response = requests.post(url, data=b"x", timeout=10)

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD"}


def test_unpublish_stops_serving_and_releases_the_image(
    server: FileServer, image: CachedImage, store: FirmwareStore, tmp_path: Path
) -> None:
    url = server.publish(image, "bios.bin")
    tiny = FirmwareStore(StoreSettings(cache_dir=tmp_path / "cache", max_bytes=1000))

    assert tiny.evict() == []  # published: held, so not evicted
    assert server.published() == 1

    server.unpublish(url)
    server.unpublish(url)  # twice is harmless

    assert requests.get(url, timeout=10).status_code == 404
    assert server.published() == 0
    assert [str(c) for c in tiny.evict()] == [CHECKSUM]
    with pytest.raises(ImageNotCachedError):
        server.publish(image, "bios.bin")


def test_filename_is_reduced_to_one_safe_segment(server: FileServer, image: CachedImage) -> None:
    url = server.publish(image, "../../etc/bios image.bin")

    assert url.endswith("/etc_bios_image.bin")
    assert requests.get(url, timeout=10).content == DATA
    with pytest.raises(ValueError, match="filename"):
        server.publish(image, "../..")


def test_public_url_is_what_bmcs_are_given(store: FirmwareStore, image: CachedImage) -> None:
    fileserver = _server(store, public_url="https://flasher.mgmt.example.com:8443/firmware/")
    fileserver.start()
    try:
        url = fileserver.publish(image, "bmc.bin")
        local = url.replace("https://flasher.mgmt.example.com:8443", f"http://127.0.0.1:{fileserver._server.port}")

        assert fileserver.base_url == "https://flasher.mgmt.example.com:8443/firmware"
        assert url.startswith("https://flasher.mgmt.example.com:8443/firmware/images/")
        assert requests.get(local, timeout=10).content == DATA  # a proxy forwards the path unchanged
        fileserver.unpublish(url)
        assert requests.get(local, timeout=10).status_code == 404
    finally:
        fileserver.stop()


def test_stop_releases_every_published_image(store: FirmwareStore, image: CachedImage, tmp_path: Path) -> None:
    fileserver = _server(store)
    fileserver.start()
    url = fileserver.publish(image, "bios.bin")

    fileserver.stop()

    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=10)
    assert FirmwareStore(StoreSettings(cache_dir=tmp_path / "cache", max_bytes=1000)).evict() != []


def test_a_disabled_file_server_does_not_start(store: FirmwareStore) -> None:
    with pytest.raises(RuntimeError, match=r"fileserver\.enabled"):
        _server(store, enabled=False).start()


def test_publishing_needs_a_running_server(store: FirmwareStore, image: CachedImage) -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _server(store).publish(image, "bios.bin")
