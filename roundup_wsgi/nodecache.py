"""The node cache kept between requests with a reused database.

:mod:`roundup_wsgi.dbpool` keeps a worker thread's database between
requests; this module decides whether the rows a request read are kept too.

Roundup's hyperdb keeps the rows it read in a node cache (``db.cache``,
``db.cache_lru``: ``[rdbms] cache_size`` items, 100 by default), thrown
away by every commit and rollback, so a fresh database reads every row of
a page again (an index page of 50 rows: about 120 ``SELECT`` statements).
For an sqlite tracker the cache a request filled is given to the next
request on the same thread when nothing can have changed in between:

* the request wrote nothing through this database: no row inserted,
  updated or deleted on its connection (``sqlite3.Connection.total_changes``
  unchanged: it counts statements that were rolled back too) and no
  ``Class.create``, ``set``, ``retire`` or ``restore`` began (their
  auditors did not fire, counted by :mod:`.patches.fire_auditors`: Roundup's
  ``set_inner`` edits a cached node's Multilink list in place before its
  ``UPDATE``, and an error in between
  leaves no SQL trace);
* no other connection committed to the database file since the check made
  before the request's first read (sqlite's ``PRAGMA data_version``
  changes when another connection, in this process or another, commits;
  the check costs one statement per request);
* the request did not fail (a failed database is discarded anyway).

On PostgreSQL the same rule holds with a write counter kept in the
database by triggers on the item, Multilink and journal tables (not the
sessions and one-time keys): :mod:`roundup_wsgi.pgversion` installs it when
a database is opened and reads it as the request's first statement, with a
sequence's ``currval`` for the connection's own writes (rolled back or not,
as ``total_changes``): one statement per request.  The ``node_cache``
option (``keep_nodes``) turns it off.

Only the cache the request started with is kept: what it read after a
commit or rollback of its own (Roundup replaces the cache then) is
dropped.  Dates and intervals in the kept rows get back the translator
they are read with (``DateHTMLProperty`` gives them the request's own),
so a kept row is what a fresh read returns.  MySQL databases, and
PostgreSQL ones whose counter could not be installed, start every request
with an empty cache, as before.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from roundup import date, i18n

from . import pgversion

if TYPE_CHECKING:
    from .dbrecycle import Kept as _Kept

__all__ = ["end", "reset_translators", "start", "supported"]

logger = logging.getLogger("roundup_wsgi")


def supported(db: Any) -> bool:
    """True for a database whose node cache may be kept: an sqlite
    connection (``PRAGMA data_version``) or a PostgreSQL one
    (:mod:`~roundup_wsgi.pgversion`) and Roundup's ``dict``/``list`` node
    cache."""
    return (
        (
            isinstance(getattr(db, "conn", None), sqlite3.Connection)
            or pgversion.supported(db)
        )
        and type(getattr(db, "cache", None)) is dict
        and type(getattr(db, "cache_lru", None)) is list
        and isinstance(getattr(db, "classes", None), dict)
    )


#: The value types of a row that carry a translator.
_TRANSLATED = (date.Date, date.Interval)


def reset_translators(cache: dict[Any, Any]) -> None:
    """Give every date and interval of the cached rows the translator a
    fresh read gives it (``roundup.i18n``, as sqlite's backend constructs
    them); templating's ``DateHTMLProperty`` sets the request's own."""
    for node in cache.values():
        for value in node.values():
            if isinstance(value, _TRANSLATED) and value.translator is not i18n:
                value.setTranslator(i18n)


def start(kept: _Kept, enabled: bool = True) -> bool:
    """Before a request's first read: give ``kept.db`` the node cache the
    previous request left, if nothing can have changed since (see the
    module docstring), and note the database's state to decide at the end
    (:func:`end`) whether this request's cache is kept.

    :param kept: the pool's record of the database.
    :param enabled: the pool's ``keep_nodes`` (``False``: keep nothing).
    :returns: ``True`` if the request starts with the kept cache.
    """
    nodes, kept.nodes = kept.nodes, None
    kept.started = None
    db = kept.db
    if not (enabled and kept.watched and supported(db)):
        return False
    conn = db.conn
    if kept.pg_tables is not None:
        version = _pg_version(kept)
        if version is None:
            return False
    else:
        try:
            cursor = conn.execute("PRAGMA data_version")
            try:
                version = cursor.fetchone()[0]
            finally:
                cursor.close()
        except sqlite3.Error:
            logger.debug("reuse_db: PRAGMA data_version failed", exc_info=True)
            return False
    changes = getattr(conn, "total_changes", 0)
    reused = (
        nodes is not None and version == kept.data_version and changes == kept.changes
    )
    if reused:
        assert nodes is not None
        cache, lru = nodes
        reset_translators(cache)
        db.cache, db.cache_lru = cache, lru
    kept.data_version = version
    kept.changes = changes
    kept.writes[0] = 0
    kept.started = (db.cache, db.cache_lru)
    return reused


def end(kept: _Kept) -> None:
    """After a request that did not fail, before the rollback: keep the
    node cache it started with (``kept.nodes``) if it wrote nothing."""
    started, kept.started = kept.started, None
    kept.nodes = None
    if started is None or kept.writes[0]:
        return
    db = kept.db
    if getattr(db, "transactions", None):
        return
    if kept.pg_tables is None and db.conn.total_changes != kept.changes:
        return
    kept.nodes = started


def _pg_version(kept: _Kept) -> tuple[int, int] | None:
    """PostgreSQL's write counter before the request's first read
    (:func:`pgversion.read`), or ``None`` (keep nothing: a trigger is
    missing, or the read failed and was rolled back)."""
    assert kept.pg_tables is not None
    try:
        version = pgversion.read(kept.db, kept.pg_tables)
        kept.reopen = version is None
        return version
    except Exception:
        kept.reopen = True
        logger.debug("reuse_db: reading the write counter failed", exc_info=True)
        try:
            kept.db.conn.rollback()
        except Exception:
            logger.debug("reuse_db: rollback failed", exc_info=True)
        return None
