"""Tests of roundup_wsgi.options: the options table and text conversion."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from roundup_wsgi import RequestDispatcher
from roundup_wsgi.cli.arguments import build_parser
from roundup_wsgi.options import (
    APP_OPTIONS,
    DISPATCHER_OPTIONS,
    OPTIONS,
    WRITE_MODES,
    ConfigError,
    convert,
    options_from_text,
    parse_trackers,
)


def test_table_is_the_dispatcher_signature() -> None:
    """Every keyword of RequestDispatcher is in the table with its default,
    and nothing else of scope "dispatcher" is."""
    parameters = inspect.signature(RequestDispatcher.__init__).parameters
    keywords = {
        name: parameter.default
        for name, parameter in parameters.items()
        if name not in ("self", "home")
    }
    assert keywords == {name: o.default for name, o in DISPATCHER_OPTIONS.items()}


def test_every_option_has_help_and_a_unique_flag() -> None:
    flags = [option.cli_flag for option in OPTIONS if option.cli_flag]
    assert len(flags) == len(set(flags))
    assert all(option.help for option in OPTIONS)
    assert set(APP_OPTIONS) == {
        "trusted_proxies",
        "access_log",
        "metrics",
        "health_networks",
        "drain_file",
        # request ids (issue 23)
        "request_id_header",
        "send_request_id",
        "access_log_format",
    }
    assert DISPATCHER_OPTIONS["write_mode"].default == WRITE_MODES[0] == "auto"


def test_every_option_is_a_serve_flag() -> None:
    """``roundup-wsgi serve`` gets a flag per option, with the table's default."""
    parser = build_parser()
    args = parser.parse_args(["serve"])
    for option in OPTIONS:
        if not option.cli_flag:
            continue  # e.g. access_log: serve has --access-log FILE|-|off
        assert getattr(args, option.name) == option.default, option.name
    args = parser.parse_args(
        [
            "serve",
            "--no-static-fast-path",
            "--debug",
            "--write-mode",
            "stream",
            "--max-request-body",
            "none",
            "--feature-flags",
            "cache_tracker=false",
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy",
            "::1",
        ]
    )
    assert args.static_fast_path is False
    assert args.debug is True
    assert args.write_mode == "stream"
    assert args.max_request_body is None
    assert args.feature_flags == {"cache_tracker": False}
    assert args.trusted_proxies == ["127.0.0.1", "::1"]


@pytest.mark.parametrize(
    ("text", "hint", "value"),
    [
        ("off", bool, False),
        ("YES", bool, True),
        ("", str | None, None),
        ("de", str | None, "de"),
        ('{"cache_tracker": false}', dict[str, Any] | None, {"cache_tracker": False}),
        ("cache_tracker=false, x=3", dict, {"cache_tracker": False, "x": 3}),
        ("1_048_576", int, 1048576),
        ("none", int | None, None),
        ("2.5", float, 2.5),
        ("a, b c", list, ["a", "b", "c"]),
        ("stream", DISPATCHER_OPTIONS["write_mode"].hint, "stream"),
    ],
)
def test_convert(text: str, hint: Any, value: Any) -> None:
    assert convert(text, hint) == value


@pytest.mark.parametrize(
    ("text", "hint", "message"),
    [
        ("10MB", int | None, "whole number"),
        ("maybe", bool, "expected a boolean"),
        ("fast", DISPATCHER_OPTIONS["write_mode"].hint, "one of auto, buffer, server"),
        ("[1]", dict, "not key=value"),
        ("{1", dict, "not a JSON object"),
    ],
)
def test_convert_names_what_it_expects(text: str, hint: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        convert(text, hint)


def test_options_from_text_names_the_source_and_option() -> None:
    assert options_from_text({"debug": "on"}, "x.ini") == {"debug": True}
    with pytest.raises(ConfigError, match=r"x.ini: unknown option 'colour'.*home"):
        options_from_text({"colour": "blue"}, "x.ini", also=("home",))
    with pytest.raises(ConfigError, match=r"x.ini: debug = maybe: expected"):
        options_from_text({"debug": "maybe"}, "x.ini")


def test_parse_trackers() -> None:
    assert parse_trackers("bugs=/srv/b, support=/srv/s", "X") == {
        "bugs": "/srv/b",
        "support": "/srv/s",
    }
    for bad, message in [
        ("bugs", "not NAME=TRACKER_HOME"),
        ("a/b=/srv", "cannot be a URL path segment"),
        ("a=/x,a=/y", "given twice"),
        ("", "names no tracker"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_trackers(bad, "X")
