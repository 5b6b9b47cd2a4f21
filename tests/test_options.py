"""Tests of roundup_wsgi.options: the options table and text conversion."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
from typing import Any

import pytest

from roundup_wsgi import RequestDispatcher, Settings, make_app
from roundup_wsgi.cli.arguments import build_parser
from roundup_wsgi.options import (
    APP_OPTIONS,
    DEFAULTS,
    DISPATCHER_OPTIONS,
    OPTIONS,
    WRITE_MODES,
    ConfigError,
    WriteMode,
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
        if name not in ("self", "home", "settings")
    }
    assert keywords == {name: o.default for name, o in DISPATCHER_OPTIONS.items()}
    # Roundup's own signature still works positionally.
    assert list(parameters)[:6] == [
        "self",
        "home",
        "debug",
        "timing",
        "lang",
        "feature_flags",
    ]


def test_table_is_the_make_app_signature() -> None:
    """make_app's keywords are the "app" options with their defaults (the
    "dispatcher" ones go through ``**options``)."""
    parameters = inspect.signature(make_app).parameters
    keywords = {
        name: parameter.default
        for name, parameter in parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name != "settings"
    }
    assert keywords == {name: o.default for name, o in APP_OPTIONS.items()}


def test_settings_has_one_field_per_option_with_its_default() -> None:
    fields = dataclasses.fields(Settings)
    assert [field.name for field in fields] == [option.name for option in OPTIONS]
    assert {field.name: field.default for field in fields} == {
        option.name: option.default for option in OPTIONS
    }
    assert DEFAULTS == Settings() == Settings.from_kwargs()


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


def test_settings_from_kwargs_checks_and_normalises() -> None:
    settings = Settings.from_kwargs(
        write_mode="buffer", trusted_proxies="127.0.0.1, ::1", drain_file="/tmp/x"
    )
    assert settings.write_mode is WriteMode.BUFFER
    assert settings.trusted_proxies == ("127.0.0.1", "::1")
    assert settings.debug is False  # the table's default
    with pytest.raises(ValueError, match="write_mode='fast' is not a write mode"):
        Settings.from_kwargs(write_mode="fast")
    with pytest.raises(ValueError, match="reuse_db_max=-1 is not a count"):
        Settings.from_kwargs(reuse_db_max=-1)
    with pytest.raises(ValueError, match="static_response_cache_size=-1"):
        Settings.from_kwargs(static_response_cache_size=-1)
    with pytest.raises(ValueError, match="access_log_format='xml' is unknown"):
        Settings.from_kwargs(access_log_format="xml")
    with pytest.raises(ValueError, match="trusted proxy"):
        Settings.from_kwargs(trusted_proxies="not-an-address")
    with pytest.raises(TypeError, match=r"unknown option.*colour"):
        Settings.from_kwargs(colour="blue")


def test_settings_are_frozen_and_replace_checks() -> None:
    settings = Settings.from_kwargs(debug=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.debug = False  # type: ignore[misc]
    changed = settings.replace(write_mode="stream")
    assert (changed.debug, changed.write_mode) == (True, WriteMode.STREAM)
    assert settings.write_mode is WriteMode.AUTO
    with pytest.raises(ValueError, match="max_request_body=-5"):
        settings.replace(max_request_body=-5)


def test_settings_from_environ() -> None:
    settings = Settings.from_environ(
        {
            "ROUNDUP_WSGI_WRITE_MODE": "buffer",
            "ROUNDUP_WSGI_TRUSTED_PROXIES": "10.0.0.1 10.0.0.2",
            "HOME": "/root",
        }
    )
    assert settings.write_mode is WriteMode.BUFFER
    assert settings.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    with pytest.raises(ConfigError, match="ROUNDUP_WSGI_DEBUG='maybe'"):
        Settings.from_environ({"ROUNDUP_WSGI_DEBUG": "maybe"})
    with pytest.raises(
        ConfigError,
        match=r"reuse_db_max=-2 is not a count.*set in the environment: "
        r"ROUNDUP_WSGI_REUSE_DB_MAX='-2'",
    ):
        Settings.from_environ({"ROUNDUP_WSGI_REUSE_DB_MAX": "-2"})


@pytest.mark.parametrize(
    "first", ["roundup_wsgi.settings", "roundup_wsgi.options", "roundup_wsgi.values"]
)
def test_old_import_paths_give_the_same_objects(first: str) -> None:
    """The table re-exports the settings object and the values' names, in
    whichever order a fresh interpreter imports the modules."""
    code = (
        f"import {first}\n"
        "from roundup_wsgi.options import DEFAULTS, Settings, WriteMode, convert\n"
        "import roundup_wsgi.settings as s, roundup_wsgi.values as v\n"
        "assert (Settings, DEFAULTS) == (s.Settings, s.DEFAULTS)\n"
        "assert (WriteMode, convert) == (v.WriteMode, v.convert)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
