"""The firmware store against real HTTP servers on loopback: caching, verification, retries, resume, eviction."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from flasher.checksum import Checksum
from flasher.config import StoreSettings
from flasher.store.store import (
    ChecksumMismatchError,
    DisallowedURLError,
    DownloadError,
    FirmwareStore,
    ImageNotCachedError,
    ImageTooLargeError,
    StoreError,
    TruncatedDownloadError,
)
from flasher.store.urls import check_url
from flasher_sandbox.servers import ImageServer
from tests.support.tls import self_signed_certificate

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def _image(size: int, seed: int = 0) -> bytes:
    return hashlib.shake_256(f"firmware-{seed}".encode()).digest(size)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _store(cache: Path, **settings: Any) -> FirmwareStore:
    # The test image servers are on loopback, which the store refuses unless store.allowed_hosts names it.
    settings.setdefault("allowed_hosts", ["127.0.0.1"])
    return FirmwareStore(StoreSettings(cache_dir=cache, **settings), attempts=3, backoff=0.01, max_backoff=0.05)


def _cache_files(cache: Path) -> list[str]:
    return sorted(p.name for p in (cache / "images").iterdir())


def _downloaded_total() -> float:
    return REGISTRY.get_sample_value("flasher_firmware_bytes_downloaded_total") or 0.0


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_fetch_streams_verifies_and_caches(image_server: ImageServer, cache: Path) -> None:
    data = _image(2 * MIB + 123)
    url = image_server.add("/fw/bios.bin", data)
    progress: list[tuple[int, int | None]] = []
    before = _downloaded_total()

    image = _store(cache).fetch(url, _sha256(data), on_progress=lambda done, total: progress.append((done, total)))

    assert image.path == cache / "images" / f"sha256-{hashlib.sha256(data).hexdigest()}"
    assert image.path.read_bytes() == data
    assert image.size == len(data)
    assert image.checksum == Checksum.parse(_sha256(data))
    assert progress[-1] == (len(data), len(data))
    assert len(progress) > 1  # streamed in chunks, not read whole
    assert _downloaded_total() - before == len(data)
    assert _cache_files(cache) == [image.path.name]  # no partial file left behind
    assert image_server.gets("/fw/bios.bin")[0].headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("algorithm", ["sha512", "md5"])
def test_fetch_verifies_other_algorithms_in_plain_hex(image_server: ImageServer, cache: Path, algorithm: str) -> None:
    data = _image(300_000, seed=1)
    url = image_server.add("/fw/image.bin", data)
    digest = hashlib.new(algorithm, data).hexdigest().upper()

    image = _store(cache).fetch(url, digest)

    assert image.checksum.algorithm == algorithm
    assert image.path.name == f"{algorithm}-{digest.lower()}"
    assert image.path.read_bytes() == data


def test_second_fetch_is_a_cache_hit(image_server: ImageServer, cache: Path) -> None:
    data = _image(500_000)
    url = image_server.add("/fw/bmc.bin", data)
    store = _store(cache)
    first = store.fetch(url, _sha256(data))

    again = store.fetch(url, hashlib.sha256(data).hexdigest())  # plain form of the same checksum
    via_other_process = _store(cache).get(_sha256(data))

    assert again == first == via_other_process
    assert len(image_server.gets("/fw/bmc.bin")) == 1


def test_checksum_mismatch_caches_nothing(image_server: ImageServer, cache: Path) -> None:
    data = _image(400_000)
    url = image_server.add("/fw/bios.bin", data)
    wrong = _sha256(data + b"x")
    store = _store(cache)

    with pytest.raises(ChecksumMismatchError) as caught:
        store.fetch(url, wrong)

    assert url in str(caught.value)
    assert wrong in str(caught.value)
    assert caught.value.got == hashlib.sha256(data).hexdigest()
    assert not caught.value.retriable
    assert _cache_files(cache) == []
    assert store.get(wrong) is None
    assert len(image_server.gets("/fw/bios.bin")) == 1  # a mismatch is not retried


def test_content_length_longer_than_body_is_a_truncated_download(image_server: ImageServer, cache: Path) -> None:
    data = _image(300_000)
    url = image_server.add("/fw/bios.bin", data)
    image_server.length_delta = 1000  # announces 1000 bytes more than it sends, then hangs up
    image_server.honour_range = False

    with pytest.raises(TruncatedDownloadError) as caught:
        _store(cache).fetch(url, _sha256(data))

    assert (caught.value.expected, caught.value.got) == (len(data) + 1000, len(data))
    assert caught.value.retriable
    assert len(image_server.gets("/fw/bios.bin")) == 3  # attempts=3, none got further than the last
    assert _cache_files(cache) == []


def test_content_length_shorter_than_body_fails_verification(image_server: ImageServer, cache: Path) -> None:
    data = _image(300_000)
    url = image_server.add("/fw/bios.bin", data)
    image_server.length_delta = -1000  # the client reads only what was announced

    with pytest.raises(ChecksumMismatchError):
        _store(cache).fetch(url, _sha256(data))

    assert _cache_files(cache) == []


def test_resumes_after_a_dropped_connection(image_server: ImageServer, cache: Path) -> None:
    data = _image(2 * MIB)
    url = image_server.add("/fw/bios.bin", data)
    image_server.drop_after = [700_000]

    image = _store(cache).fetch(url, _sha256(data))

    first, second = image_server.gets("/fw/bios.bin")
    assert "Range" not in first.headers
    assert second.headers["Range"] == "bytes=700000-"
    assert second.headers["If-Range"].startswith('"')  # the first answer's ETag
    assert image.path.read_bytes() == data


def test_restarts_from_zero_when_the_server_ignores_range(image_server: ImageServer, cache: Path) -> None:
    data = _image(1 * MIB)
    url = image_server.add("/fw/bios.bin", data)
    image_server.honour_range = False
    image_server.drop_after = [300_000]

    image = _store(cache).fetch(url, _sha256(data))

    assert image_server.gets("/fw/bios.bin")[1].headers["Range"] == "bytes=300000-"  # answered 200: from zero
    assert image.path.read_bytes() == data


def test_server_error_then_success(image_server: ImageServer, cache: Path) -> None:
    data = _image(200_000)
    url = image_server.add("/fw/bios.bin", data)
    image_server.fail_status = [503]

    image = _store(cache).fetch(url, _sha256(data))

    assert len(image_server.gets("/fw/bios.bin")) == 2
    assert image.path.read_bytes() == data


def test_server_errors_until_attempts_run_out(image_server: ImageServer, cache: Path) -> None:
    url = image_server.add("/fw/bios.bin", b"never served")
    image_server.fail_status = [502, 503, 503, 503]

    with pytest.raises(DownloadError) as caught:
        _store(cache).fetch(url, _sha256(b"never served"))

    assert caught.value.retriable
    assert "HTTP 503" in str(caught.value)
    assert len(image_server.gets("/fw/bios.bin")) == 3
    assert _cache_files(cache) == []


def test_not_found_is_not_retried(image_server: ImageServer, cache: Path) -> None:
    with pytest.raises(DownloadError) as caught:
        _store(cache).fetch(image_server.url("/missing.bin"), _sha256(b"x"))

    assert not caught.value.retriable
    assert "HTTP 404" in str(caught.value)
    assert len(image_server.gets("/missing.bin")) == 1


def test_connection_refused_is_retriable(cache: Path) -> None:
    from flasher_sandbox.procs import free_port

    with pytest.raises(DownloadError) as caught:
        _store(cache).fetch(f"http://127.0.0.1:{free_port()}/fw.bin", _sha256(b"x"))

    assert caught.value.retriable


def test_https_verifies_against_the_ca_bundle(tmp_path: Path, cache: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    server = ImageServer().start(tls=(cert, key))
    try:
        data = _image(200_000)
        url = server.add("/fw/bios.bin", data)

        with pytest.raises(DownloadError, match="certificate") as caught:
            _store(cache).fetch(url, _sha256(data))
        assert not caught.value.retriable  # an untrusted certificate will not become trusted by retrying

        image = _store(cache, ca_bundle=cert).fetch(url, _sha256(data))
        assert image.path.read_bytes() == data
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("url", "settings", "reason"),
    [
        ("ftp://127.0.0.1/fw.bin", {}, "scheme 'ftp'"),
        ("file:///etc/passwd", {}, "scheme 'file'"),
        ("http://127.0.0.1/fw.bin", {"allowed_schemes": ["https"]}, "scheme 'http'"),
        ("http://127.0.0.1/fw.bin", {"allowed_hosts": ["*.example.com"]}, "host '127.0.0.1'"),
    ],
)
def test_disallowed_url_is_refused_before_any_request(
    image_server: ImageServer, cache: Path, url: str, settings: dict[str, Any], reason: str
) -> None:
    with pytest.raises(DisallowedURLError, match=reason):
        _store(cache, **settings).fetch(url, _sha256(b"x"))
    assert image_server.requests == []


def test_redirect_to_a_disallowed_host_is_refused(image_server: ImageServer, cache: Path) -> None:
    data = _image(1000)
    image_server.add("/fw/bios.bin", data)
    image_server.redirects["/moved.bin"] = f"http://localhost:{image_server.port}/fw/bios.bin"

    with pytest.raises(DisallowedURLError, match="host 'localhost'"):
        _store(cache, allowed_hosts=["127.0.0.1"]).fetch(image_server.url("/moved.bin"), _sha256(data))

    assert [r.path for r in image_server.requests] == ["/moved.bin"]
    assert _cache_files(cache) == []


def test_redirect_to_an_allowed_host_is_followed(image_server: ImageServer, cache: Path) -> None:
    data = _image(1000)
    image_server.add("/fw/bios.bin", data)
    image_server.redirects["/moved.bin"] = "/fw/bios.bin"

    image = _store(cache, allowed_hosts=["127.0.0.1"]).fetch(image_server.url("/moved.bin"), _sha256(data))

    assert image.path.read_bytes() == data


def test_credentials_in_the_url_never_reach_an_error(image_server: ImageServer, cache: Path) -> None:
    url = f"http://fwuser:hunter2secret@127.0.0.1:{image_server.port}/missing.bin?X-Amz-Signature=abcdef123456"

    with pytest.raises(DownloadError) as caught:
        _store(cache).fetch(url, _sha256(b"x"))

    assert "hunter2secret" not in str(caught.value)
    assert "abcdef123456" not in str(caught.value)
    assert "/missing.bin" in str(caught.value)


def test_deadline_stops_a_slow_download(image_server: ImageServer, cache: Path) -> None:
    data = _image(1 * MIB)
    url = image_server.add("/fw/bios.bin", data)
    image_server.chunk_delay = 0.05  # 16 chunks: about 0.8 s

    with pytest.raises(DownloadError, match="deadline"):
        _store(cache).fetch(url, _sha256(data), deadline=time.monotonic() + 0.2)

    assert _cache_files(cache) == []


SIZE = 100_000


def _two_cached_and_one_more(image_server: ImageServer, cache: Path) -> tuple[FirmwareStore, list[str], list[str]]:
    """A store capped at 2.5 images holding a (used at t=1000) and b (t=2000); c is served but not fetched.

    Returns the store, the three checksums and the three URLs.
    """
    images = [_image(SIZE, seed) for seed in (1, 2, 3)]
    urls = [image_server.add(f"/{name}.bin", data) for name, data in zip("abc", images, strict=True)]
    checksums = [_sha256(data) for data in images]
    store = _store(cache, max_bytes=int(SIZE * 2.5))
    for url, checksum, used_at in zip(urls[:2], checksums[:2], (1000, 2000), strict=True):
        image = store.fetch(url, checksum)
        os.utime(image.path, (used_at, used_at))
    return store, checksums, urls


def test_least_recently_used_images_are_evicted_under_the_cap(image_server: ImageServer, cache: Path) -> None:
    store, (a, b, c), urls = _two_cached_and_one_more(image_server, cache)
    assert store.get(a) is not None  # a was older than b until this use

    store.fetch(urls[2], c)

    assert store.get(b) is None
    assert store.get(a) is not None
    assert store.get(c) is not None
    assert store.usage() == 2 * SIZE


def test_a_held_image_is_not_evicted(image_server: ImageServer, cache: Path) -> None:
    store, (a, b, c), urls = _two_cached_and_one_more(image_server, cache)

    with store.hold(a) as held:
        assert held.checksum == Checksum.parse(a)
        os.utime(held.path, (1000, 1000))  # hold() marks it used; make it the oldest again
        store.fetch(urls[2], c)
        assert store.get(a) is not None  # oldest, but held
        assert store.get(b) is None
        store.get(c)
        os.utime(held.path, (1000, 1000))
        assert _store(cache, max_bytes=SIZE).evict() == [Checksum.parse(c)]  # a is older, but held

    assert store.get(a) is not None
    assert _store(cache, max_bytes=SIZE // 2).evict() == [Checksum.parse(a)]
    with pytest.raises(ImageNotCachedError):
        store.hold(a)


def test_an_image_larger_than_the_cache_is_refused(image_server: ImageServer, cache: Path) -> None:
    data = _image(300_000)
    url = image_server.add("/fw/huge.bin", data)

    with pytest.raises(ImageTooLargeError) as caught:
        _store(cache, max_bytes=100_000).fetch(url, _sha256(data))

    assert "300000 bytes" in str(caught.value)
    assert "100000 bytes" in str(caught.value)
    assert _cache_files(cache) == []


def test_evict_removes_partial_files_left_by_a_crash(cache: Path) -> None:
    store = _store(cache)
    checksum = Checksum.parse(_sha256(b"partial"))
    leftover = store.cache.partial_path(checksum)
    leftover.write_bytes(b"half an image")

    assert store.evict() == []
    assert not leftover.exists()


def _fetch_in_child(cache_dir: str, url: str, checksum: str, barrier: Any, results: Any) -> None:
    store = FirmwareStore(StoreSettings(cache_dir=Path(cache_dir), allowed_hosts=["127.0.0.1"]))
    barrier.wait(timeout=30)
    image = store.fetch(url, checksum)
    results.put(str(image.path))


def test_two_processes_fetching_the_same_image_download_it_once(image_server: ImageServer, cache: Path) -> None:
    data = _image(1 * MIB)
    url = image_server.add("/fw/shared.bin", data)
    image_server.chunk_delay = 0.03  # about 0.5 s: the second process arrives while the first downloads
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    children = [
        ctx.Process(target=_fetch_in_child, args=(str(cache), url, _sha256(data), barrier, results)) for _ in range(2)
    ]
    for child in children:
        child.start()
    paths = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)

    assert [child.exitcode for child in children] == [0, 0]
    assert len(image_server.gets("/fw/shared.bin")) == 1
    assert paths[0] == paths[1]
    assert Path(paths[0]).read_bytes() == data


def test_add_file_verifies_and_copies_into_the_cache(tmp_path: Path, cache: Path) -> None:
    data = _image(250_000)
    source = tmp_path / "BIOS_2.7.3.exe"
    source.write_bytes(data)
    store = _store(cache)

    with pytest.raises(ChecksumMismatchError, match=r"BIOS_2\.7\.3\.exe"):
        store.add_file(source, _sha256(b"something else"))
    assert _cache_files(cache) == []

    image = store.add_file(source, _sha256(data))
    assert image.path.parent == cache / "images"
    assert image.path.read_bytes() == data
    assert source.read_bytes() == data


def test_add_file_of_a_missing_file_is_a_store_error(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(StoreError, match="cannot read image file"):
        _store(cache).add_file(tmp_path / "nope.bin", _sha256(b"x"))


# -- the URL rule against real servers (issue 12, item 10) -----------------------------------------------------------
LOOPBACK_SPELLINGS = ["127.0.0.1", "2130706433", "127.1", "0x7f000001", "0177.0.0.1", "[::ffff:127.0.0.1]"]


@pytest.mark.parametrize("host", [*LOOPBACK_SPELLINGS, "localhost"])
def test_loopback_is_refused_in_every_spelling_before_any_request(
    image_server: ImageServer, cache: Path, host: str
) -> None:
    data = _image(1000)
    image_server.add("/fw/bios.bin", data)
    with pytest.raises(DisallowedURLError, match=r"refused unless store\.allowed_hosts names it"):
        _store(cache, allowed_hosts=[]).fetch(f"http://{host}:{image_server.port}/fw/bios.bin", _sha256(data))
    assert image_server.requests == []


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Names the tests make resolve (name → address), as a DNS server an attacker controls would."""
    names: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real(names.get(host, host), *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def test_a_name_that_resolves_to_loopback_gets_nothing(
    image_server: ImageServer, cache: Path, resolver: dict[str, str]
) -> None:
    # The metadata service's answer, behind a name an allowed wildcard covers that resolves to a refused address.
    secret = b'{"AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI"}'
    image_server.add("/latest/meta-data/iam/security-credentials/role", secret)
    resolver["metadata.mirror.test"] = "127.0.0.1"
    url = f"http://metadata.mirror.test:{image_server.port}/latest/meta-data/iam/security-credentials/role"

    with pytest.raises(DisallowedURLError) as caught:
        _store(cache, allowed_hosts=["*.mirror.test"]).fetch(url, _sha256(b"a guess"))

    assert "host 'metadata.mirror.test' resolves to 127.0.0.1, a loopback address" in str(caught.value)
    assert hashlib.sha256(secret).hexdigest() not in str(caught.value)  # no digest of what it would have read
    assert image_server.requests == []  # connected, saw where it led, sent nothing
    assert _cache_files(cache) == []


def test_a_name_the_operator_lists_may_resolve_to_loopback(
    image_server: ImageServer, cache: Path, resolver: dict[str, str]
) -> None:
    data = _image(1000)
    image_server.add("/fw/bios.bin", data)
    resolver["images.lab.test"] = "127.0.0.1"

    image = _store(cache, allowed_hosts=["images.lab.test"]).fetch(
        f"http://images.lab.test:{image_server.port}/fw/bios.bin", _sha256(data)
    )

    assert image.path.read_bytes() == data


@pytest.fixture
def other_server() -> Iterator[ImageServer]:
    server = ImageServer().start()
    yield server
    server.stop()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    host=st.sampled_from([*LOOPBACK_SPELLINGS, "localhost", "LOCALHOST."]),
    same_port=st.booleans(),
    relative=st.booleans(),
)
def test_every_redirect_is_held_to_the_rule(
    image_server: ImageServer, other_server: ImageServer, host: str, same_port: bool, relative: bool
) -> None:
    # allowed_hosts names the first server, port included; redirects go to it or to the second server's port, in
    # every spelling of loopback. A redirect is followed exactly when its target passes the rule.
    data = _image(2000, seed=7)
    allowed = [f"127.0.0.1:{image_server.port}"]
    port = image_server.port if same_port else other_server.port
    target = "/fw/bios.bin" if relative else f"http://{host}:{port}/fw/bios.bin"
    for server in (image_server, other_server):
        server.requests.clear()
        server.add("/fw/bios.bin", data)
    image_server.redirects["/moved.bin"] = target
    absolute = target if not relative else image_server.url(target)
    try:
        check_url(absolute, ["http", "https"], allowed)
        expected_ok = True
    except DisallowedURLError:
        expected_ok = False

    with tempfile.TemporaryDirectory() as cache:
        try:
            image = _store(Path(cache), allowed_hosts=allowed).fetch(image_server.url("/moved.bin"), _sha256(data))
            assert expected_ok, target
            assert image.path.read_bytes() == data
        except DisallowedURLError as refused:
            assert not expected_ok, (target, refused)
            assert hashlib.sha256(data).hexdigest() not in str(refused)
            assert image_server.gets("/fw/bios.bin") == [] and other_server.gets("/fw/bios.bin") == []
            assert _cache_files(Path(cache)) == []


