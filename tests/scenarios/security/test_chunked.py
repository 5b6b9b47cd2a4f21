"""Request bodies without Content-Length (``Transfer-Encoding: chunked``).

gunicorn, granian and hypercorn give a chunked body to the application
without ``CONTENT_LENGTH``; Roundup's ``BinaryFieldStorage`` then reads a
JSON body as ``str`` and its REST API answers 500 (``AttributeError: 'str'
object has no attribute 'decode'``).  roundup_wsgi.request_body spools such
a body (bounded by ``max_request_body``) and sets ``CONTENT_LENGTH``, so a
chunked REST ``POST /rest/data/issue`` and a chunked upload form create the
issue on every server; stock Roundup is compared on each (it fails on all
but waitress, which de-chunks itself).  uWSGI is not here: tests/helpers
has no command for it.
"""

from __future__ import annotations

import http.client
import io
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import seeded
from helpers.servers import (
    HTTP_TIMEOUT,
    OUR_APP,
    SERVERS,
    STOCK_APP,
    ServerProcess,
    free_port,
)
from helpers.wsgi import REST_HEADERS, call_wsgi, make_environ
from roundup import instance
from test_error_pages import Browser, http_send, multipart

from roundup_wsgi import RequestDispatcher, request_body

#: ``(status, lower-case headers, body)``.
Answer = tuple[int, dict[str, str], bytes]


def chunked_post(
    port: int, path: str, headers: dict[str, str], body: bytes, size: int = 7
) -> Answer:
    """POST ``body`` to 127.0.0.1:``port`` in chunks of ``size`` bytes
    (``Transfer-Encoding: chunked``, no ``Content-Length``)."""
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("POST", path, body=iter(chunks), headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def rest_headers(web: str) -> dict[str, str]:
    """A REST POST as admin (Basic), with the headers Roundup's CSRF checks
    want (tests/scenarios/test_faults.py's ``rest_create``)."""
    return {
        "Content-Type": "application/json",
        "X-Requested-With": "rest",
        "Origin": web.rstrip("/"),
        "Referer": web,
        **seeded.ADMIN_AUTH,
    }


def issue_files(home: Path, title: str) -> list[Any] | None:
    """The attachments of the issue called ``title`` (``None``: no issue)."""
    db = instance.open(str(home)).open("admin")
    try:
        for issue_id in db.issue.filter(None, {"title": title}):
            if db.issue.get(issue_id, "title") == title:
                return [
                    db.file.get(f, "content") for f in db.issue.get(issue_id, "files")
                ]
        return None
    finally:
        db.close()


# -- in process -------------------------------------------------------------------


def rest_environ(body: Any, **extra: Any) -> dict[str, Any]:
    """A REST POST without ``CONTENT_LENGTH``, as gunicorn or granian give it."""
    environ = make_environ(
        "POST",
        "/rest/data/issue",
        {**REST_HEADERS, **seeded.ADMIN_AUTH, "Transfer-Encoding": "chunked"},
    )
    environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    environ["wsgi.input"] = body
    environ.update(extra)
    return environ


class SocketLikeInput(io.RawIOBase):
    """A wsgi.input that would block at its end (a socket): reading past the
    body fails the test."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._data.read(len(buffer))
        if not data:
            raise AssertionError("read past the end of the body: would block")
        buffer[: len(data)] = data
        return len(data)


class TerminatedInput:
    """gunicorn's or granian's body: ``read`` gives ``b""`` at its end."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)


@pytest.mark.parametrize(
    ("server", "extra"),
    [
        ("gunicorn/granian", {"wsgi.input_terminated": True}),
        ("hypercorn", {}),  # the whole body in an io.BytesIO
    ],
)
def test_chunked_rest_post_creates_the_issue(
    tracker_home: Path, server: str, extra: dict[str, Any]
) -> None:
    title = f"chunked in process ({server})"
    body = json.dumps({"title": title}).encode()
    stream = TerminatedInput(body) if extra else io.BytesIO(body)
    environ = rest_environ(stream, **extra)
    result = call_wsgi(
        RequestDispatcher(str(tracker_home)), environ, server_write=False
    )
    assert result.status.startswith("201 "), (result.status, result.body[:500])
    assert issue_files(tracker_home, title) == []


def test_chunked_body_over_the_limit_is_413(tracker_home: Path) -> None:
    body = json.dumps({"title": "x" * 5000}).encode()
    environ = rest_environ(io.BytesIO(body), **{"wsgi.input_terminated": True})
    dispatcher = RequestDispatcher(str(tracker_home), max_request_body=1000)
    result = call_wsgi(dispatcher, environ, server_write=False)
    assert result.status.startswith("413 ")
    assert issue_files(tracker_home, "x" * 5000) is None


def test_chunked_body_whose_end_is_unknown_is_411(tracker_home: Path) -> None:
    """Not terminated by the server, not in memory: reading to EOF could
    wait for ever, so the body is not read (RFC 9110, 15.5.12)."""
    stream = io.BufferedReader(SocketLikeInput(b'{"title": "never read"}'))
    environ = rest_environ(stream)
    result = call_wsgi(
        RequestDispatcher(str(tracker_home)), environ, server_write=False
    )
    assert result.status.startswith("411 ")


def test_large_body_is_spooled_to_a_file_and_released(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(request_body, "SPOOL_IN_MEMORY", 100)
    body = b"x" * 1000
    environ = rest_environ(io.BytesIO(body), **{"wsgi.input_terminated": True})
    assert request_body.check_request_body(environ, 10_000) is None
    spool = environ["wsgi.input"]
    assert isinstance(spool, tempfile.SpooledTemporaryFile)
    assert spool._rolled  # on disk above the threshold
    assert environ["CONTENT_LENGTH"] == "1000"
    assert spool.read() == body
    request_body.release_body(environ)
    assert spool.closed


# -- real servers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(
    tracker_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str, str], tuple[ServerProcess, Path]]]:
    """``serve(server, app)``: a server (started once per module) serving
    ``app`` (OUR_APP or STOCK_APP) on its own copy of the seeded tracker."""
    running: dict[tuple[str, str], tuple[ServerProcess, Path]] = {}
    try:

        def serve(server: str, app: str) -> tuple[ServerProcess, Path]:
            if (server, app) not in running:
                base = tmp_path_factory.mktemp(f"{server}-{app.split(':')[0]}")
                port = free_port()
                web = f"http://127.0.0.1:{port}/"
                home = seeded.copy_tracker(tracker_template, base / "tracker", web)
                process = ServerProcess(
                    SERVERS[server](port, app),
                    port,
                    base / "logs",
                    env={"ROUNDUP_TRACKER_HOME": str(home)},
                    name=server,
                )
                process.start()
                running[(server, app)] = (process, home)
            return running[(server, app)]

        yield serve
    finally:
        for process, _ in running.values():
            process.stop()


