"""Reuse each worker thread's tracker database (the ``reuse_db`` option).

Roundup's ``Client.main`` closes the database after every request, so the
next one opens it again (``Tracker.open``: ``schema.py``, detectors,
permissions, connections): a fifth of a ``GET /issue1``.
:class:`DatabasePool` keeps at most one per thread.  A request *leases*
it (:meth:`DatabasePool.lease`): the ``Client`` gets it as ``client.db``
before ``Client.main`` (Roundup's ``opendb`` switches the user on it), and
Roundup's ``db.close()`` is intercepted (:mod:`.patches.db_close`): the
database is recycled (:func:`.dbrecycle.recycle`), or opened anew when
:func:`.dbrecycle.stale` says so, or the request failed (it raised, the
:class:`~roundup_wsgi.failures.ClientGuard` saw an error, a 5xx).  Nothing
about users is kept: every request reads roles, passwords and sessions.

A kept database is closed, never left behind, when its thread ends (its
``threading.local`` storage is cleared on the thread itself, also for a
``_DummyThread``); when unused for ``idle_limit`` seconds (a reaper
thread, running only while databases are kept, closes it within 1.5 x
``idle_limit``, at least 0.05 s); and beyond ``max_kept`` per tracker and
process (the least recently used goes).  A thread takes its database out
of the pool under the lock; one the reaper or the LRU rule took first is
never used again, so a database is used by one thread at a time and
closed by whichever took it, never in use (sqlite:
:mod:`.patches.sqlite_sharing`; a connection still bound to its thread is
closed only there, or dropped for the garbage collector).  Reuse is off
(:func:`reuse_refused` says why) in debug mode and for a backend that is
not SQL.  The node cache is kept too: :mod:`roundup_wsgi.nodecache`.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from roundup.cgi.client import NotFound

from . import dbrecycle, nodecache
from .dbrecycle import Kept, reuse_refused
from .options import DEFAULT_IDLE_LIMIT, DEFAULT_MAX_KEPT, check_option
from .patches import db_close

if TYPE_CHECKING:
    from .failures import ClientGuard

__all__ = [
    "DEFAULT_IDLE_LIMIT",
    "DEFAULT_MAX_KEPT",
    "DatabasePool",
    "Lease",
    "reuse_refused",
]

logger = logging.getLogger("roundup_wsgi")

#: Shortest pause of the reaper thread between two passes, in seconds.
_MIN_REAP_INTERVAL = 0.05


class Lease:
    """One request's use of a kept database (see :meth:`DatabasePool.lease`).

    :ivar failed: set by the dispatcher when the request must not give the
        database back (an error); it is closed instead.
    """

    def __init__(self, pool: DatabasePool, kept: Kept, client: Any) -> None:
        self.pool = pool
        self.kept = kept
        self.client = client
        self.failed = False
        #: Roundup called ``db.close()`` (end of ``Client.main``).
        self.closed_by_roundup = False
        db = kept.db
        db_close.intercept(db, self._close_called)
        client.db = db

    def _close_called(self) -> None:
        self.closed_by_roundup = True


class _Slot:
    """The database one thread keeps (``kept``: ``None`` when none)."""

    __slots__ = ("kept",)

    def __init__(self) -> None:
        self.kept: Kept | None = None


class _Alive:
    """Lives in a thread's ``threading.local`` storage: its finalizer runs
    when the thread ends."""

    __slots__ = ("__weakref__",)


class DatabasePool:
    """Keep one open tracker database per worker thread, at most
    ``max_kept`` of them, none unused for long (see "How many are kept, and
    for how long" in the module docstring).

    :param home: the tracker home (its files are watched for changes).
    :param idle_limit: seconds a database may sit unused and still be
        reused; after 1.5 times that at most it is closed (default
        :data:`DEFAULT_IDLE_LIMIT`).
    :param max_kept: most databases kept open between requests (default
        :data:`DEFAULT_MAX_KEPT`; 0: none, each request closes its own).
    :raises ValueError: ``idle_limit`` or ``max_kept`` is negative.
    """

    def __init__(
        self,
        home: str,
        idle_limit: float = DEFAULT_IDLE_LIMIT,
        max_kept: int = DEFAULT_MAX_KEPT,
    ) -> None:
        idle_limit = check_option("reuse_db_idle", idle_limit)
        max_kept = check_option("reuse_db_max", max_kept)
        self.home = home
        self.idle_limit = idle_limit
        self.max_kept = max_kept
        self._paths = dbrecycle.watched_files(home)
        self._local = threading.local()
        #: The databases kept between requests, least recently used first;
        #: a thread takes its own out (under ``_lock``) for a request.
        self._idle: OrderedDict[Kept, None] = OrderedDict()
        self._lock = threading.Lock()
        #: The reaper thread while one runs (and the process it runs in).
        self._reaper: threading.Thread | None = None
        self._reaper_pid = 0
        #: The reasons for refusing reuse already logged.
        self._logged: set[str] = set()
        #: Counters for tests and logs: opened, reused, discarded (closed
        #: on its thread), released (taken from another thread, closed by
        #: the garbage collector), not kept (over ``max_kept``).
        self.stats = {"opened": 0, "reused": 0, "discarded": 0}
        self.released = 0
        self.not_kept = 0
        #: Keep the node cache between requests (see
        #: :mod:`roundup_wsgi.nodecache`), and how many requests started
        #: with a kept one.
        self.keep_nodes = True
        self.nodes_kept = 0

    def kept_count(self) -> int:
        """How many databases are kept between requests right now."""
        with self._lock:
            return len(self._idle)

    def refused(self, tracker: Any) -> str | None:
        """:func:`reuse_refused` for ``tracker``, each reason logged once."""
        reason = reuse_refused(tracker)
        if reason is not None and reason not in self._logged:
            self._logged.add(reason)
            logger.info(
                "reuse_db: tracker %s opens a database per request: %s",
                self.home,
                reason,
            )
        return reason

    @contextmanager
    def lease(
        self, tracker: Any, client: Any, guard: ClientGuard | None = None
    ) -> Iterator[Lease | None]:
        """Give ``client`` this thread's kept database (or a new one) for
        one ``Client.main``; keep it afterwards if all went well.

        :param tracker: the tracker instance the ``Client`` belongs to.
        :param client: a ``Client`` before ``main()``; its ``db`` is set.
        :param guard: the request's :class:`~roundup_wsgi.failures.ClientGuard`
            (a database error it recorded discards the database).
        :yields: the :class:`Lease`, or ``None`` when reuse is refused for
            this tracker or opening the database failed (Roundup then opens
            and closes the database itself, and answers an error its way).
        """
        kept = None
        if self.refused(tracker) is None:
            try:
                kept = self._take(tracker)
            except Exception:
                # Let Roundup open it inside Client.main and answer the
                # error its own way (and ClientGuard see it), as without reuse.
                logger.debug("reuse_db: opening failed", exc_info=True)
        if kept is None:
            yield None
            return
        lease = Lease(self, kept, client)
        try:
            yield lease
        except NotFound:
            raise  # an answer (404), not a failure
        except BaseException:
            lease.failed = True
            raise
        finally:
            if guard is not None and (
                guard.database_error is not None or guard.caught is not None
            ):
                lease.failed = True
            self._give_back(lease)

    def _take(self, tracker: Any) -> Kept:
        slot = self._slot()
        kept, slot.kept = slot.kept, None
        if kept is not None:
            with self._lock:
                if self._idle.pop(kept, False) is not None:
                    kept = None  # closed by the reaper or for another thread
        if kept is not None:
            reason = dbrecycle.stale(kept, self.idle_limit, self._paths)
            if reason is None:
                self.stats["reused"] += 1
                self._start_nodes(kept)
                return kept
            logger.debug("reuse_db: database opened anew: %s", reason)
            self._discard(kept)
        kept = dbrecycle.open_kept(tracker, self._paths, self.keep_nodes)
        self.stats["opened"] += 1
        if kept.watched:
            self._start_nodes(kept)
        return kept

    def _start_nodes(self, kept: Kept) -> None:
        """Give the request the node cache kept for it, if any
        (:func:`.nodecache.start`), and count it."""
        if nodecache.start(kept, self.keep_nodes):
            self.nodes_kept += 1

    def _give_back(self, lease: Lease) -> None:
        kept = lease.kept
        client_db = getattr(lease.client, "db", None)
        if client_db is not kept.db:
            # Something replaced the Client's database: ours is not in use.
            lease.failed = True
        status = getattr(lease.client.request, "status", None)
        if status is not None and status[:1] == "5":
            lease.failed = True
        if not lease.failed:
            try:
                nodecache.end(kept)
                dbrecycle.recycle(kept)
            except Exception:
                logger.debug("reuse_db: recycling failed", exc_info=True)
                lease.failed = True
        if lease.failed:
            self._discard(kept)
            return
        kept.used = time.monotonic()
        slot = self._slot()
        if slot.kept is not None:  # another request on this thread kept one
            self._close_kept(slot.kept)
            slot.kept = None
        evicted = None
        with self._lock:
            keep = len(self._idle) < self.max_kept
            if not keep and self._idle:
                oldest = next(iter(self._idle))
                if not oldest.thread_bound:  # closed from here safely
                    del self._idle[oldest]
                    evicted, keep = oldest, True
            if keep:
                self._idle[kept] = None
                self._start_reaper()
        if evicted is not None:
            self._discard(evicted)
        if not keep:
            self.not_kept += 1
            self._discard(kept)
            return
        slot.kept = kept

    def _discard(self, kept: Kept) -> None:
        self.stats["discarded"] += 1
        dbrecycle.close(kept)

    def _close_kept(self, kept: Kept) -> None:
        """Close ``kept`` if it is in the pool (taken out under the lock)."""
        with self._lock:
            if self._idle.pop(kept, False) is not None:
                return  # taken by the reaper or another thread already
        self._close(kept)

    def _close(self, kept: Kept) -> bool:
        """Close ``kept``, no longer in the pool, on this thread if allowed,
        else drop it for the garbage collector; True if dropped."""
        if kept.pid != os.getpid():
            kept.db = None  # the parent's connection: not ours to close
            return False
        if kept.thread_bound and threading.get_ident() != kept.owner:
            self.released += 1
            kept.db = None
            kept.snapshot = {}
            kept.nodes = kept.started = None
            return True
        self._discard(kept)
        return False

    def _start_reaper(self) -> None:
        """Start the reaper thread unless one runs (with ``_lock`` held)."""
        pid = os.getpid()
        if self._reaper is not None and self._reaper_pid == pid:
            return
        reaper = threading.Thread(
            target=_reap_while_kept,
            args=(weakref.ref(self),),
            name="roundup-wsgi-db-reaper",
            daemon=True,
        )
        self._reaper, self._reaper_pid = reaper, pid
        reaper.start()

    def reap(self) -> float | None:
        """Close the databases unused for over ``idle_limit`` seconds (the
        reaper thread's pass; see the module docstring).

        :returns: seconds until the next pass, or ``None`` when nothing is
            kept any more (the reaper then ends; the next kept database
            starts a new one).
        """
        interval = max(self.idle_limit / 2, _MIN_REAP_INTERVAL)
        expired = []
        with self._lock:
            now = time.monotonic()
            while self._idle:
                oldest = next(iter(self._idle))
                if now - oldest.used <= self.idle_limit:
                    break
                del self._idle[oldest]
                expired.append(oldest)
            if not self._idle and self._reaper is threading.current_thread():
                self._reaper = None
                done = True
            else:
                done = False
        dropped = False
        for kept in expired:
            logger.debug("reuse_db: closing a database idle over %g s", self.idle_limit)
            dropped = self._close(kept) or dropped
        if dropped or (done and expired):
            # Closes the sqlite connections just dropped, and those closed
            # earlier whose statements still live in a reference cycle of
            # Roundup's (sqlite3_close_v2 waits for them): none is kept now.
            gc.collect()
        return None if done else interval

    def close_all(self) -> None:
        """Close this thread's kept database (tests, shutdown)."""
        slot = self._slot()
        kept, slot.kept = slot.kept, None
        if kept is not None:
            self._close_kept(kept)

    def _slot(self) -> _Slot:
        """This thread's slot; made on first use, with a finalizer that
        closes its database as the thread ends (its ``threading.local``
        storage is cleared then, on the thread itself)."""
        slot: _Slot | None = getattr(self._local, "slot", None)
        if slot is None:
            slot = _Slot()
            alive = _Alive()
            self._local.slot = slot
            self._local.alive = alive
            finalizer = weakref.finalize(alive, self._thread_ended, slot)
            finalizer.atexit = False
        return slot

    def _thread_ended(self, slot: _Slot) -> None:
        kept, slot.kept = slot.kept, None
        if kept is not None:
            self._close_kept(kept)


def _reap_while_kept(ref: weakref.ref[DatabasePool]) -> None:
    """The reaper thread: :meth:`DatabasePool.reap` until nothing is kept
    or the pool is gone."""
    while True:
        pool = ref()
        if pool is None:
            return
        try:
            pause = pool.reap()
        except Exception:
            logger.exception("reuse_db: closing idle databases failed")
            pause = max(pool.idle_limit / 2, _MIN_REAP_INTERVAL)
        del pool
        if pause is None:
            return
        time.sleep(pause)
