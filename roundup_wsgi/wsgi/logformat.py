"""The access-log line of a finished response: Apache's combined format
plus two fields, or one JSON object.

:func:`format_line` gives Apache's "combined" ``LogFormat`` (Apache HTTP
Server documentation, mod_log_config, "Common Log Format" and "Combined Log
Format") followed by the duration in microseconds (``%D``) and the
request's trace id (``-`` when there is none)::

    %h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D %{trace_id}n

so any combined-format parser reads it (:data:`LOG_FORMAT`, e.g. with the
``apachelogs`` package).  ``%b`` is the body bytes handed to the server,
counted when the app_iter is closed (:mod:`.finish`).  :func:`format_json`
gives one JSON object (ASCII only, so no raw control character, quote or
non-UTF-8 byte gets through), for log shippers.

Never logged: the ``Authorization`` header, cookies, request bodies, and
the values of query parameters whose names contain ``password``,
``passwd``, ``secret`` or ``token`` (shown as ``***``, :func:`redact_query`).
"""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from .finish import Finished

__all__ = ["LOG_FORMAT", "escape", "format_json", "format_line", "redact_query"]

#: The line's format in Apache's ``LogFormat`` notation.
LOG_FORMAT = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D %{trace_id}n'

#: Query parameter names whose values are never logged.
_SECRET_NAME = re.compile(r"pass(word|wd)|secret|token", re.IGNORECASE)
#: Characters written as ``\xhh`` in quoted fields (Apache escapes control
#: characters, ``"`` and ``\``; bytes above 0x7e too).
_UNSAFE = re.compile(r'[\x00-\x1f"\\\x7f-\U0010ffff]')
#: Characters left unquoted in the logged path.
_SAFE = "/;@:=+$,-._~!*'()&%"
_PLAIN_PATH = re.compile(r"^[A-Za-z0-9/;@:=+$,\-._~!*'()&%]*$")
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


def _escape_one(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in '"\\':
        return "\\" + char
    return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8", "replace"))


def escape(text: str) -> str:
    """Apache's escaping of a logged string (mod_log_config: "non-printable
    and other special characters in %r, %i and %o are escaped using \\xhh
    sequences"): ``\\"``, ``\\\\`` and ``\\xhh`` for each byte (UTF-8) of
    control characters (so no CR or LF) and characters above 0x7e.

    :param text: a value from the request (path, header, user name).
    :returns: printable ASCII, on one line.
    """
    return _UNSAFE.sub(_escape_one, text)


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


#: The last ``%t`` made: its whole second and its text.
_last_second = -1
_last_text = ""


def _timestamp(seconds: float) -> str:
    """``[10/Oct/2000:13:55:36 +0000]``: Apache's ``%t``, in local time
    (made once per second)."""
    global _last_second, _last_text
    whole = int(seconds)
    if whole == _last_second:
        return _last_text
    text = _format_timestamp(whole)
    # The text first: a thread that sees the new second with the old text
    # logs a time one second off, never a wrong one.
    _last_text = text
    _last_second = whole
    return text


def _format_timestamp(seconds: int) -> str:
    local = time.localtime(seconds)
    offset = local.tm_gmtoff or 0
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset) // 60
    return (
        f"[{local.tm_mday:02d}/{_MONTHS[local.tm_mon - 1]}/{local.tm_year}:"
        f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d} "
        f"{sign}{offset // 60:02d}{offset % 60:02d}]"
    )


#: The parts of recent lines that come from the request alone, by the
#: request fields they are made of (see :func:`_request_parts`): a client
#: asking for the same thing again costs a dictionary lookup, not the
#: quoting, redacting and escaping.  Emptied when it reaches
#: :data:`_PARTS_MAX` entries.
_parts: dict[tuple[Any, ...], tuple[str, str, str]] = {}
_PARTS_MAX = 1024
#: ``%>s`` by status line (``"200 OK"``: ``"200"``), for those seen.
_codes: dict[str | None, str] = {}


def _request_parts(key: tuple[Any, ...]) -> tuple[str, str, str]:
    """``(head, request, tail)`` of the line of a request whose environ
    fields are ``key`` (:func:`format_line`'s order): ``'%h %l %u '``,
    ``' "%r" '`` and ``' "%{Referer}i" "%{User-Agent}i" '``, escaped
    (Apache's rule, :func:`escape`), the path URL-quoted from the server's
    latin-1 text (PEP 3333, "Unicode Issues"), the query redacted
    (:func:`redact_query`); remembered in :data:`_parts`."""
    address, user, method, script, path, query, protocol, referer, agent = key
    path = (script or "") + (path or "")
    if not _PLAIN_PATH.match(path):
        path = quote(path.encode("latin-1", "replace"), safe=_SAFE)
    target = path or "/"
    if query:
        target += "?" + redact_query(query)
    request = f"{method or '-'} {target} {protocol or 'HTTP/1.0'}"
    parts = (
        f"{address or '-'} - {escape(user or '-')} ",
        f' "{escape(request)}" ',
        f' "{escape(referer or "-")}" "{escape(agent or "-")}" ',
    )
    if len(_parts) >= _PARTS_MAX:
        _parts.clear()
    _parts[key] = parts
    return parts


