"""A write counter for PostgreSQL trackers: the node cache's check there.

:mod:`roundup_wsgi.nodecache` gives a request's node cache (the hyperdb rows it
read) to the thread's next request only when nothing can have changed in
between.  sqlite says so with ``PRAGMA data_version``; PostgreSQL has no
such number that leaves out the sessions and one-time keys (every anonymous
page INSERTs a CSRF nonce into ``otks`` and commits), so this module keeps
one in the tracker's database:

* a table ``roundup_wsgi_writes (slot, n)`` of :data:`SLOTS` rows;
* a statement-level trigger ``roundup_wsgi_writes`` (``BEFORE INSERT OR
  UPDATE OR DELETE OR TRUNCATE ... FOR EACH STATEMENT``, ``ENABLE ALWAYS``:
  it fires for ``session_replication_role = replica`` too) on every table
  of Roundup's classes: ``_<class>``, ``<class>__journal`` and each
  Multilink's ``<class>_<property>`` (not ``otks``, ``sessions``);
* its function (``SECURITY DEFINER``: any role that may write the tables
  is counted, without rights on the counter) adds 1 to the row
  ``pg_backend_pid() % SLOTS`` once per transaction (a transaction-local
  setting remembers it did), and advances
  the sequence ``roundup_wsgi_own_writes``, whose ``currval`` on a
  connection changes when that connection wrote, committed or not
  (sequences ignore rollbacks).

So every transaction that writes a row of an item, a link or a journal
entry, through Roundup, ``roundup-admin``, raw SQL or a ``TRUNCATE``, on any
host, adds at least 1 to ``sum(n)`` *in its own commit*; an uncommitted or
rolled-back write adds nothing anyone else sees.

Why reading ``sum(n)`` first is sound (READ COMMITTED, Roundup's default,
takes a snapshot per statement; REPEATABLE READ one per transaction): let
``V(s)`` be ``sum(n)`` in snapshot ``s``.  Request k reads ``V(S_k)``
first, then every row at a snapshot no older than ``S_k``; request k+1
reads ``V(S_k+1)`` first.  A transaction seen committed by one snapshot is
seen so by every later one, and each writer raises ``V`` when it becomes
visible; so ``V(S_k+1) == V(S_k)`` means no write to those tables became
visible between ``S_k`` and ``S_k+1``: every row request k read (and kept)
is what a read at ``S_k+1`` returns, i.e. request k+1 sees what stock
Roundup sees had it read those rows first.  What request k wrote itself,
even rolled back, changes ``currval`` read in the same statement; writes
that fired no trigger on its own connection (a half-failed ``set``) are
caught by the pool's auditor count.  One statement per request.

The counter rows are updated, so a writer holds its slot's row lock until
it commits: writers whose backends share ``pid % SLOTS`` wait for each
other; the trigger takes it *before* the statement's first row, so it adds
no lock-order deadlock with Roundup's own row locks.  The start-of-request
read also checks that every table still has its trigger (a table made
later, by another host's schema change, or a trigger dropped or disabled):
if one is missing, the request starts with an empty cache.
:func:`install` makes the table, the function and the missing triggers
(under an advisory lock; ``CREATE TRIGGER`` lets readers go on, and a
writer's table lock makes it give up after ``lock_timeout`` 200 ms rather
than wait or deadlock: retried at the next open); without the rights to,
the cache is off (logged once) and pages are read as before.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = [
    "SLOTS",
    "TABLE",
    "install",
    "read",
    "supported",
    "tables",
]

logger = logging.getLogger("roundup_wsgi")
#: :func:`install` failed once in this process (warned; later ones debug).
_warned = False

#: The counter table, its trigger's name, and the trigger function.
TABLE = "roundup_wsgi_writes"
#: A sequence the trigger also advances: ``currval`` of a connection
#: changes when its own transactions wrote, committed or not.
SEQUENCE = "roundup_wsgi_own_writes"
TRIGGER = "roundup_wsgi_writes"
FUNCTION = "roundup_wsgi_count_write"
#: Rows of the counter: writers contend only when their backend PIDs are
#: equal modulo this.
SLOTS = 64
#: ``pg_trigger.tgtype`` of ``BEFORE INSERT OR DELETE OR UPDATE OR TRUNCATE
#: FOR EACH STATEMENT`` (2 + 4 + 8 + 16 + 32).
TGTYPE = 62
#: An arbitrary advisory lock key that serialises installers.
LOCK_KEY = 0x52575347  # "RWSG"
#: How long the installer waits for a table lock before it gives up.
LOCK_TIMEOUT = "200ms"

_FUNCTION_BODY = f"""
BEGIN
    IF current_setting('roundup_wsgi.counted', true) IS DISTINCT FROM 'y' THEN
        UPDATE {TABLE} SET n = n + 1 WHERE slot = pg_backend_pid() % {SLOTS};
        PERFORM nextval('{SEQUENCE}');
        PERFORM set_config('roundup_wsgi.counted', 'y', true);
    END IF;
    RETURN NULL;
