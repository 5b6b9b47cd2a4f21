"""Hostile static-file and attachment paths (issue 19, classes 1 and 4).

A tracker with sentinel bytes planted where no request may reach them: in
``config.ini``, in ``db/``, in directories beside the static ones
(``html_private`` beside ``templates = html``, ``static1_private`` beside
``static_files = static1``, and the neighbour of an absolute
``static_files`` directory outside the tracker) and in a file outside the
tracker.  Every path below (a fixed list, then hypothesis over ``@@file/``,
``_file/`` and ``file1/name`` from an alphabet of ``%00``, ``%0a``,
``%0d``, ``%2e``, ``%2f``, ``%5c``, overlong UTF-8, UTF-8 lone surrogates
and over-long segments) must answer 200, 304, 403, 404 or 416, never 5xx;
no sentinel byte may be in a header or a body, gzip-compressed or not; and
no log record made for it may hold a line break (a ``%0a`` in a path
wrote a line of the client's choice into the error log).

Run in process (our dispatcher with the static fast path, through
Roundup's ``Client``, and a second time from the response cache; Roundup's
own dispatcher beside them) and under waitress, gunicorn and granian, sent
as raw bytes (client libraries normalise paths).  Where Roundup's answer
keeps these rules, ours must be the same status (and bytes for a 200).
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

import pytest
from helpers import seeded
from helpers.servers import (
    OUR_APP,
    SERVERS,
    STOCK_APP,
    ServerProcess,
    free_port,
    raw_fetch,
)
from helpers.wsgi import call_wsgi, make_environ
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher
from roundup.configuration import CoreConfig

from roundup_wsgi import RequestDispatcher, static, staticanswer

#: Bytes planted where no request may read them, by where they are.
SENTINELS = {
    "config": b"SENTINEL-7c1e-config",
    "db": b"SENTINEL-7c1e-db",
    "html_private": b"SENTINEL-7c1e-html-private",
    "static1_private": b"SENTINEL-7c1e-static1-private",
    "abs_private": b"SENTINEL-7c1e-absolute-neighbour",
    "outside": b"SENTINEL-7c1e-outside",
}
#: Bytes that only the tracker's own secret files hold.
SECRETS = (b"[tracker]", b"SQLite format 3", b"root:x:0:0", b"def open(")
#: In a path after ``%0a``: a log line starting with it was forged.
FORGED = "FORGED-7c1e"
#: Statuses a static or attachment request may answer.
ALLOWED = {200, 304, 403, 404, 416}

#: Paths (as on the wire) that leave a static directory for a sibling,
#: which Roundup 2.4-2.7 serve (class 4).
SIBLING_PATHS = [
    "/@@file/../html_private/secret.txt",
    "/@@file/%2e%2e/html_private/secret.txt",
    "/@@file/%2e%2e%2fhtml_private%2fsecret.txt",
    "/_file/..%2fhtml_private/secret.txt",
    "/_file/../static1_private/secret.txt",
    "/@@file/../static_abs_private/secret.txt",
    "/@@file/x/../../html_private/secret.txt",
]
#: Paths the filesystem cannot take (class 1): NUL, and a log line forged
#: with CR/LF around it.
UNMAPPABLE_PATHS = [
    "/@@file/style.css%00.html",
    "/_file/style.css%00",
    f"/@@file/x%0a{FORGED}:roundup_wsgi:forged%00",
    f"/@@file/x%0d%0a{FORGED}%00/y",
    "/@@file/%00",
]
#: More hostile paths for every server (404 or a file inside); the first
#: ones were tests/scenarios/test_security.py's.
OTHER_PATHS = [
    "/@@file/style.css",
    "/@@file/../config.ini",
    "/@@file/..%2fconfig.ini",
    "/@@file/%2e%2e/config.ini",
    "/@@file/%2e%2e%2fconfig.ini",
    "/@@file/%252e%252e/config.ini",
    "/@@file/....//config.ini",
    "/@@file/../../../../../../etc/passwd",
    "/@@file//etc/passwd",
    "/@@file/%2fetc%2fpasswd",
    "/@@file/style.css%00../../config.ini",
    "/_file/../config.ini",
    "/_file/../db/db",
    "/@@file/../db/db",
    "/@@file/../schema.py",
    "/@@file/html/../../config.ini",
    "/@@file/..%5cconfig.ini",
    "/@@file/%c0%ae%c0%ae/config.ini",
    "/@@file/%c0%ae%c0%ae%c0%afconfig.ini",
    "/@@file/%ed%a0%80",
    "/@@file/%ed%b2%80.css",
    "/@@file/" + "a" * 300,
    "/@@file/" + "b" * 300 + "/style.css",
    "/@@file/../db/sentinel.txt",
    "/@@file/../../outside/secret.txt",
    "/@@file/static_abs.css",
    "/_file/only1.css",
    "/file1/hello.txt",
    "/file1/..%2f..%2fconfig.ini",
    "/file1/%00",
    "/file1/" + "c" * 300,
    f"/file1/x%0a{FORGED}",
]
FIXED_PATHS = SIBLING_PATHS + UNMAPPABLE_PATHS + OTHER_PATHS


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, tracker_template: Path) -> Path:
    """The seeded tracker with sentinels planted around its static
    directories (``static_files = static1 <absolute>/static_abs``)."""
    base = tmp_path_factory.mktemp("static-paths")
    home = seeded.copy_tracker(tracker_template, base / "tracker", "http://localhost/")
    # The seeded interfaces.py overrides Client.main, which turns the
    # static fast path off: without it both paths are tested.
    (home / "interfaces.py").unlink()
    outside = base / "outside"
    (outside / "static_abs").mkdir(parents=True)
    (outside / "static_abs" / "static_abs.css").write_bytes(b"/* absolute */\n")
    (outside / "static_abs_private").mkdir()
    (outside / "static_abs_private" / "secret.txt").write_bytes(
        SENTINELS["abs_private"]
    )
    (outside / "secret.txt").write_bytes(SENTINELS["outside"])
    (home / "static1").mkdir()
    (home / "static1" / "only1.css").write_bytes(b"/* static1 */\n")
    for name in ("html_private", "static1_private"):
        (home / name).mkdir()
        (home / name / "secret.txt").write_bytes(SENTINELS[name])
    (home / "db" / "sentinel.txt").write_bytes(SENTINELS["db"])
    config = CoreConfig(str(home))
    config["STATIC_FILES"] = f"static1 {outside / 'static_abs'}"
    config.save(str(home / "config.ini"))
    with open(home / "config.ini", "ab") as file:
        file.write(b"\n# " + SENTINELS["config"] + b"\n")
    return home


# -- the rules every answer keeps ---------------------------------------------


def decoded(headers: list[tuple[str, str]], body: bytes) -> bytes:
    """``body`` decompressed when its ``Content-Encoding`` is gzip/deflate
    (RFC 9110 8.4.1), else as it is."""
    coding = next((v for k, v in headers if k.lower() == "content-encoding"), "")
    if "gzip" in coding.lower() and body:
        return gzip.decompress(body)
    if "deflate" in coding.lower() and body:
        return zlib.decompress(body)
    return body


def leaked(headers: list[tuple[str, str]], body: bytes) -> list[bytes]:
    """The sentinel and secret bytes in the headers or the body."""
    text = "\n".join(f"{k}: {v}" for k, v in headers).encode("utf-8", "replace")
    bodies = (body, decoded(headers, body), text)
    return [
        secret
        for secret in (*SENTINELS.values(), *SECRETS)
        if any(secret in part for part in bodies)
    ]


def check(
    target: str, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    """The invariant: an allowed status, nothing planted in the answer."""
    assert status in ALLOWED, (target, status, body[:300])
    assert not leaked(headers, body), (target, status, leaked(headers, body))


def right(status: int, headers: list[tuple[str, str]], body: bytes) -> bool:
    """True if an answer (stock Roundup's) keeps the invariant."""
    return status in ALLOWED and not leaked(headers, body)


# -- in process ---------------------------------------------------------------


class Records(logging.Handler):
    """Keeps every log record (any logger, any level)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def records() -> Iterator[Records]:
    """The log records made while the test runs, DEBUG and up."""
    handler = Records()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def one_line_messages(records: Records) -> None:
    """No record's message has a line break (``str.splitlines``' breaks)."""
    for record in records.records:
        message = record.getMessage()
        assert len(message.splitlines()) <= 1, (record.name, message)


#: The dispatchers answering in process: ours with the static fast path,
#: ours through Roundup's ``Client`` for every request, and Roundup's.
APPS: dict[str, Callable[[str], Any]] = {
    "fast": lambda home: RequestDispatcher(home),
    "client": lambda home: RequestDispatcher(home, static_fast_path=False),
}


@pytest.fixture(scope="module")
def apps(home: Path) -> dict[str, Any]:
    made = {name: make(str(home)) for name, make in APPS.items()}
    made["stock"] = StockDispatcher(str(home))
    return made


def environ_for(target: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The environ a server makes of ``GET target``: the path
    percent-decoded to bytes, then latin-1 (PEP 3333, "Unicode Issues")."""
    path, _, query = target.partition("?")
    environ = make_environ("GET", "/", headers)
    environ["PATH_INFO"] = unquote_to_bytes(path).decode("latin-1")
    environ["QUERY_STRING"] = query
    return environ


