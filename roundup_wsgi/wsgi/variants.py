"""Compressed variants of files kept in memory while their file is unchanged.

:class:`FileStamp` identifies one version of a file (inode, size,
modification time); :class:`VariantCache` keeps ``(path, coding) ->
bytes`` entries with the stamp they were made from, least recently used
evicted past a size in bytes.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from .lru import ByteBoundedLRU

__all__ = ["FileStamp", "VariantCache"]


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
