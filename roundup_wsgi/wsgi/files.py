"""File bodies: attachments and static files sent without reading them whole.

:func:`open_file_body` turns a file, or a range of it (an application
that has worked out the Range, ETag and Content-Length, as Roundup's
``Client.write_file`` does before it calls ``request.sendfile(filename,
offset, length)``) into a WSGI app_iter:

* the server's ``wsgi.file_wrapper`` when it offers one (PEP 3333, "Optional
  Platform-Specific File Handling"), so waitress, gunicorn and mod_wsgi can
  use their fast paths (``sendfile(2)`` where available);
* otherwise :class:`FileChunks`, reading blocks of :data:`BLOCK_SIZE` bytes.

Either way at most one block is held in memory at a time: the file handed
to ``wsgi.file_wrapper`` returns at most one block per ``read`` whatever
size the server asks for (:class:`BoundedReads`, :class:`FileRange`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, BinaryIO

from webob.static import FileIter

__all__ = ["BLOCK_SIZE", "BoundedReads", "FileChunks", "FileRange", "open_file_body"]

#: Bytes read per block when streaming a file (64 KiB).
BLOCK_SIZE = 64 * 1024


class FileRange:
    """A read-only view of ``length`` bytes of ``file``, from its current position.

    Handed to ``wsgi.file_wrapper`` for a Range that ends before the end of
    the file, so that a server which sends the whole file-like object still
    stops at the end of the range.  It has no ``fileno``, so servers iterate
    it with ``read`` instead of using ``sendfile(2)``.

    It is seekable within the range (``tell`` and ``seek`` count from the
    range's first byte, ``seek(0, 2)`` goes to its end), so waitress streams
    it from the file as it streams a whole file, and each ``read`` returns at
    most ``max_read`` bytes (see :class:`BoundedReads`).

    :param file: an open binary file, positioned at the range's first byte.
    :param length: bytes to expose (>= 0).
    :param max_read: the most bytes one ``read`` returns.
    """

    def __init__(self, file: BinaryIO, length: int, max_read: int = BLOCK_SIZE) -> None:
        self._file = file
        self._start = file.tell()
        self._length = length
        self._max_read = max_read

    def read(self, size: int = -1) -> bytes:
        """Read at most ``size`` bytes (and at most ``max_read``; all that are
        left of the range if ``size`` < 0, up to ``max_read``)."""
        remaining = self._start + self._length - self._file.tell()
        if remaining <= 0:
            return b""
        if size < 0 or size > remaining:
            size = remaining
        return self._file.read(min(size, self._max_read))

    def seekable(self) -> bool:
        """True: the range can be seeked (within its bounds)."""
        return True

    def tell(self) -> int:
        """The position within the range (0 at its first byte)."""
        return self._file.tell() - self._start

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move within the range (``whence`` as for files; ``SEEK_END`` is the
        range's end) and return the new position, clipped to the range."""
        if whence == os.SEEK_CUR:
            offset += self.tell()
        elif whence == os.SEEK_END:
            offset += self._length
        elif whence != os.SEEK_SET:
            raise ValueError(f"invalid whence ({whence!r})")
        offset = max(0, min(offset, self._length))
        self._file.seek(self._start + offset)
        return offset

    def close(self) -> None:
        """Close the underlying file (idempotent)."""
        self._file.close()


class BoundedReads:
    """``file`` as it is (position, ``seek``, ``tell``, ``fileno``), except
    that one ``read`` returns at most ``max_read`` bytes.

    Handed to ``wsgi.file_wrapper`` for a body that runs to the end of the
    file.  Servers that can use ``sendfile(2)`` (gunicorn, mod_wsgi) still
    find the ``fileno``.  waitress does not: its channel reads the wrapped
    file with ``read(n)`` where ``n`` is the socket's send buffer size
    (``SO_SNDBUF``, about 4 MB on Linux loopback), twice per send (it reads
    ahead, then seeks back), so an unbounded ``read`` costs several MiB of
    server memory per download; bounded, one block per download.

    :param file: an open binary file, positioned at the first byte to send.
    :param max_read: the most bytes one ``read`` returns.
    """

    def __init__(self, file: BinaryIO, max_read: int = BLOCK_SIZE) -> None:
        self._file = file
        self._max_read = max_read

    def read(self, size: int = -1) -> bytes:
        """Read at most ``min(size, max_read)`` bytes (``max_read`` if
        ``size`` < 0)."""
        if size < 0 or size > self._max_read:
            size = self._max_read
        return self._file.read(size)

    def seekable(self) -> bool:
        """Whether the underlying file is seekable."""
        return self._file.seekable()

    def tell(self) -> int:
        """The underlying file's position (bytes from its start)."""
        return self._file.tell()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Seek the underlying file (as ``io.BufferedReader.seek``)."""
        return self._file.seek(offset, whence)

    def fileno(self) -> int:
        """The underlying file's descriptor (for ``sendfile(2)``)."""
        return self._file.fileno()

    def close(self) -> None:
        """Close the underlying file (idempotent)."""
        self._file.close()


class FileChunks:
    """A WSGI app_iter over ``length`` bytes of ``file`` from ``offset``.

    Yields blocks of at most ``block_size`` bytes (webob's ``FileIter``
    does the reading).  :meth:`close` closes the file even if iteration never
    started or stopped early (PEP 3333: the server calls ``close()`` "upon
    completion of the current request ... whether the request was completed
    normally, or terminated early").

    :param file: an open binary file.
    :param offset: first byte to send.
    :param length: number of bytes to send.
    :param block_size: bytes per chunk.
    """

    def __init__(
        self, file: BinaryIO, offset: int, length: int, block_size: int = BLOCK_SIZE
    ) -> None:
        self._file = file
        self._chunks: Iterator[bytes] = FileIter(file).app_iter_range(
            seek=offset, limit=offset + length, block_size=block_size
        )

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        """Stop reading and close the file (idempotent)."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        self._file.close()


def open_file_body(
    environ: Mapping[str, Any],
    filename: str | os.PathLike[str],
    offset: int,
    length: int,
    block_size: int = BLOCK_SIZE,
) -> Iterable[bytes]:
    """Open ``filename`` and return an app_iter for ``length`` bytes at ``offset``.

    :param environ: the WSGI environ; its ``wsgi.file_wrapper`` is used when
        present.
    :param filename: the file to send.
    :param offset: first byte (0 for the whole file); bytes.
    :param length: number of bytes; clipped to what the file holds.
    :param block_size: bytes per block.
    :returns: an iterable of bytes: for at most ``block_size`` bytes a
        one-item list (the file already closed), else one whose ``close()``
        closes the file.
    :raises OSError: the file cannot be opened.
    """
    file = open(filename, "rb")  # noqa: SIM115 - closed by the app_iter's close()
    try:
        size = os.fstat(file.fileno()).st_size
        offset = max(0, min(offset, size))
        length = max(0, min(length, size - offset))
        if length <= block_size:
            # One block: a single read and a one-chunk body cost every server
            # less than its file path (waitress hands files to its event-loop
            # thread; sendfile(2) is a system call more), in the same memory.
            file.seek(offset)
            data = file.read(length)
            file.close()
            return [data]
        wrapper = environ.get("wsgi.file_wrapper")
        if wrapper is None:
            return FileChunks(file, offset, length, block_size)
        file.seek(offset)
        if offset + length < size:
            body: Iterable[bytes] = wrapper(
                FileRange(file, length, block_size), block_size
            )
        else:
            body = wrapper(BoundedReads(file, block_size), block_size)
        return body
    except BaseException:
        file.close()
        raise
