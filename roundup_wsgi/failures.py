"""What goes wrong inside Roundup's ``Client``, brought back to the dispatcher.

Two kinds of failure, both answered by the dispatcher instead of Roundup:

**A database that cannot be used right now** (503 with ``Retry-After``).
Roundup's ``Client`` handles every exception itself: in the web UI its
last-resort handler (``Client.inner_main``) answers ``500`` with "An error
has occurred" (a cgitb traceback page with ``[web] debug``) and mails the
traceback to the admin; the REST API (``roundup.rest._data_decorator``)
answers ``400`` and prints the traceback to stderr; an error opening the
database in the REST or XML-RPC path escapes ``Client.main``.  So a locked
sqlite database (``sqlite3.OperationalError: database is locked`` after
``[rdbms] sqlite_timeout``), a read-only database directory or a stopped
PostgreSQL (``psycopg2.OperationalError``, wrapped by Roundup in
``hyperdb.DatabaseError`` on connect) would reach the client as a 500 or,
worse, a 400 that says "do not retry".

:class:`ClientGuard` records the first such error
raised by the tracker's database during a request.  When Roundup then
answers with an error status, the dispatcher replaces the answer with
``503 Service Unavailable`` and a ``Retry-After`` (RFC 9110, section
15.6.4: "the server is currently unable to handle the request due to a
temporary overload or scheduled maintenance") and logs the cause.  Roundup
rolls back the transaction that failed (the error came before or during
the SQL commit), so the client may send the request again.

**Errors Roundup's Client answers itself** (:class:`ClientGuard`).
Roundup's ``Client.inner_main`` ends in last-resort handlers: for an
exception escaping an auditor or reactor as ``DetectorError`` it writes the
traceback HTML *into the page* (status 200, even without ``[web] debug``);
for any other exception it answers 500 "An error has occurred".  In both
cases it mails the traceback to the tracker admin
(``Client.send_error_to_admin``) and writes nothing to the server's log.
A database that cannot be used (locked, read-only, PostgreSQL stopped) goes
the same way, or becomes a 400 in the REST API.

:class:`ClientGuard` watches one ``Client`` without changing what Roundup
does, through the wrappers of :mod:`roundup_wsgi.patches.client_errors`
(``opendb``, ``send_error_to_admin``) and
:mod:`roundup_wsgi.patches.database_errors` (the database's ``sql``,
``sql_commit``, ``commit``, ``storefile``; ``close`` rolls back first:
:mod:`roundup_wsgi.patches.db_close`; ``storefile`` makes its directory
first: :mod:`roundup_wsgi.patches.storefile`).  After ``Client.main``
returns, :meth:`ClientGuard.check` raises

* :class:`DatabaseUnavailableError` if the
  database failed (:func:`database_unavailable_cause`)
  and Roundup answered an error status: the dispatcher answers 503 with
  ``Retry-After``;
* :class:`RoundupCaughtError` if a last-resort handler ran: the dispatcher
  logs it (logger ``roundup_wsgi``, with the traceback) and answers its
  own 500 page, with the traceback only in debug mode.

The pages name no cause (it may hold paths, a database host, SQL); the
cause goes to the log, escaped on one line, and is shown only in debug
mode (the dispatcher's ``debug`` or the tracker's ``[web] debug``).

The admin mail is still sent for bugs; for a database outage it is not (one
mail per request would flood the admin): the outage is logged instead.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Mapping
from typing import Any

from webob import exc

from .patches import client_errors
from .wsgi import errorpages
from .wsgi.accesslog import escape

__all__ = [
    "RETRY_AFTER",
    "ClientGuard",
    "DatabaseUnavailableError",
    "RoundupCaughtError",
    "database_unavailable_cause",
    "service_unavailable",
]

#: Seconds a client is asked to wait before retrying (``Retry-After``).
RETRY_AFTER = 5

#: sqlite3.OperationalError messages that mean "not now", not "bad query".
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "unable to open database file",
    "attempt to write a readonly database",
    "disk i/o error",
    "database or disk is full",
)

#: psycopg2 exception classes (by name, so psycopg2 need not be installed)
#: raised when the server is unreachable, stopped or the connection broke.
_PSYCOPG2_UNAVAILABLE = ("OperationalError", "InterfaceError")

#: OSError numbers that mean the database directory cannot be written now.
_OS_UNAVAILABLE = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM}


class DatabaseUnavailableError(Exception):
    """The tracker's database could not be used for this request.

    :param cause: a one-line description (e.g. ``"sqlite: database is
        locked"``); the original exception is the ``__cause__``.
    """

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def _first_line(error: BaseException) -> str:
    """The first line of ``error``'s text, escaped for a log line (control
    characters and non-ASCII as ``\\xhh``, as the access log does)."""
    text = str(error).strip()
    return escape(text.splitlines()[0]) if text else type(error).__name__


def _classify(error: BaseException, os_errors: bool) -> str | None:
    if isinstance(error, DatabaseUnavailableError):
        return error.cause
    if isinstance(error, sqlite3.OperationalError):
        message = str(error).lower()
        if any(marker in message for marker in _SQLITE_UNAVAILABLE):
            return f"sqlite: {_first_line(error)}"
        return None
    module = type(error).__module__ or ""
    if module.split(".")[0] == "psycopg2" and any(
        cls.__name__ in _PSYCOPG2_UNAVAILABLE for cls in type(error).__mro__
    ):
        return f"PostgreSQL: {_first_line(error)}"
    if os_errors and isinstance(error, OSError) and error.errno in _OS_UNAVAILABLE:
        where = f" ({escape(str(error.filename))})" if error.filename else ""
        what = escape(error.strerror) if error.strerror else _first_line(error)
        return f"database storage: {what}{where}"
    return None


def database_unavailable_cause(
    error: BaseException | None, *, os_errors: bool = False
) -> str | None:
    """Return why ``error`` means the database is unavailable, or ``None``.

    Looks at ``error``, the exception it wraps (Roundup's
    ``hyperdb.DatabaseError(driver_error)``) and its ``__cause__`` /
    ``__context__`` chain.  Recognised: ``sqlite3.OperationalError`` for a
    locked, read-only, unopenable or full database; psycopg2's
    ``OperationalError`` / ``InterfaceError`` (server down, connection
    lost); with ``os_errors`` (for errors the database itself raised, see
    :class:`~roundup_wsgi.failures.ClientGuard`) also ``OSError`` EROFS,
    ENOSPC, EDQUOT, EACCES, EPERM (the database directory cannot be
    written).

    :returns: e.g. ``"sqlite: database is locked"`` or ``"PostgreSQL:
        connection to server ... failed: Connection refused"``: one line,
        escaped for the log (it may hold paths, hostnames and SQL, so it is
        for the log and debug pages only, never an ordinary page).
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        cause = _classify(error, os_errors)
        if cause is not None:
            return cause
        wrapped = [arg for arg in error.args if isinstance(arg, BaseException)]
        error = wrapped[0] if wrapped else (error.__cause__ or error.__context__)
    return None


