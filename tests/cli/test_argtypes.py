"""Tests of roundup_wsgi.cli.argtypes: the argparse types of the command's
values, alone and as ``serve`` reports them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.wsgi import FakeServer

from roundup_wsgi import cli
from roundup_wsgi.cli.argtypes import (
    DEFAULT_WEB,
    listen_port,
    port_number,
    positive_int,
    public_url,
    seconds,
    web_url_argument,
)


@pytest.mark.parametrize(
    ("convert", "text", "value"),
    [
        (port_number, "1", 1),
        (port_number, "65535", 65535),
        (listen_port, "0", 0),
        (listen_port, "8080", 8080),
        (seconds, "0", 0.0),
        (seconds, "2.5", 2.5),
        (positive_int, "1", 1),
        (web_url_argument, "https://bugs.example", "https://bugs.example/"),
        (public_url, "https://bugs.example", "https://bugs.example/"),
        (public_url, "http://h:81/tracker/", "http://h:81/tracker/"),
    ],
)
def test_values_accepted(convert: Callable[[str], Any], text: str, value: Any) -> None:
    assert convert(text) == value


@pytest.mark.parametrize(
    ("convert", "text", "message"),
    [
        (port_number, "0", "'0' is not a port number (1-65535)"),
        (port_number, "http", "'http' is not a port number (1-65535)"),
        (listen_port, "-1", "'-1' is not a port number (1-65535, or 0 for any"),
        (listen_port, "65536", "'65536' is not a port number"),
        (seconds, "-0.5", "'-0.5' is not a number of seconds >= 0"),
        (seconds, "nan", "'nan' is not a number of seconds >= 0"),
        (seconds, "soon", "'soon' is not a number of seconds >= 0"),
        (positive_int, "0", "'0' is not a whole number >= 1"),
        (positive_int, "1.5", "'1.5' is not a whole number >= 1"),
        (
            web_url_argument,
            "bugs.example",
            f"'bugs.example' is not an absolute http(s) URL like {DEFAULT_WEB}",
        ),
    ],
)
def test_values_refused(convert: Callable[[str], Any], text: str, message: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        convert(text)
    assert str(refused.value).startswith(message)


def test_serve_rejects_a_bad_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--port", "70000"]) == 2
    assert "not a port number" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url",
    [
        "ftp://bugs.example/",
        "bugs.example:8080/",
        "http://bugs.example/a?b=1",
        "http://user@bugs.example/",
        "http://bugs.example:99999/",
    ],
)
def test_serve_web_is_validated(
    in_tmp: Path,
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
    url: str,
) -> None:
    assert cli.main(["serve", "--web", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"roundup-wsgi serve: error: argument --web: {url!r}: ")
    assert len(err.splitlines()) == 1
    assert not servers_made
    assert not (in_tmp / "trackers").exists()
