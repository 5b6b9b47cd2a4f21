"""A locked sqlite database answers 503 with Retry-After (roundup_wsgi.unavailable),
in the web UI and in REST, and nothing is lost or duplicated once it is free."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from wsgiref.validate import validator

import pytest
import support
from roundup.configuration import CoreConfig
from webtest import TestApp

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.unavailable import RETRY_AFTER, database_unavailable_cause

SAME_ORIGIN = {"Origin": "http://localhost", "Referer": "http://localhost/"}
REST_HEADERS = {
    "Content-Type": "application/json",
    "X-Requested-With": "rest",
    **SAME_ORIGIN,
}


@pytest.fixture
def locked_home(tracker_home: Path) -> Path:
    """The seeded tracker with ``[rdbms] sqlite_timeout`` of 1 second."""
    config = CoreConfig(str(tracker_home))
    config["RDBMS_SQLITE_TIMEOUT"] = 1
    config.save(str(tracker_home / "config.ini"))
    return tracker_home


@pytest.fixture
def write_lock(locked_home: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the tracker's sqlite write lock."""
    conn = sqlite3.connect(str(locked_home / "db" / "db"), isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()


def app_for(home: Path, debug: bool = False) -> TestApp:
    return TestApp(
        validator(RequestDispatcher(str(home), debug=debug)),
        extra_environ={"HTTP_HOST": "localhost"},
    )


def issue_titles(home: Path) -> list[str]:
    conn = sqlite3.connect(str(home / "db" / "db"))
    try:
        return [row[0] for row in conn.execute("select _title from _issue")]
    finally:
        conn.close()


def test_rest_create_while_locked_is_503_then_succeeds(
    locked_home: Path,
    write_lock: sqlite3.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = app_for(locked_home)
    app.authorization = ("Basic", ("admin", support.ADMIN_PASSWORD))
    body = json.dumps({"title": "written once"})
    with caplog.at_level(logging.ERROR, logger="roundup_wsgi"):
        refused = app.post("/rest/data/issue", body, headers=REST_HEADERS, status=503)
    assert refused.headers["Retry-After"] == str(RETRY_AFTER)
    assert b"database is locked" in refused.body
    assert b"Traceback" not in refused.body
    assert any("database is locked" in r.getMessage() for r in caplog.records)

    write_lock.execute("ROLLBACK")
    app.post("/rest/data/issue", body, headers=REST_HEADERS, status=201)
    assert issue_titles(locked_home).count("written once") == 1


def test_web_form_while_locked_is_503_then_succeeds(
    locked_home: Path, write_lock: sqlite3.Connection
) -> None:
    write_lock.execute("ROLLBACK")  # log in first (a session is written)
    app = app_for(locked_home)
    login = next(f for f in app.get("/").forms.values() if "__login_name" in f.fields)
    login["__login_name"] = support.DEMO_USER
    login["__login_password"] = support.DEMO_PASSWORD
    login.submit(headers=SAME_ORIGIN)
    form = next(
        f
        for f in app.get("/issue?@template=item").forms.values()
        if "title" in f.fields
    )
    form["title"] = "form post once"
    form["priority"] = "3"
    write_lock.execute("BEGIN EXCLUSIVE")
    refused = form.submit(headers=SAME_ORIGIN, status=503)
    assert refused.headers["Retry-After"] == str(RETRY_AFTER)
    assert "form post once" not in issue_titles(locked_home)

    write_lock.execute("ROLLBACK")
    form = next(
        f
        for f in app.get("/issue?@template=item").forms.values()
        if "title" in f.fields
    )
    form["title"] = "form post once"
    form["priority"] = "3"
    form.submit(headers=SAME_ORIGIN, status=302)
    assert issue_titles(locked_home).count("form post once") == 1


def test_debug_mode_shows_the_traceback_escaped(
    locked_home: Path, write_lock: sqlite3.Connection
) -> None:
    app = app_for(locked_home, debug=True)
    app.authorization = ("Basic", ("admin", support.ADMIN_PASSWORD))
    refused = app.post(
        "/rest/data/issue",
        json.dumps({"title": "<x>"}),
        headers=REST_HEADERS,
        status=503,
    )
    assert b"Traceback" in refused.body
    assert b"OperationalError" in refused.body


def test_causes_recognised() -> None:
    from roundup.hyperdb import DatabaseError

    locked = sqlite3.OperationalError("database is locked")
    assert database_unavailable_cause(locked) == "sqlite: database is locked"
    assert database_unavailable_cause(DatabaseError(locked)) is not None
    assert database_unavailable_cause(sqlite3.OperationalError("no such table")) is None
    assert database_unavailable_cause(ValueError("bad")) is None
    denied = PermissionError(13, "Permission denied", "/x")
    assert database_unavailable_cause(denied) is None  # not from the database
    assert database_unavailable_cause(denied, os_errors=True)