def _code(status: str | None) -> str:
    """``%>s`` of a status line: its code, ``500`` if it has none."""
    code = status[:3] if status and status[:3].isdigit() else "500"
    if len(_codes) < 256:
        _codes[status] = code
    return code


#: The environ fields a line is made of, in :func:`_request_parts`' order.
_FIELDS = (
    "REMOTE_ADDR",
    "REMOTE_USER",
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "SERVER_PROTOCOL",
    "HTTP_REFERER",
    "HTTP_USER_AGENT",
)


def format_line(finished: Finished) -> str:
    """The access-log line of one finished response (see
    :data:`~.logformat.LOG_FORMAT`)."""
    get = finished.environ.get
    # The fields of _FIELDS, one by one (a third cheaper than map() over it).
    key = (
        get("REMOTE_ADDR"),
        get("REMOTE_USER"),
        get("REQUEST_METHOD"),
        get("SCRIPT_NAME"),
        get("PATH_INFO"),
        get("QUERY_STRING"),
        get("SERVER_PROTOCOL"),
        get("HTTP_REFERER"),
        get("HTTP_USER_AGENT"),
    )
    parts = _parts.get(key) or _request_parts(key)
    trace = finished.notes.get("trace_id")
    if not trace:
        trace = "-"
    elif trace.__class__ is not str or not trace.isalnum():
        trace = escape(str(trace))
    status = finished.status
    code = _codes.get(status) or _code(status)
    started = finished.started
    # _timestamp's test, inlined: the text of this second is made once.
    stamp = _last_text if int(started) == _last_second else _timestamp(started)
    return (
        f"{parts[0]}{stamp}{parts[1]}{code} "
        f"{finished.bytes_sent or '-'}{parts[2]}"
        f"{int(finished.duration * 1_000_000)} {trace}"
    )


def _text(value: str) -> str:
    """A native string of the environ (PEP 3333, "Unicode Issues": latin-1
    text of the bytes) as the UTF-8 text it was sent as; bytes that are not
    UTF-8 as ``\\xhh``."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:  # not from the server: already text
        return value
    return raw.decode("utf-8", "backslashreplace")


def format_json(
    finished: Finished,
    names: Mapping[str, str] | None = None,
    name_field: str = "app",
) -> str:
    """The JSON access-log line of one finished response: an object with
    ``time`` (the request's start, RFC 3339 in UTC with microseconds),
    ``remote_addr``, ``method``, ``path`` (``SCRIPT_NAME`` and
    ``PATH_INFO`` as UTF-8 text), ``query`` (redacted by
    :func:`redact_query`), ``protocol``, ``status`` (a number), ``bytes``,
    ``duration_us``, ``request_id``, ``user_agent``, ``referer``,
    ``name_field`` (the application's name) and ``user`` (the note
    ``"user"`` the application made, else ``REMOTE_USER``), each null when
    unknown; encoded by :func:`json.dumps` in ASCII (RFC 8259).

    :param names: ``{mount name: application name}`` (``{"": name}`` for
        one application at ``/``), for ``name_field``.
    :param name_field: the key of the application's name.
    """
    environ = finished.environ
    get = environ.get
    path = (get("SCRIPT_NAME") or "") + (get("PATH_INFO") or "")
    name = None
    if names:
        name = names.get("")
        if name is None:
            name = names.get(path[1:].partition("/")[0])
    status = finished.status
    code = status[:3] if status and status[:3].isdigit() else None
    notes = finished.notes
    user = notes.get("user") or get("REMOTE_USER")
    agent, referer = get("HTTP_USER_AGENT"), get("HTTP_REFERER")
    return json.dumps(
        {
            "time": datetime.datetime.fromtimestamp(
                finished.started, datetime.timezone.utc
            ).isoformat(timespec="microseconds"),
            "remote_addr": get("REMOTE_ADDR"),
            "method": get("REQUEST_METHOD"),
            "path": _text(path),
            "query": _text(redact_query(get("QUERY_STRING") or "")),
            "protocol": get("SERVER_PROTOCOL"),
            "status": int(code) if code else None,
            "bytes": finished.bytes_sent,
            "duration_us": int(finished.duration * 1_000_000),
            "request_id": notes.get("trace_id"),
            "user_agent": _text(agent) if agent is not None else None,
            "referer": _text(referer) if referer is not None else None,
            name_field: name,
            "user": str(user) if user is not None else None,
        },
        ensure_ascii=True,
        default=str,
    )
