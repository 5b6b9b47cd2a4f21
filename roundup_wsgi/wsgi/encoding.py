"""Content codings: negotiation, compression of file bodies, a cache of variants.

Three tools for a WSGI application that compresses responses:

* :func:`accepted_codings` reads ``Accept-Encoding`` as RFC 9110 12.5.3
  says: q-values (``gzip;q=0`` refuses gzip), ``*`` for any coding not
  named, ``x-gzip`` as ``gzip`` (RFC 9110 8.4.1.3);
* :func:`compress` compresses bytes at once, :class:`CompressedFile`
  compresses a file as it is sent, one block at a time (memory bounded
  whatever its size); both with the same parameters (gzip level 5, brotli
  quality 4 text mode, zstd level 3: those of Roundup's
  ``Client.compress_encode``), so a body is the same either way;
* :class:`VariantCache` keeps compressed variants of files, least recently
  used evicted past a size in bytes, an entry stale once its file's inode,
  size or modification time change.

:func:`is_compressed_type` names the media types that are compressed
already (images, audio, video, archives), which cost CPU to compress again
for nothing.

``gzip`` needs only the standard library; ``br`` needs the ``brotli``
package, ``zstd`` the ``zstd`` or ``zstandard`` package (:data:`CODINGS`
lists what this process can produce).
"""

from __future__ import annotations

import importlib
import os
import struct
import time
import zlib
from collections.abc import Generator, Iterator, Sequence
from functools import lru_cache
from typing import Any, BinaryIO, NamedTuple, Protocol

from .lru import ByteBoundedLRU


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

__all__ = [
    "BLOCK_SIZE",
    "CHUNK_SIZE",
    "CODINGS",
    "STREAMABLE_CODINGS",
    "CompressedFile",
    "FileStamp",
    "VariantCache",
    "accepted_codings",
    "compress",
    "is_compressed_type",
]

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

#: Media types compressed already, besides ``audio/*``, ``video/*`` and the
#: ``image/*`` types not in :data:`_COMPRESSIBLE_IMAGES`.
_COMPRESSED_TYPES = frozenset(
    {
        "application/gzip",
        "application/x-gzip",
        "application/zip",
        "application/x-zip-compressed",
        "application/x-bzip",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-lzma",
        "application/x-lzip",
        "application/x-compress",
        "application/x-7z-compressed",
        "application/x-rar-compressed",
        "application/vnd.rar",
        "application/zstd",
        "application/x-zstd",
        "application/java-archive",
        "application/epub+zip",
        "application/vnd.android.package-archive",
        "font/woff",
        "font/woff2",
    }
)
#: Prefixes of zip-based document formats (OOXML, OpenDocument).
_COMPRESSED_PREFIXES = (
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
)
#: ``image/*`` types that are not compressed already (text or raw pixels).
_COMPRESSIBLE_IMAGES = frozenset(
    {
        "image/svg+xml",
        "image/bmp",
        "image/x-ms-bmp",
        "image/x-icon",
        "image/vnd.microsoft.icon",
    }
)


def is_compressed_type(content_type: str | None) -> bool:
    """True if a body of ``content_type`` is compressed already.

    Images (but SVG, BMP and ICO), audio, video, archives (zip, gzip, bzip2, xz,
    7z, rar, zstd, jar), zip-based office documents and WOFF fonts: another
    coding makes them hardly smaller.

    :param content_type: a ``Content-Type`` value, parameters allowed
        (``"image/png"``, ``"text/plain; charset=utf-8"``); ``None``: unknown.
    """
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    major = media.split("/", 1)[0]
    if major in ("audio", "video"):
        return True
    if major == "image":
        return media not in _COMPRESSIBLE_IMAGES
    return media in _COMPRESSED_TYPES or media.startswith(_COMPRESSED_PREFIXES)


def _parse_accept_encoding(header: str) -> dict[str, float]:
    """``{coding: q}`` from an ``Accept-Encoding`` value (RFC 9110 12.5.3);
    an unparsable q-value counts as 1, a repeated coding keeps its first q."""
    weights: dict[str, float] = {}
    for item in header.split(","):
        coding, _, params = item.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        if coding == "x-gzip":  # RFC 9110 8.4.1.3
            coding = "gzip"
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 1.0
        weights.setdefault(coding, q)
    return weights


