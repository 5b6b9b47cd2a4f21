"""PostgreSQL's ``getnode`` without a savepoint for a cached node.

Replaces ``getnode`` on one PostgreSQL database instance
(``back_postgresql.Database``) that :mod:`roundup_wsgi.dbpool` keeps with
its node cache.  Roundup 2.5 to the 2.7 snapshot's PostgreSQL ``getnode``
sends ``savepoint sp`` for every ``allow_abort=False`` call (templating's
link labels, about nine per row of an index page) even when the node is in
the node cache and no SQL follows; the replacement calls the plain
``rdbms_common.Database.getnode`` for such a hit (same answer, one
statement less), and Roundup's method otherwise.  Roundup 2.4 has no
``allow_abort`` and no PostgreSQL ``getnode``: not installed there.
"""

from __future__ import annotations

from typing import Any

from .roundup_types import DatabaseLike
from .targets import Target, find

__all__ = ["TARGETS", "applies", "install", "remove"]

_SIGNATURE = "(self, classname, nodeid, fetch_multilinks=True, allow_abort=True)"
TARGETS = (
    Target("roundup.backends.back_postgresql:Database.getnode", _SIGNATURE),
    Target("roundup.backends.rdbms_common:Database.getnode", _SIGNATURE),
)


def applies() -> bool:
    """True if the installed Roundup has a PostgreSQL ``getnode`` of its
    own (2.5 and later)."""
    return find(TARGETS[0].path) is not None


def install(db: DatabaseLike) -> bool:
    """Let ``db.getnode(..., allow_abort=False)`` skip the savepoint for a
    node cached with the Multilinks asked for.

    :returns: ``True`` if installed (``db`` is Roundup's own PostgreSQL
        ``Database``, its ``getnode`` not overridden).
    """
    from roundup import hyperdb
    from roundup.backends import rdbms_common

    if not applies() or type(db).getnode is not find(TARGETS[0].path):  # type: ignore[attr-defined]
        return False
    plain = rdbms_common.Database.getnode
    guarded = db.getnode  # type: ignore[attr-defined]
    multilinks = {
        name: tuple(
            prop
            for prop, spec in cl.properties.items()
            if isinstance(spec, hyperdb.Multilink)
        )
        for name, cl in db.classes.items()
    }

    def getnode(
        classname: str,
        nodeid: str,
        fetch_multilinks: bool = True,
        allow_abort: bool = True,
    ) -> Any:
        if not allow_abort:
            node = db.cache.get((classname, nodeid))  # type: ignore[attr-defined]
            if node is not None and (
                not fetch_multilinks
                or all(prop in node for prop in multilinks.get(classname, ()))
            ):
                return plain(db, classname, nodeid, fetch_multilinks)
        return guarded(classname, nodeid, fetch_multilinks, allow_abort)

    db.getnode = getnode  # type: ignore[attr-defined]
    return True


def remove(db: object) -> None:
    """Give ``db`` its class's ``getnode`` back (tests)."""
    vars(db).pop("getnode", None)
