"""Tests of the pages the dispatcher renders itself (via webob)."""

from __future__ import annotations

import json

import pytest
from webob import Request

from roundup_wsgi.wsgi import errorpages


@pytest.mark.parametrize(
    ("code", "line"),
    [
        (200, "200 OK"),
        (404, "404 Not Found"),
        (429, "429 Too Many Requests"),
        (599, "599 Unknown Server Error"),
    ],
)
def test_status_line(code: int, line: str) -> None:
    assert errorpages.status_line(code) == line


def test_pages_are_html_without_an_accept_header() -> None:
    environ = Request.blank("/", method="OPTIONS").environ
    environ.pop("HTTP_ACCEPT", None)
    status, headers, body = errorpages.not_implemented(environ)
    assert status == "501 Not Implemented"
    assert dict(headers)["Content-Type"].startswith("text/html")
    assert dict(headers)["Content-Length"] == str(len(body))
    assert b"<h1>501 Not Implemented</h1>" in body


def test_pages_honour_accept_json() -> None:
    environ = Request.blank("/", headers={"Accept": "application/json"}).environ
    _status, _headers, body = errorpages.bad_request(environ, "bad <input>")
    assert json.loads(body)["code"] == "400 Bad Request"
    assert "bad <input>" in json.loads(body)["message"]


def test_head_page_has_no_body() -> None:
    environ = Request.blank("/", method="HEAD").environ
    status, _headers, body = errorpages.internal_server_error(environ, None)
    assert status.startswith("500")
    assert body == b""


def test_details_are_escaped() -> None:
    environ = Request.blank("/").environ
    _, _, body = errorpages.internal_server_error(
        environ, "Traceback <script>x</script>"
    )
    assert b"&lt;script&gt;" in body
    assert b"<script>" not in body
