"""Reuse each worker thread's tracker database (the ``reuse_db`` option).

Roundup's ``Client.main`` closes the database at the end of every request
(its ``finally``), so the next request opens it again: ``Tracker.open``
runs ``schema.py``, installs the detectors and the permissions, and
connects (three connections for sqlite and PostgreSQL: the database, the
sessions and the one-time keys).  That is a fifth of a ``GET /issue1``.
Roundup's own ``Client.opendb`` already keeps one open database per
``Client`` and only switches the user (``db.setCurrentUser``) when the
tracker is optimised; :class:`DatabasePool` extends that across the
requests of one worker thread.

Each thread keeps at most one database.  A request *leases* it
(:meth:`DatabasePool.lease`): the ``Client`` is given it as ``client.db``
before ``Client.main``, so Roundup's ``opendb`` switches the user on it
exactly as it does between ``determine_user``'s two calls.  At the end of
the request Roundup's ``db.close()`` is intercepted and the database is
*recycled* instead of closed:

* rolled back (``db.rollback()``: the SQL transaction, the files stored by
  the transaction, the row cache), and so are the sessions and one-time
  keys connections: what a request wrote but did not commit is never seen
  by the next one (a closed connection forgets it the same way);
* the SQL cursors are replaced (an unfinished ``SELECT`` would keep an old
  sqlite snapshot);
* the per-request state Roundup and its callers put on the database is
  reset to what ``Tracker.open`` left: ``journaltag`` (the user),
  ``journal_uid``, ``tx_Source``, ``i18n``, and every attribute added since
  (e.g. the wrappers of :class:`~roundup_wsgi.failures.ClientGuard`);
  so are the attributes of its classes (Roundup's ``determine_user`` sets
  ``db.user.get_roles`` to a JWT's roles for the request).

Nothing about users is kept: roles, retirement, passwords and sessions are
read from the database by every request, as with a fresh database, so a
role change, a retired user, a password change or a logout take effect on
the next request.

How many are kept, and for how long
-----------------------------------

A kept database is closed, never left behind, when:

* its thread ends: the thread's ``threading.local`` storage is cleared by
  the thread itself as it ends (also for threads a server starts outside
  ``threading``, e.g. granian's blocking threads, whose
  ``threading.current_thread()`` is a ``_DummyThread`` that never goes),
  so it is closed on its own thread;
* it sat unused for ``idle_limit`` seconds: a reaper thread, running only
  while databases are kept, closes it between ``idle_limit`` and
  1.5 x ``idle_limit`` (at least 0.05 s) seconds after its last request;
* ``max_kept`` databases are already kept by other threads (per tracker and
  process): the least recently used is closed, from this thread (for a
  thread-bound sqlite connection, see below, this request's database is
  closed at its end instead, as without reuse).

So at most ``max_kept`` databases are open between requests, none for
longer than 1.5 x ``idle_limit`` seconds after its last use.  A thread
takes its database out of the pool (under its lock) for a request; one the
reaper or the least-recently-used rule took out first is never used by its
thread again (it opens a new one), so a database is used by one thread at a
time and closed (``close_database``) by whichever thread took it, never
while in use.  For sqlite that needs ``check_same_thread=False``: the
pool opens Roundup's connection again so (:func:`_share_sqlite`), and the
sessions and one-time keys connections Roundup opens later through
``db.sql_open_connection``.  A database whose sqlite connection could not
be opened so stays bound to its thread: used and closed only there, and
when taken away, dropped for the cyclic garbage collector (run once by the
reaper after it dropped any).

sqlite keeps the file descriptor of a closed connection open while another
connection of the process holds a lock on the same file (a WAL database:
every open connection), and gives it to the next connection it opens on
that file; so after a burst up to one descriptor per concurrent request
per database file stays open until the last kept database is closed.

A database is closed and opened anew (never reused) when the request
raised, Roundup's last-resort handler ran, the database reported an error
(:class:`~roundup_wsgi.failures.ClientGuard`), the answer was a 5xx, the
rollback failed, a PostgreSQL connection is found closed or has data
waiting while idle (the server shut down, restarted or dropped it: seen
without a round trip, so a restarted server answers the next request
instead of a 503), it sat idle longer than ``idle_limit`` seconds, the
process forked, or the tracker's ``schema.py``, ``config.ini``,
``detectors/``, ``extensions/`` or ``lib/`` changed (mtime), or PostgreSQL's
write counter was found incomplete (a trigger missing: it is installed
again; see :mod:`roundup_wsgi.nodecache`).  With an
indexer not known to keep its state in the SQL transaction (``xapian``,
``whoosh``) it is closed after every request, as without reuse.  Reuse is
off (Roundup opens and closes the database itself) for a tracker opened in
debug mode (not optimised) and a backend that is not SQL (``anydbm``):
:func:`reuse_refused` names the reason.  A tracker ``Client`` whose
``opendb`` opens a database of its own (instead of using ``client.db``)
works: the kept one is then closed.

The node cache (the rows a request read) is kept with the database:
see :mod:`roundup_wsgi.nodecache`.
"""

