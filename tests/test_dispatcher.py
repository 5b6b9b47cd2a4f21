"""In-process tests of RequestDispatcher against a real, seeded Roundup tracker.

Every path is requested under a server whose ``start_response`` returns a
write callable (waitress, gunicorn) and one whose returns ``None`` (granian,
bjoern), in every write mode: status, headers and body bytes must be the same.
"""

from __future__ import annotations

import base64
import gc
import logging
import os
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper
from wsgiref.validate import validator

import pytest
from helpers import seeded
from helpers.wsgi import (
    Result,
    call_wsgi,
    make_environ,
    normalise_body,
    normalise_headers,
)
from webtest import TestApp

import roundup_wsgi.dispatcher
import roundup_wsgi.isolation
from roundup_wsgi import RequestDispatcher, dispatcher
from roundup_wsgi.options import WRITE_MODES
from roundup_wsgi.wsgi.files import FileChunks, FileRange

BIG = seeded.big_file_bytes()
ADMIN_AUTH = (
    "Basic " + base64.b64encode(f"admin:{seeded.ADMIN_PASSWORD}".encode()).decode()
)
PREFLIGHT = {
    "Origin": "http://localhost",
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "x-requested-with",
}

# (id, method, path, request headers, expected status)
CASES = [
    ("home", "GET", "/", {}, 200),
    ("index", "GET", "/issue", {}, 200),
    ("item", "GET", "/issue1", {}, 200),
    ("static", "GET", "/@@file/style.css", {}, 200),
    ("attachment", "GET", "/file1/hello.txt", {}, 200),
    ("big-whole", "GET", "/file2/big.bin", {}, 200),
    ("range", "GET", "/file2/big.bin", {"Range": "bytes=1000-1999"}, 206),
    ("range-to-end", "GET", "/file2/big.bin", {"Range": "bytes=20971000-"}, 206),
    ("not-found", "GET", "/nosuchclass", {}, 404),
    ("not-found-escaped", "GET", "/no<script>x", {}, 404),
    ("options", "OPTIONS", "/", {}, 501),
    ("options-rest-preflight", "OPTIONS", "/rest/data/issue", PREFLIGHT, 204),
    ("head", "HEAD", "/issue", {}, 200),
    ("head-file", "HEAD", "/file1/hello.txt", {}, 200),
    ("rest-get", "GET", "/rest/data/issue", {"Authorization": ADMIN_AUTH}, 200),
    ("exception", "GET", "/test-boom", {}, 500),
]
SERVERS = [
    pytest.param(True, id="server-returns-write"),
    pytest.param(False, id="server-returns-None"),
]


@pytest.fixture(scope="module")
def module_tracker(
    tmp_path_factory: pytest.TempPathFactory, tracker_template: Path
) -> Path:
    home = tmp_path_factory.mktemp("dispatcher") / "tracker"
    return seeded.copy_tracker(tracker_template, home, "http://localhost/")


@pytest.fixture(scope="module")
def apps(module_tracker: Path) -> dict[str, RequestDispatcher]:
    return {
        mode: RequestDispatcher(str(module_tracker), write_mode=mode)
        for mode in WRITE_MODES
    }


def request(app: Any, case_id: str, *, server_write: bool) -> Result:
    _, method, path, headers, _ = next(c for c in CASES if c[0] == case_id)
    return call_wsgi(
        app, make_environ(method, path, headers), server_write=server_write
    )


# -- the same response in every combination ----------------------------------


