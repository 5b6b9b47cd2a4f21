"""Tests of roundup_wsgi.values: option values converted from text."""

from __future__ import annotations

from typing import Any

import pytest

from roundup_wsgi.options import DISPATCHER_OPTIONS
from roundup_wsgi.values import ConfigError, convert, parse_trackers


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
