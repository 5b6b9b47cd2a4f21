"""Error pages show no internal detail (issue 19, class 2).

Every error page (400, 403, 404, 413, 500, 503) is sent under each failure
the fault tests make (tests/scenarios/test_faults.py, tests/test_failures.py): the
attachment store unwritable (``chattr +i`` on ``db/files/msg/0``), the
``db`` directory read-only, a full disk (a small tmpfs over
``db/files/msg/0``), a locked sqlite database, PostgreSQL stopped and an
auditor that raises.  No page may name the tracker's home, the test's
temporary directory, the database host, an exception's text or SQL; all of
that goes to the log.  With Roundup's ``[web] debug`` it may show.

In process (webob requests against the dispatcher) and under waitress (the
same requests over HTTP).
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import tempfile
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from helpers import loadclient, pg, seeded
from helpers.faults import read_only, serve
from helpers.servers import HTTP_TIMEOUT, waitress_command
from helpers.system import require_program
from roundup.configuration import CoreConfig

# The fault tests' ways to break a tracker (reused, not copied).
from test_failures import locked_home, write_lock  # noqa: F401
from webob import Request

from roundup_wsgi import RequestDispatcher

#: The request body limit of the tracker under test (bytes): the 413 probe
#: sends more, every other probe less.
LIMIT = 8192

#: ``(status, lower-case headers, body)``.
Answer = tuple[int, list[tuple[str, str]], bytes]
#: ``send(method, path, headers, body, content_length)``.
Send = Callable[[str, str, dict[str, str], bytes, "str | None"], Answer]

#: Text of exceptions and their classes that the faults raise.
EXCEPTION_TEXT = (
    "traceback",
    "error:",
    "exception",
    "errno",
    "operation not permitted",
    "permission denied",
    "no space left",
    "read-only file system",
    "database is locked",
    "readonly database",
    "unable to open",
    "connection refused",
    "invalid boundary",
    "sqlite",
    "psycopg",
    "postgresql",
    "auditor failed",
    "msg2",
    ".tmp",
)
#: SQL that would show a query.
SQL = ("select ", "insert into", "update _", "_issue", "_msg", "pragma")


def forbidden_strings(home: Path, extra: tuple[str, ...] = ()) -> list[str]:
    """What no page may contain (lower case): the tracker's paths, the
    temporary directory, this machine's name, exception text and SQL."""
    paths = {str(home), os.path.realpath(home), str(home / "db")}
    paths |= {str(home.parent), tempfile.gettempdir() + os.sep}
    names = {socket.gethostname(), socket.getfqdn()} - {"localhost"}
    hosts = {name for name in names if len(name) >= 4}  # "vm" is in words
    return [s.lower() for s in (*paths, *hosts, *EXCEPTION_TEXT, *SQL, *extra)]


def leaks(answer: Answer, forbidden: list[str]) -> list[str]:
    """The forbidden strings found in ``answer``'s headers or body."""
    _status, headers, body = answer
    text = body.decode("latin-1").lower()
    text += "\n".join(f"{k}: {v}" for k, v in headers).lower()
    return [s for s in forbidden if s in text]


# -- how requests are sent ---------------------------------------------------


def wsgi_send(app: object) -> Send:
    """Send requests to a WSGI application in process (webob)."""

    def send(
        method: str, path: str, headers: dict[str, str], body: bytes, length: str | None
    ) -> Answer:
        request = Request.blank(path, method=method, headers=headers)
        if method not in ("GET", "HEAD"):
            request.body = body
        if length is not None:
            request.environ["CONTENT_LENGTH"] = length
        response = request.get_response(app, catch_exc_info=True)
        headers_out = [(k.lower(), v) for k, v in response.headerlist]
        return response.status_code, headers_out, response.body

    return send


