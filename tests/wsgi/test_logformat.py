"""Tests of roundup_wsgi.wsgi.logformat: the combined-format line (parsed
as Apache's), the JSON line (one valid JSON object per line, whatever the
request held), escaping, secrets redacted, remembered request parts."""

from __future__ import annotations

import datetime
import io
import json
import logging
from collections.abc import Callable
from typing import Any

import apachelogs
import pytest
from helpers.adapters import environ
from hypothesis import given, settings
from hypothesis import strategies as st

from roundup_wsgi.wsgi import logformat
from roundup_wsgi.wsgi.accesslog import AccessLog, LineHandler
from roundup_wsgi.wsgi.finish import Finished, FinishHooks, note
from roundup_wsgi.wsgi.logformat import LOG_FORMAT, format_line, redact_query


def answer(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
    note(environ, "trace_id", "rid-1")
    note(environ, "user", "demo")
    start_response("200 OK", [("Content-Length", "5")])
    return [b"hello"]


def log_one(
    environ: dict[str, Any],
    names: dict[str, str] | None = None,
    name_field: str = "app",
) -> str:
    """The text the JSON access log writes for one request to ``answer``."""
    stream = io.StringIO()
    logger = logging.getLogger("test.accesslog.json")
    logger.handlers[:] = [LineHandler(stream)]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    app = FinishHooks(answer, [AccessLog(logger, "json", names, name_field)])
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", **environ}
    result = app(env, lambda status, headers, exc_info=None: None)
    b"".join(result)
    result.close()  # type: ignore[attr-defined]
    return stream.getvalue()


def test_the_fields() -> None:
    text = log_one(
        {
            "REMOTE_ADDR": "192.0.2.1",
            "SCRIPT_NAME": "/bugs",
            "PATH_INFO": "/issue1",
            "QUERY_STRING": "a=1&__login_password=secret&@csrf_token=t0k",
            "SERVER_PROTOCOL": "HTTP/2",
            "HTTP_USER_AGENT": "curl/8",
            "HTTP_REFERER": "https://bugs.example/",
        },
        {"bugs": "bugs", "support": "support"},
    )
    assert text.endswith("\n")
    assert text.count("\n") == 1
    line = json.loads(text)
    stamp = datetime.datetime.fromisoformat(line.pop("time"))
    assert stamp.utcoffset() == datetime.timedelta(0)
    assert abs(stamp.timestamp() - datetime.datetime.now().timestamp()) < 60
    assert line.pop("duration_us") >= 0
    assert line == {
        "remote_addr": "192.0.2.1",
        "method": "GET",
        "path": "/bugs/issue1",
        "query": "a=1&__login_password=***&@csrf_token=***",
        "protocol": "HTTP/2",
        "status": 200,
        "bytes": 5,
        "request_id": "rid-1",
        "user_agent": "curl/8",
        "referer": "https://bugs.example/",
        "app": "bugs",
        "user": "demo",
    }


def test_time_has_microseconds() -> None:
    line = json.loads(log_one({}, {"": "bugs"}))
    assert line["time"][19] == ".", line["time"]
    assert len(line["time"]) == 32, line["time"]
    assert line["app"] == "bugs"


def test_the_name_field_is_a_parameter() -> None:
    line = json.loads(log_one({"PATH_INFO": "/x"}, {"": "bugs"}, "tracker"))
    assert line["tracker"] == "bugs"
    assert "app" not in line
    assert json.loads(log_one({}))["app"] is None


@pytest.mark.parametrize(
    "value",
    [
        'a"b\\c\nd\re\x00f\x1b[31m',
        "\u2028\u2029",
        "x" * 100_000,
        "\xff\xfe\xc3",  # latin-1 text of bytes that are not UTF-8
        "\udcff",
        '{"status": 500}',
    ],
)
def test_hostile_values_stay_one_json_line(value: str) -> None:
    environ = {
        "PATH_INFO": "/" + value,
        "QUERY_STRING": value,
        "HTTP_USER_AGENT": value,
        "HTTP_REFERER": value,
        "REMOTE_USER": value,
    }
    text = log_one(environ)
    assert text.count("\n") == 1
    assert text.isascii()
    line = json.loads(text)
    assert line["status"] == 200
    assert set(line) >= {"path", "query", "user_agent", "referer"}


def test_non_utf8_bytes_are_shown_escaped() -> None:
    path = "/caf\xc3\xa9/\xff"  # PEP 3333 latin-1 text of b"/caf\xc3\xa9/\xff"
    line = json.loads(log_one({"PATH_INFO": path}))
    assert line["path"] == "/café/\\xff"


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300), st.text(max_size=100))
def test_any_text_is_one_json_line(path: str, agent: str) -> None:
    text = log_one({"PATH_INFO": path, "HTTP_USER_AGENT": agent, "QUERY_STRING": path})
    assert text.count("\n") == 1
    assert json.loads(text)["status"] == 200


# -- the combined-format line ----------------------------------------------------


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
    logformat._parts.clear()
    first = format_line(finished_record(**fields))
    assert format_line(finished_record(**fields)) == first
    logformat._parts.clear()
    assert format_line(finished_record(**fields)) == first
    for name in [*fields, "REMOTE_USER", "SCRIPT_NAME", "SERVER_PROTOCOL"]:
        other = format_line(finished_record(**{**fields, name: "/o"}))
        assert other != first, name


def test_remembered_parts_stay_bounded() -> None:
    logformat._parts.clear()
    for number in range(logformat._PARTS_MAX + 10):
        format_line(finished_record(PATH_INFO=f"/issue{number}"))
    assert len(logformat._parts) <= logformat._PARTS_MAX


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
