"""Tests of roundup_wsgi.wsgi.variants: the cache of compressed variants
and the file stamps that make its entries stale."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roundup_wsgi.wsgi.variants import FileStamp, VariantCache


def stamp(size: int, mtime_ns: int = 1, inode: int = 7) -> FileStamp:
    return FileStamp(inode, size, mtime_ns)


def test_cache_hit_and_stale_entries() -> None:
    cache = VariantCache(1000)
    cache.put("/a.css", "gzip", stamp(10), b"x" * 100)
    assert cache.get("/a.css", "gzip", stamp(10)) == b"x" * 100
    assert cache.get("/a.css", "br", stamp(10)) is None
    # Another mtime, size or inode: the file changed; the entry is dropped.
    for changed in (stamp(10, mtime_ns=2), stamp(11), stamp(10, inode=8)):
        cache.put("/a.css", "gzip", stamp(10), b"x" * 100)
        assert cache.get("/a.css", "gzip", changed) is None
        assert len(cache) == 0
        assert cache.size == 0


def test_cache_evicts_the_least_recently_used() -> None:
    cache = VariantCache(300)
    for name in ("a", "b", "c"):
        cache.put(name, "gzip", stamp(1), b"x" * 100)
    assert cache.get("a", "gzip", stamp(1)) is not None  # a is now the newest
    cache.put("d", "gzip", stamp(1), b"y" * 100)
    assert cache.get("b", "gzip", stamp(1)) is None  # b was the oldest
    assert [n for n in "acd" if cache.get(n, "gzip", stamp(1))] == ["a", "c", "d"]
    assert cache.size == 300
    cache.put("big", "gzip", stamp(1), b"z" * 301)  # larger than the cache
    assert cache.get("big", "gzip", stamp(1)) is None
    assert cache.size == 300
    cache.put("a", "gzip", stamp(1), b"w" * 50)  # replaced, not added
    assert cache.size == 250
    cache.clear()
    assert (len(cache), cache.size) == (0, 0)


def test_zero_size_cache_keeps_nothing_and_negative_is_an_error() -> None:
    cache = VariantCache(0)
    cache.put("a", "gzip", stamp(1), b"x")
    assert cache.get("a", "gzip", stamp(1)) is None
    with pytest.raises(ValueError, match=">= 0 bytes"):
        VariantCache(-1)


def test_file_stamp_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "style.css"
    path.write_bytes(b"a")
    first = FileStamp.of(os.stat(path))
    assert first.size == 1
    os.utime(path, ns=(first.mtime_ns + 10**9, first.mtime_ns + 10**9))
    assert FileStamp.of(os.stat(path)) != first
    replacement = tmp_path / "new.css"
    replacement.write_bytes(b"a")
    os.utime(replacement, ns=(first.mtime_ns, first.mtime_ns))
    os.replace(replacement, path)
    assert FileStamp.of(os.stat(path)).inode != first.inode
