"""sqlite connections another thread may close.

Replaces, on one sqlite database instance (``back_sqlite.Database``)
:mod:`roundup_wsgi.dbpool` keeps, ``conn`` and ``cursor`` (opened again
with ``check_same_thread=False``) and wraps ``sql_open_connection`` so
that the sessions and one-time keys stores Roundup opens later get such
connections too.  Roundup 2.4 to the 2.7 snapshot open sqlite connections
bound to their thread; the pool closes a database its idle thread no
longer uses from the reaper thread or another request's thread (never
while in use), which sqlite refuses for a bound connection.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from .roundup_types import DatabaseLike
from .targets import Target

__all__ = ["TARGETS", "install", "reopen_shared"]

TARGETS = (
    Target(
        "roundup.backends.back_sqlite:Database.sql_open_connection",
        "(self, dbname=None)",
    ),
)


def reopen_shared(conn: Any, cursor: Any, timeout: float) -> Any:
    """A connection to ``conn``'s database file opened with
    ``check_same_thread=False`` and ``conn``'s row and text factories and
    isolation level, and its cursor; ``conn`` and ``cursor`` are closed.

    :param timeout: seconds to wait for a lock (``[rdbms] sqlite_timeout``).
    :returns: ``(connection, cursor)``.
    """
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


def install(db: DatabaseLike) -> bool:
    """Give a new sqlite database connections that another thread may
    close (see the module docstring).

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
    opener = db.sql_open_connection  # type: ignore[attr-defined]

    def sql_open_connection(dbname: str | None = None) -> Any:
        opened, cursor = opener() if dbname is None else opener(dbname=dbname)
        return reopen_shared(opened, cursor, timeout)

    db.conn, db.cursor = reopen_shared(conn, getattr(db, "cursor", None), timeout)
    db.sql_open_connection = sql_open_connection  # type: ignore[attr-defined]
    return True