@pytest.mark.parametrize(
    ("case_id", "method", "path", "headers", "status"), CASES, ids=[c[0] for c in CASES]
)
def test_same_response_on_every_server_and_write_mode(
    apps: dict[str, RequestDispatcher],
    case_id: str,
    method: str,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    def render_all() -> dict[tuple[str, bool], Result]:
        return {
            (mode, server_write): call_wsgi(
                apps[mode],
                make_environ(method, path, headers),
                server_write=server_write,
            )
            for mode in WRITE_MODES
            for server_write in (True, False)
        }

    def lengths(results: dict[tuple[str, bool], Result]) -> set[str | None]:
        return {
            dict((k.lower(), v) for k, v in r.headers).get("content-length")
            for r in results.values()
        }

    results = render_all()
    if len(lengths(results)) > 1:
        # A page's relative dates ("9 minutes ago", then "10 minutes ago")
        # can change its length between two renderings on a slow machine:
        # render all once more; a real difference shows again.
        results = render_all()
    reference = results["buffer", False]
    assert int(reference.status[:3]) == status, reference.body[:500]
    for key, result in results.items():
        assert result.status == reference.status, key
        assert normalise_headers(result.headers) == normalise_headers(
            reference.headers
        ), key
        assert normalise_body(result.body) == normalise_body(reference.body), key
        assert result.close_calls == 1
    # The buffer mode never uses the server's write callable; the server mode
    # uses it for Roundup's writes when the server offers one.
    assert results["buffer", True].written == b""
    assert results["server", False].written == b""
    # The stream mode never uses it: writes come as chunks of the app_iter.
    assert results["stream", True].written == b""
    if status not in (204, 501) and method != "HEAD" and case_id != "exception":
        writes = results["server", True].written
        file_case = path.startswith("/file") or path.startswith("/@@file")
        assert (writes == b"") == file_case, (
            "files go to the app_iter, pages to write()"
        )


@pytest.mark.parametrize(
    ("case_id", "_m", "_p", "_h", "_s"), CASES, ids=[c[0] for c in CASES]
)
@pytest.mark.parametrize("mode", WRITE_MODES)
def test_passes_wsgiref_validator(
    apps: dict[str, RequestDispatcher],
    mode: str,
    case_id: str,
    _m: str,
    _p: str,
    _h: Any,
    _s: int,
) -> None:
    result = request(validator(apps[mode]), case_id, server_write=True)
    assert result.close_calls == 1


# -- what each path answers ---------------------------------------------------


def get(app: Any, case_id: str) -> Result:
    return request(app, case_id, server_write=False)


def header(result: Result, name: str) -> str | None:
    return next((v for k, v in result.headers if k.lower() == name.lower()), None)


def test_pages(apps: dict[str, RequestDispatcher]) -> None:
    app = apps["buffer"]
    index = get(app, "index")
    assert b"Sample issue one" in index.body
    assert b"Title with &lt;b&gt;markup&lt;/b&gt; &amp; ampersand" in index.body
    assert header(index, "Content-Length") == str(len(index.body))
    assert b"Sample issue one" in get(app, "item").body


def test_static_file_and_attachments(
    apps: dict[str, RequestDispatcher], module_tracker: Path
) -> None:
    app = apps["buffer"]
    css = get(app, "static")
    assert header(css, "Content-Type") == "text/css"
    assert css.body == (module_tracker / "html" / "style.css").read_bytes()
    assert get(app, "attachment").body == seeded.SMALL_FILE_BYTES
    whole = get(app, "big-whole")
    assert header(whole, "Content-Length") == str(len(BIG))
    assert whole.body == BIG
    ranged = get(app, "range")
    assert header(ranged, "Content-Range") == f"bytes 1000-1999/{len(BIG)}"
    assert ranged.body == BIG[1000:2000]
    tail = get(app, "range-to-end")
    assert tail.body == BIG[20971000:]


def test_not_found_is_roundups_page_with_the_path_escaped(
    apps: dict[str, RequestDispatcher],
) -> None:
    assert get(apps["buffer"], "not-found").body == b"Not found: nosuchclass"
    escaped = get(apps["buffer"], "not-found-escaped")
    assert escaped.body == b"Not found: no&lt;script&gt;x"
    assert header(escaped, "Content-Length") == str(len(escaped.body))


def test_options_outside_rest_is_501_html(apps: dict[str, RequestDispatcher]) -> None:
    result = get(apps["buffer"], "options")
    assert result.status == "501 Not Implemented"
    assert header(
        result,
        "Content-Type",
    ).startswith("text/html")
    assert b"<h1>501 Not Implemented</h1>" in result.body
    assert (
        b"OPTIONS is only supported for the tracker&#x27;s REST API (/rest/...)."
        in result.body
    )


def test_options_under_rest_is_roundups_cors_preflight(
    apps: dict[str, RequestDispatcher],
) -> None:
    result = get(apps["buffer"], "options-rest-preflight")
    assert result.status == "204 No Content"
    assert header(result, "Access-Control-Allow-Origin") == "http://localhost"
    assert "GET" in (header(result, "Access-Control-Allow-Methods") or "")


def test_head_has_headers_and_no_body(apps: dict[str, RequestDispatcher]) -> None:
    head, full = get(apps["buffer"], "head"), get(apps["buffer"], "index")
    assert head.body == b""
    assert header(head, "Content-Length") == str(len(full.body))
    # For files Roundup's Client itself answers HEAD with Content-Length: 0.
    head_file = get(apps["buffer"], "head-file")
    assert head_file.body == b""
    assert header(head_file, "Content-Type") == "text/plain"


def test_rest_get_with_basic_auth(apps: dict[str, RequestDispatcher]) -> None:
    result = get(apps["buffer"], "rest-get")
    assert header(result, "Content-Type") == "application/json"
    assert b'"link": "http://localhost/rest/data/issue/3"' in result.body


@pytest.mark.parametrize("mode", WRITE_MODES)
def test_exception_escaping_client_is_logged_500_without_traceback(
    apps: dict[str, RequestDispatcher], mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="roundup_wsgi"):
        result = get(apps[mode], "exception")
    assert result.status == "500 Internal Server Error"
    assert header(result, "Content-Type").startswith("text/html")
    assert b"Traceback" not in result.body
    assert b"test-boom" not in result.body
    assert (
        b"The tracker could not complete this request; the error has been "
        b"logged for the administrator." in result.body
    )
    [record] = [r for r in caplog.records if r.name == "roundup_wsgi"]
    assert "GET /test-boom" in record.getMessage()
    assert record.exc_info is not None
    assert "test-boom <script>" in str(record.exc_info[1])
    # The next request is served normally.
    assert get(apps[mode], "index").status == "200 OK"


def test_debug_shows_the_traceback_escaped(module_tracker: Path) -> None:
    app = RequestDispatcher(str(module_tracker), debug=True)
    result = get(app, "exception")
    assert result.status == "500 Internal Server Error"
    assert b"Traceback (most recent call last)" in result.body
    assert b"test-boom &lt;script&gt;alert(1)&lt;/script&gt;" in result.body
    assert b"<script>alert" not in result.body


def test_sendfile_error_is_500_not_a_truncated_200(
    apps: dict[str, RequestDispatcher], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(*args: Any, **kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", "file1")

    monkeypatch.setattr("roundup_wsgi.request.open_file_body", unreadable)
    result = get(apps["buffer"], "attachment")
    assert result.status == "500 Internal Server Error"


def test_malformed_multipart_body_is_400(apps: dict[str, RequestDispatcher]) -> None:
    environ = make_environ(
        "POST", "/issue", {"Content-Type": 'multipart/form-data; boundary="a b\x01"'}
    )
    result = call_wsgi(apps["buffer"], environ, server_write=True)
    assert result.status == "400 Bad Request"
    assert b"cannot be parsed as a form" in result.body
    assert b"Invalid boundary" not in result.body  # cgi's text: debug only


# -- files: wsgi.file_wrapper and close() -------------------------------------


#: Where Roundup keeps attachments' files: the tests count descriptors to
#: them only (the reuse_db reaper may close other tests' databases meanwhile).
ATTACHMENTS = os.sep + os.path.join("db", "files", "file") + os.sep


def open_fds(under: str = "") -> int:
    """Open file descriptors of this process to paths containing ``under``,
    after collecting garbage (so files other tests left to the garbage
    collector do not count)."""
    gc.collect()
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor)
            continue
        count += under in target
    return count


def start_file(app: Any, environ: dict[str, Any]) -> Any:
    return app(environ, lambda status, headers, exc_info=None: None)


def test_file_uses_the_servers_file_wrapper(apps: dict[str, RequestDispatcher]) -> None:
    environ = make_environ("GET", "/file2/big.bin", {})
    environ["wsgi.file_wrapper"] = FileWrapper
    app_iter = start_file(apps["buffer"], environ)
    assert isinstance(app_iter, FileWrapper)  # returned as is: server fast paths
    assert b"".join(app_iter) == BIG
    app_iter.close()

    environ = make_environ("GET", "/file2/big.bin", {"Range": "bytes=10-200009"})
    environ["wsgi.file_wrapper"] = FileWrapper
    app_iter = start_file(apps["buffer"], environ)
    assert isinstance(app_iter.filelike, FileRange)
    assert b"".join(app_iter) == BIG[10:200010]
    app_iter.close()


def test_file_of_one_block_is_one_chunk(apps: dict[str, RequestDispatcher]) -> None:
    """At most 64 KiB (a range here) is read at once and sent as one chunk,
    cheaper than the server's file path; the file is closed at once."""
    environ = make_environ("GET", "/file2/big.bin", {"Range": "bytes=10-19"})
    environ["wsgi.file_wrapper"] = FileWrapper
    fds = open_fds(ATTACHMENTS)
    app_iter = start_file(apps["buffer"], environ)
    assert open_fds(ATTACHMENTS) == fds
    assert list(app_iter) == [BIG[10:20]]


def test_file_without_wrapper_streams_bounded_chunks(
    apps: dict[str, RequestDispatcher],
) -> None:
    app_iter = start_file(apps["buffer"], make_environ("GET", "/file2/big.bin", {}))
    sizes = [len(chunk) for chunk in app_iter]
    app_iter.close()
    assert max(sizes) == 64 * 1024
    assert sum(sizes) == len(BIG)


@pytest.mark.parametrize("wrapper", [None, FileWrapper], ids=["chunks", "file_wrapper"])
@pytest.mark.parametrize("read_chunks", [0, 1])
def test_close_releases_the_file_when_the_server_stops_early(
    apps: dict[str, RequestDispatcher], wrapper: Any, read_chunks: int
) -> None:
    environ = make_environ("GET", "/file2/big.bin", {})
    if wrapper:
        environ["wsgi.file_wrapper"] = wrapper
    before = open_fds(ATTACHMENTS)
    app_iter = start_file(apps["buffer"], environ)
    assert open_fds(ATTACHMENTS) == before + 1
    chunks = iter(app_iter)
    for _ in range(read_chunks):
        next(chunks)
    app_iter.close()
    app_iter.close()  # idempotent
    assert open_fds(ATTACHMENTS) == before


def test_file_chunks_close_before_iteration_closes_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    file = path.open("rb")
    body = FileChunks(file, 10, 20, block_size=8)
    body.close()
    assert file.closed


# -- SCRIPT_NAME, PATH_INFO and the environ -----------------------------------


def test_script_name_is_respected(make_tracker: Any) -> None:
    home = make_tracker("http://localhost/tracker/")
    app = TestApp(
        RequestDispatcher(str(home)), extra_environ={"HTTP_HOST": "localhost"}
    )
    page = app.get("/issue1", extra_environ={"SCRIPT_NAME": "/tracker"})
    assert b'href="http://localhost/tracker/issue1"' in page.body or (
        b"http://localhost/tracker/" in page.body
    )
    # The mount point itself (empty PATH_INFO) is the tracker's home page.
    home_page = app.get("/", extra_environ={"SCRIPT_NAME": "/tracker", "PATH_INFO": ""})
    assert home_page.status_int == 200


def test_servers_environ_is_not_changed(apps: dict[str, RequestDispatcher]) -> None:
    environ = make_environ("OPTIONS", "/rest/data/issue", PREFLIGHT)
    environ.pop("CONTENT_LENGTH", None)
    before = dict(environ)
    call_wsgi(apps["buffer"], environ, server_write=False)
    assert environ == before


# -- construction ----------------------------------------------------------------


def test_bad_write_mode_is_a_value_error(module_tracker: Path) -> None:
    with pytest.raises(
        ValueError, match=r"write_mode='chunked'.*'buffer', 'server', 'stream'"
    ):
        RequestDispatcher(str(module_tracker), write_mode="chunked")


def test_home_that_is_not_a_tracker_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"does not exist: create one with 'roundup-wsgi init"
    ):
        RequestDispatcher(str(tmp_path / "missing"))
    with pytest.raises(
        ValueError, match=r"not a Roundup tracker home \(it has no config.ini\)"
    ):
        RequestDispatcher(str(tmp_path))


@pytest.mark.skipif(
    dispatcher.ROUNDUP_ALWAYS_CACHES,
    reason="this Roundup ignores the cache_tracker flag (2.7 on)",
)
def test_cache_tracker_flag(
    module_tracker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = roundup_wsgi.isolation.open_tracker

    def counting_open(home: str, optimize: bool = True) -> Any:
        opened.append(home)
        return real_open(home, optimize)

    monkeypatch.setattr(roundup_wsgi.isolation, "open_tracker", counting_open)
    cached = RequestDispatcher(str(module_tracker))
    for _ in range(2):
        assert get(cached, "index").status == "200 OK"
    assert len(opened) == 1  # opened once, at start-up

    opened.clear()
    if roundup_wsgi.dispatcher.ROUNDUP_ALWAYS_CACHES:
        with pytest.warns(FutureWarning, match="'cache_tracker' feature flag"):
            fresh = RequestDispatcher(
                str(module_tracker), feature_flags={"cache_tracker": False}
            )
        for _ in range(2):
            assert get(fresh, "index").status == "200 OK"
        assert len(opened) == 1  # cached all the same, as Roundup does
        return
    fresh = RequestDispatcher(
        str(module_tracker), feature_flags={"cache_tracker": False}
    )
    assert fresh.tracker is None
    for _ in range(2):
        assert get(fresh, "index").status == "200 OK"
    assert len(opened) == 3  # preload, then once per request


def test_cache_tracker_flag_ignored_as_roundup_2_7_does(
    module_tracker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Roundup 2.7's RequestDispatcher always caches the tracker and warns
    # (FutureWarning) about any cache_tracker flag; so does ours with it.
    monkeypatch.setattr(dispatcher, "ROUNDUP_ALWAYS_CACHES", True)
    with pytest.warns(FutureWarning, match="'cache_tracker' feature flag is ignored"):
        app = RequestDispatcher(
            str(module_tracker), feature_flags={"cache_tracker": False}
        )
    assert app.use_cached_tracker()
    assert app.tracker is not None
    assert get(app, "index").status == "200 OK"


@pytest.mark.parametrize("flags", [{"cache_tracker": False}, {"cache_tracker": True}])
def test_cache_tracker_follows_the_installed_roundup(
    module_tracker: Path, flags: dict[str, bool]
) -> None:
    """Ours caches and warns exactly where Roundup's own dispatcher does
    (Roundup after 2.6.0 always caches and warns about the flag)."""
    import warnings

    from roundup.cgi import wsgi_handler

    with warnings.catch_warnings(record=True) as stock_warned:
        warnings.simplefilter("always")
        stock = wsgi_handler.RequestDispatcher(str(module_tracker), feature_flags=flags)
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        ours = RequestDispatcher(str(module_tracker), feature_flags=flags)

    def future(caught: list[warnings.WarningMessage]) -> list[str]:
        return [str(w.message) for w in caught if w.category is FutureWarning]

    assert future(ours_warned) == future(stock_warned)
    assert (ours.tracker is not None) == (stock.tracker is not None)


def test_csv_export_is_the_same_in_every_combination(
    apps: dict[str, RequestDispatcher],
) -> None:
    # Roundup's export writes row by row through request.wfile (no Length).
    path = "/issue?@action=export_csv&@columns=id,title&@sort=id"
    bodies = set()
    for mode in WRITE_MODES:
        for server_write in (True, False):
            environ = make_environ("GET", path, {})
            result = call_wsgi(apps[mode], environ, server_write=server_write)
            assert result.status == "200 OK"
            assert header(result, "Content-Type") == "text/csv; charset=utf-8"
            if mode == "buffer":  # the whole body is known: its length is sent
                assert header(result, "Content-Length") == str(len(result.body))
            bodies.add(result.body)
    [body] = bodies
    assert body.startswith(b'"id","title"\r\n"1","Sample issue one"\r\n')
    assert b'"3","Title with <b>markup</b> & ampersand"' in body


#: Objects of one request that refer to each other until it ends; a page
#: must leave none of them to the cyclic garbage collector.
REQUEST_OBJECTS = {"Client", "ClientGuard", "Request", "Session", "Writer"}


@pytest.mark.parametrize("server_write", [True, False])
def test_a_response_leaves_no_request_objects_to_the_cyclic_collector(
    apps: dict[str, RequestDispatcher], server_write: bool
) -> None:
    """After each response, reference counting alone frees the request, its
    ``Writer``, Roundup's ``Client`` and ``Session``: the cycles between
    them are broken when the Client is done.  Left to the cyclic collector,
    they would set it off every few requests, each pass costing more than
    a page.  (Roundup's session lookup leaves a few small closures of
    ``ast.literal_eval``; an exception's traceback is a cycle too: not
    counted.)"""
    cases = [case[0] for case in CASES if case[0] != "exception"]
    for app in apps.values():
        for case_id in cases:  # trackers opened, caches filled
            request(app, case_id, server_write=server_write)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for app in apps.values():
            for case_id in cases:
                request(app, case_id, server_write=server_write)
        gc.collect()
        left = {type(item).__name__ for item in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not left & REQUEST_OBJECTS
