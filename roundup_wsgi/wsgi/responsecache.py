"""Whole responses kept in memory, valid while the files they came from are unchanged.

A :class:`ResponseCache` keeps the exact answer an application gave to a
request (status line, header list, body bytes) under a key the caller
builds from what decided that answer (path, method, the request headers
read), together with the files it depended on: for each, the
:class:`~.encoding.FileStamp` (inode, size, modification time in
nanoseconds) it had, or ``None`` for a file that had to be absent (a
directory searched before the one that held the file).  :meth:`~ResponseCache.get`
checks those with ``os.stat`` on every hit, so an edited, replaced, created
or removed file makes the entry stale at once and it is dropped.

The memory held is bounded (``ResponseCache``'s ``max_bytes``, the body,
headers and key of each entry counted), least recently used evicted.
Nothing here knows which requests may be cached: the caller decides, and
stores only answers whose bytes depend on nothing but the key and the
files.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable
from typing import Any, NamedTuple

from .adapters import waits_for_first_chunk
from .encoding import FileStamp
from .lru import ByteBoundedLRU
from .types import HeaderList, StartResponse

__all__ = [
    "DEFAULT_MAX_BYTES",
    "ENTRY_OVERHEAD",
    "CachedResponse",
    "Dependencies",
    "ResponseCache",
    "stamp_of",
    "still_valid",
]

#: ``((path, stamp or None), ...)``: the files an answer was made from, as
#: they were (``None``: the path did not exist).
Dependencies = tuple[tuple[str, "FileStamp | None"], ...]

#: A default size for a :class:`ResponseCache`: 4 MiB.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024

#: Bytes counted for each entry besides its body, headers and key (the
#: objects that hold them).
ENTRY_OVERHEAD = 512


def stamp_of(path: str) -> FileStamp | None:
    """The :class:`~.encoding.FileStamp` of ``path`` (following symbolic
    links), or ``None`` if nothing is there (or it cannot be examined)."""
    try:
        return FileStamp.of(os.stat(path))
    except (OSError, ValueError):  # ValueError: a NUL byte in the path
        return None


def still_valid(dependencies: Dependencies) -> bool:
    """True if every file of ``dependencies`` has the stamp recorded (absent
    ones still absent)."""
    for path, stamp in dependencies:
        try:
            st = os.stat(path)
        except (OSError, ValueError):  # ValueError: a NUL byte in the path
            if stamp is not None:
                return False
            continue
        if (
            stamp is None
            or st.st_mtime_ns != stamp.mtime_ns
            or st.st_size != stamp.size
            or st.st_ino != stamp.inode
        ):
            return False
    return True


class CachedResponse(NamedTuple):
    """One kept answer.

    :ivar status: the status line (``"200 OK"``).
    :ivar headers: the header list given to ``start_response``.
    :ivar body: the body bytes (``b""``: none, as for HEAD and 304).
    :ivar dependencies: the files it was made from (:data:`Dependencies`).
    :ivar size: bytes counted against the cache's limit.
    """

    status: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    dependencies: Dependencies
    size: int

    def send(
        self, start_response: StartResponse, environ: dict[str, Any] | None = None
    ) -> Iterable[bytes]:
        """Answer with this response: ``start_response`` with a new header
        list (a server may change the one it is given), then the app_iter.

        An empty body is an empty app_iter, or ``[b""]`` for a server that
        starts a response only with its first chunk
        (:func:`~.adapters.waits_for_first_chunk` of ``start_response`` and
        ``environ``: hypercorn).
        """
        start_response(self.status, list(self.headers))
        if self.body:
            return [self.body]
        return [b""] if waits_for_first_chunk(start_response, environ) else []


def entry_size(key: Hashable, status: str, headers: HeaderList, body: bytes) -> int:
    """Bytes an entry is counted for: body, header names and values, the
    key's ``repr`` and :data:`ENTRY_OVERHEAD`."""
    return (
        len(body)
        + len(status)
        + sum(len(name) + len(value) + 64 for name, value in headers)
        + len(repr(key))
        + ENTRY_OVERHEAD
    )


class ResponseCache(ByteBoundedLRU[CachedResponse]):
    """Kept responses, least recently used evicted past ``max_bytes``.

    Thread-safe (:class:`~.lru.ByteBoundedLRU`; the ``os.stat`` calls of a
    hit run outside its lock).

    :param max_bytes: the most bytes held (each entry as ``entry_size()``
        counts it); an entry larger than a quarter of it is not kept.
    :raises ValueError: ``max_bytes`` is not a positive number of bytes.
    """

    def __init__(self, max_bytes: int) -> None:
        if not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"cache size must be > 0 bytes, not {max_bytes!r}")
        super().__init__(max_bytes)
        #: Counters: answers given from the cache, and stale entries dropped.
        self.hits = 0
        self.stale = 0

    def get(self, key: Hashable) -> CachedResponse | None:
        """The response kept under ``key`` if its files are unchanged, else
        ``None`` (a stale entry is dropped)."""
        entry = self._lookup(key)
        if entry is None:
            return None
        if not still_valid(entry.dependencies):
            self._discard(key, entry)
            self.stale += 1
            return None
        self.hits += 1
        return entry

    def put(
        self,
        key: Hashable,
        status: str,
        headers: HeaderList,
        body: bytes,
        dependencies: Dependencies,
    ) -> bool:
        """Keep a response under ``key``; evict the least recently used past
        ``max_bytes``.

        :param dependencies: the files the response was made from, stamped
            *before* it was made (so a change while it was made shows).
        :returns: ``False`` if it is too large to keep.
        """
        size = entry_size(key, status, headers, body)
        if size > self.max_bytes // 4:
            return False
        entry = CachedResponse(status, tuple(headers), body, dependencies, size)
        self._store(key, entry, size)
        return True
