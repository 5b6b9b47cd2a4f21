"""Tests of roundup_wsgi.wsgi.adapters: WSGI 2 <-> WSGI 1 and write()-to-iterable.

A fake server (a start_response that returns no write callable, as granian
does) is fine here: these are unit tests of the PEP 3333 plumbing.  Every
adapter output is checked by ``wsgiref.validate.validator``; the property
test drives random write()-using applications through every mode.  The
start_response rules are in test_wsgi1call.py, the mode-specific tests in
test_greenletmode.py and test_threadmode.py.
"""

from __future__ import annotations

import contextvars
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from wsgiref.util import FileWrapper
from wsgiref.validate import validator

import pytest
from helpers.adapters import TEXT, Boom, Recorder, environ, serve
from helpers.wsgi import StartResponseRecorder, as_hypercorn, live_greenlets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roundup_wsgi.wsgi.adapters import (
    MODES,
    iterable_only,
    wsgi1_to_wsgi2,
    wsgi2_to_wsgi1,
)

chunk = st.binary(min_size=0, max_size=8)


@dataclass
class Plan:
    """A random WSGI 1 application: its writes, its returned iterable, an
    optional error (raised, or start_response(exc_info) called) at a
    position of the writes-then-iterable sequence."""

    writes: list[bytes]
    iterable: list[bytes]
    error: str | None  # None, "raise" or "exc_info"
    error_at: int
    read: int | None  # chunks the server reads before closing (None: all)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    writes = draw(st.lists(chunk, max_size=5))
    iterable = draw(st.lists(chunk, max_size=5))
    error = draw(st.sampled_from([None, "raise", "exc_info"]))
    error_at = draw(st.integers(0, len(writes) + len(iterable)))
    read = draw(st.one_of(st.none(), st.integers(0, len(writes) + len(iterable))))
    return Plan(writes, iterable, error, error_at, read)


