"""A tracker database that cannot be used right now: 503 with ``Retry-After``.

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

:class:`roundup_wsgi.guard.ClientGuard` records the first such error
raised by the tracker's database during a request.  When Roundup then
answers with an error status, the dispatcher replaces the answer with
``503 Service Unavailable`` and a ``Retry-After`` (RFC 9110, section
15.6.4: "the server is currently unable to handle the request due to a
temporary overload or scheduled maintenance") and logs the cause.  Roundup
rolls back the transaction that failed (the error came before or during
the SQL commit), so the client may send the request again.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Mapping
from typing import Any

from webob import exc

from . import pages

__all__ = [
    "RETRY_AFTER",
    "DatabaseUnavailableError",
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
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
        where = f" ({error.filename})" if error.filename else ""
        return f"database storage: {error.strerror or _first_line(error)}{where}"
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
    :class:`~roundup_wsgi.guard.ClientGuard`) also ``OSError`` EROFS,
    ENOSPC, EDQUOT, EACCES, EPERM (the database directory cannot be
    written).

    :returns: e.g. ``"sqlite: database is locked"`` or ``"PostgreSQL:
        connection to server ... failed: Connection refused"``.
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
) -> pages.Page:
    """503 page with ``Retry-After: RETRY_AFTER``.

    :param cause: the one-line cause, shown (escaped).
    :param detail: a traceback, shown only when given (debug mode).
    """
    explanation = (
        f"The tracker's database is unavailable ({cause}). The request was "
        f"not carried out; please try again in {RETRY_AFTER} seconds."
    )
    headers = [("Retry-After", str(RETRY_AFTER))]
    if detail is None:
        error = exc.HTTPServiceUnavailable(detail=explanation, headers=headers)
    else:
        error = exc.HTTPServiceUnavailable(
            detail=f"{explanation}\n\n{detail}",
            headers=headers,
            body_template=pages._DEBUG_TEMPLATE,
        )
    return pages.render(error, environ)
