"""``db.close`` that rolls back first, or that keeps the database open.

Replaces ``close`` on one database instance (``rdbms_common.Database``),
two ways:

* :func:`rollback_first` (every request, from :mod:`.database_errors`):
  Roundup 2.4 to the 2.7 snapshot keep the traceback of an exception their
  handlers caught in a local (a reference cycle), which keeps a cursor of
  the failed transaction alive; sqlite's close then leaves a connection
  holding the write lock until the garbage collector runs, and every other
  process waits ``[rdbms] sqlite_timeout`` (30 s) and fails.  Rolling back
  first (Roundup's ``Database.rollback``: SQL, indexer and the files the
  transaction stored) releases the lock at once; after a commit it does
  nothing.
* :func:`intercept` (a database :mod:`roundup_wsgi.dbpool` keeps):
  ``Client.main`` closes the database in its ``finally``; the pool calls
  back instead and recycles it for the thread's next request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .roundup_types import DatabaseLike, ErrorWatcher
from .targets import Target

__all__ = ["TARGETS", "intercept", "remove", "rollback_first"]

TARGETS = (
    Target("roundup.backends.rdbms_common:Database.close", "(self)"),
    Target("roundup.backends.rdbms_common:Database.rollback", "(self)"),
)


def rollback_first(db: DatabaseLike, watcher: ErrorWatcher) -> None:
    """Make ``db.close()`` call ``db.rollback()`` first; an error of the
    rollback (a broken connection) goes to ``watcher.note`` and the close
    goes on."""
    close, rollback = db.close, db.rollback

    def close_after_rollback() -> Any:
        try:
            rollback()
        except Exception as error:  # the connection may be broken
            watcher.note(error)
        return close()

    db.close = close_after_rollback  # type: ignore[method-assign]


def intercept(db: DatabaseLike, callback: Callable[[], None]) -> None:
    """Make ``db.close()`` call ``callback()`` instead of closing."""
    db.close = callback  # type: ignore[method-assign]


def remove(db: object) -> None:
    """Give ``db`` its class's ``close`` back."""
    vars(db).pop("close", None)
