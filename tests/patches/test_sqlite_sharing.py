"""sqlite connections another thread may close
(roundup_wsgi/patches/sqlite_sharing.py), on a real sqlite database."""

from __future__ import annotations

import threading
from typing import Any

from roundup_wsgi.patches import sqlite_sharing


def close_elsewhere(conn: Any) -> list[BaseException]:
    errors: list[BaseException] = []

    def close() -> None:
        try:
            conn.close()
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=close)
    thread.start()
    thread.join(10)
    return errors


def test_the_database_and_its_stores_get_shareable_connections(db: Any) -> None:
    bound = db.conn
    assert sqlite_sharing.install(db)
    assert db.conn is not bound
    assert db.user.lookup("admin") == "1"  # same file, same rows
    db.getOTKManager().set("key", __timestamp=0)  # opens the one-time keys store
    otk = db.Otk.conn
    assert close_elsewhere(otk) == []
    assert close_elsewhere(db.conn) == []


def test_a_bound_connection_refuses_another_thread(db: Any) -> None:
    errors = close_elsewhere(db.conn)
    assert [type(e).__name__ for e in errors] == ["ProgrammingError"]


def test_nothing_changes_in_a_transaction_or_for_another_backend(db: Any) -> None:
    db.issue.create(title="uncommitted")
    conn = db.conn
    assert not sqlite_sharing.install(db)
    assert db.conn is conn

    class NotSqlite:
        conn = object()

    assert not sqlite_sharing.install(NotSqlite())  # type: ignore[arg-type]
