"""The static-file fast path (roundup_wsgi.static) against Roundup's own path.

Each request is answered twice in-process by dispatchers on one tracker: with
the fast path (the default) and with ``static_fast_path=False``, which sends
it through Roundup's ``Client.main``.  Status, every header but ``Date``, and
the body bytes must be the same.  The tracker has ``[tracker] static_files``
set (so the STATIC_FILES-then-TEMPLATES lookup is exercised) and
``[web] use_precompressed_files`` on, with precompressed copies of
``style.css``.
"""

from __future__ import annotations

import base64
import email.utils
import io
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import seeded, servers
from helpers.wsgi import Result, call_wsgi, mask_gzip, normalise_body
from roundup.configuration import CoreConfig
from webob import Request

import roundup_wsgi.dispatcher
import roundup_wsgi.isolation
from roundup_wsgi import RequestDispatcher, static, traceids
from roundup_wsgi.static import is_static_request

STATIC_ONLY = b"/* only in static_files */\n"
SHADOWED = b"/* static_files wins over html */\n"
GZIP_BODY = b"gzip-precompressed-bytes"
BR_BODY = b"br-precompressed-bytes"
CSS = "/@@file/style.css"


def make_environ(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    environ: dict[str, Any] = Request.blank(
        path, method=method, headers=headers
    ).environ
    environ.setdefault("HTTP_HOST", "localhost")
    return environ


@pytest.fixture(scope="module")
def static_home(
    tmp_path_factory: pytest.TempPathFactory, tracker_template: Path
) -> Path:
    """A seeded tracker with a static_files directory and precompressed files."""
    home = seeded.copy_tracker(
        tracker_template,
        tmp_path_factory.mktemp("static") / "tracker",
        "http://localhost/",
    )
    # The seeded tracker's interfaces.py overrides Client.main, which turns
    # the fast path off (see test_client_overrides_decide_the_path).
    (home / "interfaces.py").unlink()
    config = CoreConfig(str(home))
    config["STATIC_FILES"] = "static"
    config["WEB_USE_PRECOMPRESSED_FILES"] = True
    config.save(os.path.join(home, "config.ini"))
    static = home / "static"
    static.mkdir()
    (static / "only-static.css").write_bytes(STATIC_ONLY)
    (static / "help.html").write_bytes(SHADOWED)
    html = home / "html"
    # Precompressed copies must be newer than the file they stand for.
    later = time.time() + 10
    for suffix, body in ((".gzip", GZIP_BODY), (".br", BR_BODY)):
        copy = html / f"style.css{suffix}"
        copy.write_bytes(body)
        os.utime(copy, (later, later))
    return home


@pytest.fixture(scope="module")
def fast(static_home: Path) -> RequestDispatcher:
    return RequestDispatcher(str(static_home))


@pytest.fixture(scope="module")
def slow(static_home: Path) -> RequestDispatcher:
    return RequestDispatcher(str(static_home), static_fast_path=False)


def answer(app: Any, environ: dict[str, Any]) -> Result:
    return call_wsgi(app, environ, server_write=True)


def headers_but_date(result: Result) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in result.headers if k.lower() != "date")


def header(result: Result, name: str) -> str:
    return next(v for k, v in result.headers if k.lower() == name.lower())


def assert_same(
    fast: RequestDispatcher,
    slow: RequestDispatcher,
    method: str,
    path: str,
    headers: dict[str, str],
) -> Result:
    """Ask both dispatchers; return the fast answer once it equals the slow one."""
    slow_result = answer(slow, make_environ(method, path, headers))
    fast_result = answer(fast, make_environ(method, path, headers))
    assert fast_result.status == slow_result.status
    assert headers_but_date(fast_result) == headers_but_date(slow_result)
    assert mask_gzip(fast_result.body) == mask_gzip(slow_result.body)
    return fast_result


