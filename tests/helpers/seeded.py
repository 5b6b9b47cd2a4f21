"""Test data and helpers shared by the test modules (imported as ``support``).

The seeded tracker used everywhere is built once per session by
:func:`build_seeded_tracker` with Roundup's own API, then copied per test.
"""

from __future__ import annotations

import base64
import functools
import json
import shutil
from pathlib import Path
from typing import Any

from roundup import date, instance, password

from roundup_wsgi.tracker import create_tracker, set_tracker_web

ADMIN_PASSWORD = "admin-secret"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-secret"


def basic_auth(user: str, secret: str) -> dict[str, str]:
    """The ``Authorization`` header of HTTP Basic authentication (RFC 7617)."""
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


#: Request headers logging in as the seeded tracker's admin, and its demo user.
ADMIN_AUTH = basic_auth("admin", ADMIN_PASSWORD)
DEMO_AUTH = basic_auth(DEMO_USER, DEMO_PASSWORD)

SMALL_FILE_NAME = "hello.txt"
SMALL_FILE_BYTES = b"hello from roundup-wsgi\n"
BIG_FILE_NAME = "big.bin"
BIG_FILE_SIZE = 20 * 1024 * 1024  # bytes (20 MiB)

# A tracker-home hook: interfaces.py may define the Client class Roundup uses.
# This one lets a test make an exception escape Client.main on one path.
INTERFACES_PY = """
from roundup.cgi import client


class Client(client.Client):
    def main(self):
        if self.path == "test-boom":
            raise RuntimeError("test-boom <script>alert(1)</script>")
        return client.Client.main(self)
"""


def pattern_bytes(size: int) -> bytes:
    """``size`` bytes (rounded down to a multiple of 256) of every byte
    value in turn, so offsets show: the content of the test attachments."""
    return bytes(range(256)) * (size // 256)


@functools.cache
def big_file_bytes() -> bytes:
    """The 20 MiB attachment (:func:`pattern_bytes`)."""
    return pattern_bytes(BIG_FILE_SIZE)


def build_seeded_tracker(home: Path) -> Path:
    """Create a classic/sqlite tracker at ``home`` and seed it.

    Seeds: user ``demo``; issue1 (a message and ``hello.txt``); issue2 (the
    20 MiB ``big.bin``); issue3 with an HTML-looking title.
    """
    create_tracker(home, admin_password=ADMIN_PASSWORD, web="http://localhost/")
    (home / "interfaces.py").write_text(INTERFACES_PY)
    tracker = instance.open(str(home))
    db = tracker.open("admin")
    try:
        db.user.create(
            username=DEMO_USER,
            password=password.Password(DEMO_PASSWORD, config=db.config),
            realname="Demo User",
            roles="User",
            address="demo@localhost",
        )
        now = date.Date(".")
        msg = db.msg.create(content="First message.", author="1", date=now)
        small = db.file.create(
            name=SMALL_FILE_NAME, type="text/plain", content=SMALL_FILE_BYTES
        )
        db.issue.create(title="Sample issue one", messages=[msg], files=[small])
        big = db.file.create(
            name=BIG_FILE_NAME,
            type="application/octet-stream",
            content=big_file_bytes(),
        )
        db.issue.create(title="Issue with a big attachment", files=[big])
        db.issue.create(title="Title with <b>markup</b> & ampersand")
        db.commit()
    finally:
        db.close()
    return home


def copy_tracker(template: Path, home: Path, web: str) -> Path:
    """Copy a seeded tracker to ``home`` and point ``[tracker] web`` at ``web``."""
    shutil.copytree(template, home, ignore=shutil.ignore_patterns("__pycache__"))
    set_tracker_web(home, web)
    return home


# -- calling a WSGI app as a server would ------------------------------------


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


def add_demo_user(home: Path) -> str:
    """Add the ``demo`` user (role User) with Roundup's API; return its id."""
    db = instance.open(str(home)).open("admin")
    try:
        user_id = db.user.create(
            username=DEMO_USER,
            password=password.Password(DEMO_PASSWORD, config=db.config),
            roles="User",
            address="demo@localhost",
        )
        db.commit()
        return str(user_id)
    finally:
        db.close()


def add_file(
    home: Path,
    name: str,
    content: bytes,
    *,
    type: str = "application/octet-stream",
    issue_title: str | None = None,
) -> str:
    """Store ``content`` as a file called ``name`` in the tracker at
    ``home`` with Roundup's API (as ``admin``, one commit); with
    ``issue_title``, attached to a new issue of that title.

    :returns: the file's path below the tracker, ``fileN/<name>``.
    """
    db = instance.open(str(home)).open("admin")
    try:
        file_id = db.file.create(name=name, type=type, content=content)
        if issue_title is not None:
            db.issue.create(title=issue_title, files=[file_id])
        db.commit()
    finally:
        db.close()
    return f"file{file_id}/{name}"


def post_issue_via_rest(app: Any, title: str, **kwargs: Any) -> Any:
    """As ``admin`` (HTTP Basic, set on ``app``), ``POST /rest/data/issue``
    with ``{"title": title}`` and the same-origin REST headers.

    :param app: a ``webtest.TestApp`` on a seeded tracker.
    :param kwargs: passed to ``TestApp.post`` (``status=``, ``expect_errors=``).
    :returns: the ``webtest.TestResponse``.
    """
    from .wsgi import REST_HEADERS

    app.authorization = ("Basic", ("admin", ADMIN_PASSWORD))
    return app.post(
        "/rest/data/issue",
        json.dumps({"title": title}),
        headers=REST_HEADERS,
        **kwargs,
    )
