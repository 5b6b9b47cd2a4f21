"""db.close rolling back first, or intercepted
(roundup_wsgi/patches/db_close.py), on a real sqlite database."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from roundup_wsgi.patches import db_close


def test_close_rolls_back_first_and_goes_on_after_a_failed_rollback(
    db: Any, watcher: Any
) -> None:
    order: list[str] = []
    rollback = db.rollback

    def failing_rollback() -> None:
        order.append("rollback")
        rollback()
        raise sqlite3.OperationalError("database is locked")

    db.rollback = failing_rollback
    db.issue.create(title="never committed")
    assert db.conn.in_transaction
    db_close.rollback_first(db, watcher)
    db.close()
    assert order == ["rollback"]
    assert [str(e) for e in watcher.noted] == ["database is locked"]
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        db.conn.execute("SELECT 1")  # and closed


def test_intercept_keeps_the_database_open_until_removed(db: Any) -> None:
    closes: list[bool] = []
    db_close.intercept(db, lambda: closes.append(True))
    db.close()
    assert closes == [True]
    assert db.user.lookup("admin") == "1"  # still open
    db_close.remove(db)
    assert "close" not in vars(db)
