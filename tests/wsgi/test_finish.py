"""Tests of roundup_wsgi.wsgi.finish (finish hooks) and
roundup_wsgi.wsgi.accesslog (the access-log line), Roundup-free."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import FileWrapper, setup_testing_defaults
from wsgiref.validate import validator

import apachelogs
import pytest
from helpers.wsgi import request_garbage

from roundup_wsgi.wsgi import accesslog
from roundup_wsgi.wsgi.accesslog import (
    LOG_FORMAT,
    AccessLog,
    LineHandler,
    format_line,
    redact_query,
)
from roundup_wsgi.wsgi.finish import Finished, FinishHooks, add_finish_hook, note


def environ(**extra: Any) -> dict[str, Any]:
    env: dict[str, Any] = {}
    setup_testing_defaults(env)
    env["QUERY_STRING"] = ""
    env.update(extra)
    return env


def chunks_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"abc"
    yield b"defg"


def test_hooks_run_once_at_close_with_bytes_status_and_duration() -> None:
    seen: list[Finished] = []
    app = FinishHooks(chunks_app, [seen.append])
    result = app(environ(), lambda status, headers, exc_info=None: None)
    assert seen == []  # not before close()
    assert b"".join(result) == b"abcdefg"
    assert seen == []
    result.close()  # type: ignore[attr-defined]
    result.close()  # type: ignore[attr-defined]
    assert len(seen) == 1
    finished = seen[0]
    assert (finished.status, finished.status_code, finished.bytes_sent) == (
        "200 OK",
        200,
        7,
    )
    assert finished.duration > 0
    assert not finished.client_gone
    assert finished.error is None


def test_close_before_the_end_is_a_client_gone() -> None:
    seen: list[Finished] = []
    app = FinishHooks(chunks_app, [seen.append])
    result = iter(app(environ(), lambda *args: None))
    assert next(result) == b"abc"
    result.close()  # type: ignore[attr-defined]
    assert seen[0].client_gone
    assert seen[0].bytes_sent == 3


def test_write_callable_bytes_count_and_hooks_added_inside() -> None:
    def legacy(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        add_finish_hook(environ, lambda f: seen.append(("inner", f.bytes_sent)))
        note(dict(environ), "trace_id", "abc123")  # a copy shares the record
        write = start_response("201 Created", [])
        write(b"12345")
        return [b"67"]

    seen: list[tuple[str, Any]] = []
    written: list[bytes] = []
    app = FinishHooks(legacy, [lambda f: seen.append(("outer", f.notes))])
    result = app(environ(), lambda *args: written.append)
    list(result)
    result.close()  # type: ignore[attr-defined]
    assert seen == [("outer", {"trace_id": "abc123"}), ("inner", 7)]


def test_an_exception_from_the_app_runs_the_hooks_and_propagates() -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    seen: list[Finished] = []
    with pytest.raises(RuntimeError):
        FinishHooks(broken, [seen.append])(environ(), lambda *args: None)
    assert isinstance(seen[0].error, RuntimeError)
    assert seen[0].status_code == 500


def test_a_failing_hook_is_logged_and_the_next_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[int] = []

    def bad(finished: Finished) -> None:
        raise ValueError("hook bug")

    app = FinishHooks(chunks_app, [bad, lambda f: seen.append(f.bytes_sent)])
    result = app(environ(), lambda *args: None)
    list(result)
    result.close()  # type: ignore[attr-defined]
    assert seen == [7]
    assert "finish hook" in caplog.text


def test_the_servers_file_wrapper_stays_unwrapped() -> None:
    class Wrapper:
        def __init__(self, data: bytes) -> None:
            self.data = data
            self.closed = False

        def __iter__(self) -> Iterator[bytes]:
            yield self.data

        def close(self) -> None:
            self.closed = True

    def file_app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "5")])
        return environ["wsgi.file_wrapper"](b"hello")

    seen: list[Finished] = []
    app = FinishHooks(file_app, [seen.append])
    result = app(environ(**{"wsgi.file_wrapper": Wrapper}), lambda *args: None)
    assert isinstance(result, Wrapper)
    result.close()
    assert result.closed
    assert seen[0].bytes_sent == 5


def test_an_ended_response_leaves_no_reference_cycle() -> None:
    """The environ and its record refer to each other until the response
    ends; then reference counting alone frees them.  A cycle left per
    request would set off the cyclic garbage collector every few hundred
    requests, which under a server cost more than the hooks.  (An
    exception raised through the middleware is kept in the record, and its
    traceback refers to the frames that refer to the record: that rare
    response is left to the collector.)"""

    def file_app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "5")])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"hello"))

    def one_request(app: Any, env: dict[str, Any]) -> None:
        result = app(env, lambda *args: None)
        list(result)
        result.close()

    seen: list[int] = []
    hooks = [lambda f: seen.append(f.status_code)]

    def three_responses() -> None:
        one_request(FinishHooks(chunks_app, hooks), environ())
        one_request(
            FinishHooks(file_app, hooks),
            environ(**{"wsgi.file_wrapper": FileWrapper}),
        )
        client_gone = iter(FinishHooks(chunks_app, hooks)(environ(), lambda *a: None))
        next(client_gone)
        client_gone.close()  # type: ignore[attr-defined]

    assert request_garbage(three_responses) == []
    assert seen == [200, 200, 200]


def test_a_file_wrapper_closed_twice_closes_once() -> None:
    closed: list[bool] = []

    class Wrapper:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def __iter__(self) -> Iterator[bytes]:
            yield self.data

        def close(self) -> None:
            closed.append(True)

    def file_app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "5")])
        return Wrapper(b"hello")

    seen: list[Finished] = []
    app = FinishHooks(file_app, [seen.append])
    result = app(environ(**{"wsgi.file_wrapper": Wrapper}), lambda *args: None)
    result.close()
    result.close()
    assert (closed, len(seen), seen[0].bytes_sent) == ([True], 1, 5)


def test_valid_under_wsgiref_validator() -> None:
    app = validator(FinishHooks(chunks_app))
    env = environ()
    result = app(env, lambda status, headers, exc_info=None: lambda data: None)
    assert b"".join(result) == b"abcdefg"
    result.close()


# -- the access-log line -------------------------------------------------------


def finished_record(**env: Any) -> Finished:
    record = Finished(
        environ(**env),
        status="206 Partial Content",
        bytes_sent=5,
        started=1_700_000_000.0,
        duration=0.0123,
        notes={"trace_id": "T1"},
    )
    return record


def test_line_parses_as_the_combined_format_plus_two_fields() -> None:
    record = finished_record(
        REQUEST_METHOD="GET",
        PATH_INFO="/file1/a b.txt",
        QUERY_STRING="x=1&__login_password=hunter2&api_token=t",
        REMOTE_ADDR="192.0.2.1",
        HTTP_REFERER='http://x/"quoted"',
        HTTP_USER_AGENT="agent\\1",
        HTTP_AUTHORIZATION="Basic ZGVtbzpzZWNyZXQ=",
        SERVER_PROTOCOL="HTTP/1.1",
    )
    line = format_line(record)
    entry = apachelogs.LogParser(LOG_FORMAT).parse(line)
    assert entry.remote_host == "192.0.2.1"
    assert entry.request_line == (
        "GET /file1/a%20b.txt?x=1&__login_password=***&api_token=*** HTTP/1.1"
    )
    assert entry.final_status == 206
    assert entry.bytes_sent == 5
    assert entry.headers_in == {
        "Referer": 'http://x/"quoted"',
        "User-Agent": "agent\\1",
    }
    assert entry.request_duration_microseconds == 12300
    assert entry.notes == {"trace_id": "T1"}
    assert "hunter2" not in line
    assert "ZGVtbzpzZWNyZXQ=" not in line


def test_redact_query_keeps_other_parameters() -> None:
    assert redact_query("@action=login&password=x") == "@action=login&password=***"
    assert redact_query("a=1&b=2") == "a=1&b=2"


def test_access_log_hook_logs_at_info(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.access")
    with caplog.at_level(logging.INFO, logger="test.access"):
        AccessLog(logger)(finished_record(REQUEST_METHOD="HEAD"))
    assert caplog.records[0].getMessage().startswith("- - - [")  # no REMOTE_ADDR


@pytest.mark.parametrize("hypercorn", [False, True])
def test_an_empty_body_under_finish_hooks_starts_the_response_on_hypercorn(
    hypercorn: bool,
) -> None:
    """The application below FinishHooks gets the hooks' start_response,
    not the server's; hypercorn (status line with the first chunk) still
    gets one empty chunk for an empty body, other servers none."""
    from helpers.wsgi import StartResponseRecorder, as_hypercorn

    from roundup_wsgi.wsgi.adapters import wsgi2_to_wsgi1

    app = wsgi2_to_wsgi1(lambda environ: ("304 Not Modified", [], []))
    seen: list[Finished] = []
    recorder = StartResponseRecorder()
    start_response = as_hypercorn(recorder) if hypercorn else recorder
    result = FinishHooks(app, [seen.append])(environ(), start_response)
    chunks = list(result)
    result.close()  # type: ignore[attr-defined]
    assert chunks == ([b""] if hypercorn else [])
    assert recorder.status == "304 Not Modified"
    assert seen[0].status == "304 Not Modified"


def test_line_handler_alone_gets_the_same_lines_without_a_record() -> None:
    stream = io.StringIO()
    handler = LineHandler(stream)
    logger = logging.getLogger("test.access.line")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    seen: list[logging.LogRecord] = []
    hook = AccessLog(logger)
    try:
        hook(finished_record(PATH_INFO="/a%(process)d"))  # written directly
        handler.addFilter(lambda record: seen.append(record) or True)
        hook(finished_record(PATH_INFO="/a%(process)d"))  # through a record
    finally:
        logger.removeHandler(handler)
    first, second = stream.getvalue().splitlines()
    assert first == second == format_line(finished_record(PATH_INFO="/a%(process)d"))
    assert "/a%(process)d " in first
    (record,) = seen
    assert (record.levelno, record.name, record.getMessage()) == (
        logging.INFO,
        "test.access.line",
        first,
    )


def test_line_handler_write_error_goes_to_handle_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    handler = LineHandler(Broken())
    errors: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", errors.append)
    handler.write_line("a line", "test.access")
    assert [(r.name, r.getMessage()) for r in errors] == [("test.access", "a line")]


def test_line_from_remembered_request_parts_is_the_same_line() -> None:
    """The second line of a request comes from the remembered parts: it is
    the line a first request gives, and requests that differ in any field
    never share parts."""
    fields = {
        "PATH_INFO": "/issue1",
        "QUERY_STRING": "@template=item",
        "HTTP_REFERER": "http://x/",
        "HTTP_USER_AGENT": "agent/1",
        "REMOTE_ADDR": "192.0.2.1",
    }
    accesslog._parts.clear()
    first = format_line(finished_record(**fields))
    assert format_line(finished_record(**fields)) == first
    accesslog._parts.clear()
    assert format_line(finished_record(**fields)) == first
    for name in [*fields, "REMOTE_USER", "SCRIPT_NAME", "SERVER_PROTOCOL"]:
        other = format_line(finished_record(**{**fields, name: "/o"}))
        assert other != first, name


def test_remembered_parts_stay_bounded() -> None:
    accesslog._parts.clear()
    for number in range(accesslog._PARTS_MAX + 10):
        format_line(finished_record(PATH_INFO=f"/issue{number}"))
    assert len(accesslog._parts) <= accesslog._PARTS_MAX


def test_unsafe_characters_escaped_in_every_field() -> None:
    record = finished_record(
        PATH_INFO="/caf\xc3\xa9",  # UTF-8 bytes as the server's latin-1 text
        HTTP_USER_AGENT="a\tb\x7f",
        REMOTE_USER='u"1',
    )
    record.notes["trace_id"] = 'id"\n'
    line = format_line(record)
    assert '"GET /caf%C3%A9 HTTP/1.0"' in line
    assert '"a\\x09b\\x7f"' in line
    assert ' - u\\"1 [' in line
    assert line.endswith(' id\\"\\x0a')


@pytest.mark.parametrize("write_through", [True, False])
def test_line_handler_lines_reach_the_file_at_once(
    tmp_path: Path, write_through: bool
) -> None:
    """Each line is in the file as soon as it is written: a write-through
    stream over an unbuffered file (sys.stderr's kind) is not flushed, a
    buffered one is."""
    path = tmp_path / "access.log"
    raw = open(path, "wb", buffering=0)  # noqa: SIM115 - closed below
    binary = raw if write_through else io.BufferedWriter(raw)
    stream = io.TextIOWrapper(binary, "utf-8", write_through=write_through)
    handler = LineHandler(stream)
    try:
        for number in range(3):
            handler.write_line(f"line {number}")
            assert path.read_text().splitlines()[-1] == f"line {number}"
        assert (handler._unbuffered is stream) == write_through
    finally:
        stream.close()