class PlannedApp:
    """The WSGI 1 application a :class:`Plan` describes; records what happened."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.returned: Recorder | None = None
        self.finished = False  # its call ended (returned, raised or interrupted)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        plan = self.plan
        try:
            write = start_response("200 OK", list(TEXT))
            for index, data in enumerate(plan.writes):
                if index == plan.error_at:
                    self.fail(start_response)
                write(data)
            if plan.error_at == len(plan.writes) and plan.error == "raise":
                raise Boom("after the writes")
            # An error inside the iterable: "raise" only (exc_info there is
            # covered by its own test).
            at = plan.error_at - len(plan.writes)
            raise_at = at if plan.error == "raise" and at >= 0 else None
            if plan.error == "exc_info" and at == 0 and not plan.writes:
                self.fail(start_response)
            self.returned = Recorder(plan.iterable, raise_at)
            return self.returned
        finally:
            self.finished = True

    def fail(self, start_response: Any) -> None:
        if self.plan.error == "raise":
            raise Boom("in the writes")
        if self.plan.error == "exc_info":
            try:
                raise Boom("handled")
            except Boom:
                start_response("500 Internal Server Error", list(TEXT), sys.exc_info())


def expected(plan: Plan, mode: str) -> tuple[str | None, bytes, bool]:
    """(status, bytes sent, whether an exception reaches the server) when the
    server reads everything; status None: the call itself raised."""
    writes, iterable, at = plan.writes, plan.iterable, plan.error_at
    if plan.error is None or (plan.error == "exc_info" and not 0 < at < len(writes)):
        # exc_info before the first write replaces the headers (not out yet).
        replaced = plan.error == "exc_info" and at == 0
        status = "500 Internal Server Error" if replaced else "200 OK"
        return status, b"".join(writes + iterable), False
    # "raise", or exc_info after a write (the headers are out: re-raised).
    if at <= len(writes):  # in the application's call
        if mode == "buffer" or at == 0:
            return None, b"", True
        return "200 OK", b"".join(writes[:at]), True
    return "200 OK", b"".join(writes + iterable[: at - len(writes)]), True


@pytest.mark.parametrize("mode", MODES)
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=plans())
def test_random_applications_through_every_mode(mode: str, plan: Plan) -> None:
    threads = set(threading.enumerate())  # earlier tests' may end meanwhile
    app = PlannedApp(plan)
    served = serve(validator(iterable_only(validator(app), mode)), read=plan.read)
    status, body, fails = expected(plan, mode)
    # The application is never left running: no thread, no suspended greenlet.
    assert app.finished
    assert set(threading.enumerate()) <= threads
    # The app_iter it returned is closed exactly once, whatever happened.
    if app.returned is not None:
        assert app.returned.closes == 1
    if status is None:
        # Failed before the response started: nothing was sent.
        assert served.status is None
        assert isinstance(served.error, Boom)
        assert served.chunks == []
        return
    assert served.status == status
    if plan.read is None:
        assert served.body == body
        assert isinstance(served.error, Boom) if fails else served.error is None
        assert served.close_error is None
    else:
        # Closed early: what was sent is the start of the full response.
        assert body.startswith(served.body)
        if served.error is not None:
            assert fails
            assert isinstance(served.error, Boom)
        if served.close_error is not None:
            # Only a worker thread can run ahead of the server and fail.
            assert mode == "thread"
            assert isinstance(served.close_error, Boom)


# -- close(), interruption, leaks ------------------------------------------------


@pytest.mark.parametrize("mode", ["greenlet", "thread"])
def test_early_close_interrupts_a_writing_application(mode: str) -> None:
    events: list[str] = []
    # threads of earlier tests may end meanwhile: only new ones count
    threads = set(threading.enumerate())
    greenlets = live_greenlets()

    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("200 OK", list(TEXT))
        try:
            for number in range(1000):
                write(b"%d\n" % number)
        except GeneratorExit:
            events.append("interrupted")
            raise
        events.append("completed")
        return []

    _, _, body = wsgi1_to_wsgi2(app, mode)(environ())
    assert next(iter(body)) == b"0\n"
    body.close()
    body.close()  # idempotent
    assert events == ["interrupted"]
    assert set(threading.enumerate()) <= threads
    assert live_greenlets() == greenlets


@pytest.mark.parametrize("mode", ["greenlet", "thread"])
def test_application_catching_generator_exit_has_its_iterable_closed(
    mode: str,
) -> None:
    returned = Recorder([b"ignored"])

    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("200 OK", list(TEXT))
        try:
            while True:
                write(b"row\n")
        except GeneratorExit:
            with pytest.raises(GeneratorExit):
                write(b"one more")  # every later write raises too
            return returned

    _, _, body = wsgi1_to_wsgi2(app, mode)(environ())
    assert next(iter(body)) == b"row\n"
    body.close()
    assert returned.closes == 1


@pytest.mark.parametrize("mode", MODES)
def test_exception_after_partial_output_reaches_the_server(mode: str) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        write = start_response("200 OK", list(TEXT))
        write(b"partial")
        raise Boom("after output")

    served = serve(validator(iterable_only(validator(app), mode)))
    assert isinstance(served.error, Boom)
    # Buffered: nothing had been sent, the server can still answer 500.
    assert (served.status, served.body) == (
        (None, b"") if mode == "buffer" else ("200 OK", b"partial")
    )


@pytest.mark.parametrize("mode", ["greenlet", "thread"])
def test_context_variables_reach_the_application(mode: str) -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("from the server")

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", list(TEXT))(var.get().encode())
        return []

    assert serve(iterable_only(app, mode)).body == b"from the server"


@pytest.mark.parametrize("mode", MODES)
def test_a_file_wrapper_is_handed_over_unwrapped(mode: str, tmp_path: Any) -> None:
    path = tmp_path / "file"
    path.write_bytes(b"file body")

    def app(environ: Any, start_response: Any) -> Any:
        start_response("200 OK", list(TEXT))
        return environ["wsgi.file_wrapper"](path.open("rb"))

    env = environ()
    env["wsgi.file_wrapper"] = FileWrapper
    _, _, body = wsgi1_to_wsgi2(app, mode)(env)
    assert isinstance(body, FileWrapper)
    assert b"".join(body) == b"file body"
    body.close()


# -- wsgi2_to_wsgi1 ------------------------------------------------------------


def test_wsgi2_application_on_a_wsgi1_server() -> None:
    closes: list[str] = []

    def body() -> Iterator[bytes]:
        try:
            yield b"hello "
            yield b"world"
        finally:
            closes.append("closed")

    def app2(environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], Any]:
        return "200 OK", list(TEXT), body()

    served = serve(validator(wsgi2_to_wsgi1(app2)))
    assert (served.status, served.body) == ("200 OK", b"hello world")
    assert closes == ["closed"]
    early = serve(validator(wsgi2_to_wsgi1(app2)), read=1)
    assert early.body == b"hello "
    assert closes == ["closed", "closed"]


def test_wsgi2_body_closed_when_start_response_fails() -> None:
    body = Recorder([b"x"])

    def app2(environ: dict[str, Any]) -> Any:
        return "200 OK", list(TEXT), body

    def refusing(status: str, headers: Any, exc_info: Any = None) -> None:
        raise Boom("the server refuses the headers")

    with pytest.raises(Boom):
        wsgi2_to_wsgi1(app2)(environ(), refusing)
    assert body.closes == 1


def test_wsgi2_bad_return_value_is_a_type_error() -> None:
    def app2(environ: dict[str, Any]) -> Any:
        return [b"not a triple"]

    with pytest.raises(TypeError, match=r"must return \(status, headers, body\)"):
        serve_raising(wsgi2_to_wsgi1(app2))


def serve_raising(app: Any) -> Iterable[bytes]:
    return app(environ(), lambda status, headers, exc_info=None: None)


@pytest.mark.parametrize("mode", MODES)
def test_round_trip_through_both_adapters(mode: str) -> None:
    def app(environ: Any, start_response: Any) -> Any:
        start_response("201 Created", [("Content-Type", "text/plain")])(b"a")
        return [b"b"]

    status, headers, body = wsgi1_to_wsgi2(wsgi2_to_wsgi1(wsgi1_to_wsgi2(app, mode)))(
        environ()
    )
    assert (status, headers, b"".join(body)) == ("201 Created", TEXT, b"ab")
    body_close = getattr(body, "close", None)
    if body_close:
        body_close()


# -- construction --------------------------------------------------------------


def test_unknown_mode_and_bad_queue_size_are_value_errors() -> None:
    def app(environ: Any, start_response: Any) -> Any:
        return []

    with pytest.raises(ValueError, match=r"mode='gevent'.*'buffer', 'greenlet'"):
        wsgi1_to_wsgi2(app, "gevent")
    with pytest.raises(ValueError, match=r"queue_size=0"):
        iterable_only(app, "thread", queue_size=0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("hypercorn", [False, True])
def test_an_empty_body_starts_the_response_on_hypercorn(
    mode: str, hypercorn: bool
) -> None:
    """hypercorn sends the status line with the first chunk: an empty body
    becomes one empty chunk there, and stays empty on other servers."""

    def no_body(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("304 Not Modified", [("ETag", '"x"')])
        return []

    recorder = StartResponseRecorder()
    start_response = as_hypercorn(recorder) if hypercorn else recorder
    app_iter = iterable_only(no_body, mode)(environ(), start_response)
    try:
        chunks = list(app_iter)
    finally:
        getattr(app_iter, "close", lambda: None)()
    assert recorder.status == "304 Not Modified"
    assert chunks == ([b""] if hypercorn else [])


def test_the_old_import_paths_give_the_same_objects() -> None:
    """``roundup_wsgi.wsgi.adapters`` still offers the names that moved to
    firstchunk and wsgi1call, and ``roundup_wsgi.adapters`` all of its own."""
    import roundup_wsgi.adapters as old_path
    from roundup_wsgi.wsgi import adapters, firstchunk, wsgi1call

    for module in (firstchunk, wsgi1call):
        assert set(module.__all__) <= set(adapters.__all__)
        for name in module.__all__:
            assert getattr(adapters, name) is getattr(module, name), name
    assert old_path.__all__ == adapters.__all__
    for name in adapters.__all__:
        assert getattr(old_path, name) is getattr(adapters, name), name
