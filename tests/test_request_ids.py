"""Request ids through make_app and a real tracker: a trusted proxy's id is
Roundup's trace id, the access log's and the response's; nobody else's."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from webtest import TestApp

from roundup_wsgi.app import make_app
from roundup_wsgi.wsgi.accesslog import LOGGER_NAME

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PROXY = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.4"}
CLIENT = {"REMOTE_ADDR": "203.0.113.9"}
LOOPBACK = {"REMOTE_ADDR": "127.0.0.1"}


class Seen(logging.Handler):
    """Keeps (trace id in Roundup's log context, message) of each record,
    and the access log's lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.roundup: list[tuple[str, str]] = []
        self.access: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == LOGGER_NAME:
            self.access.append(record.getMessage())
            return
        try:
            from roundup import logcontext
        except ImportError:  # Roundup 2.4
            return
        trace = str(logcontext.ctx_vars["trace_id"].get())
        self.roundup.append((trace, record.getMessage()))


@pytest.fixture
def seen() -> Iterator[Seen]:
    handler = Seen()
    loggers = [logging.getLogger("roundup"), logging.getLogger(LOGGER_NAME)]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
        lg.propagate = False
    try:
        yield handler
    finally:
        for lg, (level, propagate) in zip(loggers, saved, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


@pytest.fixture
def web(tracker_home: Path) -> TestApp:
    return TestApp(
        make_app(
            tracker_home,
            trusted_proxies="127.0.0.1",
            access_log=True,
            send_request_id=True,
        )
    )


def get(web: TestApp, path: str, peer: dict[str, str], **headers: str) -> Any:
    return web.get(path, headers=headers, extra_environ=peer)


@pytest.mark.parametrize("path", ["/issue1", "/@@file/style.css"])
def test_a_trusted_proxys_id_is_everywhere(web: TestApp, seen: Seen, path: str) -> None:
    response = get(web, path, PROXY, **{"X-Request-ID": "lb-0001"})
    assert response.headers["X-Request-ID"] == "lb-0001"
    assert seen.access[-1].endswith(" lb-0001")
    if path == "/issue1":
        pytest.importorskip("roundup.logcontext")
        assert seen.roundup, "Roundup logged nothing"
        assert {trace for trace, _ in seen.roundup} == {"lb-0001"}


def test_a_trusted_proxys_traceparent_gives_its_trace_id(
    web: TestApp, seen: Seen
) -> None:
    response = get(web, "/issue1", PROXY, traceparent=f"00-{TRACE}-{'1' * 16}-01")
    assert response.headers["X-Request-ID"] == TRACE
    assert seen.access[-1].endswith(" " + TRACE)


def test_a_clients_id_is_replaced_by_a_new_one_everywhere(
    web: TestApp, seen: Seen
) -> None:
    response = get(web, "/issue1", CLIENT, **{"X-Request-ID": "forged-1"})
    new = response.headers["X-Request-ID"]
    assert new != "forged-1"
    assert seen.access[-1].endswith(" " + new)
    assert "forged-1" not in "\n".join(seen.access)
    if seen.roundup:
        assert {trace for trace, _ in seen.roundup} == {new}


def test_a_bad_id_from_the_proxy_is_replaced_and_not_logged(
    web: TestApp, seen: Seen
) -> None:
    response = get(web, "/issue1", PROXY, **{"X-Request-ID": 'x"\\' + "y" * 200})
    new = response.headers["X-Request-ID"]
    assert "yyy" not in new
    assert "yyy" not in "\n".join(seen.access)


def test_ids_differ_and_the_header_can_be_off(tracker_home: Path) -> None:
    web = TestApp(make_app(tracker_home))  # on by default
    first = web.get("/@@file/style.css").headers["X-Request-ID"]
    second = web.get("/@@file/style.css").headers["X-Request-ID"]  # cached
    third = web.get("/issue1").headers["X-Request-ID"]
    assert len({first, second, third}) == 3
    for options in ({}, {"access_log": True}, {"trusted_proxies": "127.0.0.1"}):
        web = TestApp(make_app(tracker_home, send_request_id=False, **options))
        assert "X-Request-ID" not in web.get("/issue1").headers, options


@pytest.mark.parametrize("path", ["/issue1", "/@@file/style.css", "/-/health"])
def test_without_a_proxy_the_access_logs_id_is_the_responses(
    tracker_home: Path, seen: Seen, path: str
) -> None:
    """With hooks and no trusted proxy the finish-hook layer sends the id:
    Roundup's trace id (noted by the dispatcher, also for a cached answer),
    or a new one for an answer of the operations layer; a client's own id is
    ignored; the header's name is the option's."""
    web = TestApp(
        make_app(
            tracker_home,
            access_log=True,
            metrics=True,
            request_id_header="X-Trace",
            send_request_id=True,
        )
    )
    for _ in range(2):  # the second style.css comes from the response cache
        seen.roundup.clear()
        # (from loopback: /-/health answers it)
        response = get(web, path, LOOPBACK, **{"X-Trace": "forged-2"})
    sent = response.headers["X-Trace"]
    assert sent != "forged-2"
    assert "X-Request-ID" not in response.headers
    assert seen.access[-1].endswith(" " + sent), (seen.access[-1], sent)
    if path == "/issue1" and seen.roundup:
        assert {trace for trace, _ in seen.roundup} == {sent}


def test_a_request_id_header_that_is_no_header_name_is_refused(
    tracker_home: Path,
) -> None:
    for options in ({}, {"access_log": True}):
        with pytest.raises(ValueError, match="is not a header name"):
            make_app(tracker_home, request_id_header="X Request", **options)
