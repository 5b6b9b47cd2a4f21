"""A database whose errors are reported to the request's guard.

Wraps, on one database instance (each request's, once
``Client.opendb`` opened or switched it), ``sql``, ``sql_commit`` and
``commit`` (``rdbms_common.Database``), ``storefile``
(``blobfiles.FileStorage``, also made to create its directory:
:mod:`.storefile`) and ``close`` (rolling back first: :mod:`.db_close`).
Roundup 2.4 to the 2.7 snapshot answer a database error themselves: the
web UI's last-resort handler with 500 and an admin mail, the REST API with
400 ("do not retry"); the wrappers tell
``ClientGuard`` (:mod:`roundup_wsgi.failures`) first, so that the dispatcher
can answer 503 with ``Retry-After``.  The wrappers call the originals with
the same arguments and re-raise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import db_close, storefile
from .roundup_types import DatabaseLike, ErrorWatcher
from .targets import Target

__all__ = ["TARGETS", "WATCHED", "install", "remove"]

TARGETS = (
    Target(
        "roundup.backends.rdbms_common:Database.sql",
        "(self, sql, args=None, cursor=None)",
    ),
    Target("roundup.backends.rdbms_common:Database.sql_commit", "(self)"),
    Target("roundup.backends.rdbms_common:Database.commit", "(self)"),
    *storefile.TARGETS,
    *db_close.TARGETS,
)

#: The methods wrapped only to report their errors.
WATCHED = ("sql", "sql_commit", "commit")


def _noting(method: Callable[..., Any], watcher: ErrorWatcher) -> Callable[..., Any]:
    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as error:
            watcher.note(error)
            raise

    return watched


def install(db: DatabaseLike, watcher: ErrorWatcher) -> None:
    """Wrap ``db``'s methods (see the module docstring); those it lacks
    are skipped."""
    for name in WATCHED:
        method = getattr(db, name, None)
        if callable(method):
            setattr(db, name, _noting(method, watcher))
    if callable(getattr(db, "close", None)) and callable(getattr(db, "rollback", None)):
        db_close.rollback_first(db, watcher)
    store, filename = getattr(db, "storefile", None), getattr(db, "filename", None)
    if callable(store) and callable(filename):
        # Watched too: the REST API answers an OSError here with 400.
        wrapped = storefile.making_its_directory(store, filename)
        db.storefile = _noting(wrapped, watcher)  # type: ignore[attr-defined]


def remove(db: object) -> None:
    """Give ``db`` its class's methods back."""
    state = vars(db)
    for name in (*WATCHED, "close", "storefile"):
        state.pop(name, None)
