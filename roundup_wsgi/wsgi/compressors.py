"""Compression with a content coding: bytes at once, or a file as it is sent.

:func:`compress` compresses bytes at once; :class:`CompressedFile`
compresses a file as it is sent, one block at a time (memory bounded
whatever its size).  Both use the same parameters (gzip level 5, brotli
quality 4 text mode, zstd level 3: those of Roundup's
``Client.compress_encode``), so a body is the same either way.  ``gzip``
needs only the standard library; ``br`` needs the ``brotli`` package,
``zstd`` the ``zstd`` or ``zstandard`` package (:data:`CODINGS` and
:data:`STREAMABLE_CODINGS` list what this process can produce).
"""

from __future__ import annotations

import importlib
import struct
import time
import zlib
from collections.abc import Generator, Iterator
from typing import Any, BinaryIO, Protocol

__all__ = [
    "BLOCK_SIZE",
    "CHUNK_SIZE",
    "CODINGS",
    "STREAMABLE_CODINGS",
    "CompressedFile",
    "compress",
]


def _optional(name: str) -> Any:
    """The module ``name``, or ``None`` if it is not installed."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


#: brotli (``br``), python-zstd (the ``zstd`` module Roundup uses) and
#: zstandard (which can compress a stream), when installed.
_brotli = _optional("brotli")
_zstd = _optional("zstd")
_zstandard = _optional("zstandard")


#: Bytes read from a file per block when compressing it on the fly (64 KiB).
BLOCK_SIZE = 64 * 1024

#: The most bytes of compressed output :class:`CompressedFile` yields at once
#: (8,000).  waitress (3.x) keeps an iterated piece under 8 KiB
#: (``STRBUF_LIMIT``) in a plain bytes buffer that it empties once the piece
#: is sent; larger ones go to a ``BytesIO`` that keeps everything written to
#: it until 16 MB (``outbuf_high_watermark``) have gone through, which would
#: make a compressed download cost as much memory as its compressed size.
CHUNK_SIZE = 8000

#: gzip's compression level, as Roundup's ``compress_encode`` uses.
GZIP_LEVEL = 5
#: brotli's quality and mode (1: text), as Roundup's ``compress_encode`` uses.
BROTLI_QUALITY = 4
BROTLI_MODE = 1
#: zstd's level, as Roundup's ``compress_encode`` uses.
ZSTD_LEVEL = 3

#: The codings :func:`compress` can produce in this process.
CODINGS: frozenset[str] = frozenset(
    ["gzip"]
    + (["br"] if _brotli is not None else [])
    + (["zstd"] if _zstd is not None or _zstandard is not None else [])
)
#: The codings :class:`CompressedFile` can produce in this process.
STREAMABLE_CODINGS: frozenset[str] = frozenset(
    ["gzip"]
    + (["br"] if _brotli is not None else [])
    + (["zstd"] if _zstandard is not None else [])
)


def compress(data: bytes, coding: str, mtime: float | None = None) -> bytes:
    """``data`` compressed at once with ``coding`` (the levels above).

    gzip is ``gzip.compress(data, compresslevel=5)``'s output; ``mtime``
    (seconds since the epoch, default now) goes into its header.

    :raises ValueError: ``coding`` is not in :data:`~.compressors.CODINGS`.
    """
    if coding == "gzip":
        encoder = _GzipEncoder(mtime)
        return encoder.compress(data) + encoder.finish()
    if coding == "br" and _brotli is not None:
        result: bytes = _brotli.compress(
            data, quality=BROTLI_QUALITY, mode=BROTLI_MODE, lgblock=0
        )
        return result
    if coding == "zstd":
        if _zstd is not None:
            zstd_result: bytes = _zstd.ZSTD_compress(data, ZSTD_LEVEL)
            return zstd_result
        if _zstandard is not None:
            zstandard_result: bytes = _zstandard.ZstdCompressor(
                level=ZSTD_LEVEL
            ).compress(data)
            return zstandard_result
    raise ValueError(
        f"cannot compress with {coding!r}: this process has "
        + ", ".join(sorted(CODINGS))
    )


class _Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class _GzipEncoder:
    """gzip (RFC 1952) in pieces: the header ``gzip.compress`` writes for
    level 5, raw deflate, CRC-32 and size trailer."""

    def __init__(self, mtime: float | None = None) -> None:
        self._header = struct.pack(
            "<BBBBLBB",
            0x1F,
            0x8B,
            8,  # deflate
            0,  # no flags
            int(time.time() if mtime is None else mtime) & 0xFFFFFFFF,
            0,  # XFL: neither best nor fastest
            255,  # OS unknown
        )
        self._deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -15)
        self._crc = 0
        self._size = 0

    def compress(self, data: bytes) -> bytes:
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        out = self._deflate.compress(data)
        if self._header:
            out, self._header = self._header + out, b""
        return out

    def finish(self) -> bytes:
        trailer = struct.pack("<LL", self._crc, self._size & 0xFFFFFFFF)
        return self._header + self._deflate.flush() + trailer


class _BrotliEncoder:
    def __init__(self) -> None:
        assert _brotli is not None
        self._compressor = _brotli.Compressor(
            quality=BROTLI_QUALITY, mode=BROTLI_MODE, lgblock=0
        )

    def compress(self, data: bytes) -> bytes:
        out: bytes = self._compressor.process(data)
        return out

    def finish(self) -> bytes:
        out: bytes = self._compressor.finish()
        return out


class _ZstdEncoder:
    def __init__(self) -> None:
        assert _zstandard is not None
        self._compressor = _zstandard.ZstdCompressor(level=ZSTD_LEVEL).compressobj()

    def compress(self, data: bytes) -> bytes:
        out: bytes = self._compressor.compress(data)
        return out

    def finish(self) -> bytes:
        out: bytes = self._compressor.flush()
        return out


def _encoder(coding: str) -> _Encoder:
    if coding == "gzip":
        return _GzipEncoder()
    if coding == "br" and _brotli is not None:
        return _BrotliEncoder()
    if coding == "zstd" and _zstandard is not None:
        return _ZstdEncoder()
    raise ValueError(
        f"cannot compress a stream with {coding!r}: this process has "
        + ", ".join(sorted(STREAMABLE_CODINGS))
    )


class CompressedFile:
    """A WSGI app_iter: ``file`` from its current position to its end,
    compressed with ``coding`` as it is sent.

    Reads ``block_size`` bytes at a time and yields what the compressor
    gives back in pieces of at most ``chunk_size`` bytes (see
    :data:`~.compressors.CHUNK_SIZE`; empty pieces skipped), so memory
    stays at one block plus the compressor's state (about 256 KiB for gzip)
    whatever the file's size.  The length is not known in advance: send no
    ``Content-Length`` and let the server frame the body (chunked, or
    close-delimited).  For gzip the bytes are those of
    ``gzip.compress(whole, compresslevel=5)`` (deflate gives the same
    stream however its input is split).

    :meth:`close` closes the file, also when iteration never started or
    stopped early (PEP 3333: the server calls ``close()`` "upon completion
    of the current request").

    :param file: an open binary file.
    :param coding: one of :data:`~.compressors.STREAMABLE_CODINGS`.
    :param block_size: bytes read per block.
    :param chunk_size: the most bytes yielded at once.
    :raises ValueError: ``coding`` cannot be streamed in this process.
    """

    def __init__(
        self,
        file: BinaryIO,
        coding: str,
        block_size: int = BLOCK_SIZE,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._encoder = _encoder(coding)
        self._file = file
        self._block_size = block_size
        self._chunk_size = chunk_size
        self._chunks = self._generate()

    def _generate(self) -> Generator[bytes, None, None]:
        read, encode = self._file.read, self._encoder.compress
        size = self._chunk_size
        while block := read(self._block_size):
            out = encode(block)
            for start in range(0, len(out), size):
                yield out[start : start + size]
        out = self._encoder.finish()
        self._file.close()
        for start in range(0, len(out), size):
            yield out[start : start + size]

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        """Stop compressing and close the file (idempotent)."""
        self._chunks.close()
        self._file.close()