def ask(
    app: Any, target: str, headers: dict[str, str] | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    result = call_wsgi(app, environ_for(target, headers), server_write=True)
    return int(result.status[:3]), result.headers, result.body


@pytest.mark.parametrize("target", SIBLING_PATHS)
@pytest.mark.parametrize("app_name", ["fast", "client"])
def test_sibling_directories_are_never_served(
    apps: dict[str, Any], app_name: str, target: str
) -> None:
    """Class 4: ``html_private`` beside ``html``, ``static1_private`` beside
    ``static1`` and an absolute directory's neighbour answer 404 (Roundup
    2.4-2.7 serve them), also asked again (the response cache)."""
    for _ in range(2):
        status, headers, body = ask(apps[app_name], target)
        assert status == 404, (target, status, body[:200])
        assert not leaked(headers, body)
    cache = apps[app_name].response_cache
    if cache is not None:
        environ = environ_for(target)
        key = staticanswer.response_cache_key(environ, environ["PATH_INFO"][1:])
        assert key is not None
        assert cache.get(key) is None


@pytest.mark.parametrize("target", UNMAPPABLE_PATHS)
@pytest.mark.parametrize("app_name", ["fast", "client"])
def test_paths_the_filesystem_rejects_answer_404(
    apps: dict[str, Any], records: Records, app_name: str, target: str
) -> None:
    """Class 1: a NUL byte (``os.stat``'s ``ValueError``) answers 404 as
    Roundup's own dispatcher does, not 500; nothing logged breaks a line."""
    for _ in range(2):  # the second time past the response cache
        status, _, body = ask(apps[app_name], target)
        assert status == 404, (target, status, body[:200])
    assert ask(apps["stock"], target)[0] == 404
    one_line_messages(records)


def test_the_control_files_are_served(apps: dict[str, Any], home: Path) -> None:
    """What is inside the static directories is still served: from
    ``static1``, from the absolute directory, from ``html``."""
    for target, file in (
        ("/_file/only1.css", home / "static1" / "only1.css"),
        ("/@@file/static_abs.css", home.parent / "outside/static_abs/static_abs.css"),
        ("/@@file/style.css", home / "html" / "style.css"),
        ("/@@file/x/../style.css", home / "html" / "style.css"),
    ):
        for name in ("fast", "client", "stock"):
            status, _, body = ask(apps[name], target)
            assert (status, body) == (200, file.read_bytes()), (name, target)


def test_a_symlink_inside_a_static_directory_is_followed(home: Path) -> None:
    """Roundup's behaviour kept: a link the admin put in a static directory
    is served wherever it points (the check is on the path, not the
    resolved file)."""
    link = home / "static1" / "linked.txt"
    link.symlink_to(home.parent / "outside" / "secret.txt")
    try:
        for make in APPS.values():
            status, _, body = ask(make(str(home)), "/_file/linked.txt")
            assert (status, body) == (200, SENTINELS["outside"])
    finally:
        link.unlink()


#: An interfaces.py whose Client fails on chosen paths, so the dispatcher
#: logs them: ``boom...`` (500) and ``down...`` (503, the path in the cause).
FAILING_INTERFACES = """
import sqlite3

from roundup.cgi import client


class Client(client.Client):
    def main(self):
        if self.path.startswith("boom"):
            raise RuntimeError("boom")
        if self.path.startswith("down"):
            raise sqlite3.OperationalError("database is locked " + self.path)
        return client.Client.main(self)
"""


@pytest.mark.parametrize(
    ("target", "code"),
    [
        (f"/boom%0a{FORGED}:roundup_wsgi:forged", 500),
        (f"/boom%0d{FORGED}%1b[2J", 500),
        (f"/down%0a{FORGED}", 503),
        (f"/@@file/x%0a{FORGED}%00", 404),
    ],
)
def test_log_lines_escape_the_request(
    tmp_path: Path,
    tracker_template: Path,
    records: Records,
    monkeypatch: pytest.MonkeyPatch,
    target: str,
    code: int,
) -> None:
    """Class 1, the log: the dispatcher's error lines (500, 503) and its
    fast-path debug line show the path escaped (``\\x0a``), as the access
    log does, so ``%0a`` cannot start a forged line."""
    home = seeded.copy_tracker(tracker_template, tmp_path / "t", "http://localhost/")
    (home / "interfaces.py").write_text(FAILING_INTERFACES)
    app = RequestDispatcher(str(home))
    if target.startswith("/@@file/"):
        # The fast path failing (its debug line) for a tracker that has it.
        (home / "interfaces.py").unlink()
        app = RequestDispatcher(str(home))

        def broken(client: Any) -> None:
            raise RuntimeError("fast path broken")

        monkeypatch.setattr(static, "serve_static_file", broken)
    status, _, _ = ask(app, target)
    assert status == code
    ours = [r for r in records.records if r.name.startswith("roundup_wsgi")]
    assert ours, "nothing logged"
    assert any(FORGED in r.getMessage() for r in ours)
    one_line_messages(records)


# -- hypothesis ---------------------------------------------------------------

#: Pieces of a path segment, as on the wire.
ATOMS = [
    "%00",
    "%0a",
    "%0d",
    "%2e",
    "%2e%2e",
    "..",
    ".",
    "%2f",
    "%5c",
    "%c0%ae",  # overlong ".", UTF-8 (RFC 3629 forbids it)
    "%c0%af",  # overlong "/"
    "%e0%80%ae",  # 3-byte overlong "."
    "%ed%a0%80",  # a lone surrogate (U+D800) in UTF-8
    "%ed%b2%80",
    "%ff",
    "a" * 260,  # over NAME_MAX (255): ENAMETOOLONG
    "html",
    "html_private",
    "static1",
    "static1_private",
    "static_abs",
    "static_abs_private",
    "outside",
    "secret.txt",
    "config.ini",
    "db",
    "sentinel.txt",
    "style.css",
    "only1.css",
    FORGED,
]
PREFIXES = ["/@@file/", "/_file/", "/file1/", "/@@file/..%2f", "/_file/%2e%2e/"]


@st.composite
def targets(draw: st.DrawFn) -> str:
    """A request target of at most 3000 bytes (gunicorn's request line
    limit is 4094)."""
    segment = st.lists(st.sampled_from(ATOMS), min_size=1, max_size=3).map("".join)
    segments = draw(st.lists(segment, min_size=1, max_size=4))
    target = draw(st.sampled_from(PREFIXES)) + "/".join(segments)
    return target[:3000]


ACCEPT = st.sampled_from([None, "gzip", "gzip, br"])


def same_as_stock(
    ours: tuple[int, list[tuple[str, str]], bytes],
    stock: tuple[int, list[tuple[str, str]], bytes],
) -> bool:
    """Ours equals stock's answer where stock's is right: the status, and
    for a 200 the decoded bytes."""
    if not right(*stock):
        return True
    if ours[0] != stock[0]:
        return False
    return ours[0] != 200 or decoded(ours[1], ours[2]) == decoded(stock[1], stock[2])


@settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=targets(), accept=ACCEPT)
def test_hostile_paths_in_process(
    apps: dict[str, Any], records: Records, target: str, accept: str | None
) -> None:
    headers = {"Accept-Encoding": accept} if accept else {}
    records.records.clear()
    try:
        stock = ask(apps["stock"], target, headers)
    except Exception:  # Roundup's handler raises for some (its 500)
        stock = (500, [], b"")
    for name in ("fast", "client"):
        for _ in range(2):  # the second time past the response cache
            answer = ask(apps[name], target, headers)
            check(target, *answer)
            assert same_as_stock(answer, stock), (name, target, answer[0], stock[0])
    one_line_messages(records)