END
"""
#: SECURITY DEFINER: a role that may write Roundup's tables but not the
#: counter (raw SQL, another application) still writes, and is counted.
_FUNCTION_SQL = (
    f"CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger "
    "LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT "
    f"AS $body${_FUNCTION_BODY}$body$"
)

#: Tables of ``names`` (in the current schema) that carry the trigger.
_TRIGGERED_SQL = f"""
SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE t.tgname = '{TRIGGER}' AND t.tgtype = {TGTYPE} AND t.tgenabled = 'A'
  AND t.tgfoid = to_regproc('{FUNCTION}')
  AND c.relnamespace = current_schema()::regnamespace AND c.relname = ANY(%s)"""

_READ_SQL = (
    f"SELECT (SELECT sum(n) FROM {TABLE}), currval('{SEQUENCE}'), ({_TRIGGERED_SQL})"
)


def supported(db: Any) -> bool:
    """True for a database on a psycopg2 connection (Roundup's
    ``postgresql`` backend)."""
    conn = getattr(db, "conn", None)
    return type(conn).__module__.startswith("psycopg2") and hasattr(conn, "cursor")


def _candidates(db: Any) -> list[str]:
    """Roundup's names of the tables holding ``db``'s classes' rows."""
    from roundup import hyperdb

    names = []
    for classname, cl in db.classes.items():
        names += [f"_{classname}", f"{classname}__journal"]
        for prop, spec in cl.getprops().items():
            if isinstance(spec, hyperdb.Multilink):
                names.append(f"{classname}_{prop}")
    return sorted({name.lower() for name in names})


def tables(db: Any) -> list[str]:
    """The tables of ``db``'s classes that exist (a computed Multilink has
    none), sorted; read on the database's own connection."""
    cursor = db.conn.cursor()
    try:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') "
            "AND relnamespace = current_schema()::regnamespace "
            "AND relname = ANY(%s)",
            (_candidates(db),),
        )
        return sorted(row[0] for row in cursor.fetchall())
    finally:
        cursor.close()


def install(db: Any) -> list[str] | None:
    """Make the counter table, its function and the missing triggers on
    ``db``'s tables, committed on ``db``'s connection (called right after
    ``Tracker.open``, nothing else pending).

    :returns: the tables watched (give them to :func:`read`), or ``None``
        when it could not be done (no rights, a read-only replica: logged
        once per process by the caller; the node cache stays off).
    """
    conn = db.conn
    try:
        names = tables(db)
        if not names:
            conn.rollback()
            return None
        complete = _make_complete(conn, names)
        if complete:
            _start_own_writes(conn)
    except Exception as exc:  # no rights, read-only, an old server
        _give_up(conn, exc)
        return None
    return names if complete else None


def _make_complete(conn: Any, names: list[str]) -> bool:
    """Make the counter's missing parts (under the advisory lock) and
    commit, or roll back when nothing is missing; ``True`` if complete."""
    cursor = conn.cursor()
    try:
        if _complete(cursor, names):
            conn.rollback()
            return True
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        if _complete(cursor, names):  # another installer was first
            conn.rollback()
            return True
        # Give way rather than wait: a table lock held by a writer
        # fails the install (retried at the next open), never a request.
        cursor.execute("SET LOCAL lock_timeout = %s", (LOCK_TIMEOUT,))
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} "
            "(slot integer PRIMARY KEY, n bigint NOT NULL DEFAULT 0)"
        )
        cursor.execute(
            f"INSERT INTO {TABLE} (slot) SELECT generate_series(0, %s) "
            "ON CONFLICT DO NOTHING",
            (SLOTS - 1,),
        )
        cursor.execute(f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}")
        cursor.execute(_FUNCTION_SQL)
        _create_triggers(cursor, names)
        complete = _complete(cursor, names)
    finally:
        cursor.close()
    conn.commit()
    return complete