@pytest.mark.slow
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_chunked_rest_post_on_each_server(
    server: str, served: Callable[[str, str], tuple[ServerProcess, Path]]
) -> None:
    answers = {}
    for app in (STOCK_APP, OUR_APP):
        process, home = served(server, app)
        title = f"chunked REST under {server} ({app})"
        body = json.dumps({"title": title, "priority": "3"}).encode()
        answer = chunked_post(
            process.port, "/rest/data/issue", rest_headers(process.url), body
        )
        answers[app] = (answer[0], issue_files(home, title))
    ours = answers[OUR_APP]
    assert ours == (201, []), (ours, process.log_tail())
    stock = answers[STOCK_APP]
    if server == "waitress":  # it de-chunks and sets CONTENT_LENGTH itself
        assert stock == ours
    else:  # better than Roundup: stock fails it
        assert stock[0] != 201
        assert stock[1] is None


@pytest.mark.slow
@pytest.mark.parametrize("server", sorted(SERVERS))
def test_chunked_upload_form_on_each_server(
    server: str, served: Callable[[str, str], tuple[ServerProcess, Path]]
) -> None:
    process, home = served(server, OUR_APP)
    browser = Browser(http_send(process.port), process.url)
    browser.login()
    title = f"chunked upload under {server}"
    body = multipart(
        {"@action": "new", "@csrf": browser.token, "title": title, "priority": "3"}
    )
    headers = {
        "Content-Type": "multipart/form-data; boundary=b0undary",
        "Cookie": browser.cookie or "",
        **browser.same_origin(),
    }
    status, reply_headers, reply = chunked_post(
        process.port, "/issue", headers, body, size=64
    )
    assert status == 302, (status, reply[:500], process.log_tail())
    assert "/issue" in reply_headers["location"]
    assert issue_files(home, title) == ["attached"]  # text: Roundup gives str
