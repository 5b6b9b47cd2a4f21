"""The access log: a finish hook writing one line per response through
:mod:`logging`.

:class:`AccessLog` formats each finished response with
:func:`~.logformat.format_line` (Apache's combined format plus duration and
trace id) or :func:`~.logformat.format_json`, and logs it to the logger
``roundup_wsgi.access`` at level INFO, so a standard logging configuration
routes it (``logging.config.dictConfig``, a gunicorn ``logconfig_dict``,
...).  :class:`LineHandler` writes bare lines and flushes each at once.
The names of :mod:`.logformat` are re-exported here (their old path).
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .finish import Finished
from .logformat import LOG_FORMAT, escape, format_json, format_line, redact_query

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

#: ``logging.INFO``, read once.
_INFO = logging.INFO

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