from __future__ import annotations

import gc
import logging
import os
import select
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from roundup.cgi.client import NotFound

from . import nodecache, permissions, pgversion
from .options import DEFAULT_IDLE_LIMIT, DEFAULT_MAX_KEPT, check_option
from .tracker import close_database

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

#: Indexers whose state lives in the SQL transaction only (rolled back with
#: it).  Others (xapian, whoosh) keep a writer of their own.
_SAFE_INDEXERS = frozenset(
    {
        "roundup.backends.indexer_rdbms",
        "roundup.backends.indexer_sqlite_fts",
        "roundup.backends.indexer_postgresql_fts",
    }
)

#: Attributes of the database reset to their value after ``Tracker.open``.
_RESET = ("journaltag", "tx_Source", "i18n")

#: Attributes the backend itself replaces during a request (kept as they are).
_BACKEND_STATE = frozenset(
    {
        "cache",
        "cache_lru",
        "transactions",
        "conn",
        "cursor",
        "Session",
        "Otk",
        "stats",
        "indexer",
    }
)


def reuse_refused(tracker: Any) -> str | None:
    """Why databases of ``tracker`` cannot be reused, or ``None``.

    :param tracker: a ``roundup.instance.Tracker``.
    :returns: a one-line reason, e.g. ``"the tracker is in debug mode (not
        optimised)"``.
    """
    if not getattr(tracker, "optimize", False):
        return "the tracker is in debug mode (not optimised)"
    backend = getattr(tracker, "backend", None)
    database = getattr(backend, "Database", None)
    if database is None or not hasattr(database, "sql_rollback"):
        name = getattr(backend, "__name__", "?").rsplit(".", 1)[-1]
        return f"backend {name} is not an SQL backend"
    return None


def _watched_files(home: str) -> list[str]:
    """The files and directories whose change means "open anew"."""
    paths = [os.path.join(home, name) for name in ("schema.py", "config.ini")]
    for folder in ("detectors", "extensions", "lib"):
        path = os.path.join(home, folder)
        if os.path.isdir(path):
            paths.append(path)
            try:
                names = sorted(os.listdir(path))
            except OSError:
                continue
            paths.extend(os.path.join(path, n) for n in names if n.endswith(".py"))
    return paths


def _signature(paths: list[str]) -> tuple[float, ...]:
    stamps = []
    for path in paths:
        try:
            stamps.append(os.stat(path).st_mtime)
        except OSError:
            stamps.append(-1.0)
    return tuple(stamps)


def _connections(db: Any) -> list[Any]:
    """The database's SQL connections: its own, the sessions', the one-time
    keys' (three for PostgreSQL)."""
    conns = [getattr(db, "conn", None)]
    for name in ("Session", "Otk"):
        conns.append(getattr(getattr(db, name, None), "conn", None))
    return [conn for conn in conns if conn is not None]


