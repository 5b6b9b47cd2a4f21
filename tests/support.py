"""Test data and helpers shared by the test modules (imported as ``support``).

The seeded tracker used everywhere is built once per session by
:func:`build_seeded_tracker` with Roundup's own API, then copied per test.
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from roundup import date, instance, password

from roundup_wsgi.tracker import create_tracker, set_tracker_web

ADMIN_PASSWORD = "admin-secret"
DEMO_USER = "demo"
DEMO_PASSWORD = "demo-secret"

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


@functools.cache
def big_file_bytes() -> bytes:
    """The 20 MiB attachment: every byte value in turn, so offsets show."""
    return bytes(range(256)) * (BIG_FILE_SIZE // 256)


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

NONCE = re.compile(rb'\bnonce="[^"]*"')
# The token is in value="..." after or before name="@csrf" in the same tag.
CSRF_AFTER = re.compile(rb'(name="@csrf"[^>]*?value=")[^"]*"', re.DOTALL)
CSRF_BEFORE = re.compile(rb'(value=")[^"]*("[^>]*?name="@csrf")', re.DOTALL)
DATE = re.compile(rb"\d{4}-\d{2}-\d{2}(?:\.|\s|&nbsp;)\d{2}:\d{2}(?::\d{2})?")
# Relative dates ("just now", "3 minutes ago") change while tests run.
RELATIVE_DATE = re.compile(
    rb"\b(?:just now|in a moment|yesterday|tomorrow"
    rb"|(?:an?|[\d /]+) (?:second|minute|hour|day|week|month|year)s? ago"
    rb"|in (?:an?|[\d /]+) (?:second|minute|hour|day|week|month|year)s?)\b"
)
VARYING_HEADERS = {"date", "expires", "set-cookie"}


def normalise_body(body: bytes, base_url: str | None = None) -> bytes:
    """Mask what differs between two renderings of one page: script nonces,
    CSRF tokens, absolute and relative dates, and (if given) the tracker's
    base URL (``[tracker] web``, which holds the server's port)."""
    if base_url:
        body = body.replace(base_url.encode(), b"BASE/")
        body = body.replace(base_url.rstrip("/").encode(), b"BASE")
    body = NONCE.sub(b'nonce="NONCE"', body)
    body = CSRF_AFTER.sub(rb'\1CSRF"', body)
    body = CSRF_BEFORE.sub(rb"\1CSRF\2", body)
    body = DATE.sub(b"DATE", body)
    return RELATIVE_DATE.sub(b"RELDATE", body)


def normalise_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers as a sorted list, lower-case names, without per-request ones
    (Date, Expires, Set-Cookie)."""
    return sorted(
        (name.lower(), value)
        for name, value in headers
        if name.lower() not in VARYING_HEADERS
    )


@dataclass
class Result:
    """What a fake server saw: status, headers, body, and how the body came."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes
    written: bytes  # the part that came through the write callable
    close_calls: int


class _CountingClose:
    def __init__(self, app_iter: Iterable[bytes]) -> None:
        self.app_iter = app_iter
        self.calls = 0

    def close(self) -> None:
        self.calls += 1
        close = getattr(self.app_iter, "close", None)
        if close is not None:
            close()


def call_wsgi(app: Any, environ: dict[str, Any], *, server_write: bool) -> Result:
    """Call ``app`` like a PEP 3333 server whose ``start_response`` returns a
    write callable (``server_write=True``, as waitress or gunicorn) or
    ``None`` (as granian or bjoern).

    Checks the PEP 3333 rules a server relies on: status and header types,
    bytes chunks, no write before start_response; calls ``close()``.
    """
    state: dict[str, Any] = {"status": None, "headers": None}
    written: list[bytes] = []

    def write(data: bytes) -> None:
        assert state["status"] is not None, "write() before start_response()"
        assert isinstance(data, bytes), f"write() of {type(data)}"
        written.append(data)

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        assert isinstance(status, str), status
        assert re.match(r"^\d\d\d \S", status), status
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers), (
            headers
        )
        if state["status"] is not None:
            # PEP 3333: a second call needs exc_info, and re-raises it once
            # the headers are out (here: once anything was written).
            assert exc_info is not None, "start_response() called twice"
            if written:
                raise exc_info[1].with_traceback(exc_info[2])
        state["status"], state["headers"] = status, headers
        return write if server_write else None

    app_iter = app(environ, start_response)
    closer = _CountingClose(app_iter)
    try:
        chunks = list(app_iter)
    finally:
        closer.close()
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert state["status"] is not None, "start_response() never called"
    return Result(
        state["status"],
        state["headers"],
        b"".join(written) + b"".join(chunks),
        b"".join(written),
        closer.calls,
    )


class FakeServer:
    """Stands in for a waitress server: Ctrl-C as soon as it runs."""

    def __init__(self, app: Any, **options: Any) -> None:
        self.app = app
        self.options = options
        self.closed = False

    def run(self) -> None:
        raise KeyboardInterrupt

    def close(self) -> None:
        self.closed = True
