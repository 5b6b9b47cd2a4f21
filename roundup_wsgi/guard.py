"""Errors Roundup's ``Client`` answers itself, brought back to the dispatcher.

Roundup's ``Client.inner_main`` ends in last-resort handlers: for an
exception escaping an auditor or reactor as ``DetectorError`` it writes the
traceback HTML *into the page* (status 200, even without ``[web] debug``);
for any other exception it answers 500 "An error has occurred".  In both
cases it mails the traceback to the tracker admin
(``Client.send_error_to_admin``) and writes nothing to the server's log.
A database that cannot be used (locked, read-only, PostgreSQL stopped) goes
the same way, or becomes a 400 in the REST API.

:class:`ClientGuard` watches one ``Client`` without changing what Roundup
does: it wraps the instance's ``send_error_to_admin`` (called only inside
those handlers, so ``sys.exc_info()`` is the caught exception) and its
``opendb``, and, once the database is open, the database's ``sql``,
``sql_commit`` and ``commit``.  After ``Client.main`` returns,
:meth:`ClientGuard.check` raises

* :class:`~roundup_wsgi.unavailable.DatabaseUnavailableError` if the
  database failed (:func:`~roundup_wsgi.unavailable.database_unavailable_cause`)
  and Roundup answered an error status: the dispatcher answers 503 with
  ``Retry-After``;
* :class:`RoundupCaughtError` if a last-resort handler ran: the dispatcher
  logs it (logger ``roundup_wsgi``, with the traceback) and answers its
  own 500 page, with the traceback only in debug mode.

The admin mail is still sent for bugs; for a database outage it is not (one
mail per request would flood the admin): the outage is logged instead.

It also makes ``db.close()`` roll back first: after an exception, Roundup
2.4-2.6 leave a sqlite transaction's write lock held until the garbage
collector runs (see :meth:`ClientGuard._rollback_then`), so under gunicorn
the next write waited ``sqlite_timeout`` (30 s) and failed.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .unavailable import DatabaseUnavailableError, database_unavailable_cause

__all__ = ["ClientGuard", "RoundupCaughtError"]


class RoundupCaughtError(Exception):
    """An exception Roundup's last-resort handler caught (it is the
    ``__cause__``); the dispatcher answers 500 for it."""


class ClientGuard:
    """Watch one Roundup ``Client`` for the errors it would answer itself.

    :param client: a ``roundup.cgi.client.Client`` (or the tracker's
        subclass), before ``main()`` is called.  Its ``opendb`` and
        ``send_error_to_admin`` are replaced on the instance by wrappers that
        call the originals.
    """

    def __init__(self, client: Any) -> None:
        #: The first database-unavailable error, and its one-line cause.
        self.database_error: BaseException | None = None
        self.database_cause: str | None = None
        #: The first exception a last-resort handler of Roundup's caught.
        self.caught: BaseException | None = None
        self._watched_db: int | None = None
        opendb = client.opendb
        send_error_to_admin = client.send_error_to_admin

        def guarded_opendb(*args: Any, **kwargs: Any) -> Any:
            result = self._call(opendb, args, kwargs)
            db = getattr(client, "db", None)
            if db is not None and id(db) != self._watched_db:
                self._watch_db(db)
            return result

        def guarded_send_error_to_admin(*args: Any, **kwargs: Any) -> Any:
            error = sys.exc_info()[1]
            if error is not None:
                self.note(error)
                if database_unavailable_cause(error, os_errors=True) is not None:
                    return None  # an outage, logged by the dispatcher
                if self.caught is None:
                    self.caught = error
            return send_error_to_admin(*args, **kwargs)

        client.opendb = guarded_opendb
        client.send_error_to_admin = guarded_send_error_to_admin

    def _call(
        self, method: Callable[..., Any], args: Any, kwargs: dict[str, Any]
    ) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as error:
            self.note(error)
            raise

    def _watch_db(self, db: Any) -> None:
        self._watched_db = id(db)
        for name in ("sql", "sql_commit", "commit"):
            method = getattr(db, name, None)
            if callable(method):
                setattr(db, name, self._wrap(method))
        close, rollback = getattr(db, "close", None), getattr(db, "rollback", None)
        if callable(close) and callable(rollback):
            db.close = self._rollback_then(rollback, close)

    def _rollback_then(
        self, rollback: Callable[[], Any], close: Callable[[], Any]
    ) -> Callable[[], Any]:
        """``db.close`` that rolls back first.

        After an exception Roundup's handlers keep the traceback in a local
        (a reference cycle), which keeps a cursor of the failed transaction
        alive; sqlite's close then leaves a "zombie" connection holding the
        write lock until the garbage collector runs, and every other
        process waits ``[rdbms] sqlite_timeout`` for it.  Rolling back
        first (Roundup's ``Database.rollback``: SQL, indexer and the
        uploaded files of the transaction) releases the lock at once; after
        a commit it does nothing.
        """

        def close_after_rollback() -> Any:
            try:
                rollback()
            except Exception as error:  # the connection may be broken
                self.note(error)
            return close()

        return close_after_rollback

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def watched(*args: Any, **kwargs: Any) -> Any:
            return self._call(method, args, kwargs)

        return watched

    def note(self, error: BaseException) -> None:
        """Record ``error`` if it is the first database-unavailable one."""
        if self.database_error is None:
            cause = database_unavailable_cause(error, os_errors=True)
            if cause is not None:
                self.database_error, self.database_cause = error, cause

    def check(self, status: str | None) -> None:
        """Raise for what Roundup answered itself (see the module docstring).

        :param status: the status line Roundup set (``None``: none).
        :raises DatabaseUnavailableError: the database failed and ``status``
            is missing or >= 400; a success status stays (Roundup recovered).
        :raises RoundupCaughtError: a last-resort handler caught an exception.
        """
        failed = status is None or int(status[:3]) >= 400
        if self.database_error is not None and self.database_cause and failed:
            raise DatabaseUnavailableError(self.database_cause) from (
                self.database_error
            )
        if self.caught is not None:
            raise RoundupCaughtError(
                f"Roundup's Client caught {type(self.caught).__name__}: {self.caught}"
            ) from self.caught
