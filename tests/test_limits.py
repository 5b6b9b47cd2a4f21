"""The request-body limit (roundup_wsgi.limits) through the dispatcher:
413 before Roundup reads the body, 400 for a malformed Content-Length."""

from __future__ import annotations

import io
import json
from pathlib import Path
from wsgiref.validate import validator

import pytest
import support
from webtest import TestApp

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.limits import DEFAULT_MAX_REQUEST_BODY

REST_HEADERS = {
    "Content-Type": "application/json",
    "X-Requested-With": "rest",
    "Origin": "http://localhost",
    "Referer": "http://localhost/",
}


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
    app.authorization = ("Basic", ("admin", support.ADMIN_PASSWORD))
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
    result = support.call_wsgi(dispatcher, environ, server_write=False)
    assert result.status.startswith("413 ")


def test_unterminated_stream_over_the_limit_is_413(tracker_home: Path) -> None:
    """No Content-Length, the server terminates the body (chunked): the limit
    is enforced while reading."""
    dispatcher = RequestDispatcher(str(tracker_home), max_request_body=100)
    body = b"title=" + b"y" * 5000 + b"&@action=new"
    environ = post_environ(
        **{"wsgi.input": io.BytesIO(body), "wsgi.input_terminated": True}
    )
    result = support.call_wsgi(dispatcher, environ, server_write=False)
    assert result.status.startswith("413 ")


@pytest.mark.parametrize("value", ["abc", "-5", "1e3", "12 34"])
def test_malformed_content_length_is_400(tracker_home: Path, value: str) -> None:
    dispatcher = RequestDispatcher(str(tracker_home))
    environ = post_environ(
        CONTENT_LENGTH=value, **{"wsgi.input": io.BytesIO(b"title=x")}
    )
    result = support.call_wsgi(dispatcher, environ, server_write=False)
    assert result.status.startswith("400 ")
    assert b"Content-Length" in result.body


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_bad_limit_option_names_it(tracker_home: Path, bad: object) -> None:
    with pytest.raises(ValueError, match="max_request_body="):
        RequestDispatcher(str(tracker_home), max_request_body=bad)  # type: ignore[arg-type]
