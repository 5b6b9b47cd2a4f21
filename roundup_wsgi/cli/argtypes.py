"""The values of the ``roundup-wsgi`` command's arguments: their defaults
and the argparse types that check them.

Each type returns the value or raises :class:`argparse.ArgumentTypeError`
with the text given and what is wrong with it; argparse prints that as the
subcommand's one-line usage error (exit status 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

from ..tracker import web_url

__all__ = [
    "DEFAULT_GRACEFUL_TIMEOUT",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "DEFAULT_THREADS",
    "DEFAULT_WEB",
    "LOG_LEVELS",
    "listen_port",
    "port_number",
    "positive_int",
    "public_url",
    "seconds",
    "web_url_argument",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_THREADS = 4
DEFAULT_WEB = web_url(DEFAULT_HOST, DEFAULT_PORT)
#: Seconds ``serve`` lets requests in progress finish on Ctrl-C/SIGTERM.
DEFAULT_GRACEFUL_TIMEOUT = 30.0
#: ``serve --log-level`` choices (the :mod:`logging` levels).
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

_Number = TypeVar("_Number", int, float)


def _number(
    text: str, parse: Callable[[str], _Number], valid: Callable[[_Number], bool]
) -> _Number | None:
    """``parse(text)`` if it parses and is ``valid``, else None."""
    try:
        value = parse(text)
    except ValueError:
        return None
    return value if valid(value) else None


def port_number(text: str) -> int:
    """argparse type: a TCP port number, 1-65535."""
    port = _number(text, int, lambda port: 1 <= port <= 65535)
    if port is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def listen_port(text: str) -> int:
    """argparse type: a TCP port to listen on, 0-65535 (0: any free one)."""
    port = _number(text, int, lambda port: 0 <= port <= 65535)
    if port is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port number (1-65535, or 0 for any free port)"
        )
    return port


def seconds(text: str) -> float:
    """argparse type: a duration in seconds, >= 0."""
    value = _number(text, float, lambda value: value >= 0)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    value = _number(text, int, lambda value: value >= 1)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value


def web_url_argument(text: str) -> str:
    """argparse type: an absolute http(s) URL, given a trailing slash."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an absolute http(s) URL like {DEFAULT_WEB}"
        )
    return text if text.endswith("/") else text + "/"


def public_url(text: str) -> str:
    """argparse type: the public URL of ``serve --web``: http or https, a
    host, no user, query or fragment, a path ending in ``/`` (Roundup's rule
    for ``[tracker] web``); an empty path becomes ``/``.

    :raises argparse.ArgumentTypeError: the URL and what is wrong with it.
    """
    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        problem = "its port is not a number from 0 to 65535"
    else:
        problem = ""
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = f"it is not an absolute http(s) URL like {DEFAULT_WEB}"
    elif parts.username is not None or parts.query or parts.fragment:
        problem = "give it without user name, query or fragment"
    elif parts.path and not parts.path.endswith("/"):
        problem = f"its path must end in '/', e.g. {text}/"
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return text if parts.path else text + "/"