def _readable(conn: Any) -> bool:
    """True if a socket connection (psycopg2, mysql) has data waiting while
    idle: a PostgreSQL shutdown or restart sends a FATAL message and closes
    it, a crash closes it (end of file).  No round trip; ``False`` for sqlite
    (no socket)."""
    fileno = getattr(conn, "fileno", None)
    if fileno is None:
        return False
    try:
        readable, _, _ = select.select([fileno()], [], [], 0)
    except (OSError, ValueError, TypeError):
        return True
    return bool(readable)


def _reopen_shared(conn: sqlite3.Connection, cursor: Any, timeout: float) -> Any:
    """A connection to ``conn``'s database file opened with
    ``check_same_thread=False`` and ``conn``'s row and text factories and
    isolation level, and its cursor; ``conn`` and ``cursor`` are closed."""
    listing = conn.execute("PRAGMA database_list")
    try:
        path = next(row[2] for row in listing.fetchall() if row[1] == "main")
    finally:
        listing.close()
    shared = sqlite3.connect(
        path,
        timeout=timeout,
        isolation_level=conn.isolation_level,
        check_same_thread=False,
    )
    shared.row_factory = conn.row_factory
    shared.text_factory = conn.text_factory
    if cursor is not None:
        cursor.close()
    conn.close()
    return shared, shared.cursor()


def _share_sqlite(db: Any) -> bool:
    """Give a new sqlite database connections that another thread may close
    once the pool took the database away from its idle thread (the reaper,
    the least-recently-used rule): its own is opened again with
    ``check_same_thread=False``, and so are those Roundup opens later
    through ``db.sql_open_connection`` (the sessions and one-time keys
    stores).  The pool never lets two threads use one at a time.

    :returns: ``True`` if done; ``False`` (nothing changed) for another
        backend, or a connection in a transaction or already opened by a
        store.
    """
    conn = getattr(db, "conn", None)
    if not isinstance(conn, sqlite3.Connection) or conn.in_transaction:
        return False
    for name in ("Session", "Otk"):
        if getattr(getattr(db, name, None), "conn", None) is not None:
            return False
    timeout = float(getattr(db.config, "RDBMS_SQLITE_TIMEOUT", 30))
    opener = db.sql_open_connection

    def sql_open_connection(dbname: str | None = None) -> Any:
        opened, cursor = opener() if dbname is None else opener(dbname=dbname)
        return _reopen_shared(opened, cursor, timeout)

    db.conn, db.cursor = _reopen_shared(conn, getattr(db, "cursor", None), timeout)
    db.sql_open_connection = sql_open_connection
    return True


