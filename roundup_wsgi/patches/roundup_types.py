"""The shapes of the Roundup objects the patches touch (:pep:`544`).

Structural types only: Roundup's classes are not imported for them, and a
tracker's subclasses fit.  Each names the attributes a patch reads or
replaces; the rest of the object is not described.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Auditable",
    "ClientLike",
    "DatabaseLike",
    "ErrorWatcher",
    "SecurityLike",
    "TrackerLike",
]


@runtime_checkable
class DatabaseLike(Protocol):
    """An open ``roundup.backends.rdbms_common.Database`` (or a subclass):
    the attributes the database patches read or replace."""

    conn: Any
    cursor: Any
    config: Any
    classes: dict[str, Any]

    def close(self) -> None: ...

    def rollback(self) -> None: ...


@runtime_checkable
class Auditable(Protocol):
    """A hyperdb class of a database (``db.classes`` values)."""

    def fireAuditors(  # noqa: N802 (Roundup's name)
        self, event: str, nodeid: str | None, newvalues: Any
    ) -> Any: ...


@runtime_checkable
class SecurityLike(Protocol):
    """``roundup.security.Security``: a database's ``security``."""

    db: Any
    role: dict[str, Any]

    def hasPermission(  # noqa: N802 (Roundup's name)
        self, permission: str, userid: str, *args: Any
    ) -> Any: ...


@runtime_checkable
class ClientLike(Protocol):
    """A ``roundup.cgi.client.Client`` (or the tracker's subclass) before
    ``main()``."""

    def opendb(self, username: str) -> None: ...

    def send_error_to_admin(self, subject: str, html: str, txt: str) -> Any: ...

    def serve_static_file(self, file: str) -> Any: ...


@runtime_checkable
class TrackerLike(Protocol):
    """A ``roundup.instance.Tracker`` whose ``load_interfaces`` has run."""

    tracker_home: str
    Client: type


class ErrorWatcher(Protocol):
    """What the error-watching patches report to: ``ClientGuard`` of
    :mod:`roundup_wsgi.failures`."""

    def note(self, error: BaseException) -> None:
        """An exception a watched method raised (re-raised after)."""

    def admin_mail(self, error: BaseException) -> bool:
        """Roundup's last-resort handler caught ``error``: ``True`` to send
        Roundup's admin mail, ``False`` to skip it."""


#: A callable with no arguments (``db.close``, ``db.rollback``).
Thunk = Callable[[], Any]