def http_send(port: int) -> Send:
    """Send requests over HTTP to 127.0.0.1:``port`` (http.client: the
    headers as given, ``Content-Length`` even when it is wrong)."""

    def send(
        method: str, path: str, headers: dict[str, str], body: bytes, length: str | None
    ) -> Answer:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            if method not in ("GET", "HEAD"):
                conn.putheader("Content-Length", length or str(len(body)))
            conn.endheaders(body if method not in ("GET", "HEAD") else None)
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        headers_out = [(k.lower(), v) for k, v in response.getheaders()]
        return response.status, headers_out, data

    return send


class Browser:
    """A client of one tracker: its cookie, a CSRF token fetched before a
    fault, and the requests each error page is provoked with."""

    def __init__(self, send: Send, web: str) -> None:
        self.send = send
        self.origin = web.rstrip("/")
        self.host = self.origin.split("://", 1)[1]
        self.cookie: str | None = None
        self.token = ""

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        length: str | None = None,
    ) -> Answer:
        sent = {"Host": self.host, **(headers or {})}
        if self.cookie:
            sent["Cookie"] = self.cookie
        answer = self.send(method, path, sent, body, length)
        for name, value in answer[1]:
            if name == "set-cookie":
                self.cookie = value.split(";", 1)[0]
        return answer

    def login(self) -> None:
        """Log in as the demo user; fetch a new-issue form's CSRF token."""
        front = self.request("GET", "/")
        body = urlencode(
            {
                "__login_name": seeded.DEMO_USER,
                "__login_password": seeded.DEMO_PASSWORD,
                "@action": "login",
                "@csrf": loadclient.csrf_token(front[2].decode()),
            }
        )
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        self.request("POST", "/", {**form, **self.same_origin()}, body)
        assert self.cookie, "no session cookie after login"
        self.fetch_token()

    def fetch_token(self) -> None:
        page = self.request("GET", "/issue?@template=item")
        assert page[0] == 200, page
        self.token = loadclient.csrf_token(page[2].decode())

    def same_origin(self) -> dict[str, str]:
        return {"Origin": self.origin, "Referer": self.origin + "/issue"}

    def rest(self, path: str, data: dict[str, str], auth: bool = True) -> Answer:
        headers = {
            "Content-Type": "application/json",
            "X-Requested-With": "rest",
            **self.same_origin(),
        }
        if auth:
            headers.update(seeded.ADMIN_AUTH)
        return self.request("POST", path, headers, json.dumps(data).encode())


def urlencode(fields: dict[str, str]) -> bytes:
    return urllib.parse.urlencode(fields).encode()


