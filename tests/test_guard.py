"""Exceptions Roundup's Client catches itself (roundup_wsgi.guard): an
auditor that raises gives the dispatcher's 500 page, without a traceback
unless debug, logged through ``logging``; the next request succeeds."""

from __future__ import annotations

import gc
import json
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from wsgiref.validate import validator

import pytest
import support
from webtest import TestApp

from roundup_wsgi import RequestDispatcher

SAME_ORIGIN = {"Origin": "http://localhost", "Referer": "http://localhost/"}

#: A detector whose auditor raises for titles starting with "boom" (a
#: RuntimeError: Roundup's catch-all) or "zero" (ZeroDivisionError: Roundup
#: wraps it in DetectorError and, stock, writes the traceback into a 200 page).
FAILING_AUDITOR = """
def audit(db, cl, nodeid, newvalues):
    title = newvalues.get("title") or ""
    if title.startswith("boom"):
        raise RuntimeError("auditor failed <script>alert(1)</script>")
    if title.startswith("zero"):
        1 / 0


def init(db):
    db.issue.audit("create", audit)
"""


def install_failing_auditor(home: Path) -> Path:
    """Add :data:`FAILING_AUDITOR` to the tracker's detectors."""
    (home / "detectors" / "failing_auditor.py").write_text(FAILING_AUDITOR)
    return home


@pytest.fixture
def auditor_home(make_tracker: Callable[[str], Path]) -> Path:
    return install_failing_auditor(make_tracker("http://localhost/"))


def logged_in(home: Path, debug: bool = False) -> TestApp:
    app = TestApp(
        validator(RequestDispatcher(str(home), debug=debug)),
        extra_environ={"HTTP_HOST": "localhost"},
    )
    login = next(f for f in app.get("/").forms.values() if "__login_name" in f.fields)
    login["__login_name"] = support.DEMO_USER
    login["__login_password"] = support.DEMO_PASSWORD
    login.submit(headers=SAME_ORIGIN)
    return app


def submit_issue(app: TestApp, title: str, status: int | str) -> object:
    page = app.get("/issue?@template=item")
    form = next(f for f in page.forms.values() if "title" in f.fields)
    form["title"] = title
    form["priority"] = "3"
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
    app.authorization = ("Basic", ("admin", support.ADMIN_PASSWORD))
    failed = app.post(
        "/rest/data/issue",
        json.dumps({"title": "boom via rest"}),
        headers={
            "Content-Type": "application/json",
            "X-Requested-With": "rest",
            **SAME_ORIGIN,
        },
        expect_errors=True,
    )
    assert failed.status_int >= 400
    assert b"Traceback" not in failed.body
    assert b"<script>" not in failed.body
