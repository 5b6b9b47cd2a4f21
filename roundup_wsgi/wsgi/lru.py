"""A thread-safe mapping bounded in bytes, least recently used evicted.

The memory caches of this package (:class:`~.encoding.VariantCache`,
compressed variants of files; :class:`~.responsecache.ResponseCache`, whole
static-file answers) keep values whose size the caller states, and drop
the least recently used ones once the sum passes a limit.  They share this
class; what makes an entry stale, and how large an entry may be, is theirs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["ByteBoundedLRU"]

V = TypeVar("V")


class ByteBoundedLRU(Generic[V]):
    """Values by key, at most ``max_bytes`` of them (each counted for the
    bytes given to ``_store``), least recently used evicted first.

    Thread-safe: one lock, held for dictionary operations only.

    :param max_bytes: the most bytes held; 0 holds nothing.
    :raises ValueError: ``max_bytes`` is not an ``int`` >= 0.
    """

    def __init__(self, max_bytes: int) -> None:
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError(f"cache size must be >= 0 bytes, not {max_bytes!r}")
        self.max_bytes = max_bytes
        #: Bytes held now (the sizes the entries were stored with, summed).
        self.size = 0
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _lookup(self, key: Hashable) -> V | None:
        """The value under ``key`` (now the most recently used), or ``None``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def _store(self, key: Hashable, value: V, nbytes: int) -> None:
        """Keep ``value`` under ``key``, counted as ``nbytes``; evict the
        least recently used entries past ``max_bytes``."""
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old[1]
            self._entries[key] = (value, nbytes)
            self.size += nbytes
            while self.size > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.size -= evicted

    def _discard(self, key: Hashable, value: V) -> None:
        """Drop the entry under ``key`` if it still holds ``value`` (another
        thread may have stored a new one meanwhile)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] is value:
                del self._entries[key]
                self.size -= entry[1]

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self.size = 0
