"""roundup_wsgi.wsgi.responsecache: kept answers, valid while their files are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.wsgi import StartResponseRecorder

from roundup_wsgi.wsgi.responsecache import (
    ResponseCache,
    entry_size,
    stamp_of,
    still_valid,
)

HEADERS = [("Content-Type", "text/css"), ("Content-Length", "5")]


def keep(cache: ResponseCache, key: str, path: Path, body: bytes = b"hello") -> bool:
    return cache.put(key, "200 OK", HEADERS, body, ((str(path), stamp_of(str(path))),))


def test_hit_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "a.css"
    path.write_bytes(b"hello")
    cache = ResponseCache(10_000)
    assert keep(cache, "a", path)
    entry = cache.get("a")
    assert entry is not None
    assert (entry.status, list(entry.headers), entry.body) == (
        "200 OK",
        HEADERS,
        b"hello",
    )
    assert cache.hits == 1
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # touched
    assert cache.get("a") is None
    assert len(cache) == 0
    assert cache.size == 0
    assert cache.stale == 1


def test_replaced_and_removed_files_are_changes(tmp_path: Path) -> None:
    path = tmp_path / "a.css"
    path.write_bytes(b"hello")
    cache = ResponseCache(10_000)
    keep(cache, "a", path)
    other = tmp_path / "b.css"
    other.write_bytes(b"HELLO")
    stat = path.stat()
    os.utime(other, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(other, path)  # same size and mtime, another inode
    assert cache.get("a") is None
    keep(cache, "a", path)
    path.unlink()
    assert cache.get("a") is None


def test_a_file_that_had_to_be_absent(tmp_path: Path) -> None:
    shadow = tmp_path / "static" / "a.css"
    assert still_valid(((str(shadow), None),))
    cache = ResponseCache(10_000)
    cache.put("a", "200 OK", HEADERS, b"hello", ((str(shadow), None),))
    assert cache.get("a") is not None
    shadow.parent.mkdir()
    shadow.write_bytes(b"shadow")
    assert cache.get("a") is None


def test_least_recently_used_evicted(tmp_path: Path) -> None:
    path = tmp_path / "a.css"
    path.write_bytes(b"hello")
    one = entry_size("k0", "200 OK", HEADERS, b"x" * 100)
    cache = ResponseCache(one * 4 + 10)
    for key in ("k0", "k1", "k2", "k3"):
        cache.put(
            key, "200 OK", HEADERS, b"x" * 100, ((str(path), stamp_of(str(path))),)
        )
    assert cache.get("k0") is not None  # k1 is now the least recently used
    cache.put("k4", "200 OK", HEADERS, b"x" * 100, ())
    assert len(cache) == 4
    assert cache.size <= cache.max_bytes
    assert cache.get("k1") is None
    assert cache.get("k0") is not None
    # Too large (over a quarter of the limit): refused, nothing evicted.
    assert not cache.put("big", "200 OK", HEADERS, b"x" * one, ())
    assert len(cache) == 4
    cache.clear()
    assert (len(cache), cache.size) == (0, 0)


def test_bad_size() -> None:
    with pytest.raises(ValueError, match="cache size must be > 0 bytes"):
        ResponseCache(0)


@pytest.mark.parametrize("body", [b"hello", b""])
def test_send(body: bytes) -> None:
    cache = ResponseCache(10_000)
    cache.put("a", "304 Not Modified" if not body else "200 OK", HEADERS, body, ())
    entry = cache.get("a")
    assert entry is not None
    recorder = StartResponseRecorder()
    app_iter = entry.send(recorder)
    assert recorder.headers == HEADERS
    assert recorder.headers is not entry.headers  # a server may change its list
    assert list(app_iter) == ([body] if body else [])


def test_send_empty_body_to_a_first_chunk_server() -> None:
    """hypercorn starts a response only with a first chunk: it gets ``b""``."""
    cache = ResponseCache(10_000)
    cache.put("a", "304 Not Modified", [], b"", ())
    entry = cache.get("a")
    assert entry is not None

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> None:
        return None

    start_response.__module__ = "hypercorn.app_wrappers"
    assert list(entry.send(start_response)) == [b""]


def test_send_empty_body_below_a_middleware_that_noted_the_server() -> None:
    """Below FinishHooks the server's start_response is not seen: the
    environ's note (FIRST_CHUNK_KEY) decides."""
    from roundup_wsgi.wsgi.adapters import FIRST_CHUNK_KEY

    cache = ResponseCache(10_000)
    cache.put("a", "304 Not Modified", [], b"", ())
    entry = cache.get("a")
    assert entry is not None
    recorder = StartResponseRecorder()
    assert list(entry.send(recorder, {FIRST_CHUNK_KEY: True})) == [b""]
    assert list(entry.send(recorder.__class__(), {})) == []
