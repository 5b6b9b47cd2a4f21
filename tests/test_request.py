"""Unit tests of Request (the object Roundup calls ``request``) and Writer,
with the tests' recording ``start_response``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers.wsgi import StartResponseRecorder, as_hypercorn
from webob import Request as WebobRequest

from roundup_wsgi.request import Request, ResponseBody, Writer
from roundup_wsgi.wsgi import errorpages


def make(
    mode: str, returns_write: bool, method: str = "GET"
) -> tuple[Request, StartResponseRecorder]:
    server = StartResponseRecorder(returns_write)
    return Request(WebobRequest.blank("/", method=method).environ, server, mode), server


def test_writer_refuses_data_before_start_response() -> None:
    with pytest.raises(ValueError, match=r"start_response\(\) not called"):
        Writer().write(b"x")


def test_writer_encodes_str_and_skips_empty_writes() -> None:
    writer = Writer()
    sink: list[bytes] = []
    writer.sink = sink.append
    writer.write("é")
    writer.write("")
    writer.writelines([b"a", "b"])
    writer.flush()
    assert sink == ["é".encode(), b"a", b"b"]


@pytest.mark.parametrize("returns_write", [True, False])
def test_buffer_mode_calls_start_response_once_at_finish(returns_write: bool) -> None:
    response, server = make("buffer", returns_write)
    response.start_response([("Content-Type", "text/plain")], 200)
    response.wfile.write(b"hello ")
    response.wfile.write(b"world")
    assert server.calls == []
    body = response.finish()
    assert server.calls == [
        ("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "11")], None)
    ]
    assert b"".join(body) == b"hello world"
    assert server.written == []


def test_server_mode_writes_through_the_write_callable() -> None:
    response, server = make("server", returns_write=True)
    response.start_response([("Content-Type", "text/plain")], 200)
    # The server's start_response comes with the first write (until then a
    # sendfile may still change the headers: compression).
    assert server.calls == []
    response.wfile.write(b"hello")
    assert len(server.calls) == 1
    assert server.written == [b"hello"]
    assert list(response.finish()) == []  # the body went out by write()
    assert len(server.calls) == 1


def test_server_mode_without_writes_starts_at_finish_as_roundup_said() -> None:
    response, server = make("server", returns_write=True)
    response.start_response([("Location", "/issue1")], 302)
    assert list(response.finish()) == []
    assert server.calls == [("302 Found", [("Location", "/issue1")], None)]


def test_server_mode_buffers_when_the_server_returns_no_write_callable() -> None:
    response, _server = make("server", returns_write=False)
    response.start_response([("Content-Type", "text/plain")], 200)
    response.wfile.write(b"hello")
    assert list(response.finish()) == [b"hello"]


def test_a_second_start_response_replaces_the_buffered_response() -> None:
    response, _ = make("buffer", returns_write=False)
    response.start_response([("Content-Type", "text/plain")], 200)
    response.wfile.write(b"partial")
    response.start_response([("Content-Type", "text/html")], 404)
    response.wfile.write(b"Not found")
    assert list(response.finish()) == [b"Not found"]
    assert response.status == "404 Not Found"


def error_page(response: Request) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        page = errorpages.internal_server_error(response.environ, None)
        response.send_page(page, sys.exc_info())  # type: ignore[arg-type]


def test_error_before_output_replaces_headers_with_exc_info() -> None:
    response, server = make("server", returns_write=True)
    response.start_response([("Content-Type", "text/plain")], 200)
    error_page(response)
    body = b"".join(response.finish())
    # Nothing went out before the error: the server sees only the 500.
    assert len(server.calls) == 1
    status, _, exc_info = server.calls[-1]
    assert status == "500 Internal Server Error"
    assert exc_info[0] is RuntimeError
    assert b"500 Internal Server Error" in body


def test_error_after_output_went_out_propagates_to_the_server() -> None:
    # PEP 3333: once headers are sent, start_response(..., exc_info) re-raises.
    response, _server = make("server", returns_write=True)
    response.start_response([("Content-Type", "text/plain")], 200)
    response.wfile.write(b"half a page")
    with pytest.raises(RuntimeError, match="boom"):
        error_page(response)


@pytest.mark.parametrize("code", [204, 304])
def test_no_content_length_added_for_bodyless_statuses(code: int) -> None:
    response, server = make("buffer", returns_write=False)
    response.start_response([], code)
    response.finish()
    assert server.calls[0][1] == []


def test_head_drops_the_body_but_keeps_headers() -> None:
    response, server = make("buffer", returns_write=False, method="HEAD")
    response.start_response([("Content-Length", "5")], 200)
    response.wfile.write(b"hello")
    assert list(response.finish()) == []
    assert server.calls[0][1] == [("Content-Length", "5")]


@pytest.mark.parametrize(
    ("mode", "returns_write", "method", "code"),
    [
        ("buffer", False, "HEAD", 200),
        ("buffer", True, "GET", 304),
        ("buffer", False, "GET", 204),
        ("server", False, "GET", 304),
        ("server", True, "GET", 204),
        ("server", True, "HEAD", 200),
    ],
)
@pytest.mark.parametrize("hypercorn", [True, False])
def test_an_empty_body_is_one_empty_chunk_on_hypercorn(
    mode: str, returns_write: bool, method: str, code: int, hypercorn: bool
) -> None:
    """hypercorn starts the response with the first chunk of the app_iter:
    a response without a body must still yield one (an empty one).  Other
    servers start an empty response themselves and get the empty app_iter
    Roundup's own handler returns (wsgiref adds ``Content-Length: 0`` only
    for that)."""
    server = StartResponseRecorder(returns_write)
    environ = WebobRequest.blank("/", method=method).environ
    start_response = as_hypercorn(server) if hypercorn else server
    response = Request(environ, start_response, mode)
    response.start_response([("ETag", '"abc"')], code)
    app_iter = response.finish()
    assert server.calls[0][0].startswith(str(code))
    assert list(app_iter) == ([b""] if hypercorn else [])


def test_a_body_has_no_empty_chunks() -> None:
    response, _ = make("buffer", returns_write=False)
    response.start_response([("Content-Type", "text/plain")], 200)
    response.wfile.write(b"hello")
    response.wfile.write(b"")
    response.wfile.write(b" world")
    assert list(response.finish()) == [b"hello", b" world"]


def test_finish_without_status_is_an_error() -> None:
    response, _ = make("buffer", returns_write=False)
    with pytest.raises(RuntimeError, match="without sending a response"):
        response.finish()


def test_response_body_close_is_idempotent() -> None:
    closed: list[int] = []

    class Body(list[bytes]):
        def close(self) -> None:
            closed.append(1)

    body = ResponseBody([b"a"], Body([b"b"]))
    assert list(body) == [b"a", b"b"]
    body.close()
    body.close()
    assert closed == [1]


def test_an_empty_file_body_is_one_empty_chunk(tmp_path: Path) -> None:
    """A zero-length attachment still starts the response on hypercorn."""
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    response, server = make("buffer", returns_write=False)
    response.start_response([("Content-Length", "0")], 200)
    response.sendfile(str(empty), 0, 0)
    assert list(response.finish()) == [b""]
    assert server.calls[0][0] == "200 OK"
