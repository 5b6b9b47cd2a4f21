"""roundup_wsgi.wsgi.encoding: Accept-Encoding, compression, the variant cache."""

from __future__ import annotations

import gzip
import io
import os
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roundup_wsgi.wsgi.encoding import (
    CHUNK_SIZE,
    CODINGS,
    STREAMABLE_CODINGS,
    CompressedFile,
    FileStamp,
    VariantCache,
    accepted_codings,
    compress,
    is_compressed_type,
)

TEXT = b"".join(
    b"%08d INFO handled /issue%d in %d ms\n" % (i, i % 997, i % 89)
    for i in range(20000)
)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ()),
        ("", ()),
        ("gzip", ("gzip",)),
        ("gzip, deflate, br", ("br", "gzip")),  # ties: the server's order
        ("gzip, deflate, br, zstd", ("zstd", "br", "gzip")),
        ("identity", ()),
        ("deflate", ()),
        ("gzip;q=0", ()),  # RFC 9110 12.5.3: q=0 is "not acceptable"
        ("gzip;q=0, br", ("br",)),
        ("GZIP; Q=0.000", ()),
        ("br;q=0.5, gzip", ("gzip", "br")),  # higher q first
        ("gzip;q=0.2, br;q=0.8", ("br", "gzip")),
        ("*", ("zstd", "br", "gzip")),
        ("*;q=0", ()),
        ("*;q=0, gzip", ("gzip",)),
        ("gzip;q=0, *", ("zstd", "br")),
        ("x-gzip", ("gzip",)),  # RFC 9110 8.4.1.3
        ("gzip;q=bogus", ("gzip",)),
        (" , gzip ,", ("gzip",)),
        ("gzip;q=2", ("gzip",)),
    ],
)
def test_accepted_codings(header: str | None, expected: tuple[str, ...]) -> None:
    assert accepted_codings(header) == expected


_CODING = st.sampled_from(["gzip", "br", "zstd", "deflate", "identity", "*", "x-gzip"])
_Q = st.sampled_from(["", ";q=0", ";q=0.0", ";q=0.5", ";q=1", ";q=0.001", ";q=x"])


@given(st.lists(st.tuples(_CODING, _Q), max_size=6))
def test_accepted_codings_never_lists_a_refused_coding(
    items: list[tuple[str, str]],
) -> None:
    """A coding whose first mention has q=0 (or, unnamed, ``*`` with q=0) is
    never listed, and nothing but zstd, br and gzip, each once."""
    header = ", ".join(coding + q for coding, q in items)
    result = accepted_codings(header)
    assert len(set(result)) == len(result)
    assert set(result) <= {"zstd", "br", "gzip"}
    first: dict[str, str] = {}
    for coding, q in items:
        first.setdefault("gzip" if coding == "x-gzip" else coding, q)
    for coding in result:
        q = first.get(coding, first.get("*"))
        assert q is not None
        assert q not in (";q=0", ";q=0.0")


def test_accepted_codings_limited_to_the_servers() -> None:
    assert accepted_codings("br, gzip", ("gzip",)) == ("gzip",)


@pytest.mark.parametrize(
    ("content_type", "compressed"),
    [
        ("image/png", True),
        ("image/jpeg", True),
        ("IMAGE/WEBP", True),
        ("image/svg+xml", False),
        ("image/bmp", False),
        ("image/x-icon", False),
        ("audio/ogg", True),
        ("video/webm", True),
        ("application/zip", True),
        ("application/gzip", True),
        ("application/x-7z-compressed", True),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            True,
        ),
        ("font/woff2", True),
        ("text/plain", False),
        ("text/css; charset=utf-8", False),
        ("application/octet-stream", False),
        ("application/json", False),
        ("", False),
        (None, False),
    ],
)
def test_is_compressed_type(content_type: str | None, compressed: bool) -> None:
    assert is_compressed_type(content_type) is compressed


def test_gzip_is_gzip_compress_level_5() -> None:
    """The bytes of Roundup's ``gzip.compress(data, compresslevel=5)``."""
    assert compress(TEXT, "gzip", 1_700_000_000) == gzip.compress(
        TEXT, compresslevel=5, mtime=1_700_000_000
    )
    assert gzip.decompress(compress(b"", "gzip")) == b""


def test_unknown_coding_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="cannot compress with 'deflate'"):
        compress(b"x", "deflate")
    with pytest.raises(ValueError, match="cannot compress a stream with 'compress'"):
        CompressedFile(io.BytesIO(b"x"), "compress")


def test_codings_of_this_process() -> None:
    assert "gzip" in CODINGS
    assert STREAMABLE_CODINGS <= CODINGS


@pytest.mark.parametrize("block_size", [1000, 65536, 1 << 20])
def test_streamed_gzip_equals_compress_at_once(
    block_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deflate gives one stream however its input is split: the streamed
    body is byte for byte ``gzip.compress`` of the whole."""
    monkeypatch.setattr("time.time", lambda: 1_700_000_000.0)
    data = TEXT + random.Random(1).randbytes(200_000) + TEXT
    body = CompressedFile(io.BytesIO(data), "gzip", block_size)
    chunks = list(body)
    body.close()
    assert b"".join(chunks) == gzip.compress(data, compresslevel=5)
    assert all(chunks)


def test_streamed_chunks_are_bounded() -> None:
    """Memory: no chunk is larger than about one block, whatever the size."""
    data = random.Random(2).randbytes(1 << 20)  # incompressible
    chunks = list(CompressedFile(io.BytesIO(data), "gzip", 65536))
    assert gzip.decompress(b"".join(chunks)) == data
    assert max(map(len, chunks)) <= CHUNK_SIZE


def test_close_closes_the_file_before_and_after_iteration() -> None:
    for started in (False, True):
        file = io.BytesIO(TEXT)
        body = CompressedFile(file, "gzip", 1000)
        if started:
            next(iter(body))
        body.close()
        body.close()
        assert file.closed


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