class _Kept:
    """A database kept by a thread, with what it was opened under."""

    __slots__ = (
        "changes",
        "class_snapshots",
        "data_version",
        "db",
        "nodes",
        "owner",
        "pg_tables",
        "pid",
        "reopen",
        "signature",
        "snapshot",
        "started",
        "thread_bound",
        "used",
        "watched",
        "writes",
    )

    def __init__(
        self, db: Any, signature: tuple[float, ...], shared: bool = False
    ) -> None:
        self.db = db
        self.pid = os.getpid()
        #: The thread that opened it (``threading.get_ident()``).
        self.owner = threading.get_ident()
        #: A connection may be used and closed on ``owner`` only (sqlite,
        #: unless opened by :func:`_share_sqlite`).
        self.thread_bound = not shared and any(
            isinstance(conn, sqlite3.Connection) for conn in _connections(db)
        )
        self.signature = signature
        #: The database's attributes right after ``Tracker.open``.
        self.snapshot = dict(vars(db))
        #: Each class's (``db.user``...) attributes once opened and watched
        #: (:meth:`note_classes`).
        self.class_snapshots: list[tuple[Any, dict[str, Any]]] = []
        self.used = time.monotonic()
        #: The node cache (``db.cache``, ``db.cache_lru``) kept for the next
        #: request, or ``None`` (see :mod:`roundup_wsgi.nodecache`).
        self.nodes: tuple[dict[Any, Any], list[Any]] | None = None
        #: The node cache the current request started with.
        self.started: tuple[dict[Any, Any], list[Any]] | None = None
        #: sqlite's ``PRAGMA data_version`` and ``total_changes`` (or
        #: PostgreSQL's :func:`pgversion.read`) before the current request's
        #: first read.
        self.data_version: int | tuple[int, int] | None = None
        self.changes = 0
        #: ``[n]``: the auditors fired n times (a write began) this request,
        #: counted once ``watched`` (:func:`.nodecache.watch_writes`).
        self.writes = [0]
        self.watched = False
        #: Open it anew before the next request (PostgreSQL: the write
        #: counter's read failed or a trigger is missing: install again).
        self.reopen = False
        #: PostgreSQL: the tables whose triggers feed the write counter
        #: (:func:`pgversion.install`); ``None``: sqlite, or not installed.
        self.pg_tables: list[str] | None = None

    def note_classes(self) -> None:
        """Note the attributes of the database's classes, to be reset after
        each request: Roundup's ``determine_user`` sets
        ``db.user.get_roles`` to a bearer token's roles (JWT), which must not
        reach the next request."""
        classes = getattr(self.db, "classes", None)
        if isinstance(classes, dict):
            self.class_snapshots = [
                (cl, dict(vars(cl)))
                for cl in classes.values()
                if hasattr(cl, "__dict__")
            ]


class Lease:
    """One request's use of a kept database (see :meth:`DatabasePool.lease`).

    :ivar failed: set by the dispatcher when the request must not give the
        database back (an error); it is closed instead.
    """

    def __init__(self, pool: DatabasePool, kept: _Kept, client: Any) -> None:
        self.pool = pool
        self.kept = kept
        self.client = client
        self.failed = False
        #: Roundup called ``db.close()`` (end of ``Client.main``).
        self.closed_by_roundup = False
        db = kept.db
        db.close = self._close_called
        client.db = db

    def _close_called(self) -> None:
        self.closed_by_roundup = True