# (id, method, path, request headers, expected status or None: Roundup's)
CASES = [
    ("plain", "GET", CSS, {}, 200),
    ("underscore-prefix", "GET", "/_file/style.css", {}, 200),
    ("javascript", "GET", "/@@file/classhelper.js", {}, 200),
    ("query-string", "GET", "/@@file/style.css?v=2", {}, 200),
    ("charset-cookie", "GET", "/@@file/style.css?@charset=utf-8", {}, 200),
    ("static-files-dir", "GET", "/@@file/only-static.css", {}, 200),
    ("static-files-shadow-html", "GET", "/@@file/help.html", {}, 200),
    ("head", "HEAD", CSS, {}, 200),
    ("range", "GET", CSS, {"Range": "bytes=10-99"}, 206),
    ("range-to-end", "GET", CSS, {"Range": "bytes=100-"}, 206),
    ("range-unsatisfiable", "GET", CSS, {"Range": "bytes=10-9999999"}, 416),
    ("gzip", "GET", CSS, {"Accept-Encoding": "gzip, deflate"}, 200),
    ("br-preferred", "GET", CSS, {"Accept-Encoding": "gzip, br"}, 200),
    ("gzip-with-range", "GET", CSS,
     {"Accept-Encoding": "gzip", "Range": "bytes=0-9"}, 206),
    ("ims-old", "GET", CSS,
     {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}, 200),
    # Roundup 2.6 ignores an unparsable date (200), 2.4 fails on it (500).
    ("ims-garbage", "GET", CSS, {"If-Modified-Since": "never"}, None),
    ("inm-other", "GET", CSS, {"If-None-Match": '"nope"'}, 200),
    ("foreign-host-and-origin", "GET", CSS,
     {"Host": "evil.example", "Origin": "http://evil.example",
      "Referer": "http://evil.example/"}, 200),
    ("missing", "GET", "/@@file/no-such-file.css", {}, 404),
    ("empty-name", "GET", "/@@file/", {}, 404),
    ("directory", "GET", "/@@file/.", {}, 404),
    ("traversal", "GET", "/@@file/../config.ini", {}, 404),
    ("traversal-underscore", "GET", "/_file/../config.ini", {}, 404),
    ("traversal-deep", "GET", "/@@file/../../../../etc/passwd", {}, 404),
    ("traversal-encoded-dots", "GET", "/@@file/%2e%2e/config.ini", {}, 404),
    ("traversal-encoded-slash", "GET", "/@@file/..%2fconfig.ini", {}, 404),
    ("traversal-double-encoded", "GET", "/@@file/%252e%252e/config.ini", {}, 404),
    ("traversal-backslash", "GET", "/@@file/..%5cconfig.ini", {}, 404),
    ("traversal-absolute", "GET", "/@@file//etc/passwd", {}, 404),
    ("traversal-sibling-prefix", "GET", "/@@file/../db/nodes.user", {}, 404),
    ("head-missing", "HEAD", "/@@file/no-such-file.css", {}, 404),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_fast_path_answers_as_roundup_does(
    fast: RequestDispatcher,
    slow: RequestDispatcher,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast_opens = count_database_opens(monkeypatch, fast.tracker)
    result = assert_same(fast, slow, method, path, headers)
    if status is not None:
        assert int(result.status[:3]) == status
        assert fast_opens() == 0  # answered by the fast path, not handed back


def test_served_bytes_are_the_files(
    fast: RequestDispatcher, slow: RequestDispatcher, static_home: Path
) -> None:
    style = (static_home / "html" / "style.css").read_bytes()
    assert assert_same(fast, slow, "GET", "/@@file/style.css", {}).body == style
    ranged = assert_same(
        fast, slow, "GET", "/@@file/style.css", {"Range": "bytes=10-99"}
    )
    assert ranged.body == style[10:100]
    assert assert_same(fast, slow, "GET", "/@@file/help.html", {}).body == SHADOWED
    gzip = assert_same(
        fast, slow, "GET", "/@@file/style.css", {"Accept-Encoding": "gzip"}
    )
    assert gzip.body == GZIP_BODY
    assert header(gzip, "Content-Encoding") == "gzip"
    head = assert_same(fast, slow, "HEAD", "/@@file/style.css", {})
    assert head.body == b""


def test_conditional_requests_answer_304(
    fast: RequestDispatcher, slow: RequestDispatcher
) -> None:
    first = answer(fast, make_environ("GET", "/@@file/style.css", {}))
    etag = header(first, "ETag")
    last_modified = header(first, "Last-Modified")
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    for headers in (
        {"If-None-Match": etag},
        {"If-Modified-Since": last_modified},
        {"If-Modified-Since": later},
    ):
        result = assert_same(fast, slow, "GET", CSS, headers)
        assert result.status.startswith("304"), headers
        assert result.body == b""
    # The identity ETag with a precompressed answer: 304 on Roundup 2.6,
    # 200 on 2.4 (whose ETag includes the compressed length); same on both paths.
    assert_same(
        fast, slow, "GET", CSS, {"If-None-Match": etag, "Accept-Encoding": "gzip"}
    )


def count_database_opens(
    monkeypatch: pytest.MonkeyPatch, tracker: Any
) -> Callable[[], int]:
    """Count ``tracker.open`` calls (Roundup's ``Client.opendb`` goes through it)."""
    calls = 0
    real_open = tracker.open

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real_open(*args, **kwargs)

    monkeypatch.setattr(tracker, "open", counting_open)
    return lambda: calls


def test_fast_path_does_not_open_the_database(
    static_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = RequestDispatcher(str(static_home))
    slow = RequestDispatcher(str(static_home), static_fast_path=False)
    fast_opens = count_database_opens(monkeypatch, fast.tracker)
    slow_opens = count_database_opens(monkeypatch, slow.tracker)
    environ = make_environ("GET", "/@@file/style.css", {})
    assert answer(slow, dict(environ)).status == "200 OK"
    assert slow_opens() >= 1  # Roundup's path opens it (determine_user)
    for path in ("/@@file/style.css", "/@@file/missing.css", "/@@file/../config.ini"):
        answer(fast, make_environ("GET", path, {}))
    assert fast_opens() == 0


def test_fast_path_works_when_the_database_cannot_open(
    static_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = RequestDispatcher(str(static_home))

    def unopenable(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database must not be opened for a static file")

    monkeypatch.setattr(fast.tracker, "open", unopenable)
    result = answer(fast, make_environ("GET", "/@@file/style.css", {}))
    assert result.status == "200 OK"
    assert result.body == (static_home / "html" / "style.css").read_bytes()
    # Pages still need the database: the same dispatcher answers them 500.
    assert answer(fast, make_environ("GET", "/issue", {})).status.startswith("500")


def test_uncached_tracker_is_opened_once_for_static_files(
    static_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if roundup_wsgi.dispatcher.ROUNDUP_ALWAYS_CACHES:
        pytest.skip("this Roundup always caches the tracker (cache_tracker ignored)")
    app = RequestDispatcher(str(static_home), feature_flags={"cache_tracker": False})
    opened: list[str] = []
    real_open = roundup_wsgi.isolation.open_tracker

    def counting_open(home: str, optimize: bool = True) -> Any:
        opened.append(home)
        tracker = real_open(home, optimize)
        monkeypatch.setattr(tracker, "open", None)  # no database on this path
        return tracker

    monkeypatch.setattr(roundup_wsgi.isolation, "open_tracker", counting_open)
    for _ in range(3):
        result = answer(app, make_environ("GET", "/@@file/style.css", {}))
        assert result.status == "200 OK"
    assert opened == [str(static_home)]


def test_authorization_header_takes_roundups_path(
    static_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Authorization header is checked by Roundup before the file is
    served (a wrong password answers 401/403), so it is not fast-pathed."""
    # reuse_db off: each request that takes Roundup's path opens a database.
    fast = RequestDispatcher(str(static_home), reuse_db=False)
    slow = RequestDispatcher(str(static_home), static_fast_path=False)
    opens = count_database_opens(monkeypatch, fast.tracker)
    statuses = []
    for password in (seeded.ADMIN_PASSWORD, "wrong"):
        auth = base64.b64encode(f"admin:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {auth}"}
        fast_result = answer(fast, make_environ("GET", "/@@file/style.css", headers))
        slow_result = answer(slow, make_environ("GET", "/@@file/style.css", headers))
        assert fast_result.status == slow_result.status
        # (the login-failure page has a nonce and CSRF token of its own)
        assert normalise_body(fast_result.body) == normalise_body(slow_result.body)
        statuses.append(int(fast_result.status[:3]))
    assert statuses[0] == 200
    assert statuses[1] in (401, 403)
    assert opens() >= 2


@pytest.mark.parametrize(
    ("method", "path", "headers", "expected"),
    [
        ("GET", "@@file/style.css", {}, True),
        ("HEAD", "_file/a/b.js", {}, True),
        ("POST", "@@file/style.css", {}, False),
        ("GET", "@@file/style.css", {"HTTP_AUTHORIZATION": "Basic eDp5"}, False),
        ("GET", "@@filex/style.css", {}, False),
        ("GET", "@@file", {}, False),
        ("GET", "issue1", {}, False),
    ],
)
def test_is_static_request(
    method: str, path: str, headers: dict[str, str], expected: bool
) -> None:
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, **headers}
    assert is_static_request(environ) is expected


def test_option_off_sends_static_files_through_roundup(
    static_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = RequestDispatcher(str(static_home), static_fast_path=False)
    opens = count_database_opens(monkeypatch, slow.tracker)
    assert answer(slow, make_environ("GET", "/@@file/style.css", {})).status == "200 OK"
    assert opens() >= 1


SERVE_STATIC_OVERRIDE = """
from roundup.cgi import client


class Client(client.Client):
    def serve_static_file(self, file):
        self.additional_headers["X-Served-By"] = "tracker override"
        return client.Client.serve_static_file(self, file)
"""


def test_client_overrides_decide_the_path(
    tracker_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tracker Client overriding a method the fast path skips (here the
    seeded tracker's ``main``) gets Roundup's whole path; one overriding
    ``serve_static_file`` keeps the fast path, which runs the override."""
    assert "def main" in (tracker_home / "interfaces.py").read_text()
    app = RequestDispatcher(str(tracker_home))
    opens = count_database_opens(monkeypatch, app.tracker)
    assert answer(app, make_environ("GET", CSS, {})).status == "200 OK"
    assert opens() >= 1

    (tracker_home / "interfaces.py").write_text(SERVE_STATIC_OVERRIDE)
    app = RequestDispatcher(str(tracker_home))
    slow = RequestDispatcher(str(tracker_home), static_fast_path=False)
    opens = count_database_opens(monkeypatch, app.tracker)
    result = assert_same(app, slow, "GET", CSS, {})
    assert header(result, "X-Served-By") == "tracker override"
    assert opens() == 0
    # ... but its answers are not kept: the override may answer otherwise.
    assert_same(app, slow, "GET", CSS, {})
    assert app.response_cache is not None
    assert len(app.response_cache) == 0


# -- the response cache ---------------------------------------------------------


@pytest.fixture(scope="module")
def stock_dispatcher(static_home: Path) -> Any:
    """Roundup's own ``RequestDispatcher`` on the same tracker (same inodes,
    so the same ETags)."""
    from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher

    return StockDispatcher(str(static_home))


def same_answer(one: Result, other: Result) -> bool:
    """Same status, headers but Date, and bytes but a gzip header's MTIME
    (a listed difference: a kept compressed file keeps the time of its first
    compression, and Roundup's own changes each second)."""
    return (
        one.status == other.status
        and headers_but_date(one) == headers_but_date(other)
        and mask_gzip(one.body) == mask_gzip(other.body)
    )


def etag_forms(fast: RequestDispatcher) -> tuple[str, str]:
    """style.css's ETag as Roundup sends it uncompressed, and the
    ``-gzip`` form a browser that got the gzip answer sends back."""
    etag = header(answer(fast, make_environ("GET", CSS, {})), "ETag")
    return etag, etag[:-1] + '-gzip"'


# (id, method, path, request headers); headers with "ETAG"/"GZIP_ETAG"
# get style.css's ETag forms, "LAST_MODIFIED" its Last-Modified.
CACHED_CASES = [
    ("plain", "GET", CSS, {}),
    ("underscore-prefix", "GET", "/_file/style.css", {}),
    ("head", "HEAD", CSS, {}),
    ("head-gzip", "HEAD", CSS, {"Accept-Encoding": "gzip"}),
    ("browser", "GET", CSS, {"Accept-Encoding": "gzip, deflate, br"}),
    ("gzip-precompressed", "GET", CSS, {"Accept-Encoding": "gzip"}),
    ("identity", "GET", CSS, {"Accept-Encoding": "identity"}),
    ("javascript-gzip", "GET", "/@@file/classhelper.js", {"Accept-Encoding": "gzip"}),
    ("static-files-dir", "GET", "/@@file/only-static.css", {}),
    ("static-files-shadow-html", "GET", "/@@file/help.html", {}),
    ("inm-etag", "GET", CSS, {"If-None-Match": "ETAG"}),
    ("inm-gzip-etag", "GET", CSS, {"If-None-Match": "GZIP_ETAG"}),
    ("inm-gzip-etag-gzip", "GET", CSS,
     {"If-None-Match": "GZIP_ETAG", "Accept-Encoding": "gzip"}),
    ("inm-list", "GET", CSS, {"If-None-Match": '"nope", ETAG'}),
    ("inm-other", "GET", CSS, {"If-None-Match": '"nope"'}),
    ("inm-head", "HEAD", CSS, {"If-None-Match": "ETAG"}),
    ("ims-same", "GET", CSS, {"If-Modified-Since": "LAST_MODIFIED"}),
    ("ims-old", "GET", CSS,
     {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}),
    ("charset-cookie", "GET", CSS, {"Cookie": "roundup_charset=iso-8859-1"}),
    ("charset-cookie-bad", "GET", CSS, {"Cookie": "roundup_charset=no-such"}),
    ("other-cookie", "GET", CSS, {"Cookie": "roundup_session_x=abc"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [pytest.param(*case[1:], id=case[0]) for case in CACHED_CASES],
)
def test_response_cache_answers_as_stock_roundup(
    fast: RequestDispatcher,
    stock_dispatcher: Any,
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    """The first answer (kept) and the next (from the cache, no Roundup
    code run) equal stock Roundup's: status, headers but Date, bytes."""
    etag, gzip_etag = etag_forms(fast)
    last_modified = header(answer(fast, make_environ("GET", CSS, {})), "Last-Modified")
    headers = {
        name: value.replace("GZIP_ETAG", gzip_etag)
        .replace("ETAG", etag)
        .replace("LAST_MODIFIED", last_modified)
        for name, value in headers.items()
    }
    cache = fast.response_cache
    assert cache is not None
    cache.clear()
    stock = answer(stock_dispatcher, make_environ(method, path, headers))
    hits = cache.hits
    first = answer(fast, make_environ(method, path, headers))
    assert len(cache) == 1  # kept ...
    assert cache.hits == hits  # ... not from the cache
    second = answer(fast, make_environ(method, path, headers))
    assert cache.hits == hits + 1  # from the cache
    assert same_answer(first, stock), (first, stock)
    assert same_answer(second, stock), (second, stock)


def test_response_cache_keys_what_decides_the_answer(fast: RequestDispatcher) -> None:
    """Requests that differ in what Roundup reads are kept apart; those with
    a query string, Range, If-Range, Authorization or a body not at all."""
    cache = fast.response_cache
    assert cache is not None
    cache.clear()
    for method, headers in (
        ("GET", {}),
        ("HEAD", {}),
        ("GET", {"Accept-Encoding": "gzip"}),
        ("GET", {"Accept-Encoding": "gzip, br"}),
        ("GET", {"If-None-Match": '"x"'}),
        ("GET", {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}),
        ("GET", {"Cookie": "roundup_charset=utf-8"}),
    ):
        answer(fast, make_environ(method, CSS, headers))
    assert len(cache) == 7
    # A cookie without roundup_charset shares the cookie-less entry.
    answer(fast, make_environ("GET", CSS, {"Cookie": "session=1"}))
    assert len(cache) == 7
    cache.clear()
    for path, headers in (
        (CSS + "?v=1", {}),
        (CSS + "?@charset=utf-8", {}),
        (CSS, {"Range": "bytes=0-9"}),
        (CSS, {"If-Range": '"x"'}),
        (CSS, {"Authorization": "Basic YWRtaW46c2VjcmV0"}),
        ("/@@file/no-such-file.css", {}),
        ("/@@file/../config.ini", {}),
    ):
        answer(fast, make_environ("GET", path, headers))
    environ = make_environ("GET", CSS, {})
    environ["CONTENT_LENGTH"] = "3"
    environ["wsgi.input"] = io.BytesIO(b"abc")
    answer(fast, environ)
    assert len(cache) == 0


@pytest.fixture
def own_home(static_home: Path, tmp_path: Path) -> Path:
    """A copy of the static tracker whose files a test may change."""
    home = tmp_path / "tracker"
    shutil.copytree(static_home, home)
    return home


def test_response_cache_serves_a_changed_file_at_once(own_home: Path) -> None:
    """An edit (new size; same size with a new mtime; a file renamed over it
    with the same size and mtime), a file shadowing it in an earlier
    directory, and a new precompressed copy: the next answer is the new
    one, as stock Roundup gives it, and is then kept again."""
    from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher

    fast = RequestDispatcher(str(own_home))
    stock = StockDispatcher(str(own_home))
    css = own_home / "html" / "style.css"

    def check(path: str, headers: dict[str, str], body: bytes | None) -> None:
        cache = fast.response_cache
        assert cache is not None
        hits = cache.hits
        results = [answer(fast, make_environ("GET", path, headers)) for _ in (1, 2)]
        assert cache.hits == hits + 1  # the second: from the cache
        expected = answer(stock, make_environ("GET", path, headers))
        for result in results:
            assert same_answer(result, expected), (result, expected)
        if body is not None:
            assert results[0].body == body

    check(CSS, {}, css.read_bytes())
    assert fast.response_cache is not None
    stale = fast.response_cache.stale
    css.write_bytes(css.read_bytes() + b"/* more */\n")
    check(CSS, {}, css.read_bytes())
    assert fast.response_cache.stale == stale + 1  # the kept answer was dropped
    same_size = css.read_bytes().replace(b"/* more */", b"/* MORE */")
    stat = css.stat()
    css.write_bytes(same_size)
    os.utime(css, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    check(CSS, {}, same_size)
    replacement = own_home / "html" / "replacement.css"
    renamed = same_size.replace(b"/* MORE */", b"/* m0re */")
    replacement.write_bytes(renamed)
    stat = css.stat()
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, css)
    check(CSS, {}, renamed)
    shadow = own_home / "static" / "style.css"
    shadow.write_bytes(b"/* from static_files */\n")
    check(CSS, {}, shadow.read_bytes())
    shadow.unlink()
    check(CSS, {}, renamed)
    check("/@@file/classhelper.js", {"Accept-Encoding": "gzip"}, None)
    precompressed = own_home / "html" / "classhelper.js.gzip"
    precompressed.write_bytes(GZIP_BODY)
    later = time.time() + 10
    os.utime(precompressed, (later, later))
    check("/@@file/classhelper.js", {"Accept-Encoding": "gzip"}, GZIP_BODY)
    css.unlink()
    result = answer(fast, make_environ("GET", CSS, {}))
    assert result.status.startswith("404")


def test_response_cache_is_bounded(own_home: Path) -> None:
    """Least recently used answers go past static_response_cache_size."""
    for n in range(6):
        (own_home / "html" / f"f{n}.css").write_bytes(b"/* %d */\n" % n * 300)
    fast = RequestDispatcher(str(own_home), static_response_cache_size=16_000)
    slow = RequestDispatcher(str(own_home), static_fast_path=False)
    cache = fast.response_cache
    assert cache is not None
    for n in (0, 1, 2, 3, 4, 5, 0):
        assert_same(fast, slow, "GET", f"/@@file/f{n}.css", {})
        assert cache.size <= 16_000
    assert 1 < len(cache) < 6
    hits = cache.hits
    assert_same(fast, slow, "GET", "/@@file/f0.css", {})  # recently used: kept
    assert cache.hits == hits + 1
    assert_same(fast, slow, "GET", "/@@file/f1.css", {})  # evicted: made again
    assert cache.hits == hits + 1
    # Over a quarter of the limit: answered, not kept.
    (own_home / "html" / "big.css").write_bytes(b"/* big */\n" * 500)
    assert_same(fast, slow, "GET", "/@@file/big.css", {})
    assert_same(fast, slow, "GET", "/@@file/big.css", {})
    assert cache.hits == hits + 1


def test_response_cache_off(static_home: Path) -> None:
    assert (
        RequestDispatcher(str(static_home), static_response_cache_size=0).response_cache
        is None
    )
    assert (
        RequestDispatcher(str(static_home), static_fast_path=False).response_cache
        is None
    )
    with pytest.raises(ValueError, match="static_response_cache_size=-1 is not a size"):
        RequestDispatcher(str(static_home), static_response_cache_size=-1)


def test_response_cache_hit_gives_the_access_log_a_trace_id(
    static_home: Path,
) -> None:
    """The access log's trace id (Roundup >= 2.5) is there for answers from
    the cache too, a new one each."""
    pytest.importorskip("roundup.logcontext")
    from roundup_wsgi.wsgi.finish import Finished, FinishHooks

    seen: list[Finished] = []
    app = FinishHooks(RequestDispatcher(str(static_home)), [seen.append])
    for _ in range(3):
        assert answer(app, make_environ("GET", CSS, {})).status == "200 OK"
    trace_ids = [record.notes.get("trace_id") for record in seen]
    assert all(trace_ids), trace_ids
    assert len(set(trace_ids)) == 3, trace_ids


def test_cache_trace_ids_count_and_differ_in_a_forked_process() -> None:
    """Trace ids of cached answers (without nanoid): this process's random
    prefix and a count, letters and digits only (logged unescaped); a
    forked worker (gunicorn's) makes a prefix of its own."""
    logcontext = pytest.importorskip("roundup.logcontext")
    if logcontext.idgen is not logcontext.short_uuid:
        pytest.skip("nanoid is installed: Roundup's own ids are used")
    first, second = traceids.new_trace_id(), traceids.new_trace_id()
    assert first[:10] == second[:10]
    assert int(second[10:]) == int(first[10:]) + 1
    assert (first + second).isalnum()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send one id, leave at once
        os.write(write, traceids.new_trace_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        child = pipe.read()
    assert child[:10] != first[:10]
    assert child[10:] == "1"


# -- through real servers -------------------------------------------------------

# (method, raw request path, request headers); the path is sent as is.
REAL_SERVER_CASES = [
    ("GET", CSS, {}),
    ("HEAD", CSS, {}),
    ("GET", CSS, {"Range": "bytes=5-104"}),
    ("GET", CSS, {"Accept-Encoding": "gzip"}),
    ("GET", "/@@file/only-static.css", {}),
    ("GET", "/@@file/no-such-file.css", {}),
    ("GET", "/@@file/../config.ini", {}),
    ("GET", "/@@file/%2e%2e/config.ini", {}),
    ("GET", "/_file/..%2fconfig.ini", {}),
]


def fetch(port: int, method: str, path: str, headers: dict[str, str]) -> Any:
    """``(status, headers but the server's own, body)`` of one raw request;
    without Content-Length on a 404, which roundup-wsgi adds to its 404 page
    (Roundup's handler sends none)."""
    status, kept, body = servers.raw_fetch(port, method, path, headers)
    if status == 404:
        kept = [(k, v) for k, v in kept if k != "content-length"]
    return status, kept, body


@pytest.mark.slow
@pytest.mark.parametrize("server", ["waitress", "gunicorn"])
def test_fast_path_under_real_servers_answers_as_stock_roundup(
    server: str, static_home: Path, tmp_path: Path
) -> None:
    """Roundup's own dispatcher and ours (fast path) under the same server:
    same status, headers (but the server's own) and bytes; then a 304.
    Asked again, ours answers from its response cache: the same again."""
    answers = {}
    home = tmp_path / "tracker"  # one copy: the ETag holds the file's inode
    shutil.copytree(static_home, home)
    for app in (servers.STOCK_APP, servers.OUR_APP):
        port = servers.free_port()
        command = servers.SERVERS[server](port, app)
        env = {"ROUNDUP_TRACKER_HOME": str(home)}
        with servers.ServerProcess(command, port, tmp_path / f"log-{app}", env=env):
            answers[app] = [fetch(port, *case) for case in REAL_SERVER_CASES]
            etag = dict(answers[app][0][1])["etag"]
            answers[app].append(fetch(port, "GET", CSS, {"If-None-Match": etag}))
            for _ in range(2):  # gunicorn: each worker keeps its own answers
                again = [fetch(port, *case) for case in REAL_SERVER_CASES]
                again.append(fetch(port, "GET", CSS, {"If-None-Match": etag}))
                assert again == answers[app], app
    stock, ours = answers[servers.STOCK_APP], answers[servers.OUR_APP]
    for case, stock_answer, our_answer in zip(
        [*REAL_SERVER_CASES, "If-None-Match"], stock, ours, strict=True
    ):
        assert our_answer == stock_answer, case
    assert [status for status, _, _ in ours] == [
        200, 200, 206, 200, 200, 404, 404, 404, 404, 304,
    ]  # fmt: skip
    assert ours[3][2] == GZIP_BODY


def test_static_requests_keep_roundups_log_context(
    static_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Log lines of a fast-path request carry Roundup's process name and a
    trace id of their own (Roundup >= 2.5); the trace reason is left out.
    (Without the response cache: an answer from it runs no Roundup code.)"""
    logcontext = pytest.importorskip("roundup.logcontext")
    fast = RequestDispatcher(str(static_home), static_response_cache_size=0)
    seen: list[dict[str, Any]] = []
    real = static.serve_static_file

    def recording(client: Any) -> None:
        seen.append(logcontext.get_context_dict())
        real(client)

    monkeypatch.setattr(static, "serve_static_file", recording)
    for _ in range(2):
        assert answer(fast, make_environ("GET", CSS, {})).status == "200 OK"
    assert [context["processName"] for context in seen] == ["wsgi_handler"] * 2
    trace_ids = {str(context["trace_id"]) for context in seen}
    assert len(trace_ids) == 2
    assert all(len(trace_id) >= 8 for trace_id in trace_ids)


@pytest.mark.parametrize("server_write", [True, False], ids=["write", "no-write"])
def test_server_write_mode_answers_the_same(
    static_home: Path, server_write: bool
) -> None:
    """In the "server" write mode the fast path starts the response through
    the server's start_response at once, as Roundup's path does."""
    fast = RequestDispatcher(str(static_home), write_mode="server")
    slow = RequestDispatcher(
        str(static_home), write_mode="server", static_fast_path=False
    )
    etag = header(answer(fast, make_environ("GET", CSS, {})), "ETag")
    for method, path, headers in [
        ("GET", CSS, {}),
        ("HEAD", CSS, {}),
        ("GET", CSS, {"Range": "bytes=10-99"}),
        ("GET", CSS, {"If-None-Match": etag}),
        ("GET", "/@@file/no-such-file.css", {}),
    ]:
        results = [
            call_wsgi(
                app, make_environ(method, path, headers), server_write=server_write
            )
            for app in (fast, slow)
        ]
        assert results[0].status == results[1].status
        assert headers_but_date(results[0]) == headers_but_date(results[1])
        assert results[0].body == results[1].body
