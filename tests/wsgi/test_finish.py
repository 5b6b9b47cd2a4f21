"""Tests of roundup_wsgi.wsgi.finish: finish hooks."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any
from wsgiref.util import FileWrapper
from wsgiref.validate import validator

import pytest
from helpers.adapters import environ
from helpers.wsgi import request_garbage

from roundup_wsgi.wsgi.finish import Finished, FinishHooks, add_finish_hook, note


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