def _give_up(conn: Any, exc: Exception) -> None:
    """Roll back after a failed install and say so: a warning the first
    time in this process, debug after."""
    try:
        conn.rollback()
    except Exception:
        logger.debug("pgversion: rollback failed", exc_info=True)
    global _warned
    log = logger.debug if _warned else logger.warning
    _warned = True
    log(
        "node cache off for this PostgreSQL database: cannot install the "
        "write counter (%s); grant CREATE and table ownership to the "
        "tracker's user, or set node_cache = false",
        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc),
    )


def _create_triggers(cursor: Any, names: list[str]) -> None:
    """Give each table of ``names`` the trigger, enabled always.  Only
    ``CREATE TRIGGER`` and ``ALTER TABLE ... ENABLE ALWAYS TRIGGER`` (a
    SHARE ROW EXCLUSIVE lock: readers go on) unless a trigger of that name
    is not ours (then ``DROP TRIGGER``: ACCESS EXCLUSIVE)."""
    cursor.execute(
        "SELECT c.relname, t.tgtype, t.tgfoid = to_regproc(%s), t.tgenabled "
        "FROM pg_class c LEFT JOIN pg_trigger t ON t.tgrelid = c.oid "
        "AND t.tgname = %s WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relname = ANY(%s)",
        (FUNCTION, TRIGGER, names),
    )
    for name, tgtype, ours, enabled in cursor.fetchall():
        if tgtype is not None and (tgtype != TGTYPE or not ours):
            cursor.execute(f'DROP TRIGGER {TRIGGER} ON "{name}"')
            tgtype = None
        if tgtype is None:
            cursor.execute(
                f"CREATE TRIGGER {TRIGGER} BEFORE INSERT OR UPDATE OR DELETE "
                f'OR TRUNCATE ON "{name}" FOR EACH STATEMENT '
                f"EXECUTE FUNCTION {FUNCTION}()"
            )
        if tgtype is None or enabled != "A":
            cursor.execute(f'ALTER TABLE "{name}" ENABLE ALWAYS TRIGGER {TRIGGER}')


def _start_own_writes(conn: Any) -> None:
    """Advance the sequence once on ``conn`` so that its ``currval`` is
    defined (non-transactional: kept through the rollback)."""
    cursor = conn.cursor()
    try:
        cursor.execute(f"SELECT nextval('{SEQUENCE}')")
    finally:
        cursor.close()
    conn.rollback()


def _complete(cursor: Any, names: list[str]) -> bool:
    """True if the counter has its rows, the function its body, the
    sequence exists and every table has its trigger."""
    cursor.execute(
        f"SELECT to_regclass('{TABLE}') IS NOT NULL AND to_regclass('{SEQUENCE}') "
        f"IS NOT NULL AND (SELECT prosrc = %s AND prosecdef FROM pg_proc "
        f"WHERE oid = to_regproc('{FUNCTION}'))",
        (_FUNCTION_BODY,),
    )
    if not cursor.fetchone()[0]:
        return False
    cursor.execute(f"SELECT count(*) FROM {TABLE}")
    if cursor.fetchone()[0] != SLOTS:
        return False
    cursor.execute(_TRIGGERED_SQL, (names,))
    return bool(cursor.fetchone()[0] == len(names))


def read(db: Any, names: list[str]) -> tuple[int, int] | None:
    """The version, read with one statement as the request's first:
    ``(sum(n), currval)``, the committed writes of every connection and
    the writes of ``db``'s own connection, committed or not, to the tables
    of ``names``; ``None`` if one of them lacks its trigger (then nothing
    may be kept).

    :raises psycopg2.Error: the read failed (the transaction is aborted:
        the caller rolls it back).
    """
    cursor = db.conn.cursor()
    try:
        cursor.execute(_READ_SQL, (names,))
        total, own, triggered = cursor.fetchone()
    finally:
        cursor.close()
    if triggered != len(names) or total is None:
        return None
    return int(total), int(own)
