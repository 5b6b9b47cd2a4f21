"""roundup_wsgi.inputs: multipart uploads work under granian, whose
``wsgi.input.readline`` loses the body after the first CR."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import loadclient
import pytest
import support
from servers import OUR_APP, ServerProcess, free_port, granian_command

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.inputs import readable_input


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
        + support.DEMO_PASSWORD.encode()
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
    result = support.call_wsgi(
        RequestDispatcher(str(tracker_home)), environ, server_write=False
    )
    assert b"Hello, demo" in result.body


@pytest.mark.slow
def test_upload_form_under_granian(tmp_path: Path, tracker_template: Path) -> None:
    port = free_port()
    web = f"http://127.0.0.1:{port}/"
    home = support.copy_tracker(tracker_template, tmp_path / "tracker", web)
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
            support.DEMO_USER,
            support.DEMO_PASSWORD,
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
