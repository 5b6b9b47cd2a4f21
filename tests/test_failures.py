"""Exceptions Roundup's Client catches itself (roundup_wsgi.failures): an
auditor that raises gives the dispatcher's 500 page, without a traceback
unless debug, logged through ``logging``; the next request succeeds.

Two workers storing the first file of a new files directory at once both
succeed (the guard's ``storefile``; Roundup's own makes the second fail).

A locked sqlite database answers 503 with Retry-After (roundup_wsgi.failures),
in the web UI and in REST, and nothing is lost or duplicated once it is free.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from wsgiref.validate import validator

import pytest
import roundup.instance
from helpers import seeded
from helpers.wsgi import REST_HEADERS, SAME_ORIGIN
from roundup.configuration import CoreConfig
from webtest import TestApp

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.failures import RETRY_AFTER, database_unavailable_cause


@pytest.fixture
def auditor_home(make_tracker: Callable[[str], Path]) -> Path:
    return seeded.install_failing_auditor(make_tracker("http://localhost/"))


def logged_in(home: Path, debug: bool = False) -> TestApp:
    app = TestApp(
        validator(RequestDispatcher(str(home), debug=debug)),
        extra_environ={"HTTP_HOST": "localhost"},
    )
    login = next(f for f in app.get("/").forms.values() if "__login_name" in f.fields)
    login["__login_name"] = seeded.DEMO_USER
    login["__login_password"] = seeded.DEMO_PASSWORD
    login.submit(headers=SAME_ORIGIN)
    return app


def submit_issue(
    app: TestApp, title: str, status: int | str, note: str | None = None
) -> object:
    page = app.get("/issue?@template=item")
    form = next(f for f in page.forms.values() if "title" in f.fields)
    form["title"] = title
    form["priority"] = "3"
    if note is not None:
        form["@note"] = note
    return form.submit(headers=SAME_ORIGIN, status=status)


@pytest.mark.parametrize("title", ["boom now", "zero division"])
def test_auditor_exception_is_500_logged_and_next_request_works(
    auditor_home: Path, title: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = logged_in(auditor_home)
    with caplog.at_level(logging.ERROR, logger="roundup_wsgi"):
        failed = submit_issue(app, title, 500)
    body = failed.body  # type: ignore[attr-defined]
    assert b"Traceback" not in body
    assert b"<script>alert(1)" not in body
    assert b"failing_auditor.py" not in body
    logged = "\n".join(r.getMessage() + str(r.exc_info) for r in caplog.records)
    assert "failed in tracker" in logged
    assert ("auditor failed" in logged) or ("ZeroDivisionError" in logged)

    created = submit_issue(app, "fine after the failure", 302)
    assert "issue4" in created.headers["Location"]  # type: ignore[attr-defined]


def test_failed_request_leaves_no_sqlite_lock(auditor_home: Path) -> None:
    """Roundup keeps the failed transaction's cursor alive in a reference
    cycle; without the guard's rollback the write lock stayed until the
    garbage collector ran (and other processes timed out on it)."""
    app = logged_in(auditor_home)
    page = app.get("/issue?@template=item")
    form = next(f for f in page.forms.values() if "title" in f.fields)
    form["title"] = "boom with a message"
    form["priority"] = "3"
    form["@note"] = "a message makes Roundup write before the auditor runs"
    gc.disable()
    try:
        form.submit(headers=SAME_ORIGIN, status=500)
        other = sqlite3.connect(
            str(auditor_home / "db" / "db"), timeout=0, isolation_level=None
        )
        try:
            other.execute("BEGIN IMMEDIATE")  # raises if the lock is held
            other.execute("ROLLBACK")
        finally:
            other.close()
    finally:
        gc.enable()


def test_debug_mode_shows_the_auditor_traceback_escaped(auditor_home: Path) -> None:
    app = logged_in(auditor_home, debug=True)
    failed = submit_issue(app, "boom in debug", 500)
    body = failed.body  # type: ignore[attr-defined]
    assert b"Traceback" in body
    assert b"auditor failed &lt;script&gt;" in body
    assert b"<script>alert(1)" not in body


def test_rest_auditor_exception_has_no_traceback_in_body(auditor_home: Path) -> None:
    """REST: Roundup's REST decorator answers the error itself (400, with a
    pointer to the server log) and prints the traceback to stderr."""
    app = TestApp(validator(RequestDispatcher(str(auditor_home))))
    failed = seeded.post_issue_via_rest(app, "boom via rest", expect_errors=True)
    assert failed.status_int >= 400
    assert b"Traceback" not in failed.body
    assert b"<script>" not in failed.body


class OtherWorker:
    """Stands for a second worker storing a file at the same moment: when
    Roundup finds ``directory`` missing, that worker makes it just after
    the check (the interleaving of ``blobfiles.storefile``'s
    ``os.path.exists`` then ``os.makedirs``)."""

    def __init__(self, directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.directory = str(directory)
        self.raced = 0
        self._exists = os.path.exists
        monkeypatch.setattr(os.path, "exists", self.exists)

    def exists(self, path: str | os.PathLike[str]) -> bool:
        found = self._exists(path)
        if not found and os.fspath(path) == self.directory:
            os.makedirs(self.directory)  # the other worker, just after the check
            self.raced += 1
        return found


def next_message_in_a_new_directory(home: Path) -> Path:
    """Make the tracker's next ``msg`` id 5000; return its new directory."""
    conn = sqlite3.connect(str(home / "db" / "db"))
    try:
        with conn:
            conn.execute("update ids set num=5000 where name='msg'")
    finally:
        conn.close()
    directory = home / "db" / "files" / "msg" / "5"
    assert not directory.exists()
    return directory