def multipart(fields: dict[str, str], boundary: str = "b0undary") -> bytes:
    """A multipart/form-data body: ``fields`` and one small ``@file``."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        f"{value}\r\n"
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="@file"; '
        'filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nattached\r\n'
    )
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


#: The probes: name -> (the statuses it gives without a fault, the request).
#: Under a fault a probe may also answer 503 (or 500 for the auditor).
PROBES: dict[str, tuple[set[int], Callable[[Browser], Answer]]] = {
    "400 Content-Length": (
        {400},
        lambda b: b.request(
            "POST",
            "/issue",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"title=x",
            "12 34",
        ),
    ),
    "400 multipart boundary": (
        {400},
        lambda b: b.request(
            "POST",
            "/issue",
            {"Content-Type": "multipart/form-data; boundary=" + "b" * 250},
            b"--" + b"b" * 250 + b"--\r\n",
        ),
    ),
    "403 REST anonymous": (
        {403},
        lambda b: Browser(b.send, b.origin).rest(
            "/rest/data/user", {"username": "x"}, auth=False
        ),
    ),
    "404 class": ({404}, lambda b: b.request("GET", "/nosuchclass")),
    "404 static": ({404}, lambda b: b.request("GET", "/@@file/nosuch.css")),
    "413": (
        {413},
        lambda b: b.rest("/rest/data/issue", {"title": "x" * (LIMIT + 1)}),
    ),
    "form post": (
        {302},
        lambda b: b.request(
            "POST",
            "/issue",
            {
                "Content-Type": "multipart/form-data; boundary=b0undary",
                **b.same_origin(),
            },
            multipart(
                {
                    "@action": "new",
                    "@csrf": b.token,
                    "title": "boom from the form",
                    "priority": "3",
                    "@note": "a message stored in db/files/msg",
                }
            ),
        ),
    ),
    "REST issue": (
        {201},
        lambda b: b.rest("/rest/data/issue", {"title": "boom from REST"}),
    ),
    "REST message": (
        {201},
        lambda b: b.rest("/rest/data/msg", {"content": "stored in db/files/msg"}),
    ),
}


def run_probes(browser: Browser) -> dict[str, Answer]:
    """Send every probe once (the form post uses the browser's token)."""
    return {name: probe(browser) for name, (_, probe) in PROBES.items()}


def check_answers(
    answers: dict[str, Answer], forbidden: list[str], fault: str | None
) -> None:
    problems = []
    for name, answer in answers.items():
        normal = PROBES[name][0]
        allowed = normal | ({500, 400} if fault == "auditor" else {503})
        if answer[0] not in allowed:
            problems.append(f"{name}: status {answer[0]} not in {sorted(allowed)}")
        found = leaks(answer, forbidden)
        if found:
            problems.append(f"{name} ({answer[0]}) shows {found}: {answer[2][:400]!r}")
    assert not problems, "\n".join(problems)


# -- the faults -------------------------------------------------------------------


@contextmanager
def storage_unwritable(home: Path) -> Iterator[None]:
    """The attachment store cannot be written: ``db/files/msg/0`` immutable."""
    with read_only(home / "db" / "files" / "msg" / "0"):
        yield


@contextmanager
def db_read_only(home: Path) -> Iterator[None]:
    with read_only(home / "db"):
        yield


@contextmanager
def disk_full(home: Path) -> Iterator[None]:
    """``db/files/msg/0`` on a 64 KiB tmpfs, filled up (root only)."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a tmpfs mount: needs root")
    mount = require_program("mount", "apt-get install mount")
    umount = require_program("umount", "apt-get install mount")
    directory = home / "db" / "files" / "msg" / "0"
    saved = {p.name: p.read_bytes() for p in directory.iterdir()}
    subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)], check=True
    )
    try:
        for name, data in saved.items():
            (directory / name).write_bytes(data)
        filler = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(filler, b"\0" * 4096):
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(filler)
        yield
    finally:
        subprocess.run([umount, str(directory)], check=True)


#: Faults that need nothing but the tracker home.
FAULTS: dict[str, Callable[[Path], object]] = {
    "storage unwritable": storage_unwritable,
    "db read-only": db_read_only,
    "disk full": disk_full,
}


def set_config(home: Path, **values: object) -> None:
    config = CoreConfig(str(home))
    for name, value in values.items():
        config[name] = value
    config.save(str(home / "config.ini"))


def in_process(home: Path) -> Browser:
    dispatcher = RequestDispatcher(
        str(home), max_request_body=LIMIT, reuse_db=False, write_mode="buffer"
    )
    browser = Browser(wsgi_send(dispatcher), "http://localhost/")
    browser.login()
    return browser


# -- in process ---------------------------------------------------------------------


def test_error_pages_without_a_fault(tracker_home: Path) -> None:
    """The probes give their error statuses; no page shows detail (the 400
    for a bad multipart body showed ``cgi``'s exception text)."""
    browser = in_process(tracker_home)
    answers = run_probes(browser)
    assert {name: a[0] for name, a in answers.items()} == {
        name: min(statuses) for name, (statuses, _) in PROBES.items()
    }
    check_answers(answers, forbidden_strings(tracker_home), None)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_error_pages_under_a_fault(
    fault: str, tracker_home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    browser = in_process(tracker_home)
    with (
        caplog.at_level(logging.ERROR, logger="roundup_wsgi"),
        FAULTS[fault](tracker_home),  # type: ignore[attr-defined]
    ):
        answers = run_probes(browser)
    check_answers(answers, forbidden_strings(tracker_home), fault)
    assert answers["form post"][0] == 503
    assert ("retry-after", "5") in answers["form post"][1]
    # The cause went to the log, on one line.
    causes = [r.getMessage() for r in caplog.records if "answered 503" in r.msg]
    assert causes, [r.getMessage() for r in caplog.records]
    assert all("\n" not in cause for cause in causes)


def test_error_pages_while_the_database_is_locked(
    locked_home: Path,  # noqa: F811
    request: pytest.FixtureRequest,
) -> None:
    browser = in_process(locked_home)
    request.getfixturevalue("write_lock")  # locked from here on
    answers = run_probes(browser)
    check_answers(answers, forbidden_strings(locked_home), "locked")
    assert answers["form post"][0] == 503
    assert answers["REST issue"][0] == 503


def test_error_pages_when_an_auditor_raises(tracker_home: Path) -> None:
    seeded.install_failing_auditor(tracker_home)
    answers = run_probes(in_process(tracker_home))
    check_answers(answers, forbidden_strings(tracker_home), "auditor")
    assert answers["form post"][0] == 500


@pytest.mark.slow
def test_error_pages_while_postgresql_is_stopped(tmp_path: Path) -> None:
    with pg.running_postgres(tmp_path / "pg") as postgres:
        home = pg.create_pg_tracker(
            postgres,
            tmp_path / "tracker",
            "roundup_error_pages",
            admin_password=seeded.ADMIN_PASSWORD,
            web="http://localhost/",
        )
        seeded.add_demo_user(home)
        browser = in_process(home)
        settings = postgres.rdbms_settings("roundup_error_pages")
        postgres.stop()
        answers = run_probes(browser)
        postgres.start()
    port = str(settings.get("port", ""))
    extra = ("127.0.0.1", f"port {port}", f":{port}") if port else ("127.0.0.1",)
    check_answers(answers, forbidden_strings(home, extra), "postgresql")
    assert answers["form post"][0] == 503


def test_debug_pages_show_the_detail(tracker_home: Path) -> None:
    """With ``[web] debug`` the 503 shows its cause (the path that cannot
    be written) and the 500 its traceback."""
    set_config(tracker_home, WEB_DEBUG=True)
    seeded.install_failing_auditor(tracker_home)
    browser = in_process(tracker_home)
    with storage_unwritable(tracker_home):
        stored = browser.rest("/rest/data/msg", {"content": "not stored"})
    assert stored[0] == 503
    assert b"Operation not permitted" in stored[2]
    assert str(tracker_home / "db" / "files" / "msg" / "0").encode() in stored[2]
    boom = PROBES["form post"][1](browser)
    assert boom[0] == 500
    assert b"Traceback" in boom[2]
    bad = PROBES["400 multipart boundary"][1](browser)
    assert bad[0] == 400
    assert b"Invalid boundary" in bad[2]


# -- under waitress ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("fault", [*sorted(FAULTS), "auditor"])
def test_error_pages_under_waitress(
    fault: str, tmp_path: Path, make_tracker: Callable[[str], Path]
) -> None:
    def home_for(web: str) -> Path:
        home = make_tracker(web)
        if fault == "auditor":
            seeded.install_failing_auditor(home)
        return home

    env = {
        "ROUNDUP_WSGI_MAX_REQUEST_BODY": str(LIMIT),
        "ROUNDUP_WSGI_REUSE_DB": "false",
    }
    name = "waitress-" + uuid.uuid4().hex[:6]
    with serve(waitress_command, home_for, tmp_path / "logs", name, env) as (
        server,
        home,
    ):
        browser = Browser(http_send(server.port), server.url)
        browser.login()
        with ExitStack() as stack:
            if fault in FAULTS:
                stack.enter_context(FAULTS[fault](home))  # type: ignore[arg-type]
            answers = run_probes(browser)
        log = server.stderr_log.read_text(errors="replace")
    check_answers(answers, forbidden_strings(home), fault)
    assert answers["form post"][0] == (500 if fault == "auditor" else 503)
    if fault != "auditor":
        assert "answered 503" in log, log[-2000:]
