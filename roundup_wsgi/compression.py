"""Files compressed as Roundup's own handler compresses them, in bounded memory.

Roundup's ``Client.write_file`` hands a file to ``request.sendfile`` when
the request object has that method, and then its on-the-fly compression
(``Client.compress_encode``) never runs: Roundup's own WSGI handler has no
``sendfile``, so it reads the file whole and compresses it on every
request.  :class:`FileCompressor` gives our ``sendfile`` (the
:class:`~roundup_wsgi.request.Request`'s) the same result without those
costs.  It applies Roundup's rules, in Roundup's order, to the response
``write_file`` has prepared:

* nothing unless ``[web] dynamic_compression`` is on, the body holds at
  least 100 bytes, ``write_file`` chose no precompressed file
  (``[web] use_precompressed_files``: no ``Content-Encoding`` yet) and the
  ``Content-Type`` is not in the Client's ``precompressed_mime_types``;
* then ``Vary: Accept-Encoding`` (Roundup's ``setVary``);
* nothing more unless the status is 200: a Range (206) gets the stored
  bytes, a range of the stored representation (RFC 9110 14.1.2), where
  Roundup compresses the range;
* the coding Roundup's ``determine_content_encoding`` picks from the
  Client's ``compressors``;
* with a coding: ``Content-Encoding``, the ETag with ``-<coding>`` before
  its closing quote, the compressed ``Content-Length``.

Beyond Roundup: a type compressed already
(:func:`~roundup_wsgi.wsgi.encoding.is_compressed_type`: images, audio,
video, archives; for ``application/octet-stream``, judged by the file
name's extension) is sent as stored, without ``Vary``; the
``Accept-Encoding`` Roundup reads is the list of codings the client
accepts by RFC 9110 12.5.3 (:func:`roundup_accept_encoding`), so
``gzip;q=0`` refuses gzip.

Where the bytes come from:

* static files (``@@file/``, ``_file/``) up to :data:`MAX_CACHED_FILE`:
  compressed once and kept in a :class:`~roundup_wsgi.wsgi.encoding.VariantCache`
  (size ``static_cache_size``), so a repeated ``@@file/style.css`` costs no
  compression; an entry is made anew once the file's inode, size or
  modification time change;
* other files up to one block (64 KiB): compressed at once, with a
  ``Content-Length``;
* larger ones: compressed as they are sent, one 64 KiB block at a time
  (:class:`~roundup_wsgi.wsgi.encoding.CompressedFile`), without
  ``Content-Length`` (the server frames the body): server memory stays
  bounded whatever the attachment's size.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterable
from typing import Any

from .wsgi.encoding import (
    BLOCK_SIZE,
    CODINGS,
    STREAMABLE_CODINGS,
    CompressedFile,
    FileStamp,
    VariantCache,
    accepted_codings,
    compress,
    is_compressed_type,
)
from .wsgi.types import HeaderList

__all__ = [
    "DEFAULT_STATIC_CACHE_SIZE",
    "MAX_CACHED_FILE",
    "MIN_SIZE",
    "FileCompressor",
    "check_static_cache_size",
    "roundup_accept_encoding",
]

#: Default ``static_cache_size``: bytes of compressed static files kept (4 MiB).
DEFAULT_STATIC_CACHE_SIZE = 4 * 1024 * 1024
#: The largest static file compressed at once and cached (1 MiB); larger
#: ones are compressed as they are sent.
MAX_CACHED_FILE = 1024 * 1024
#: Bodies shorter than this (bytes) are sent as they are (Roundup's
#: ``compress_encode``).
MIN_SIZE = 100

#: ``PATH_INFO`` prefixes (Roundup's, without the leading slash) of static files.
_STATIC_PREFIXES = ("@@file/", "_file/")


def roundup_accept_encoding(value: str) -> str:
    """An ``Accept-Encoding`` value as Roundup should read it.

    Roundup's ``Client.determine_content_encoding`` looks for ``zstd``,
    ``br`` and ``gzip`` as substrings of the header, so ``gzip;q=0`` would
    get gzip.  This gives it the codings the client accepts by RFC 9110
    12.5.3 (:func:`~roundup_wsgi.wsgi.encoding.accepted_codings`), most
    preferred first: ``"gzip;q=0, br"`` -> ``"br"``, ``"*"`` ->
    ``"zstd, br, gzip"``, ``"identity"`` -> ``""``.  Among the codings
    accepted, Roundup's order (zstd, br, gzip) still decides.
    """
    return ", ".join(accepted_codings(value))


def _set_vary(headers: HeaderList) -> None:
    """Roundup's ``Client.setVary("Accept-Encoding")`` on a header list (a
    new ``Vary`` goes where Roundup's ``header()`` puts it: after Roundup's
    headers, before its ``Set-Cookie`` lines)."""
    cookie = None
    for index, (key, value) in enumerate(headers):
        name = key.lower()
        if name == "vary":
            if "Accept-Encoding" not in value:
                headers[index] = (key, f"{value}, Accept-Encoding")
            else:
                headers[index] = (key, "Accept-Encoding")
            return
        if name == "set-cookie" and cookie is None:
            cookie = index
    headers.insert(len(headers) if cookie is None else cookie, _VARY)


_VARY = ("Vary", "Accept-Encoding")


def _mark_encoded(headers: HeaderList, coding: str, length: int | None) -> None:
    """Change ``headers`` as Roundup's ``compress_encode`` does once it has
    compressed with ``coding``: ``Content-Length`` (``length``, or none when
    it is not known in advance), ``Content-Encoding`` added, the ETag with
    ``-<coding>`` before its closing quote."""
    result: HeaderList = []
    encoding: tuple[str, str] | None = ("Content-Encoding", coding)
    seen_length = False
    for key, value in headers:
        name = key.lower()
        if name == "content-length":
            seen_length = True
            if length is not None:
                result.append((key, str(length)))
            continue
        if name == "etag":
            end = value.rindex('"') if '"' in value else len(value)
            value = f"{value[:end]}-{coding}{value[end:]}"
        elif name == "set-cookie" and encoding is not None:
            if length is not None and not seen_length:
                result.append(("Content-Length", str(length)))
                seen_length = True
            result.append(encoding)
            encoding = None
        result.append((key, value))
    if length is not None and not seen_length:
        result.append(("Content-Length", str(length)))
    if encoding is not None:
        result.append(encoding)
    headers[:] = result


def _compressed_already(content_type: str | None, path: str) -> bool:
    """True if the body is compressed already, by its ``Content-Type``; for
    ``application/octet-stream`` (what Roundup sends for an attachment
    whose type is not in its ``mime_type_allowlist``) by the extension of
    the name in the URL (``file7/logs.zip``, ``file8/dump.tar.gz``)."""
    if is_compressed_type(content_type):
        return True
    if content_type == "application/octet-stream":
        guessed, coding = mimetypes.guess_type(path.rpartition("/")[2])
        return coding is not None or is_compressed_type(guessed)
    return False


def check_static_cache_size(size: int) -> int:
    """Validate the ``static_cache_size`` option (bytes, an ``int`` >= 0).

    :returns: ``size`` unchanged.
    :raises ValueError: it is not (the message names the option and the fix).
    """
    if not isinstance(size, int) or size < 0:
        raise ValueError(
            f"static_cache_size={size!r} is not a size: give the bytes of "
            "compressed static files to keep, e.g. "
            f"{DEFAULT_STATIC_CACHE_SIZE} (0: keep none)"
        )
    return size


class FileCompressor:
    """Compression of the files a tracker's ``Client`` sends (one per dispatcher).

    :param static_cache_size: bytes of compressed static files kept in
        memory (0: none kept, each compressed on every request).
    :raises ValueError: ``static_cache_size`` is negative.
    """

    def __init__(self, static_cache_size: int = DEFAULT_STATIC_CACHE_SIZE) -> None:
        #: The compressed static files.
        self.cache = VariantCache(check_static_cache_size(static_cache_size))

    def body(
        self,
        client: Any,
        status: str,
        headers: HeaderList,
        filename: str,
        offset: int,
        length: int,
    ) -> Iterable[bytes] | None:
        """The compressed body for ``Client.write_file``'s ``sendfile``
        call, or ``None`` to send the file as stored.

        :param client: the tracker's ``Client`` serving the request.
        :param status: the response's status line.
        :param headers: the response headers Roundup gave; changed in place
            as Roundup's ``compress_encode`` changes them (``Vary``,
            ``Content-Encoding``, ``ETag``, ``Content-Length``).
        :param filename: the file (``sendfile``'s arguments).
        :param offset: its first byte to send.
        :param length: the bytes to send.
        :raises OSError: the file cannot be read.
        """
        if length < MIN_SIZE:
            return None
        if not client.instance.config.WEB_DYNAMIC_COMPRESSION:
            return None
        sent = client.additional_headers
        if "Content-Encoding" in sent:  # a precompressed file
            return None
        content_type = sent.get("Content-Type")
        if content_type in client.precompressed_mime_types:
            return None
        if _compressed_already(content_type, str(client.path)):
            return None
        _set_vary(headers)
        if not status.startswith("200"):  # a Range: the stored bytes
            return None
        codings = client.determine_content_encoding(list_all=True)
        if not codings:
            return None
        body = self._compressed(client, filename, offset, length, codings)
        if body is None:
            return None
        coding, data, stream = body
        _mark_encoded(headers, coding, len(data) if stream is None else None)
        return [data] if stream is None else stream

    def _compressed(
        self,
        client: Any,
        filename: str,
        offset: int,
        length: int,
        codings: list[str],
    ) -> tuple[str, bytes, CompressedFile | None] | None:
        """``(coding, bytes, None)`` compressed at once, ``(coding, b"",
        stream)``, or ``None`` (no coding can be produced here: send as
        stored).  ``codings``: those Roundup would use, its choice first; a
        stream takes the first that can be streamed (zstd needs the
        zstandard package for that, Roundup's zstd module has no stream)."""
        coding = codings[0]
        static = str(client.env.get("PATH_INFO", "")).startswith(_STATIC_PREFIXES)
        if static and length <= MAX_CACHED_FILE and coding in CODINGS:
            stamp = FileStamp.of(os.stat(filename))
            if offset != 0 or length != stamp.size:
                return None
            data = self.cache.get(filename, coding, stamp)
            if data is None:
                with open(filename, "rb") as file:
                    stamp = FileStamp.of(os.fstat(file.fileno()))
                    data = compress(file.read(), coding)
                self.cache.put(filename, coding, stamp, data)
            return coding, data, None
        file = open(filename, "rb")  # noqa: SIM115 - closed below or by the stream
        try:
            if offset != 0 or length != os.fstat(file.fileno()).st_size:
                return None
            if length <= BLOCK_SIZE and coding in CODINGS:
                return coding, compress(file.read(), coding), None
            for coding in codings:
                if coding in STREAMABLE_CODINGS:
                    stream = CompressedFile(file, coding)
                    file = None  # type: ignore[assignment]  # the stream closes it
                    return coding, b"", stream
            return None
        finally:
            if file is not None:
                file.close()
