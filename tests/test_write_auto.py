"""The default write mode ``"auto"``: a response whose length Roundup
declared (every page, file and REST answer has a Content-Length) is held
whole; one of unknown length (the CSV export) is streamed from its first
write; an error before the body is still a clean 500 page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.wsgi import StartResponseRecorder, call_wsgi, make_environ

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.options import WRITE_MODES
from roundup_wsgi.request import STREAM_BLOCK, Request

WEB = "http://localhost/"
EXPORT = "/issue?@action=export_csv&@columns=id,title&@sort=id"


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name.lower()), None)


def test_auto_is_the_default() -> None:
    assert WRITE_MODES[0] == "auto"


def test_a_declared_length_is_held_whole() -> None:
    recorder = StartResponseRecorder(returns_write=True)
    request = Request(make_environ("GET", "/"), recorder, "auto")
    request.start_response(
        [("Content-Type", "text/html"), ("Content-Length", "17")], 200
    )
    request.wfile.write(b"<html>")
    request.wfile.write(b"page</html>")
    assert recorder.calls == []  # nothing sent yet: an error could replace it
    body = b"".join(request.finish())
    assert body == b"<html>page</html>"
    assert header(recorder.calls[0][1], "Content-Length") == "17"
    assert recorder.written == []


@pytest.mark.parametrize("server_write", [True, False])
def test_an_unknown_length_streams_from_the_first_write(server_write: bool) -> None:
    recorder = StartResponseRecorder(returns_write=server_write)
    request = Request(make_environ("GET", "/"), recorder, "auto")
    request.start_response([("Content-Type", "text/csv")], 200)
    assert recorder.calls == []
    request.wfile.write(b"header\n")
    assert len(recorder.calls) == 1  # started at the first write
    assert header(recorder.calls[0][1], "Content-Length") is None
    request.wfile.write(b"row 1\n")
    rest = b"".join(request.finish())
    assert b"".join(recorder.written) + rest == b"header\nrow 1\n"
    if server_write:
        assert rest == b""


def test_streamed_rows_are_sent_in_blocks() -> None:
    recorder = StartResponseRecorder(returns_write=True)
    request = Request(make_environ("GET", "/"), recorder, "auto")
    request.start_response([("Content-Type", "text/csv")], 200)
    rows = [b"header\n"] + [b"%d,a row of the export\n" % n for n in range(10000)]
    for row in rows:
        request.wfile.write(row)
    assert b"".join(request.finish()) == b""
    assert recorder.written[0] == b"header\n"  # alone, at once
    assert b"".join(recorder.written) == b"".join(rows)
    assert all(len(block) == STREAM_BLOCK for block in recorder.written[1:-1])
    assert 0 < len(recorder.written[-1]) <= STREAM_BLOCK
    total = len(b"".join(rows))
    assert len(recorder.written) <= 2 + total // STREAM_BLOCK


def test_no_streamed_chunk_is_larger_than_a_block() -> None:
    # Large writes (a first write, a long row) are split too.
    recorder = StartResponseRecorder(returns_write=True)
    request = Request(make_environ("GET", "/"), recorder, "auto")
    request.start_response([("Content-Type", "text/csv")], 200)
    writes = [b"h" * (2 * STREAM_BLOCK + 5), b"r" * 10, b"x" * (3 * STREAM_BLOCK)]
    writes += [b"%d,row\n" % n for n in range(3000)]
    for data in writes:
        request.wfile.write(data)
    assert recorder.written[0] == b"h" * STREAM_BLOCK  # started at once
    assert b"".join(request.finish()) == b""
    assert b"".join(recorder.written) == b"".join(writes)
    assert max(map(len, recorder.written)) == STREAM_BLOCK


def waitress_chunk(data: bytes) -> bytes:
    """``data`` as waitress's ``Task.write`` frames it in a chunked response."""
    return b"%X\r\n" % len(data) + data + b"\r\n"


def test_waitress_keeps_streamed_blocks_in_its_bytes_buffer() -> None:
    # waitress appends each write to an OverflowableBuffer: under
    # STRBUF_LIMIT it is a bytes string emptied by each send; a write that
    # reaches the limit turns it into a BytesIO that keeps every byte sent
    # until the response ends (the CSV export's extra peak memory).  Our
    # blocks, framed, stay under the limit, even behind one unsent block.
    buffers = pytest.importorskip("waitress.buffers")
    framed = len(waitress_chunk(b"x" * STREAM_BLOCK))
    assert 2 * framed < buffers.STRBUF_LIMIT

    recorder = StartResponseRecorder(returns_write=True)
    request = Request(make_environ("GET", "/"), recorder, "auto")
    request.start_response([("Content-Type", "text/csv")], 200)
    for n in range(20000):
        request.wfile.write(b'%d,"Issue %d: a title",open,bug\n' % (n, n))
    request.finish()
    outbuf = buffers.OverflowableBuffer(1 << 20)
    for block in recorder.written:
        outbuf.append(waitress_chunk(block))
        outbuf.skip(len(outbuf), True)  # the socket took it all
    assert outbuf.buf is None  # never left the bytes stage
    assert outbuf.strbuf == b""


def test_head_is_never_streamed() -> None:
    recorder = StartResponseRecorder(returns_write=True)
    request = Request(make_environ("HEAD", "/"), recorder, "auto")
    request.start_response([("Content-Type", "text/csv")], 200)
    request.wfile.write(b"a")
    request.wfile.write(b"b")
    assert recorder.calls == []
    assert b"".join(request.finish()) == b""


@pytest.fixture
def home(make_tracker: Callable[[str], Path]) -> Path:
    return make_tracker(WEB)


@pytest.mark.parametrize("server_write", [True, False])
def test_pages_keep_their_content_length_and_bytes(
    home: Path, server_write: bool
) -> None:
    auto = RequestDispatcher(str(home))
    buffered = RequestDispatcher(str(home), write_mode="buffer")
    for path in ("/issue1", "/@@file/style.css", "/file1/hello.txt", "/nosuch1"):
        ours = call_wsgi(auto, make_environ("GET", path), server_write=server_write)
        reference = call_wsgi(
            buffered, make_environ("GET", path), server_write=server_write
        )
        assert ours.status == reference.status, path
        assert header(ours.headers, "Content-Length") == str(len(ours.body)), path
        assert ours.written == b""
        if path != "/issue1":  # (pages carry a fresh CSRF token)
            assert ours.body == reference.body, path


@pytest.mark.parametrize("server_write", [True, False])
def test_an_export_is_streamed_with_the_same_bytes(
    home: Path, server_write: bool
) -> None:
    auto = call_wsgi(
        RequestDispatcher(str(home)),
        make_environ("GET", EXPORT),
        server_write=server_write,
    )
    reference = call_wsgi(
        RequestDispatcher(str(home), write_mode="buffer"),
        make_environ("GET", EXPORT),
        server_write=server_write,
    )
    assert auto.status == "200 OK"
    assert auto.body == reference.body
    assert auto.body.startswith(b'"id","title"')
    assert header(auto.headers, "Content-Length") is None  # streamed
    assert header(reference.headers, "Content-Length") is not None


def test_an_error_before_the_body_is_a_clean_500(home: Path) -> None:
    result = call_wsgi(
        RequestDispatcher(str(home)),
        make_environ("GET", "/test-boom"),
        server_write=True,
    )
    assert result.status == "500 Internal Server Error"
    assert header(result.headers, "Content-Length") == str(len(result.body))
    assert b"test-boom" not in result.body  # no traceback outside debug mode
