"""Tests of roundup_wsgi.options: the options table, read from text."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from roundup_wsgi import RequestDispatcher, make_app
from roundup_wsgi.cli.arguments import build_parser
from roundup_wsgi.options import (
    APP_OPTIONS,
    DISPATCHER_OPTIONS,
    OPTIONS,
    WRITE_MODES,
    ConfigError,
    options_from_text,
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


def test_options_from_text_names_the_source_and_option() -> None:
    assert options_from_text({"debug": "on"}, "x.ini") == {"debug": True}
    with pytest.raises(ConfigError, match=r"x.ini: unknown option 'colour'.*home"):
        options_from_text({"colour": "blue"}, "x.ini", also=("home",))
    with pytest.raises(ConfigError, match=r"x.ini: debug = maybe: expected"):
        options_from_text({"debug": "maybe"}, "x.ini")


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
