"""Compression of pages, static files and attachments, against Roundup's own handler.

Each request goes to Roundup's stock ``roundup.cgi.wsgi_handler.RequestDispatcher``
and to ours, in-process, on one tracker: status, every header but ``Date``,
and the body bytes must be the same, but where this project differs on
purpose (each such test says so and checks our answer against the stock
answer it should equal).  gzip bodies are compared with their header's
MTIME field masked (Roundup writes the time of compression there; our
static files are compressed once, at the first request).  The tracker has no
``interfaces.py``, so static files take our fast path.
"""

from __future__ import annotations

import email.utils
import gzip
import http.client
import os
import random
import shutil
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import seeded, servers
from helpers.wsgi import Result, call_wsgi, make_environ, mask_gzip, normalise_body
from roundup import instance
from roundup.cgi.wsgi_handler import RequestDispatcher as StockDispatcher
from roundup.configuration import CoreConfig

from roundup_wsgi import RequestDispatcher, compression
from roundup_wsgi.options import WRITE_MODES

CSS = "/@@file/style.css"
TINY_CSS = "/@@file/tiny.css"
#: A compressible text log of about 330 KiB: more than one 64 KiB block.
LOG = b"".join(
    b"2026-11-30 12:%02d:%02d INFO request /issue%d handled in %d ms\n"
    % (i // 60 % 60, i % 60, i % 997, i % 89)
    for i in range(6000)
)
SMALL_TEXT = LOG[:5000]
PNG = b"\x89PNG\r\n\x1a\n" + random.Random(3).randbytes(3000)
ZIP = b"PK\x03\x04" + b"compressible? no, a zip " * 200
GZIP_ACCEPT = {"Accept-Encoding": "gzip"}
#: Page headers that differ between two renderings.
PAGE_VARYING = ("content-length", "set-cookie", "expires")
BROWSER = {"Accept-Encoding": "gzip, deflate, br"}


def add_files(home: Path) -> dict[str, str]:
    """Attachments for the tests; returns ``{name: URL path}``."""
    db = instance.open(str(home)).open("admin")
    paths = {}
    try:
        for name, mime, content in (
            ("log.txt", "text/plain", LOG),
            ("small.txt", "text/plain", SMALL_TEXT),
            ("pixel.png", "image/png", PNG),
            ("archive.zip", "application/zip", ZIP),
        ):
            file_id = db.file.create(name=name, type=mime, content=content)
            paths[name] = f"/file{file_id}/{name}"
        db.commit()
    finally:
        db.close()
    return paths


def make_home(template: Path, target: Path, **config: Any) -> Path:
    home = seeded.copy_tracker(template, target, "http://localhost/")
    (home / "interfaces.py").unlink()  # its Client.main turns the fast path off
    (home / "html" / "tiny.css").write_bytes(b"/* under 100 bytes */\n")
    if config:
        settings = CoreConfig(str(home))
        for name, value in config.items():
            settings[name] = value
        settings.save(os.path.join(home, "config.ini"))
    return home


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, tracker_template: Path) -> Path:
    home = make_home(tracker_template, tmp_path_factory.mktemp("gz") / "tracker")
    add_files(home)
    return home


@pytest.fixture(scope="module")
def files(template: Path) -> dict[str, str]:
    db = instance.open(str(template)).open("admin")
    try:
        return {
            db.file.get(id, "name"): f"/file{id}/{db.file.get(id, 'name')}"
            for id in db.file.list()
        }
    finally:
        db.close()


@pytest.fixture(scope="module")
def stock(template: Path) -> StockDispatcher:
    return StockDispatcher(str(template))


@pytest.fixture(scope="module")
def ours(template: Path) -> RequestDispatcher:
    return RequestDispatcher(str(template))


