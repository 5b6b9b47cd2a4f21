"""End-to-end tests: real WSGI servers (waitress, gunicorn, granian, hypercorn)
as subprocesses.

Every server is started once per configuration (module-scoped fixtures), on
its own copy of the seeded tracker whose ``[tracker] web`` is the server's
own URL, and stopped by PID afterwards; :func:`_no_leaked_servers` checks
that every process started here has exited.  Requests use ``requests``.

Besides the per-server suite there is a side-by-side comparison of
Roundup's stock dispatcher with ours under waitress, and tests showing the
problem we fix: stock Roundup under granian and hypercorn answers 500.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest
import requests
from helpers import seeded
from helpers.deploy import form_with
from helpers.servers import (
    OUR_APP,
    SERVERS,
    STOCK_APP,
    LocalSession,
    ServerError,
    ServerProcess,
    free_port,
    waitress_command,
)
from helpers.wsgi import normalise_body

pytestmark = pytest.mark.slow

#: Chunk size for streaming downloads.
CHUNK = 64 * 1024

SEEDED_TITLES = ("Sample issue one", "Issue with a big attachment")
#: issue3's title as stored, and as it must appear in HTML.
MARKUP_TITLE = "Title with <b>markup</b> & ampersand"
MARKUP_TITLE_HTML = "Title with &lt;b&gt;markup&lt;/b&gt; &amp; ampersand"

#: (server, write mode) combinations our dispatcher is tested under.
CONFIGS = [
    ("waitress", "buffer"),
    ("gunicorn", "buffer"),
    ("granian", "buffer"),
    ("waitress", "server"),
    ("granian", "server"),
    ("waitress", "stream"),
    ("granian", "stream"),
    ("hypercorn", "buffer"),
    ("hypercorn", "stream"),
]

#: Every server process this module started, checked by _no_leaked_servers.
_STARTED: list[ServerProcess] = []


#: A requests session that stays on 127.0.0.1 (see servers.LocalSession).
Session = LocalSession


@dataclass
class Served:
    """A running server and the tracker it serves."""

    name: str
    app: str
    write_mode: str | None
    home: Path
    process: ServerProcess
    #: How many unique titles :meth:`unique` has made.
    created: int = 0

    @property
    def web(self) -> str:
        """The tracker's base URL, ``http://127.0.0.1:PORT/``."""
        return self.process.url

    @property
    def origin(self) -> str:
        """The ``Origin`` a browser sends for pages of this tracker."""
        return self.web.rstrip("/")

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (relative to the tracker's base URL)."""
        return self.web + path.lstrip("/")

    def unique(self, text: str) -> str:
        """``text`` made unique per server and call (for new issue titles)."""
        self.created += 1
        mode = f"/{self.write_mode}" if self.write_mode else ""
        return f"{text} via {self.name}{mode} #{self.created}"


@pytest.fixture(scope="module", autouse=True)
def _no_leaked_servers() -> Iterator[None]:
    """After the module, every server process started here has exited."""
    yield
    running = [p for p in _STARTED if p.proc is not None and p.proc.poll() is None]
    assert not running, f"server processes still running: {running}"


class StartServer(Protocol):
    """Type of the :func:`start_server` fixture."""

    def __call__(
        self,
        name: str,
        app: str,
        write_mode: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Served:
        """Start ``app`` under server ``name`` on a fresh tracker copy, with
        ``extra_env`` in its environment."""
        ...


@pytest.fixture(scope="module")
def start_server(
    tmp_path_factory: pytest.TempPathFactory, tracker_template: Path
) -> Iterator[StartServer]:
    """A factory ``start(name, app, write_mode)`` of running servers, each on
    its own tracker copy (``[tracker] web`` = its URL), logs in a tmp dir;
    all are stopped by PID after the module."""
    started: list[ServerProcess] = []

    def start(
        name: str,
        app: str,
        write_mode: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> Served:
        label = f"{name}-{'stock' if app == STOCK_APP else 'ours'}"
        if write_mode:
            label += f"-{write_mode}"
        port = free_port()
        web = f"http://127.0.0.1:{port}/"
        base = tmp_path_factory.mktemp(label)
        home = seeded.copy_tracker(tracker_template, base / "tracker", web)
        env = {"ROUNDUP_TRACKER_HOME": str(home)}
        if write_mode:
            env["ROUNDUP_WSGI_WRITE_MODE"] = write_mode
        env.update(extra_env or {})
        process = ServerProcess(
            SERVERS[name](port, app), port, base / "logs", env=env, name=label
        )
        _STARTED.append(process)
        started.append(process)
        process.start()
        return Served(name, app, write_mode, home, process)

    try:
        yield start
    finally:
        for process in started:
            process.stop()
        for process in started:
            proc = process.proc
            assert proc is None or proc.poll() is not None, (
                f"{process.name} (pid {proc.pid}) still runs"
            )


@pytest.fixture(scope="module", params=CONFIGS, ids=[f"{n}-{m}" for n, m in CONFIGS])
def served(
    request: pytest.FixtureRequest, start_server: StartServer
) -> Iterator[Served]:
    """Our dispatcher under one (server, write mode), started once per config."""
    name, mode = request.param
    server = start_server(name, OUR_APP, mode)
    try:
        yield server
    finally:
        server.process.stop()
        assert server.process.stopped


@pytest.fixture
def anon() -> Iterator[Session]:
    """An anonymous HTTP client (no login, no cookies carried between tests)."""
    with Session() as session:
        yield session


# -- helpers -----------------------------------------------------------------


def logged_in_as(html: str) -> str | None:
    """The user name the classic page greets (``Hello, NAME``), if any."""
    match = re.search(r"<b>Hello, ([^<]+)</b>", html)
    return match.group(1).strip() if match else None


def login(server: Served, session: Session, user: str, password: str) -> str:
    """Log in through the classic page's login form; return the reply page."""
    front = session.get(server.web)
    assert front.status_code == 200
    fields = form_with(front.text, "__login_name")
    assert fields["@action"].lower() == "login"
    reply = session.post(
        server.web,
        data={
            "__login_name": user,
            "__login_password": password,
            "@action": "login",
            "@csrf": fields["@csrf"],
        },
        headers={"Referer": server.web, "Origin": server.origin},
        allow_redirects=False,
    )
    assert reply.status_code == 200, reply.text[:2000]
    return reply.text


def get_big_file(
    served: Served, anon: Session, headers: dict[str, str]
) -> requests.Response:
    """The seeded big attachment (``file2``), streamed, with ``headers``."""
    return anon.get(
        served.url(f"file2/{seeded.BIG_FILE_NAME}"), headers=headers, stream=True
    )


def download(response: requests.Response) -> bytes:
    """The body of a streamed response, read in :data:`CHUNK` pieces."""
    with response:
        return b"".join(response.iter_content(CHUNK))


def admin_auth() -> tuple[str, str]:
    """Basic-auth credentials of the seeded admin user."""
    return ("admin", seeded.ADMIN_PASSWORD)


# -- our dispatcher under each server ----------------------------------------


class TestOursUnderServers:
    """Our dispatcher behind waitress, gunicorn, granian and hypercorn (write
    modes as in :data:`CONFIGS`)."""

    def test_front_page_lists_issues(self, served: Served, anon: Session) -> None:
        r = anon.get(served.web)
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/html")
        for title in SEEDED_TITLES:
            assert title in r.text
        assert MARKUP_TITLE_HTML in r.text
        assert logged_in_as(r.text) is None

    def test_issue_list(self, served: Served, anon: Session) -> None:
        r = anon.get(served.url("issue"))
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/html")
        assert "List of issues" in r.text
        for title in SEEDED_TITLES:
            assert title in r.text
        assert '<a href="issue1">Sample issue one</a>' in r.text
        assert MARKUP_TITLE_HTML in r.text
        assert MARKUP_TITLE not in r.text

    def test_issue_item(self, served: Served, anon: Session) -> None:
        r = anon.get(served.url("issue1"))
        assert r.status_code == 200
        assert "Sample issue one" in r.text
        assert "First message." in r.text
        assert seeded.SMALL_FILE_NAME in r.text

    def test_static_file(self, served: Served, anon: Session) -> None:
        r = anon.get(served.url("@@file/style.css"))
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/css")
        assert r.content == (served.home / "html" / "style.css").read_bytes()

    def test_big_attachment_streams(self, served: Served, anon: Session) -> None:
        r = get_big_file(served, anon, {"Accept-Encoding": "identity"})
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.headers["Content-Length"] == str(seeded.BIG_FILE_SIZE)
        assert "Content-Encoding" not in r.headers
        body = download(r)
        assert len(body) == seeded.BIG_FILE_SIZE
        assert body == seeded.big_file_bytes()

    def test_big_attachment_accepting_gzip(self, served: Served, anon: Session) -> None:
        """A client accepting gzip gets the attachment gzipped, as from
        Roundup's own handler, but compressed as it is sent (no
        Content-Length: the server frames it); decoded, the exact bytes."""
        r = get_big_file(served, anon, {"Accept-Encoding": "gzip"})
        assert r.status_code == 200
        assert r.headers["Content-Encoding"] == "gzip"
        assert r.headers["Vary"] == "Accept-Encoding"
        assert "Content-Length" not in r.headers
        assert download(r) == seeded.big_file_bytes()  # requests decodes gzip

    def test_big_attachment_range(self, served: Served, anon: Session) -> None:
        r = get_big_file(
            served, anon, {"Range": "bytes=1000-1999", "Accept-Encoding": "identity"}
        )
        assert r.status_code == 206
        assert r.headers["Content-Range"] == f"bytes 1000-1999/{seeded.BIG_FILE_SIZE}"
        assert r.headers["Content-Length"] == "1000"
        assert download(r) == seeded.big_file_bytes()[1000:2000]

    def test_small_attachment(self, served: Served, anon: Session) -> None:
        r = anon.get(served.url(f"file1/{seeded.SMALL_FILE_NAME}"))
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        assert r.content == seeded.SMALL_FILE_BYTES

    def test_not_found(self, served: Served, anon: Session) -> None:
        r = anon.get(served.url("nosuchclass"))
        assert r.status_code == 404
        assert r.text == "Not found: nosuchclass"

    def test_options_outside_rest_is_501(self, served: Served, anon: Session) -> None:
        r = anon.options(served.web)
        assert r.status_code == 501
        assert r.headers["Content-Type"].startswith("text/html")
        assert "501" in r.text
        assert "<html" in r.text.lower()

    def test_head(self, served: Served, anon: Session) -> None:
        r = anon.head(served.url("issue"))
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/html")
        assert r.content == b""

    def test_head_static_file(self, served: Served, anon: Session) -> None:
        r = anon.head(served.url("@@file/style.css"))
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/css")
        assert r.content == b""

    def test_not_modified_from_if_none_match(
        self, served: Served, anon: Session
    ) -> None:
        """A browser revalidating style.css: 304, no body (hypercorn sends no
        status line for an empty app_iter)."""
        first = anon.get(served.url("@@file/style.css"))
        assert first.status_code == 200
        etag = first.headers["ETag"]
        again = anon.get(
            served.url("@@file/style.css"), headers={"If-None-Match": etag}
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["ETag"] == etag

    def test_rest_get_collection(self, served: Served, anon: Session) -> None:
        r = anon.get(served.url("rest/data/issue"), auth=admin_auth())
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("application/json")
        collection = r.json()["data"]["collection"]
        ids = {item["id"] for item in collection}
        assert {"1", "2", "3"} <= ids
        assert {item["link"] for item in collection} >= {
            served.url(f"rest/data/issue/{n}") for n in ("1", "2", "3")
        }

    def test_rest_get_needs_auth(self, served: Served, anon: Session) -> None:
        """Control: the REST data is not public, so the auth above mattered."""
        r = anon.get(served.url("rest/data/issue/1"))
        assert r.status_code in (401, 403)

    def test_web_login(self, served: Served, anon: Session) -> None:
        with Session() as session:
            page = login(served, session, seeded.DEMO_USER, seeded.DEMO_PASSWORD)
            assert logged_in_as(page) == seeded.DEMO_USER
            assert session.cookies, "no session cookie was set"
            again = session.get(served.url("issue"))
            assert again.status_code == 200
            assert logged_in_as(again.text) == seeded.DEMO_USER
        # A fresh client is still anonymous.
        assert logged_in_as(anon.get(served.web).text) is None

    def test_web_login_wrong_password(self, served: Served, anon: Session) -> None:
        with Session() as session:
            page = login(served, session, seeded.DEMO_USER, "not-the-password")
            assert logged_in_as(page) is None
            assert "Invalid login" in page

    def test_create_issue_web_form(self, served: Served, anon: Session) -> None:
        title = served.unique("Web form issue")
        with Session() as session:
            login(served, session, seeded.DEMO_USER, seeded.DEMO_PASSWORD)
            form_page = session.get(served.url("issue?@template=item"))
            assert form_page.status_code == 200
            fields = form_with(form_page.text, "title")
            assert fields["@action"] == "new"
            created = session.post(
                served.url("issue"),
                data={
                    "title": title,
                    "@action": "new",
                    "@csrf": fields["@csrf"],
                    "@template": "item",
                },
                headers={
                    "Referer": served.url("issue?@template=item"),
                    "Origin": served.origin,
                },
                allow_redirects=False,
            )
            assert created.status_code in (302, 303), created.text[:2000]
            location = created.headers["Location"]
            match = re.match(re.escape(served.web) + r"issue(\d+)\b", location)
            assert match, location
            issue = session.get(location)
            assert issue.status_code == 200
            assert title in issue.text
            assert f"issue {match.group(1)} created" in issue.text
        anonymous = anon.get(served.url("issue"))
        assert title in anonymous.text

    def test_create_issue_rest(self, served: Served, anon: Session) -> None:
        title = served.unique("REST issue")
        r = anon.post(
            served.url("rest/data/issue"),
            json={"title": title},
            auth=admin_auth(),
            headers={
                "Origin": served.origin,
                "Referer": served.web,
                "X-Requested-With": "rest",
                "Content-Type": "application/json",
            },
        )
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        assert data["link"] == served.url(f"rest/data/issue/{data['id']}")
        fetched = anon.get(data["link"], auth=admin_auth())
        assert fetched.status_code == 200
        assert fetched.json()["data"]["attributes"]["title"] == title
        page = anon.get(served.url(f"issue{data['id']}"))
        assert page.status_code == 200
        assert title in page.text


# -- stock Roundup next to ours ----------------------------------------------

#: The requests compared stock vs ours: (method, path, use admin auth).
SIDE_BY_SIDE = [
    ("GET", "", False),
    ("GET", "issue", False),
    ("GET", "issue1", False),
    ("GET", "@@file/style.css", False),
    ("GET", f"file1/{seeded.SMALL_FILE_NAME}", False),
    ("GET", "nosuchclass", False),
    ("HEAD", "issue", False),
    ("GET", "rest/data/issue", True),
]


def _stock_and_ours(
    start_server: StartServer, server: str
) -> Iterator[tuple[Served, Served]]:
    """Stock Roundup and ours under ``server``, each on its own tracker copy."""
    stock = start_server(server, STOCK_APP)
    ours = start_server(server, OUR_APP, "buffer")
    try:
        yield stock, ours
    finally:
        stock.process.stop()
        ours.process.stop()
        assert stock.process.stopped
        assert ours.process.stopped


@pytest.fixture(scope="module")
def stock_and_ours_waitress(
    start_server: StartServer,
) -> Iterator[tuple[Served, Served]]:
    """Stock Roundup and ours under waitress."""
    yield from _stock_and_ours(start_server, "waitress")


def _fetch(
    anon: Session, server: Served, method: str, path: str, auth: bool
) -> requests.Response:
    """One side-by-side request."""
    return anon.request(
        method,
        server.url(path),
        auth=admin_auth() if auth else None,
        allow_redirects=False,
    )


def test_normalise_masks_what_varies(
    stock_and_ours_waitress: tuple[Served, Served], anon: Session
) -> None:
    """Two requests to the same server differ raw but agree once normalised."""
    stock, _ = stock_and_ours_waitress
    first = _fetch(anon, stock, "GET", "", False)
    second = _fetch(anon, stock, "GET", "", False)
    assert first.content != second.content  # nonces and CSRF tokens differ
    assert normalise_body(first.content, stock.web) == normalise_body(
        second.content, stock.web
    )
    assert b"NONCE" in normalise_body(first.content, stock.web)
    assert b'value="CSRF"' in normalise_body(first.content, stock.web)


@pytest.mark.parametrize(
    ("method", "path", "auth"),
    SIDE_BY_SIDE,
    ids=[f"{m}-/{p}" for m, p, _ in SIDE_BY_SIDE],
)
def test_side_by_side_with_stock(
    stock_and_ours_waitress: tuple[Served, Served],
    anon: Session,
    method: str,
    path: str,
    auth: bool,
) -> None:
    """Ours answers like stock Roundup: same status, Content-Type and body."""
    stock, ours = stock_and_ours_waitress
    want = _fetch(anon, stock, method, path, auth)
    got = _fetch(anon, ours, method, path, auth)
    assert got.status_code == want.status_code
    assert got.headers.get("Content-Type") == want.headers.get("Content-Type")
    want_body = normalise_body(want.content, stock.web)
    got_body = normalise_body(got.content, ours.web)
    assert got_body == want_body
    if method == "GET" and want.status_code == 200:
        assert len(want.content) > 20  # the comparison covered a real page


# -- the problem we fix ------------------------------------------------------


@pytest.fixture(scope="module", params=["granian", "hypercorn"])
def stock_and_ours_none_returned(
    request: pytest.FixtureRequest, start_server: StartServer
) -> Iterator[tuple[Served, Served]]:
    """Stock Roundup and ours under a server whose ``start_response``
    returns None (granian; hypercorn's WSGI)."""
    yield from _stock_and_ours(start_server, request.param)


def test_stock_fails_ours_works(
    stock_and_ours_none_returned: tuple[Served, Served],
    anon: Session,
    request: pytest.FixtureRequest,
) -> None:
    """granian's and hypercorn's WSGI ``start_response`` return None: stock
    Roundup can't write its pages (docs/deployment/index.rst, "Servers
    tried"); ours answers pages, HEAD and 304 alike."""
    server = request.node.callspec.params["stock_and_ours_none_returned"]
    stock, ours = stock_and_ours_none_returned
    broken = anon.get(stock.url("issue"))
    assert broken.status_code == 500
    if server == "granian":
        assert "start_response() not called" in stock.process.log_tail(200)
    fixed = anon.get(ours.url("issue"))
    assert fixed.status_code == 200
    for title in SEEDED_TITLES:
        assert title in fixed.text
    if server == "granian":
        assert MARKUP_TITLE_HTML in fixed.text
    else:
        assert anon.head(ours.url("issue")).status_code == 200


def test_hypercorn_empty_bodies_with_access_log_and_metrics(
    start_server: StartServer, anon: Session
) -> None:
    """The access log and metrics pass the application a ``start_response``
    of their own (finish hooks); HEAD and a 304 still start the response on
    hypercorn, which waits for the first chunk of the app_iter."""
    served = start_server(
        "hypercorn",
        OUR_APP,
        "buffer",
        {"ROUNDUP_WSGI_ACCESS_LOG": "on", "ROUNDUP_WSGI_METRICS": "on"},
    )
    assert anon.head(served.url("issue")).status_code == 200
    first = anon.get(served.url("@@file/style.css"))
    assert first.status_code == 200
    again = anon.get(
        served.url("@@file/style.css"), headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    # The access-log line is written when the app_iter is closed, which may
    # be just after the client has its answer.
    wanted = ('"HEAD /issue HTTP/1.1" 200', '"GET /@@file/style.css HTTP/1.1" 304')
    deadline = time.monotonic() + 10.0
    log = served.process.log_tail(200)
    while not all(line in log for line in wanted) and time.monotonic() < deadline:
        time.sleep(0.1)
        log = served.process.log_tail(200)
    for line in wanted:
        assert line in log


# -- the harness itself ------------------------------------------------------


def test_harness_fails_early_with_log_tail(tmp_path: Path) -> None:
    """A server that exits at start-up is reported at once, with its log."""
    port = free_port()
    # an application that cannot be imported (roundup_wsgi.app:application
    # builds on its first request now, so a wrong tracker home fails later)
    missing = "no_such_module_for_the_harness_test"
    process = ServerProcess(
        waitress_command(port, f"{missing}:application"),
        port,
        tmp_path / "logs",
        name="doomed",
        start_timeout=60,
    )
    _STARTED.append(process)
    started = time.monotonic()
    with pytest.raises(ServerError, match="exited with status") as failure:
        process.start()
    assert time.monotonic() - started < 30  # did not wait for the timeout
    assert str(missing) in str(failure.value)  # the log tail names the cause
    assert process.proc is not None
    assert process.proc.poll() is not None