# -- real servers -------------------------------------------------------------

#: The servers our application runs under here (stock: waitress only; its
#: write callable fails under granian).
REAL_SERVERS = ["waitress", "gunicorn", "granian"]


def start(base: Path, home: Path, name: str, app: str) -> Iterator[ServerProcess]:
    port = free_port()
    process = ServerProcess(
        SERVERS[name](port, app),
        port,
        base / f"{name}-{app.split(':')[0]}",
        env={"ROUNDUP_TRACKER_HOME": str(home)},
        name=name,
    )
    with process:
        yield process
    assert process.stopped


@pytest.fixture(scope="module", params=REAL_SERVERS)
def server(
    request: pytest.FixtureRequest,
    home: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    """Our application under one real server (one at a time)."""
    yield from start(tmp_path_factory.mktemp("logs"), home, request.param, OUR_APP)


@pytest.fixture(scope="module")
def stock_server(
    home: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Roundup's own dispatcher under waitress, for comparison."""
    yield from start(tmp_path_factory.mktemp("logs"), home, "waitress", STOCK_APP)


def fetch(
    process: ServerProcess, target: str, accept: str | None = None
) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = {"Host": f"127.0.0.1:{process.port}"}
    if accept:
        headers["Accept-Encoding"] = accept
    return raw_fetch(process.port, "GET", target, headers)


#: A log line a ``%0a`` in a path started.
FORGED_LINE = re.compile(rf"^{FORGED}", re.MULTILINE)


def no_forged_lines(process: ServerProcess) -> None:
    """Neither of the server's logs has a line the client started."""
    for log in (process.stderr_log, process.stdout_log):
        text = log.read_text(errors="replace") if log.exists() else ""
        assert not FORGED_LINE.search(text), process.log_tail()


@pytest.mark.slow
def test_unmappable_paths_under_real_servers(server: ServerProcess) -> None:
    """Class 1 on the wire: NUL (``%00``) answers 404, and the CR/LF
    around it start no line in the server's logs."""
    answers = {target: fetch(server, target)[0] for target in UNMAPPABLE_PATHS}
    no_forged_lines(server)
    assert set(answers.values()) == {404}, (server.name, answers)


@pytest.mark.slow
def test_hostile_paths_under_real_servers(
    server: ServerProcess, stock_server: ServerProcess
) -> None:
    """The fixed paths, plain and with gzip: the invariant (class 4's
    siblings: 404), stock's answer where stock is right, no forged line."""
    for target in FIXED_PATHS:
        for accept in (None, "gzip"):
            answer = fetch(server, target, accept)
            check(f"{server.name} {target}", *answer)
            stock = fetch(stock_server, target, accept)
            assert same_as_stock(answer, stock), (target, answer[0], stock[0])
    for target in SIBLING_PATHS:
        assert fetch(server, target)[0] == 404, target
    no_forged_lines(server)


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=targets(), accept=ACCEPT)
def test_hypothesis_paths_under_real_servers(
    server: ServerProcess, target: str, accept: str | None
) -> None:
    check(f"{server.name} {target}", *fetch(server, target, accept))
    no_forged_lines(server)


def test_sentinels_are_planted(home: Path) -> None:
    """The control: each sentinel is where the paths above aim."""
    outside = home.parent / "outside"
    assert SENTINELS["config"] in (home / "config.ini").read_bytes()
    assert (home / "db" / "sentinel.txt").read_bytes() == SENTINELS["db"]
    assert (home / "html_private" / "secret.txt").exists()
    assert (home / "static1_private" / "secret.txt").exists()
    assert (outside / "static_abs_private" / "secret.txt").exists()
    assert os.path.isfile(outside / "secret.txt")


@pytest.mark.parametrize(
    ("filename", "directory", "inside"),
    [
        ("/t/html/style.css", "/t/html", True),
        ("/t/html/a/b.css", "/t/html/", True),
        ("/t/html_private/secret.txt", "/t/html", False),
        ("/t/html", "/t/html", False),
        ("/etc/passwd", "/", True),
    ],
)
def test_inside_directory(filename: str, directory: str, inside: bool) -> None:
    """Below ``directory`` + ``os.sep``, not merely starting with its name."""
    assert static.inside_directory(filename, directory) is inside


def test_leaves_static_directories(home: Path) -> None:
    """Roundup's choice checked: a sibling's file leaves, a file inside
    (even by way of ``..``) and a path that cannot climb do not."""
    config = RequestDispatcher(str(home)).tracker.config
    assert static.leaves_static_directories(config, "../html_private/secret.txt")
    assert static.leaves_static_directories(config, "../static1_private/secret.txt")
    assert not static.leaves_static_directories(config, "x/../style.css")
    assert not static.leaves_static_directories(config, "../html/style.css")
    assert not static.leaves_static_directories(config, "../nothing/here.txt")
    assert not static.leaves_static_directories(config, "style.css\x00.html")
