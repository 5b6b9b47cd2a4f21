"""A ``Client`` whose caught errors are reported to the request's guard.

Wraps, on one ``roundup.cgi.client.Client`` instance (each request's),
``opendb`` (its errors noted; the database it opens gets
:mod:`.database_errors`) and ``send_error_to_admin`` (called only inside
Roundup's last-resort handlers, so ``sys.exc_info()`` is the exception
they caught).  Roundup 2.4 to the 2.7 snapshot's ``Client.inner_main``
answer any exception themselves: 500 "An error has occurred" (or a
``DetectorError`` traceback in a 200 page) and a mail to the admin,
nothing in the server's log; the wrappers let
``ClientGuard`` (:mod:`roundup_wsgi.failures`) answer and log it instead,
and skip the mail for a database outage (one per request would flood the
admin).
"""

from __future__ import annotations

import sys
from typing import Any

from . import database_errors
from .roundup_types import ClientLike, ErrorWatcher
from .targets import Target

__all__ = ["TARGETS", "install", "remove"]

TARGETS = (
    Target("roundup.cgi.client:Client.opendb", "(self, username)"),
    Target(
        "roundup.cgi.client:Client.send_error_to_admin", "(self, subject, html, txt)"
    ),
)

#: The instance attributes :func:`install` sets.
REPLACED = ("opendb", "send_error_to_admin")


def install(client: ClientLike, watcher: ErrorWatcher) -> None:
    """Wrap ``client``'s ``opendb`` and ``send_error_to_admin`` (before
    ``main()``).  The wrappers refer to ``client``: :func:`remove` breaks
    the cycle after the request."""
    opendb = client.opendb
    send_error_to_admin = client.send_error_to_admin
    watched: list[int | None] = [None]

    def guarded_opendb(*args: Any, **kwargs: Any) -> Any:
        try:
            result = opendb(*args, **kwargs)
        except Exception as error:
            watcher.note(error)
            raise
        db = getattr(client, "db", None)
        if db is not None and id(db) != watched[0]:
            watched[0] = id(db)
            database_errors.install(db, watcher)
        return result

    def guarded_send_error_to_admin(*args: Any, **kwargs: Any) -> Any:
        error = sys.exc_info()[1]
        if error is not None and not watcher.admin_mail(error):
            return None
        return send_error_to_admin(*args, **kwargs)

    client.opendb = guarded_opendb  # type: ignore[method-assign]
    client.send_error_to_admin = guarded_send_error_to_admin  # type: ignore[method-assign]


def remove(client: object) -> None:
    """Give ``client`` its class's methods back."""
    state = vars(client)
    for name in REPLACED:
        state.pop(name, None)