def test_first_file_of_a_directory_stored_while_another_worker_makes_it(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = next_message_in_a_new_directory(tracker_home)
    other = OtherWorker(directory, monkeypatch)
    app = logged_in(tracker_home)
    submit_issue(app, "first message of a directory", 302, "stored in db/files/msg/5")
    assert other.raced == 0  # the guard made the directory before the check
    assert (directory / "msg5000").read_bytes() == b"stored in db/files/msg/5"
    assert "first message of a directory" in issue_titles(tracker_home)


def test_roundup_alone_fails_when_another_worker_makes_the_directory(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Roundup's own ``storefile`` in the same interleaving: its second
    ``makedirs`` raises ``FileExistsError`` (under Roundup's dispatcher, a
    500 and no issue).  If this fails, Roundup has mended ``storefile`` and
    the guard's wrapper can go."""
    directory = next_message_in_a_new_directory(tracker_home)
    other = OtherWorker(directory, monkeypatch)
    db = roundup.instance.open(str(tracker_home)).open("admin")
    try:
        with pytest.raises(FileExistsError):
            db.storefile("msg", "5000", None, b"stored in db/files/msg/5")
    finally:
        db.close()
    assert other.raced == 1


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
    app.authorization = ("Basic", ("admin", seeded.ADMIN_PASSWORD))
    body = json.dumps({"title": "written once"})
    with caplog.at_level(logging.ERROR, logger="roundup_wsgi"):
        refused = app.post("/rest/data/issue", body, headers=REST_HEADERS, status=503)
    assert refused.headers["Retry-After"] == str(RETRY_AFTER)
    assert b"database is unavailable" in refused.body
    assert b"database is locked" not in refused.body  # the cause: log only
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
    login["__login_name"] = seeded.DEMO_USER
    login["__login_password"] = seeded.DEMO_PASSWORD
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
    refused = seeded.post_issue_via_rest(app, "<x>", status=503)
    assert b"Traceback" in refused.body
    assert b"OperationalError" in refused.body
    assert b"sqlite: database is locked" in refused.body


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
