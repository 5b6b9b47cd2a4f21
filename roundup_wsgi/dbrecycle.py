"""A database kept between requests: opened, recycled, found stale, closed.

:mod:`roundup_wsgi.dbpool` keeps one per worker thread; this module holds
what one is (:class:`Kept`) and what is done to it:

* :func:`open_kept` opens it with ``Tracker.open`` and installs the
  patches a kept database gets, in this order
  (:data:`roundup_wsgi.patches.REGISTRY`): sqlite connections another
  thread may close, remembered permission checks, and with the node cache
  the PostgreSQL write counter, ``getnode`` without savepoints for cache
  hits, and the auditor count;
* :func:`recycle` makes it as ``Tracker.open`` left it, after a request:
  rolled back (``db.rollback()``: the SQL transaction, the files stored by
  the transaction, the row cache), and so are the sessions and one-time
  keys connections; the SQL cursors replaced (an unfinished ``SELECT``
  would keep an old sqlite snapshot); the per-request state reset:
  ``journaltag``, ``journal_uid``, ``tx_Source``, ``i18n``, every attribute
  added since (e.g. the request's wrappers,
  :mod:`roundup_wsgi.patches.database_errors`), and the attributes of its
  classes (Roundup's ``determine_user`` sets ``db.user.get_roles`` to a
  JWT's roles for the request);
* :func:`stale` says why it must be opened anew instead (see
  :mod:`roundup_wsgi.dbpool`);
* :func:`close` rolls it back and closes it.
"""

from __future__ import annotations

import logging
import os
import select
import sqlite3
import threading
import time
from typing import Any

from . import nodecache, permissions, pgversion
from .patches import db_close, fire_auditors, getnode, sqlite_sharing
from .tracker import close_database

__all__ = [
    "Kept",
    "close",
    "connections",
    "open_kept",
    "recycle",
    "reuse_refused",
    "signature",
    "stale",
    "watched_files",
]

logger = logging.getLogger("roundup_wsgi")

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


def watched_files(home: str) -> list[str]:
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


def signature(paths: list[str]) -> tuple[float, ...]:
    """The mtimes of ``paths`` (seconds; ``-1.0`` for one that is gone)."""
    stamps = []
    for path in paths:
        try:
            stamps.append(os.stat(path).st_mtime)
        except OSError:
            stamps.append(-1.0)
    return tuple(stamps)


def connections(db: Any) -> list[Any]:
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


class Kept:
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
            isinstance(conn, sqlite3.Connection) for conn in connections(db)
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


def stale(kept: Kept, idle_limit: float, paths: list[str]) -> str | None:
    """Why ``kept`` must be opened anew before this request, or ``None``.

    :param idle_limit: seconds it may have sat unused.
    :param paths: the tracker's :func:`watched_files`.
    :returns: a one-line reason for the debug log.
    """
    if kept.reopen:
        return "the write counter is incomplete: installing it again"
    if kept.pid != os.getpid():
        kept.db = None  # the parent's connection: not ours to close
        return "the process forked"
    if time.monotonic() - kept.used > idle_limit:
        return f"idle over {idle_limit:g} s"
    if signature(paths) != kept.signature:
        return "the tracker's schema, config or detectors changed"
    for conn in connections(kept.db):
        if getattr(conn, "closed", 0):  # psycopg2: nonzero once closed
            return "the connection is closed"
        if _readable(conn):
            return "the server sent something on an idle connection"
    return None


def recycle(kept: Kept) -> None:
    """Make the database as ``Tracker.open`` left it (see the module
    docstring).

    :raises Exception: it cannot be (a rollback failed, a transaction is
        still open, an indexer keeps uncommitted text): close it instead.
    """
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


def close(kept: Kept) -> None:
    """Roll back and close ``kept``'s database, and forget it (errors are
    logged at debug level: it is being thrown away)."""
    db, kept.db = kept.db, None
    snapshot, kept.snapshot = kept.snapshot, {}
    kept.nodes = kept.started = None
    if db is None:
        return
    db_close.remove(db)
    try:
        type(db).rollback(db)
    except Exception:
        logger.debug("reuse_db: rollback before close failed", exc_info=True)
    try:
        close_database(db, (snapshot.get("cursor"),))
    except Exception:
        logger.debug("reuse_db: close failed", exc_info=True)


def open_kept(tracker: Any, paths: list[str], keep_nodes: bool) -> Kept:
    """Open a database of ``tracker`` to keep, with its patches (see the
    module docstring).

    :param paths: the tracker's :func:`watched_files` (their mtimes are
        noted before it is opened).
    :param keep_nodes: keep the node cache too (the ``node_cache`` option).
    :raises Exception: what ``Tracker.open`` raises; the database is closed
        if its sqlite connection cannot be opened again.
    """
    stamps = signature(paths)
    db = tracker.open(None)
    try:
        shared = sqlite_sharing.install(db)
    except Exception:
        close_database(db)
        raise
    permissions.install(db)
    kept = Kept(db, stamps, shared)
    if keep_nodes and nodecache.supported(db):
        if not isinstance(db.conn, sqlite3.Connection):
            kept.pg_tables = pgversion.install(db)
            if kept.pg_tables is None:
                return kept
            if getnode.install(db):
                kept.snapshot["getnode"] = db.getnode
        fire_auditors.install(db, kept.writes)
        kept.watched = True
    kept.note_classes()
    return kept
