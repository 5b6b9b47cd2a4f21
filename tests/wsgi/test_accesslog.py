"""The JSON access log (access_log_format = json): one valid JSON object per
line, whatever the request held; secrets redacted."""

from __future__ import annotations

import datetime
import io
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roundup_wsgi.wsgi.accesslog import AccessLog, LineHandler
from roundup_wsgi.wsgi.finish import FinishHooks, note


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


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="use combined or json"):
        AccessLog(format="xml")  # type: ignore[arg-type]
