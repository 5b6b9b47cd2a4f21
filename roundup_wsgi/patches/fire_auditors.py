"""Hyperdb classes that count the writes they begin.

Wraps ``fireAuditors`` on each class instance of one database
(``db.classes`` values; ``rdbms_common.Class`` inherits
``hyperdb.Class.fireAuditors``) that :mod:`roundup_wsgi.dbpool` keeps.
Roundup 2.4 to the 2.7 snapshot's ``create``, ``set``, ``retire`` and
``restore`` fire the auditors before anything else, and ``set_inner``
edits a cached node's Multilink list in place before its ``UPDATE``: an
error in between leaves no SQL trace, so :mod:`roundup_wsgi.nodecache`
counts the auditor calls to know that a request began a write (its node
cache is then not kept).
"""

from __future__ import annotations

from typing import Any

from .roundup_types import DatabaseLike
from .targets import Target

__all__ = ["TARGETS", "install", "remove"]

TARGETS = (
    Target("roundup.hyperdb:Class.fireAuditors", "(self, event, nodeid, newvalues)"),
)


def install(db: DatabaseLike, writes: list[int]) -> None:
    """Count in ``writes[0]`` every ``fireAuditors`` call of ``db``'s
    classes (the count goes on across requests: the caller resets it)."""
    for cl in db.classes.values():
        fire = cl.fireAuditors

        def watched(
            *args: Any, _fire: Any = fire, _writes: list[int] = writes, **kwargs: Any
        ) -> Any:
            _writes[0] += 1
            return _fire(*args, **kwargs)

        cl.fireAuditors = watched


def remove(db: DatabaseLike) -> None:
    """Give ``db``'s classes their own ``fireAuditors`` back (tests)."""
    for cl in db.classes.values():
        vars(cl).pop("fireAuditors", None)