def service_unavailable(
    environ: Mapping[str, Any], cause: str, detail: str | None = None
) -> errorpages.Page:
    """503 page with ``Retry-After: RETRY_AFTER``.

    The page names no cause: it may hold the tracker's paths, a database
    host or SQL (the dispatcher logs it).

    :param cause: the one-line cause, shown (escaped) only with ``detail``.
    :param detail: a traceback, shown (escaped) only when given (debug mode).
    """
    explanation = (
        "The tracker's database is unavailable. The request was not carried "
        f"out; please try again in {RETRY_AFTER} seconds."
    )
    headers = [("Retry-After", str(RETRY_AFTER))]
    if detail is None:
        error = exc.HTTPServiceUnavailable(detail=explanation, headers=headers)
    else:
        error = exc.HTTPServiceUnavailable(
            detail=f"{explanation}\n\n{cause}\n\n{detail}",
            headers=headers,
            body_template=errorpages._DEBUG_TEMPLATE,
        )
    return errorpages.render(error, environ)


class RoundupCaughtError(Exception):
    """An exception Roundup's last-resort handler caught (it is the
    ``__cause__``); the dispatcher answers 500 for it."""


class ClientGuard:
    """Watch one Roundup ``Client`` for the errors it would answer itself.

    :param client: a ``roundup.cgi.client.Client`` (or the tracker's
        subclass), before ``main()`` is called.  Its ``opendb`` and
        ``send_error_to_admin``, and its database's methods, are wrapped
        (:mod:`roundup_wsgi.patches.client_errors`); the wrappers report
        here (:meth:`note`, :meth:`admin_mail`).
    """

    def __init__(self, client: Any) -> None:
        #: The first database-unavailable error, and its one-line cause.
        self.database_error: BaseException | None = None
        self.database_cause: str | None = None
        #: The first exception a last-resort handler of Roundup's caught.
        self.caught: BaseException | None = None
        client_errors.install(client, self)
        self._client: Any = client

    def release(self) -> None:
        """Give the client its own ``opendb`` and ``send_error_to_admin``
        back (the wrappers refer to the client: a reference cycle); what
        was noted stays."""
        client, self._client = self._client, None
        if client is not None:
            client_errors.remove(client)

    def admin_mail(self, error: BaseException) -> bool:
        """Roundup's last-resort handler caught ``error``: note it; ``False``
        (no admin mail) for a database outage, logged by the dispatcher."""
        self.note(error)
        if database_unavailable_cause(error, os_errors=True) is not None:
            return False
        if self.caught is None:
            self.caught = error
        return True

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
