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

With ``format="json"`` each line is instead one JSON object (made by the
standard :mod:`json` encoder, ASCII only, so no raw control character,
quote or non-UTF-8 byte gets through), for log shippers; see
:func:`format_json` for its fields.

Lines go to the logger ``roundup_wsgi.access`` at level INFO, so a standard
logging configuration routes them (``logging.config.dictConfig``, a
gunicorn ``logconfig_dict``, ...).
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import quote

from .finish import Finished

__all__ = [
    "FORMATS",
    "LOGGER_NAME",
    "LOG_FORMAT",
    "AccessLog",
    "LineHandler",
    "escape",
    "format_json",
    "format_line",
    "redact_query",
]

#: The logger the lines go to.
LOGGER_NAME = "roundup_wsgi.access"
#: The line's format in Apache's ``LogFormat`` notation.
LOG_FORMAT = '%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D %{trace_id}n'

#: ``logging.INFO``, read once.
_INFO = logging.INFO
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
    """The access-log line of one finished response (see :data:`LOG_FORMAT`)."""
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


#: The line formats of :class:`AccessLog`.
FORMATS = ("combined", "json")


class AccessLog:
    """A finish hook writing :func:`format_line` (or :func:`format_json`)
    to a logger at INFO.

    :param logger: the logger; default ``roundup_wsgi.access``.  Nothing is
        formatted while it is not enabled for INFO.
    :param format: ``"combined"`` or ``"json"`` (:data:`FORMATS`).
    :param names: for ``"json"``: ``{mount name: application name}``, see
        :func:`format_json`.
    :param name_field: for ``"json"``: the key of the application's name.
    :raises ValueError: an unknown ``format``.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        format: Literal["combined", "json"] = "combined",
        names: Mapping[str, str] | None = None,
        name_field: str = "app",
    ) -> None:
        if format not in FORMATS:
            raise ValueError(
                f"access log format {format!r} is unknown: use combined or json"
            )
        self._format: Callable[[Finished], str] = format_line
        if format == "json":
            known = dict(names or {})
            self._format = lambda finished: format_json(finished, known, name_field)
        self.logger = logger or logging.getLogger(LOGGER_NAME)
        # A record made the ordinary way, once: the attributes every record
        # of this Python has, with the values that stay the same.
        self._template = dict(
            self.logger.makeRecord(
                self.logger.name, logging.INFO, __file__, 0, "%s", ("",), None
            ).__dict__
        )
        self._template["funcName"] = None
        self._template["taskName"] = None

    def __call__(self, finished: Finished) -> None:
        """Log the line of ``finished`` as an ordinary INFO
        :class:`logging.LogRecord` (handlers, filters and formatters see
        every attribute), built from a template made at start rather than by
        ``Logger.info`` (a fifth of its work); the time is the response's end.

        The line is the record's argument (``msg`` is ``"%s"``), never its
        format, so a filter formatting messages with the record's attributes
        (as Roundup's ``context_filter`` does) cannot expand ``%(...)s`` or
        ``%25s`` of a request target.
        """
        logger = self.logger
        if not logger.isEnabledFor(_INFO):
            return
        handlers = logger.handlers
        if len(handlers) == 1 and not logger.propagate and not logger.filters:
            handler = handlers[0]
            if (
                isinstance(handler, LineHandler)
                and handler.formatter is None
                and not handler.filters
                and handler.level <= _INFO
            ):
                # What Logger.handle would end in: LineHandler.emit of the
                # bare line, without the record (half the cost of a line).
                handler.write_line(self._format(finished), logger.name)
                return
        record = _new_record(_AccessRecord)
        values = self._template.copy()
        created = finished.started + finished.duration
        values["args"] = (self._format(finished),)
        values["created"] = created
        values["msecs"] = int((created - int(created)) * 1000) + 0.0
        values["relativeCreated"] = (created - _START) * 1000
        if logging.logThreads:
            values["thread"] = threading.get_ident()
            values["threadName"] = threading.current_thread().name
        if logging.logProcesses:
            values["process"] = _pid[0]
        record.__dict__ = values
        logger.handle(record)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing each record's message and a newline to a stream
    (default ``sys.stderr``) and flushing it at once, so no line waits in a
    buffer (none is lost when the process ends, and the lines of several
    threads keep the order they were logged in).

    It is ``logging.StreamHandler`` with the message written as it is
    when no formatter is set (``StreamHandler`` would format it with
    ``"%(message)s"`` and take its lock twice per line).  Filters and
    ``handleError`` work as for any handler.  :class:`AccessLog` hands it
    its lines directly (:meth:`write_line`) while it is the logger's only
    handler, without filters or formatter, and the logger does not
    propagate: what logging would do with the record, without it.
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Write the message of ``record`` (formatted if a formatter is
        set) and a newline, then flush."""
        try:
            text = (
                record.getMessage() if self.formatter is None else self.format(record)
            )
            stream = self.stream
            stream.write(text + self.terminator)
            if stream is not self._unbuffered:
                self._flush(stream)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    #: The last stream found to need no flush (see :meth:`_flush`).
    _unbuffered: object = None

    def _flush(self, stream: Any) -> None:
        """Flush ``stream``, unless it writes through to an unbuffered file
        (``sys.stderr`` since Python 3.9: a ``TextIOWrapper`` with
        ``write_through`` over a ``FileIO``), whose lines are already
        written: that stream is remembered, and not flushed again."""
        if getattr(stream, "write_through", False) and isinstance(
            getattr(stream, "buffer", None), io.FileIO
        ):
            self._unbuffered = stream
            return
        stream.flush()

    def write_line(self, line: str, name: str = LOGGER_NAME) -> None:
        """Write ``line`` as :meth:`emit` writes an INFO record of logger
        ``name`` whose message it is, under the handler's lock, with no
        record made: for a caller that checked the logger would send the
        record to this handler alone, unfiltered and unformatted
        (:class:`AccessLog` does).  A failure goes to ``handleError`` with
        such a record."""
        lock = self.lock
        if lock is not None:
            lock.acquire()
        try:
            stream = self.stream
            stream.write(line + self.terminator)
            if stream is not self._unbuffered:
                self._flush(stream)
        except RecursionError:
            raise
        except Exception:
            self.handleError(
                logging.makeLogRecord(
                    {
                        "name": name,
                        "msg": "%s",
                        "args": (line,),
                        "levelno": logging.INFO,
                        "levelname": "INFO",
                    }
                )
            )
        finally:
            if lock is not None:
                lock.release()


class _AccessRecord(logging.LogRecord):
    """A log record of the access log (made by :class:`AccessLog`)."""


_new_record = object.__new__
#: ``logging``'s start (what ``relativeCreated`` counts from), seconds.
_START: float = getattr(logging, "_startTime", time.time())
#: This process's id, renewed in a forked child.
_pid = [os.getpid()]


def _forked() -> None:
    _pid[0] = os.getpid()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_forked)
