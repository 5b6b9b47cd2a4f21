"""Content codings: which ones a client accepts, which bodies are worth it.

* :func:`accepted_codings` reads ``Accept-Encoding`` as RFC 9110 12.5.3
  says: q-values (``gzip;q=0`` refuses gzip), ``*`` for any coding not
  named, ``x-gzip`` as ``gzip`` (RFC 9110 8.4.1.3);
* :func:`is_compressed_type` names the media types that are compressed
  already (images, audio, video, archives), which cost CPU to compress
  again for nothing.

Compressing is in :mod:`.compressors`, the cache of compressed variants in
:mod:`.variants`; their names are re-exported here (their old path).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from .compressors import (
    BLOCK_SIZE,
    CHUNK_SIZE,
    CODINGS,
    STREAMABLE_CODINGS,
    CompressedFile,
    compress,
)
from .variants import FileStamp, VariantCache

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