@lru_cache(maxsize=256)
def accepted_codings(
    header: str | None, codings: Sequence[str] = ("zstd", "br", "gzip")
) -> tuple[str, ...]:
    """The codings of ``codings`` that ``header`` accepts, most preferred first.

    RFC 9110 12.5.3: a coding is accepted if it is named with a q-value
    above 0, or not named and ``*`` has a q-value above 0.  Order: the
    client's q-value, highest first, then the order of ``codings`` (the
    server's preference).  ``identity`` is never listed (it is always
    possible: this never asks for 406).

    :param header: the ``Accept-Encoding`` value; ``None`` (no header): no
        preference, nothing listed (send as stored).
    :param codings: the codings to consider, the server's preferred first
        (a tuple, so results can be cached).
    :returns: a tuple of coding names, e.g. ``("br", "gzip")``.
    """
    if not header:
        return ()
    weights = _parse_accept_encoding(header)
    star = weights.get("*", 0.0)
    ranked = [
        (-weights.get(coding, star), index, coding)
        for index, coding in enumerate(codings)
        if weights.get(coding, star) > 0
    ]
    return tuple(coding for _, _, coding in sorted(ranked))


def compress(data: bytes, coding: str, mtime: float | None = None) -> bytes:
    """``data`` compressed at once with ``coding`` (the levels above).

    gzip is ``gzip.compress(data, compresslevel=5)``'s output; ``mtime``
    (seconds since the epoch, default now) goes into its header.

    :raises ValueError: ``coding`` is not in :data:`CODINGS`.
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
    :data:`CHUNK_SIZE`; empty pieces skipped), so memory stays at one block
    plus the compressor's state (about 256 KiB for gzip) whatever the
    file's size.  The length is not known in advance: send no ``Content-Length``
    and let the server frame the body (chunked, or close-delimited).  For
    gzip the bytes are those of ``gzip.compress(whole, compresslevel=5)``
    (deflate gives the same stream however its input is split).

    :meth:`close` closes the file, also when iteration never started or
    stopped early (PEP 3333: the server calls ``close()`` "upon completion
    of the current request").

    :param file: an open binary file.
    :param coding: one of :data:`STREAMABLE_CODINGS`.
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


class FileStamp(NamedTuple):
    """What identifies one version of a file: inode, size (bytes) and
    modification time (nanoseconds), from ``os.stat``."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, stat: os.stat_result) -> FileStamp:
        """The stamp of a file's ``os.stat``/``os.fstat`` result."""
        return cls(stat.st_ino, stat.st_size, stat.st_mtime_ns)


class VariantCache(ByteBoundedLRU[tuple[FileStamp, bytes]]):
    """Compressed variants of files, in memory, least recently used evicted.

    An entry is ``(path, coding) -> bytes`` together with the
    :class:`FileStamp` of the file it was made from; :meth:`get` with
    another stamp (the file was replaced, rewritten or touched) finds
    nothing and drops the entry.  Thread-safe (:class:`~.lru.ByteBoundedLRU`).

    :param max_bytes: the most bytes of variants kept (their lengths
        summed); 0 keeps nothing.  A variant larger than this is not kept.
    :raises ValueError: ``max_bytes`` is negative.
    """

    def get(self, path: str, coding: str, stamp: FileStamp) -> bytes | None:
        """The variant of ``path`` in ``coding`` made from the file as
        ``stamp`` describes it, or ``None`` (a stale entry is dropped)."""
        key = (path, coding)
        entry = self._lookup(key)
        if entry is None:
            return None
        if entry[0] != stamp:
            self._discard(key, entry)
            return None
        return entry[1]

    def put(self, path: str, coding: str, stamp: FileStamp, data: bytes) -> None:
        """Keep ``data`` as the variant of ``path`` (as ``stamp`` describes
        it) in ``coding``; evict the least recently used past ``max_bytes``."""
        if len(data) <= self.max_bytes:
            self._store((path, coding), (stamp, data), len(data))
