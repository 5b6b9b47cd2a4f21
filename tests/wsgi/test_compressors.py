"""Tests of roundup_wsgi.wsgi.compressors: compression at once and of a
file as it is sent, byte for byte the same."""

from __future__ import annotations

import gzip
import io
import random

import pytest

from roundup_wsgi.wsgi.compressors import (
    CHUNK_SIZE,
    CODINGS,
    STREAMABLE_CODINGS,
    CompressedFile,
    compress,
)

TEXT = b"".join(
    b"%08d INFO handled /issue%d in %d ms\n" % (i, i % 997, i % 89)
    for i in range(20000)
)


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
