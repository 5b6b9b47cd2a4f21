"""A database's errors reported to the guard
(roundup_wsgi/patches/database_errors.py), on a real sqlite database."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from roundup_wsgi.patches import database_errors


def test_errors_are_noted_and_raised_as_before(db: Any, watcher: Any) -> None:
    database_errors.install(db, watcher)
    assert db.sql("SELECT 1") is None  # Roundup's sql returns nothing
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        db.sql("SELECT * FROM no_such_table")
    assert [type(e) for e in watcher.noted] == [sqlite3.OperationalError]
    issue = db.issue.create(title="kept", files=[])
    db.commit()
    assert db.issue.get(issue, "title") == "kept"
    assert len(watcher.noted) == 1


def test_remove_gives_the_class_methods_back(db: Any, watcher: Any) -> None:
    database_errors.install(db, watcher)
    replaced = {"sql", "sql_commit", "commit", "close", "storefile"}
    assert replaced <= set(vars(db))
    database_errors.remove(db)
    assert not replaced & set(vars(db))