# -- checking a source for a dry run (issue 12, item 9) --------------------------------------------------------------
@pytest.mark.parametrize("ranges", [True, False])
def test_check_source_asks_for_one_byte_and_downloads_nothing(
    image_server: ImageServer, cache: Path, ranges: bool
) -> None:
    data = _image(300_000)
    url = image_server.add("/fw/bios.bin", data)
    image_server.honour_range = ranges
    store = _store(cache)
    before = _downloaded_total()

    assert store.check_source(url, _sha256(data)) == f"{url} answers (300000 bytes)"

    (request,) = image_server.gets("/fw/bios.bin")
    assert request.headers["Range"] == "bytes=0-0"
    assert _downloaded_total() == before and _cache_files(cache) == []


def test_check_source_of_a_cached_image_asks_no_server(image_server: ImageServer, cache: Path) -> None:
    data = _image(1000)
    url = image_server.add("/fw/bios.bin", data)
    store = _store(cache)
    store.fetch(url, _sha256(data))
    image_server.requests.clear()
    assert store.check_source(url, _sha256(data)).startswith("cached as sha256:")
    assert image_server.requests == []
    with pytest.raises(DisallowedURLError):  # the URL rule holds for a cached image too
        _store(cache, allowed_hosts=["*.example.com"]).check_source(url, _sha256(data))


def test_check_source_says_what_the_real_fetch_would_meet(image_server: ImageServer, cache: Path) -> None:
    data = _image(5000)
    image_server.add("/fw/bios.bin", data)
    image_server.redirects["/moved.bin"] = f"http://localhost:{image_server.port}/fw/bios.bin"
    store = _store(cache)
    with pytest.raises(DownloadError, match="HTTP 404"):
        store.check_source(image_server.url("/absent.bin"), _sha256(data))
    with pytest.raises(DisallowedURLError, match="host 'localhost' is a loopback name"):
        store.check_source(image_server.url("/moved.bin"), _sha256(data))
    with pytest.raises(ImageTooLargeError):
        _store(cache, max_bytes=4096).check_source(image_server.url("/fw/bios.bin"), _sha256(data))
    assert image_server.gets("/fw/bios.bin") == [] or all(
        r.headers.get("Range") == "bytes=0-0" for r in image_server.gets("/fw/bios.bin")
    )
