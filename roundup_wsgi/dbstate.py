"""Whether a tracker's database was initialised, found without opening it
through Roundup (whose backends create a missing database, or a missing
schema, on open).

``roundup-admin initialise`` creates the database and runs
``initial_data.py``, which makes the ``anonymous`` user every page needs;
:func:`database_state` looks for that user.  Used at start
(:func:`roundup_wsgi.tracker.check_tracker_ready`), by ``roundup-wsgi
check`` and by ``/-/ready``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["INITIALISED", "NOT_INITIALISED", "UNKNOWN", "database_state"]

#: :func:`database_state` results.
INITIALISED, NOT_INITIALISED, UNKNOWN = "initialised", "not initialised", "unknown"

#: The query telling an initialised database (Roundup's table of users).
_ANONYMOUS = "SELECT 1 FROM _user WHERE _username = 'anonymous' AND __retired__ = 0"

#: PostgreSQL's SQLSTATE for a missing table (Appendix A, "Error Codes").
UNDEFINED_TABLE = "42P01"


def database_state(config: Any) -> tuple[str, str]:
    """Whether the tracker's database was initialised, without creating it.

    sqlite: the file ``db`` exists and, opened read-only, has an active
    ``anonymous`` user; postgresql: the database exists (or the server
    answers without it) and has that user; anydbm: Roundup's own
    ``db_exists`` (the ``nodes.user`` file).  Other backends: unknown.

    :param config: the tracker's ``roundup.configuration.CoreConfig``.
    :returns: ``(state, detail)``: ``INITIALISED``,
        ``NOT_INITIALISED`` (detail: what is missing) or ``UNKNOWN``
        (detail: why it cannot be told, e.g. the database server does not
        answer).
    """
    backend = str(config["RDBMS_BACKEND"])
    if backend == "sqlite":
        return _sqlite_state(os.path.join(str(config["DATABASE"]), "db"))
    if backend == "anydbm":
        from roundup.backends import back_anydbm

        if back_anydbm.db_exists(config):
            return INITIALISED, ""
        return NOT_INITIALISED, f"no database in {config['DATABASE']}"
    if backend == "postgresql":
        return _postgresql_state(config)
    return UNKNOWN, f"the {backend} backend is not checked"


def _sqlite_state(path: str) -> tuple[str, str]:
    import sqlite3

    if not os.path.isfile(path):
        return NOT_INITIALISED, f"the database {path} does not exist"
    try:
        # mode=ro: never creates or changes the file (sqlite URI filenames).
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        return UNKNOWN, f"the database {path} cannot be opened ({exc})"
    try:
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        if "_user" not in tables:
            return NOT_INITIALISED, f"the database {path} has no schema"
        if connection.execute(_ANONYMOUS).fetchone() is None:
            return NOT_INITIALISED, f"the database {path} has no anonymous user"
    except sqlite3.Error as exc:  # e.g. locked for longer than the timeout
        return UNKNOWN, f"the database {path} cannot be read ({exc})"
    finally:
        connection.close()
    return INITIALISED, ""


def _postgresql_state(config: Any) -> tuple[str, str]:
    try:
        from roundup.backends import back_postgresql as pg
    except ImportError as exc:
        return UNKNOWN, f"psycopg2 is not installed ({exc})"
    psycopg2: Any = pg.psycopg2
    params = pg.connection_dict(config, "database")
    db_name, schema_name = pg.get_database_schema_names(config)
    if schema_name:
        params["database"] = db_name
    try:
        connection = psycopg2.connect(**params)
    except psycopg2.OperationalError as exc:
        # Missing, or the server does not answer: ask its maintenance
        # database, as Roundup's db_command does.
        try:
            psycopg2.connect(**{**params, "database": "postgres"}).close()
        except psycopg2.Error:
            return UNKNOWN, f"the database server does not answer ({_line(exc)})"
        return NOT_INITIALISED, f"the PostgreSQL database {db_name} does not exist"
    try:
        return _postgresql_users(psycopg2, connection, db_name, schema_name)
    except psycopg2.Error as exc:
        return UNKNOWN, f"the database cannot be read ({_line(exc)})"
    finally:
        connection.close()


def _postgresql_users(
    psycopg2: Any, connection: Any, db_name: str, schema_name: str | None
) -> tuple[str, str]:
    """The state of an open PostgreSQL database: schema and anonymous user."""
    cursor = connection.cursor()
    if schema_name:
        cursor.execute("SET search_path TO %s", (schema_name,))
    try:
        cursor.execute(_ANONYMOUS)
    except psycopg2.ProgrammingError as exc:
        if exc.pgcode != UNDEFINED_TABLE:
            raise
        where = f"{db_name}.{schema_name}" if schema_name else db_name
        return NOT_INITIALISED, f"the PostgreSQL database {where} has no schema"
    if cursor.fetchone() is None:
        return (
            NOT_INITIALISED,
            f"the PostgreSQL database {db_name} has no anonymous user",
        )
    return INITIALISED, ""


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
