"""What the ``roundup-wsgi`` command prints: errors, notes and warnings.

Every expected failure is a :class:`CliError`; :func:`~.command.main`
prints it on one line, ``roundup-wsgi: error: <what> ...; <the fix>``, and
exits with :data:`EXIT_ERROR`.
"""

from __future__ import annotations

import os
import sys

__all__ = [
    "EXIT_ERROR",
    "PROG",
    "CliError",
    "config_path",
    "note",
    "one_line",
    "plural",
    "warn",
]

PROG = "roundup-wsgi"
#: Exit status for expected errors (argparse uses 2 for usage errors too).
EXIT_ERROR = 2


class CliError(Exception):
    """An expected failure: :func:`~.command.main` prints its message on one
    line as ``roundup-wsgi: error: <message>`` and returns exit status 2."""


def note(message: str) -> None:
    """Print ``roundup-wsgi: note: <message>`` to stderr."""
    print(f"{PROG}: note: {message}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """Print ``roundup-wsgi: warning: <message>`` to stderr."""
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


def one_line(exc: BaseException) -> str:
    """The exception's message with all whitespace runs (e.g. the newlines in
    database errors) collapsed to single spaces."""
    return " ".join(str(exc).split())


def plural(count: int, noun: str) -> str:
    """``"1 thread"``, ``"4 threads"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def config_path(home: str) -> str:
    """The absolute path of the tracker's ``config.ini``."""
    return os.path.join(os.path.abspath(home), "config.ini")
