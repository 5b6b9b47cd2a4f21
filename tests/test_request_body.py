"""The request-body limit (roundup_wsgi.request_body) through the dispatcher:
413 before Roundup reads the body, 400 for a malformed Content-Length.

roundup_wsgi.request_body: multipart uploads work under granian, whose
``wsgi.input.readline`` loses the body after the first CR.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any
from wsgiref.validate import validator

import pytest
from helpers import loadclient, seeded
from helpers.servers import OUR_APP, ServerProcess, free_port, granian_command
from helpers.wsgi import REST_HEADERS, call_wsgi
from webtest import TestApp

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.request_body import DEFAULT_MAX_REQUEST_BODY, readable_input


class UnreadableInput(io.RawIOBase):
    """A wsgi.input that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: object) -> int:
        raise AssertionError("the body was read although it is over the limit")


def post_environ(**overrides: object) -> dict[str, object]:
    """A form POST to /issue as a server would pass it, with ``overrides``."""
    environ: dict[str, object] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/issue",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "wsgi.errors": io.StringIO(),
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    environ.update(overrides)
    return environ


def rest_app(home: Path, limit: int | None) -> TestApp:
    app = TestApp(
        validator(RequestDispatcher(str(home), max_request_body=limit)),
        extra_environ={"HTTP_HOST": "localhost"},
    )
    app.authorization = ("Basic", ("admin", seeded.ADMIN_PASSWORD))
    return app


def test_default_limit_is_64_mib(tracker_home: Path) -> None:
    assert DEFAULT_MAX_REQUEST_BODY == 64 * 1024 * 1024
    assert RequestDispatcher(str(tracker_home)).max_request_body == (
        DEFAULT_MAX_REQUEST_BODY
    )


def test_body_over_the_limit_is_413_and_not_stored(tracker_home: Path) -> None:
    app = rest_app(tracker_home, 1000)
    body = json.dumps({"title": "x" * 2000})
    response = app.post("/rest/data/issue", body, headers=REST_HEADERS, status=413)
    assert b"1000 bytes" in response.body
    titles = app.get("/rest/data/issue", headers=REST_HEADERS).json["data"]
    assert len(titles["collection"]) == 3  # the seeded issues only


def test_body_at_the_limit_is_accepted(tracker_home: Path) -> None:
    body = json.dumps({"title": "exactly at the limit"})
    app = rest_app(tracker_home, len(body))
    app.post("/rest/data/issue", body, headers=REST_HEADERS, status=201)


def test_413_is_answered_without_reading_the_body(tracker_home: Path) -> None:
    dispatcher = RequestDispatcher(str(tracker_home), max_request_body=10)
    environ = post_environ(
        CONTENT_LENGTH=str(10**12), **{"wsgi.input": UnreadableInput()}
    )
    result = call_wsgi(dispatcher, environ, server_write=False)
    assert result.status.startswith("413 ")


def test_unterminated_stream_over_the_limit_is_413(tracker_home: Path) -> None:
    """No Content-Length, the server terminates the body (chunked): the limit
    is enforced while reading."""
    dispatcher = RequestDispatcher(str(tracker_home), max_request_body=100)
    body = b"title=" + b"y" * 5000 + b"&@action=new"
    environ = post_environ(
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
    )
    result = call_wsgi(dispatcher, environ, server_write=False)
    assert result.status.startswith("413 ")


@pytest.mark.parametrize("value", ["abc", "-5", "1e3", "12 34"])
def test_malformed_content_length_is_400(tracker_home: Path, value: str) -> None:
    dispatcher = RequestDispatcher(str(tracker_home))
    environ = post_environ(
        CONTENT_LENGTH=value, **{"wsgi.input": io.BytesIO(b"title=x")}
    )
    result = call_wsgi(dispatcher, environ, server_write=False)
    assert result.status.startswith("400 ")
    assert b"Content-Length" in result.body


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_bad_limit_option_names_it(tracker_home: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="max_request_body="):
        RequestDispatcher(str(tracker_home), max_request_body=bad)  # type: ignore[arg-type]


class BrokenReadlineBody:
    """Behaves like granian 2.8's WSGIBody: ``read(size)`` works,
    ``readline`` stops at CR and drops the rest of the body."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._data.read(size)

    def readline(self, size: int = -1) -> bytes:
        line = self._data.readline(size)
        if b"\r" in line:
            self._data.read()  # the rest is lost
            return line[: line.index(b"\r") + 1]
        return line


BrokenReadlineBody.__module__ = "granian._granian"


def test_wrapped_stream_reads_lines_and_stops_at_content_length() -> None:
    body = b"line one\r\nline two\r\nnext request"
    environ: dict[str, Any] = {
        "wsgi.input": BrokenReadlineBody(body),
        "CONTENT_LENGTH": str(len(b"line one\r\nline two\r\n")),
    }
    readable_input(environ)
    stream = environ["wsgi.input"]
    assert stream.readline(65536) == b"line one\r\n"
    assert stream.readline(65536) == b"line two\r\n"
    assert stream.read() == b""  # never past CONTENT_LENGTH


def test_other_servers_streams_are_untouched() -> None:
    stream = io.BytesIO(b"x")
    environ: dict[str, Any] = {"wsgi.input": stream, "CONTENT_LENGTH": "1"}
    readable_input(environ)
    assert environ["wsgi.input"] is stream


def test_upload_form_through_a_broken_readline_stream(tracker_home: Path) -> None:
    """In-process: the multipart login form read through the broken stream."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="@action"\r\n\r\nlogin\r\n'
        b'--b\r\nContent-Disposition: form-data; name="__login_name"\r\n\r\n'
        b"demo\r\n--b\r\nContent-Disposition: form-data; "
        b'name="__login_password"\r\n\r\n'
        + seeded.DEMO_PASSWORD.encode()
        + b"\r\n--b--\r\n"
    )
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "localhost",
        "HTTP_ORIGIN": "http://localhost",
        "HTTP_REFERER": "http://localhost/",
        "CONTENT_TYPE": "multipart/form-data; boundary=b",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": BrokenReadlineBody(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    result = call_wsgi(
        RequestDispatcher(str(tracker_home)), environ, server_write=False
    )
    assert b"Hello, demo" in result.body


@pytest.mark.slow
def test_upload_form_under_granian(tmp_path: Path, tracker_template: Path) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = seeded.copy_tracker(tracker_template, tmp_path / "tracker", web)
    with ServerProcess(
        granian_command(port, OUR_APP),
        port,
        tmp_path / "logs",
        env={"ROUNDUP_TRACKER_HOME": str(home)},
        name="granian",
    ):
        result = loadclient.LoadResult()
        client = loadclient.LoadClient(
            web,
            seeded.DEMO_USER,
            seeded.DEMO_PASSWORD,
            "3",
            "form",
            "granian",
            result,
        )
        client.login()
        title = "uploaded under granian"
        issue_id, error = loadclient.create_via_form(client, title)
        assert issue_id is not None, error
    check = loadclient.verify_issues(str(home), result, prefix=title)
    assert check.problems == []  # message and attachment bytes as sent
    assert len(check.unacknowledged_but_stored) == 1  # (not via create_one)
