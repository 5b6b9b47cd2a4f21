"""The access log: one line per response, Apache's combined format plus two
fields, written through :mod:`logging` by a finish hook.

The line is Apache's "combined" ``LogFormat`` (Apache HTTP Server
documentation, mod_log_config, "Common Log Format" and "Combined Log
Format") followed by the duration in microseconds (``%D``) and the request's
trace id (``-`` when there is none)::

    %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D %{trace_id}n

so any combined-format parser reads it (the tests parse it with the
``apachelogs`` package using :data:`LOG_FORMAT`).  ``%b`` is the body bytes
handed to the server, counted when the app_iter is closed
(:mod:`roundup_wsgi.wsgi.finish`).  Never logged: the ``Authorization``
header, cookies, request bodies, and the values of query parameters whose
names contain ``password``, ``passwd``, ``secret`` or ``token`` (shown as
``***``).

Lines go to the logger ``roundup_wsgi.access`` at level INFO, so a standard
logging configuration routes them (``logging.config.dictConfig``, a
gunicorn ``logconfig_dict``, ...).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import quote

from .finish import Finished

__all__ = ["LOGGER_NAME", "LOG_FORMAT", "AccessLog", "format_line", "redact_query"]

#: The logger the lines go to.
LOGGER_NAME = "roundup_wsgi.access"
#: The line's format in Apache's ``LogFormat`` notation.
LOG_FORMAT = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D %{trace_id}n'

#: Query parameter names whose values are never logged.
_SECRET_NAME = re.compile(r"pass(word|wd)|secret|token", re.IGNORECASE)
#: Characters written as ``\xhh`` in quoted fields (Apache escapes control
#: characters, ``"`` and ``\``; bytes above 0x7e too).
_UNSAFE = re.compile(r'[\x00-\x1f"\\\x7f-\U0010ffff]')
_MONTHS = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


def _escape(text: str) -> str:
    """Apache's escaping of a logged string: ``\\"``, ``\\\\`` and ``\\xhh``
    for each byte of other unsafe characters (UTF-8)."""

    def one(match: re.Match[str]) -> str:
        char = match.group(0)
        if char in '"\\':
            return "\\" + char
        return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8", "replace"))

    return _UNSAFE.sub(one, text)


def redact_query(query: str) -> str:
    """The query string with the values of secret-looking parameters replaced
    by ``***`` (e.g. ``__login_password=***``)."""
    if not query or not _SECRET_NAME.search(query):
        return query
    parts = []
    for item in query.split("&"):
        name, sep, _value = item.partition("=")
        if sep and _SECRET_NAME.search(name):
            item = name + "=***"
        parts.append(item)
    return "&".join(parts)


def _timestamp(seconds: float) -> str:
    """``[10/Oct/2000:13:55:36 +0000]``: Apache's ``%t``, in local time."""
    local = time.localtime(seconds)
    offset = local.tm_gmtoff or 0
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset) // 60
    return (
        f"[{local.tm_mday:02d}/{_MONTHS[local.tm_mon - 1]}/{local.tm_year}:"
        f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d} "
        f"{sign}{offset // 60:02d}{offset % 60:02d}]"
    )


def _target(environ: dict[str, Any]) -> str:
    """The request target: ``SCRIPT_NAME + PATH_INFO`` (URL-quoted from the
    server's latin-1 text, PEP 3333 "Unicode Issues") and the redacted
    query."""
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    target = quote(path.encode("latin-1", "replace"), safe="/;@:=+$,-._~!*'()&%")
    query = environ.get("QUERY_STRING", "")
    if query:
        target += "?" + redact_query(query)
    return target or "/"


def format_line(finished: Finished) -> str:
    """The access-log line of one finished response (see :data:`LOG_FORMAT`)."""
    environ = finished.environ
    request = (
        f"{environ.get('REQUEST_METHOD', '-')} {_target(environ)} "
        f"{environ.get('SERVER_PROTOCOL', 'HTTP/1.0')}"
    )
    user = environ.get("REMOTE_USER") or "-"
    referer = environ.get("HTTP_REFERER", "-") or "-"
    agent = environ.get("HTTP_USER_AGENT", "-") or "-"
    size = str(finished.bytes_sent) if finished.bytes_sent else "-"
    trace = str(finished.notes.get("trace_id") or "-")
    return (
        f"{environ.get('REMOTE_ADDR') or '-'} - {_escape(user)} "
        f'{_timestamp(finished.started)} "{_escape(request)}" '
        f'{finished.status_code} {size} "{_escape(referer)}" '
        f'"{_escape(agent)}" {int(finished.duration * 1_000_000)} {_escape(trace)}'
    )


class AccessLog:
    """A finish hook writing :func:`format_line` to a logger at INFO.

    :param logger: the logger; default ``roundup_wsgi.access``.  Nothing is
        formatted while it is not enabled for INFO.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def __call__(self, finished: Finished) -> None:
        """Log the line of ``finished``."""
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("%s", format_line(finished))