def headers_of(result: Result, drop: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return sorted(
        (k.lower(), v) for k, v in result.headers if k.lower() not in ("date", *drop)
    )


def header(result: Result, name: str) -> str | None:
    return next((v for k, v in result.headers if k.lower() == name.lower()), None)


def decoded(result: Result) -> bytes:
    """The body without its Content-Encoding (gzip; br and zstd when Roundup
    has them: the live-server suite's runner installs them)."""
    coding = header(result, "Content-Encoding")
    if coding == "gzip":
        return gzip.decompress(result.body)
    if coding == "br":
        import brotli

        return bytes(brotli.decompress(result.body))
    if coding == "zstd":
        import zstd

        return bytes(zstd.ZSTD_uncompress(result.body))
    assert coding is None
    return result.body


def browser_coding() -> str:
    """The coding Roundup picks for a browser: br if brotli is installed."""
    from roundup.cgi.client import Client

    return "br" if "br" in Client.compressors else "gzip"


def ask(app: Any, method: str, path: str, headers: dict[str, str] | None) -> Result:
    return call_wsgi(app, make_environ(method, path, headers), server_write=True)


def assert_same(ours_result: Result, stock_result: Result, *drop: str) -> None:
    assert ours_result.status == stock_result.status
    assert headers_of(ours_result, drop) == headers_of(stock_result, drop)
    assert mask_gzip(ours_result.body) == mask_gzip(stock_result.body)


# (id, method, path, request headers); path "@name" is the attachment name
SAME_AS_STOCK = [
    ("css-gzip", "GET", CSS, GZIP_ACCEPT),
    ("css-browser", "GET", CSS, BROWSER),
    ("css-identity", "GET", CSS, {"Accept-Encoding": "identity"}),
    ("css-no-header", "GET", CSS, {}),
    ("css-q-values", "GET", CSS, {"Accept-Encoding": "br;q=1.0, gzip;q=0.5"}),
    ("css-x-gzip", "GET", CSS, {"Accept-Encoding": "x-gzip"}),
    ("css-head", "HEAD", CSS, GZIP_ACCEPT),
    ("css-under-100-bytes", "GET", TINY_CSS, GZIP_ACCEPT),
    ("css-underscore-prefix", "GET", "/_file/style.css", GZIP_ACCEPT),
    ("css-ims-old", "GET", CSS,
     {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT", **GZIP_ACCEPT}),
    ("css-range-unsatisfiable", "GET", CSS,
     {"Range": "bytes=10-9999999", **GZIP_ACCEPT}),
    ("text-attachment-small", "GET", "@small.txt", GZIP_ACCEPT),
    ("text-attachment-identity", "GET", "@log.txt", {}),
    ("png-attachment", "GET", "@pixel.png", BROWSER),
    ("head-attachment", "HEAD", "@log.txt", GZIP_ACCEPT),
]  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [pytest.param(*case[1:], id=case[0]) for case in SAME_AS_STOCK],
)
def test_same_as_roundups_handler(
    stock: StockDispatcher,
    ours: RequestDispatcher,
    files: dict[str, str],
    method: str,
    path: str,
    headers: dict[str, str],
) -> None:
    path = files[path[1:]] if path.startswith("@") else path
    stock_result = ask(stock, method, path, headers)
    for _ in range(2):  # the second from the cache, for static files
        assert_same(ask(ours, method, path, headers), stock_result)


def test_static_file_compressed_as_roundup_does(
    stock: StockDispatcher, ours: RequestDispatcher, template: Path
) -> None:
    result = ask(ours, "GET", CSS, BROWSER)
    assert_same(result, ask(stock, "GET", CSS, BROWSER))
    coding = browser_coding()
    assert header(result, "Content-Encoding") == coding
    assert header(result, "Vary") == "Accept-Encoding"
    assert (header(result, "ETag") or "").endswith(f'-{coding}"')
    assert header(result, "Content-Length") == str(len(result.body))
    assert decoded(result) == (template / "html" / "style.css").read_bytes()


def test_gzip_bytes_exact_with_the_same_clock(
    template: Path, stock: StockDispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the clock stopped, not even the gzip header's MTIME differs."""
    monkeypatch.setattr(time, "time", lambda: 1_764_500_000.0)
    fresh = RequestDispatcher(str(template))
    for path in (CSS, "/file1/hello.txt"):
        ours_result = ask(fresh, "GET", path, GZIP_ACCEPT)
        stock_result = ask(stock, "GET", path, GZIP_ACCEPT)
        assert ours_result.body == stock_result.body


def test_large_text_attachment_streams_compressed(
    stock: StockDispatcher, ours: RequestDispatcher, files: dict[str, str]
) -> None:
    """Above one block (64 KiB) an attachment is compressed as it is sent:
    no Content-Length (the server frames the body); otherwise as Roundup."""
    path = files["log.txt"]
    for headers, coding in ((GZIP_ACCEPT, "gzip"), (BROWSER, browser_coding())):
        result = ask(ours, "GET", path, headers)
        stock_result = ask(stock, "GET", path, headers)
        if coding == "gzip":
            assert_same(result, stock_result, "content-length")
        else:  # brotli's stream encoder need not give its one-shot bytes
            assert result.status == stock_result.status
            assert headers_of(result, ("content-length",)) == (
                headers_of(stock_result, ("content-length",))
            )
        assert header(result, "Content-Length") is None
        assert header(result, "Content-Encoding") == coding
        assert decoded(result) == LOG
        assert len(result.body) < len(LOG) / 5


def test_streamed_attachment_can_stop_early(
    ours: RequestDispatcher, files: dict[str, str]
) -> None:
    app_iter = ours(
        make_environ("GET", files["log.txt"], GZIP_ACCEPT), lambda *args: None
    )
    chunks = []
    for chunk in app_iter:
        chunks.append(chunk)
        if len(chunks) == 1:
            break
    app_iter.close()  # type: ignore[attr-defined]
    assert chunks
    assert chunks[0][:2] == b"\x1f\x8b"


def test_q_zero_refuses_gzip(stock: StockDispatcher, ours: RequestDispatcher) -> None:
    """Intended difference: RFC 9110 12.5.3, ``gzip;q=0`` is a refusal.
    Roundup sends gzip anyway; ours answers as Roundup does to ``identity``."""
    for refusal in ("gzip;q=0", "gzip;q=0, deflate", "*;q=0", "identity, *;q=0"):
        result = ask(ours, "GET", CSS, {"Accept-Encoding": refusal})
        assert_same(result, ask(stock, "GET", CSS, {"Accept-Encoding": "identity"}))
        assert header(result, "Content-Encoding") is None
    assert header(ask(stock, "GET", CSS, {"Accept-Encoding": "gzip;q=0"}),
                  "Content-Encoding") == "gzip"  # fmt: skip


def test_star_accepts_any_coding(
    stock: StockDispatcher, ours: RequestDispatcher
) -> None:
    """Intended difference: ``*`` accepts any coding (Roundup: none); ours
    answers as Roundup does to all its codings named."""
    every = {"Accept-Encoding": "zstd, br, gzip"}
    assert_same(ask(ours, "GET", CSS, {"Accept-Encoding": "*"}),
                ask(stock, "GET", CSS, every))  # fmt: skip
    assert header(ask(stock, "GET", CSS, {"Accept-Encoding": "*"}),
                  "Content-Encoding") is None  # fmt: skip


def test_pages_compressed_as_roundup_does(
    stock: StockDispatcher, ours: RequestDispatcher
) -> None:
    """Pages go through Roundup's own ``write_html``/``compress_encode`` in
    both; a page differs between two renderings (nonce, CSRF token), so the
    decoded bodies are compared normalised, and Content-Length left out."""
    for path in ("/issue", "/issue1", "/"):
        stock_result = ask(stock, "GET", path, BROWSER)
        ours_result = ask(ours, "GET", path, BROWSER)
        assert ours_result.status == stock_result.status
        assert headers_of(ours_result, PAGE_VARYING) == (
            headers_of(stock_result, PAGE_VARYING)
        )
        assert header(ours_result, "Content-Encoding") == browser_coding()
        assert normalise_body(decoded(ours_result)) == normalise_body(
            decoded(stock_result)
        )
    # q=0 is honoured on pages too (Roundup reads our parsed Accept-Encoding)
    refused = ask(ours, "GET", "/issue", {"Accept-Encoding": "gzip;q=0"})
    assert header(refused, "Content-Encoding") is None
    assert header(refused, "Vary") == "Accept-Encoding"


@pytest.mark.parametrize("validator", ["plain-etag", "gzip-etag", "if-modified-since"])
def test_conditional_requests_answer_304_as_roundup_does(
    stock: StockDispatcher, ours: RequestDispatcher, validator: str
) -> None:
    first = ask(ours, "GET", CSS, GZIP_ACCEPT)
    gzip_etag = header(first, "ETag") or ""
    assert gzip_etag.endswith('-gzip"')
    headers = {
        "plain-etag": {"If-None-Match": gzip_etag.replace("-gzip", "")},
        "gzip-etag": {"If-None-Match": f'"other", {gzip_etag}'},
        "if-modified-since": {"If-Modified-Since": header(first, "Last-Modified")},
    }[validator]
    for accept in (GZIP_ACCEPT, {}):
        result = ask(ours, "GET", CSS, {**headers, **accept})
        assert_same(result, ask(stock, "GET", CSS, {**headers, **accept}))
        assert result.status.startswith("304")
        assert result.body == b""


def test_range_gets_the_stored_bytes(
    stock: StockDispatcher, ours: RequestDispatcher, files: dict[str, str]
) -> None:
    """Intended difference: a Range is a range of the stored bytes, sent as
    they are (Roundup compresses the range: a Content-Range of one
    representation over a body of another).  Ours equals Roundup's answer
    without Accept-Encoding."""
    for path, stored in ((CSS, None), (files["log.txt"], LOG)):
        for ranged in ("bytes=10-99", "bytes=100-"):
            headers = {"Range": ranged}
            result = ask(ours, "GET", path, {**headers, **BROWSER})
            assert_same(result, ask(stock, "GET", path, headers))
            assert result.status.startswith("206")
            assert header(result, "Content-Encoding") is None
            # Vary as Roundup sets it (>= 100 bytes), though the range is
            # never compressed.
            vary = None if ranged == "bytes=10-99" else "Accept-Encoding"
            assert header(result, "Vary") == vary
            if stored is not None:
                start = int(ranged[6:].split("-")[0])
                end = ranged.split("-")[1]
                assert result.body == stored[start : int(end) + 1 if end else None]
    stock_range = ask(stock, "GET", CSS, {"Range": "bytes=0-999", **BROWSER})
    assert header(stock_range, "Content-Encoding") == browser_coding()  # the bug


def test_compressed_types_are_sent_as_stored(
    stock: StockDispatcher, ours: RequestDispatcher, files: dict[str, str]
) -> None:
    """Intended difference: a zip (sent by Roundup as
    application/octet-stream, its type not being in mime_type_allowlist) is
    not compressed again, and has no Vary; Roundup compresses it."""
    result = ask(ours, "GET", files["archive.zip"], BROWSER)
    assert result.body == ZIP
    assert header(result, "Content-Encoding") is None
    assert header(result, "Vary") is None
    assert header(result, "Content-Length") == str(len(ZIP))
    stock_result = ask(stock, "GET", files["archive.zip"], BROWSER)
    assert header(stock_result, "Content-Encoding") == browser_coding()
    assert_same(result, ask(stock, "GET", files["archive.zip"], {}), "vary")


@pytest.mark.parametrize("write_mode", WRITE_MODES)
@pytest.mark.parametrize("server_write", [True, False], ids=["write", "no-write"])
def test_every_write_mode_and_server_answers_the_same(
    template: Path,
    stock: StockDispatcher,
    files: dict[str, str],
    write_mode: str,
    server_write: bool,
) -> None:
    app = RequestDispatcher(str(template), write_mode=write_mode)
    for path, drop in ((CSS, ()), (files["log.txt"], ("content-length",))):
        result = call_wsgi(
            app, make_environ("GET", path, GZIP_ACCEPT), server_write=server_write
        )
        assert_same(result, ask(stock, "GET", path, GZIP_ACCEPT), *drop)
        assert result.written == b""  # files go to the app_iter


def test_dynamic_compression_off(tmp_path: Path, tracker_template: Path) -> None:
    home = make_home(
        tracker_template, tmp_path / "tracker", WEB_DYNAMIC_COMPRESSION=False
    )
    paths = add_files(home)
    stock, ours = StockDispatcher(str(home)), RequestDispatcher(str(home))
    for path in (CSS, paths["log.txt"], paths["small.txt"], "/issue1"):
        ours_result = ask(ours, "GET", path, BROWSER)
        stock_result = ask(stock, "GET", path, BROWSER)
        assert header(ours_result, "Content-Encoding") is None
        assert header(ours_result, "Vary") is None
        if path == "/issue1":
            assert normalise_body(ours_result.body) == normalise_body(stock_result.body)
        else:
            assert_same(ours_result, stock_result)


def test_precompressed_file_next_to_the_static_file(
    tmp_path: Path, tracker_template: Path
) -> None:
    """``use_precompressed_files``: Roundup's ``write_file`` picks
    ``style.css.gzip`` (newer than ``style.css``); sent as stored."""
    home = make_home(
        tracker_template, tmp_path / "tracker", WEB_USE_PRECOMPRESSED_FILES=True
    )
    css = home / "html" / "style.css"
    precompressed = home / "html" / "style.css.gzip"
    precompressed.write_bytes(gzip.compress(css.read_bytes(), mtime=0))
    later = time.time() + 10
    os.utime(precompressed, (later, later))
    stock, ours = StockDispatcher(str(home)), RequestDispatcher(str(home))
    for headers in (GZIP_ACCEPT, BROWSER, {"Accept-Encoding": "identity"}):
        result = ask(ours, "GET", CSS, headers)
        assert_same(result, ask(stock, "GET", CSS, headers))
    result = ask(ours, "GET", CSS, GZIP_ACCEPT)
    assert result.body == precompressed.read_bytes()
    assert header(result, "Content-Encoding") == "gzip"
    # Refused by q=0: the precompressed file is not sent either.
    refused = ask(ours, "GET", CSS, {"Accept-Encoding": "gzip;q=0"})
    assert refused.body == css.read_bytes()


# -- the cache of compressed static files ------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Codings passed to compression.compress, in order."""
    calls: list[str] = []
    real = compression.compress

    def counting(data: bytes, coding: str, mtime: float | None = None) -> bytes:
        calls.append(coding)
        return real(data, coding, mtime)

    monkeypatch.setattr(compression, "compress", counting)
    return calls


def test_repeated_static_file_costs_no_compression(
    template: Path, counted: list[str]
) -> None:
    app = RequestDispatcher(str(template))
    bodies = {ask(app, "GET", CSS, BROWSER).body for _ in range(5)}
    assert len(bodies) == 1
    assert counted == [browser_coding()]
    assert len(app.compressor.cache) == 1


def test_cache_entry_invalid_once_the_file_changes(
    tmp_path: Path, tracker_template: Path, counted: list[str]
) -> None:
    home = make_home(tracker_template, tmp_path / "tracker")
    css = home / "html" / "style.css"
    app = RequestDispatcher(str(home))
    assert decoded(ask(app, "GET", CSS, GZIP_ACCEPT)) == css.read_bytes()
    # Same size, new mtime: compressed anew.
    text = css.read_bytes().replace(b"body", b"BODY", 1)
    css.write_bytes(text)
    os.utime(css, (time.time() + 5, time.time() + 5))
    assert decoded(ask(app, "GET", CSS, GZIP_ACCEPT)) == text
    # Other size.
    css.write_bytes(text + b"/* more */\n" * 20)
    assert decoded(ask(app, "GET", CSS, GZIP_ACCEPT)) == css.read_bytes()
    # Replaced by another file (another inode), same size and mtime.
    replacement = tmp_path / "replacement.css"
    new = css.read_bytes().replace(b"BODY", b"b0dy", 1)
    replacement.write_bytes(new)
    stat = css.stat()
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, css)
    assert decoded(ask(app, "GET", CSS, GZIP_ACCEPT)) == new
    assert counted == ["gzip"] * 4
    assert len(app.compressor.cache) == 1


def test_cache_is_bounded_and_evicts(
    tmp_path: Path, tracker_template: Path, counted: list[str]
) -> None:
    home = make_home(tracker_template, tmp_path / "tracker")
    for n in range(4):
        (home / "html" / f"f{n}.css").write_bytes(
            b"".join(b"/* file %d line %d %d */\n" % (n, i, i * i) for i in range(400))
        )
    one = len(gzip.compress((home / "html" / "f0.css").read_bytes()))
    app = RequestDispatcher(
        str(home), static_cache_size=int(one * 2.5), static_response_cache_size=0
    )
    for n in (0, 1, 0, 2, 0):  # f1 is the least recently used when f2 comes
        ask(app, "GET", f"/@@file/f{n}.css", GZIP_ACCEPT)
    assert len(app.compressor.cache) == 2
    assert app.compressor.cache.size <= one * 2.5
    ask(app, "GET", "/@@file/f1.css", GZIP_ACCEPT)  # evicted: compressed again
    assert len(counted) == 4
    ask(app, "GET", "/@@file/f0.css", GZIP_ACCEPT)  # kept (recently used)
    assert len(counted) == 4


def test_no_cache_compresses_every_time(template: Path, counted: list[str]) -> None:
    app = RequestDispatcher(
        str(template), static_cache_size=0, static_response_cache_size=0
    )
    for _ in range(3):
        assert header(ask(app, "GET", CSS, GZIP_ACCEPT), "Content-Encoding") == "gzip"
    assert counted == ["gzip"] * 3


def test_bad_cache_size_is_a_value_error(template: Path) -> None:
    with pytest.raises(ValueError, match="static_cache_size=-1 is not a size"):
        RequestDispatcher(str(template), static_cache_size=-1)


# -- real servers ---------------------------------------------------------------


def fetch(
    port: int, method: str, path: str, headers: dict[str, str]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """``(status, headers but the server's own, raw body)`` of one request."""
    return servers.raw_fetch(port, method, path, headers, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("server", ["waitress", "gunicorn"])
def test_real_servers_compress_as_stock_roundup(
    server: str, template: Path, files: dict[str, str], tmp_path: Path
) -> None:
    """Stock and ours under the same server (one tracker copy: the ETag
    holds the file's inode): the compressed style.css is the same answer;
    the 330 KiB text attachment decodes to its bytes in both."""
    home = tmp_path / "tracker"
    shutil.copytree(template, home)
    answers = {}
    for app in (servers.STOCK_APP, servers.OUR_APP):
        port = servers.free_port()
        env = {"ROUNDUP_TRACKER_HOME": str(home)}
        command = servers.SERVERS[server](port, app)
        with servers.ServerProcess(command, port, tmp_path / f"log-{app}", env=env):
            answers[app] = [
                fetch(port, "GET", CSS, BROWSER),
                fetch(port, "GET", files["log.txt"], GZIP_ACCEPT),
            ]
    stock_css, stock_log = answers[servers.STOCK_APP]
    our_css, our_log = answers[servers.OUR_APP]
    assert our_css[:2] == stock_css[:2]
    assert mask_gzip(our_css[2]) == mask_gzip(stock_css[2])
    assert dict(our_css[1])["content-encoding"] == "gzip"
    assert gzip.decompress(our_log[2]) == gzip.decompress(stock_log[2]) == LOG
    assert [h for h in our_log[1] if h[0] != "content-length"] == [
        h for h in stock_log[1] if h[0] != "content-length"
    ]


SIZE_50_MIB = 50 * 1024 * 1024
RSS_LIMIT_KIB = 2 * 1024  # peak RSS growth allowed for the download (2 MiB)


def log_text(size: int) -> bytes:
    """``size`` bytes of a plausible text log."""
    lines = b"".join(
        b"2026-11-30 12:%02d:%02d INFO worker-%d GET /issue%d 200 in %d ms\n"
        % (i // 60 % 60, i % 60, i % 7, i * 7919 % 100000, i % 113)
        for i in range(100_000)
    )
    return (lines * (size // len(lines) + 1))[:size]


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM in /proc/{pid}/status")


def gunzip_stream(port: int, path: str) -> Iterator[bytes]:
    """The decoded body of a gzip GET, 1 MiB of the raw body at a time."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("GET", path, headers=GZIP_ACCEPT)
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Encoding") == "gzip"
        decoder = zlib.decompressobj(wbits=31)
        while block := response.read(1024 * 1024):
            yield decoder.decompress(block)
        yield decoder.flush()
        assert decoder.eof
    finally:
        conn.close()


@pytest.mark.slow
def test_50_mib_text_attachment_gzip_in_bounded_memory(
    make_tracker: Any, tmp_path: Path
) -> None:
    """A 50 MiB text attachment with Accept-Encoding: gzip under waitress:
    compressed as it is sent, peak server RSS grows by at most 2 MiB, and
    the decoded bytes are the stored ones."""
    port = servers.free_port()
    home = make_tracker(f"http://127.0.0.1:{port}/")
    content = log_text(SIZE_50_MIB)
    db = instance.open(str(home)).open("admin")
    try:
        big = db.file.create(name="big.log", type="text/plain", content=content)
        warm = db.file.create(name="warm.log", type="text/plain", content=LOG)
        db.commit()
    finally:
        db.close()
    command = servers.waitress_command(port)
    env = {"ROUNDUP_TRACKER_HOME": str(home)}
    with servers.ServerProcess(command, port, tmp_path / "logs", env=env) as server:
        assert server.proc is not None
        # Warm-up: templates, database, the streaming compressor.
        for _ in range(2):
            assert b"".join(gunzip_stream(port, f"/file{warm}/warm.log")) == LOG
        before = peak_rss_kib(server.proc.pid)
        received = 0
        for piece in gunzip_stream(port, f"/file{big}/big.log"):
            assert piece == content[received : received + len(piece)]
            received += len(piece)
        growth = peak_rss_kib(server.proc.pid) - before
    assert received == SIZE_50_MIB
    assert growth <= RSS_LIMIT_KIB, f"peak RSS grew by {growth} KiB"


def test_concurrent_requests_share_one_cache(template: Path) -> None:
    app = RequestDispatcher(str(template))
    bodies: list[bytes] = []

    def get() -> None:
        for _ in range(10):
            bodies.append(decoded(ask(app, "GET", CSS, BROWSER)))

    threads = [threading.Thread(target=get) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(bodies)) == 1
    assert len(bodies) == 40


def test_if_modified_since_later_date(
    stock: StockDispatcher, ours: RequestDispatcher
) -> None:
    later = email.utils.formatdate(time.time() + 3600, usegmt=True)
    headers = {"If-Modified-Since": later, **BROWSER}
    assert_same(ask(ours, "GET", CSS, headers), ask(stock, "GET", CSS, headers))


def test_header_changes_follow_roundups_order() -> None:
    """Vary and Content-Encoding go where Roundup's header() puts new keys
    (before the Set-Cookie lines); Roundup's setVary keeps another Vary."""
    headers = [
        ("Content-Type", "text/css"),
        ("ETag", '"a-b-c"'),
        ("Content-Length", "9554"),
        ("Set-Cookie", "roundup_charset=utf-8; Path=/;"),
    ]
    compression._set_vary(headers)
    compression._mark_encoded(headers, "gzip", 2658)
    assert headers == [
        ("Content-Type", "text/css"),
        ("ETag", '"a-b-c-gzip"'),
        ("Content-Length", "2658"),
        ("Vary", "Accept-Encoding"),
        ("Content-Encoding", "gzip"),
        ("Set-Cookie", "roundup_charset=utf-8; Path=/;"),
    ]
    streamed = [("ETag", '"x"'), ("Vary", "Cookie"), ("Content-Length", "1")]
    compression._set_vary(streamed)
    compression._mark_encoded(streamed, "br", None)
    assert streamed == [
        ("ETag", '"x-br"'),
        ("Vary", "Cookie, Accept-Encoding"),
        ("Content-Encoding", "br"),
    ]


def test_stream_falls_back_to_a_coding_it_can_stream(
    ours: RequestDispatcher, files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Roundup picks zstd first; its zstd module compresses only at once, so
    a large attachment streams with the next coding the client accepts."""
    from roundup.cgi.client import Client

    monkeypatch.setattr(Client, "compressors", ["gzip", "zstd"])
    monkeypatch.setattr(compression, "STREAMABLE_CODINGS", frozenset({"gzip"}))
    result = ask(ours, "GET", files["log.txt"], {"Accept-Encoding": "zstd, gzip"})
    assert header(result, "Content-Encoding") == "gzip"
    assert (header(result, "ETag") or "").endswith('-gzip"')
    assert decoded(result) == LOG