class _Slot:
    """The database one thread keeps (``kept``: ``None`` when none)."""

    __slots__ = ("kept",)

    def __init__(self) -> None:
        self.kept: _Kept | None = None


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
        self._paths = _watched_files(home)
        self._local = threading.local()
        #: The databases kept between requests, least recently used first;
        #: a thread takes its own out (under ``_lock``) for a request.
        self._idle: OrderedDict[_Kept, None] = OrderedDict()
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
    def lease(self, tracker: Any, client: Any, guard: Any = None) -> Iterator[Any]:
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

    def _take(self, tracker: Any) -> _Kept:
        slot = self._slot()
        kept, slot.kept = slot.kept, None
        if kept is not None:
            with self._lock:
                if self._idle.pop(kept, False) is not None:
                    kept = None  # closed by the reaper or for another thread
        if kept is not None:
            reason = self._stale(kept)
            if reason is None:
                self.stats["reused"] += 1
                self._start_nodes(kept)
                return kept
            logger.debug("reuse_db: database opened anew: %s", reason)
            self._discard(kept)
        signature = _signature(self._paths)
        db = tracker.open(None)
        try:
            shared = _share_sqlite(db)
        except Exception:
            close_database(db)
            raise
        permissions.install(db)
        self.stats["opened"] += 1
        kept = _Kept(db, signature, shared)
        if self.keep_nodes and nodecache.supported(db):
            if not isinstance(db.conn, sqlite3.Connection):
                kept.pg_tables = pgversion.install(db)
                if kept.pg_tables is None:
                    return kept
                if pgversion.skip_savepoints_on_hits(db):
                    kept.snapshot["getnode"] = db.getnode
            nodecache.watch_writes(db, kept.writes)
            kept.watched = True
        kept.note_classes()
        if kept.watched:
            self._start_nodes(kept)
        return kept

    def _start_nodes(self, kept: _Kept) -> None:
        """Give the request the node cache kept for it, if any
        (:func:`.nodecache.start`), and count it."""
        if nodecache.start(kept, self.keep_nodes):
            self.nodes_kept += 1

    def _stale(self, kept: _Kept) -> str | None:
        if kept.reopen:
            return "the write counter is incomplete: installing it again"
        if kept.pid != os.getpid():
            kept.db = None  # the parent's connection: not ours to close
            return "the process forked"
        if time.monotonic() - kept.used > self.idle_limit:
            return f"idle over {self.idle_limit:g} s"
        if _signature(self._paths) != kept.signature:
            return "the tracker's schema, config or detectors changed"
        for conn in _connections(kept.db):
            if getattr(conn, "closed", 0):  # psycopg2: nonzero once closed
                return "the connection is closed"
            if _readable(conn):
                return "the server sent something on an idle connection"
        return None

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
                self._recycle(kept)
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

    def _recycle(self, kept: _Kept) -> None:
        """Make the database as ``Tracker.open`` left it (see the module
        docstring); raises if it cannot be."""
        db = kept.db
        snapshot = kept.snapshot
        state = vars(db)
        # Drop what the request added (ClientGuard's wrappers, our close,
        # journal_uid) before anything is called on it.
        for name in list(state):
            if name not in snapshot:
                del state[name]
        type(db).rollback(db)
        for name in ("Session", "Otk"):
            store = getattr(db, name, None)
            if store is None:
                continue
            conn = getattr(store, "conn", None)
            if conn is not None and hasattr(conn, "rollback"):
                conn.rollback()
                store.cursor.close()
                store.cursor = conn.cursor()
            else:  # dbm or redis sessions: close, as db.close() does
                store.close()
                setattr(db, name, None)
        cursor = getattr(db, "cursor", None)
        if cursor is not None:
            cursor.close()
            db.cursor = db.conn.cursor()
        if getattr(db.conn, "in_transaction", False):
            raise RuntimeError("still in a transaction after rollback")
        module = type(db.indexer).__module__
        if module not in _SAFE_INDEXERS:
            raise RuntimeError(f"indexer {module} may keep uncommitted text")
        for name in _RESET:
            if name in snapshot:
                state[name] = snapshot[name]
        db.journaltag = None  # Client.opendb sets the user and tx_Source
        for name, value in snapshot.items():
            if name not in _BACKEND_STATE and state.get(name) is not value:
                state[name] = value
        for cl, class_snapshot in kept.class_snapshots:
            class_state = vars(cl)
            for name in [n for n in class_state if n not in class_snapshot]:
                del class_state[name]
            for name, value in class_snapshot.items():
                if class_state.get(name) is not value:
                    class_state[name] = value

    def _discard(self, kept: _Kept) -> None:
        self.stats["discarded"] += 1
        db, kept.db = kept.db, None
        snapshot, kept.snapshot = kept.snapshot, {}
        kept.nodes = kept.started = None
        if db is None:
            return
        vars(db).pop("close", None)
        try:
            type(db).rollback(db)
        except Exception:
            logger.debug("reuse_db: rollback before close failed", exc_info=True)
        try:
            close_database(db, (snapshot.get("cursor"),))
        except Exception:
            logger.debug("reuse_db: close failed", exc_info=True)

    def _close_kept(self, kept: _Kept) -> None:
        """Close ``kept`` if it is in the pool (taken out under the lock)."""
        with self._lock:
            if self._idle.pop(kept, False) is not None:
                return  # taken by the reaper or another thread already
        self._close(kept)

    def _close(self, kept: _Kept) -> bool:
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
