"""The request body, before Roundup's ``Client`` reads it.

**Size limit**: ``413 Content Too Large`` before Roundup reads
(:func:`check_request_body`).
Roundup's ``Client`` parses the whole request body (``cgi.FieldStorage``:
uploads are spooled to temporary files, form fields kept in memory) before
it looks at the user or the action, so without a limit any client can make
the server store arbitrarily large bodies.  :func:`check_request_body` runs
before the body is read:

* a ``Content-Length`` above the limit answers 413 at once (RFC 9110,
  section 15.5.14, "413 Content Too Large"), without reading the body;
* a ``Content-Length`` that is not a non-negative decimal number answers 400
  (RFC 9110, section 8.6: "a recipient MUST treat it as an unrecoverable
  error");
* a body without ``Content-Length`` that the server terminates itself
  (``wsgi.input_terminated``, e.g. a chunked request) is read through a
  counting wrapper that raises :class:`RequestBodyTooLargeError` once more
  than the limit has arrived; the dispatcher answers 413 then.  (werkzeug's
  ``LimitedStream`` would silently cut such a body at the limit instead.)

**Readable input**: ``wsgi.input`` that Roundup's form parser can read on
every server (:func:`readable_input`).
Roundup parses request bodies with ``cgi.FieldStorage``, which reads a
multipart body (every form with a file upload) line by line:
``wsgi.input.readline(65536)``.  granian 2.x's ``WSGIBody`` (at least
2.8) gets ``readline`` wrong for CRLF lines: it returns the line up to the
``\\r`` and the rest of the body is lost, so under granian every upload
form arrived empty and Roundup showed the index page instead of creating
the issue (the same with Roundup's own dispatcher).  Its ``read(size)``
works.

:func:`readable_input` puts such a stream behind :class:`io.BufferedReader`
over a raw reader that only calls ``read(size)`` and never reads past
``CONTENT_LENGTH`` (PEP 3333, "Input and Error Streams": an application
"should not attempt to read more data than is specified by the
CONTENT_LENGTH variable").
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from webob import exc

from .wsgi import errorpages

__all__ = [
    "DEFAULT_MAX_REQUEST_BODY",
    "RequestBodyTooLargeError",
    "check_max_request_body",
    "check_request_body",
    "readable_input",
    "too_large",
]

#: The default limit, in bytes (64 MiB): room for Roundup's usual attachments
#: (logs, screenshots) with the form around them.  ``None`` disables it.
DEFAULT_MAX_REQUEST_BODY = 64 * 1024 * 1024

_DIGITS = re.compile(r"[0-9]+\Z")


class RequestBodyTooLargeError(Exception):
    """More than the limit was read from a body without ``Content-Length``."""


class _BodyReader(io.RawIOBase):
    """A raw stream over ``wsgi.input`` that reads it only by ``read(size)``.

    :param stream: the server's ``wsgi.input``.
    :param length: read at most this many bytes (the request's
        ``CONTENT_LENGTH``); ``None``: until ``stream`` returns ``b""``.
    :param limit: raise :class:`RequestBodyTooLargeError` once more than
        this many bytes have arrived; ``None``: no limit.
    """

    def __init__(
        self, stream: Any, *, length: int | None = None, limit: int | None = None
    ) -> None:
        super().__init__()
        self._stream = stream
        self._remaining = length
        self._limit = limit
        self._count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        if self._remaining is not None:
            size = min(size, self._remaining)
        if size <= 0:
            return 0
        data = self._stream.read(size)
        if not data:
            return 0
        self._count += len(data)
        if self._limit is not None and self._count > self._limit:
            raise RequestBodyTooLargeError(
                f"request body over {self._limit} bytes (no Content-Length)"
            )
        buffer[: len(data)] = data
        if self._remaining is not None:
            self._remaining -= len(data)
        return len(data)


def check_max_request_body(limit: int | None) -> int | None:
    """Validate the ``max_request_body`` option.

    :param limit: bytes, or ``None`` for no limit.
    :returns: ``limit`` unchanged.
    :raises ValueError: ``limit`` is not ``None`` nor an ``int`` >= 0 (the
        message names the option and the fix).
    """
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(
            f"max_request_body={limit!r} is not a size: give a number of bytes "
            "(an int >= 0, e.g. 64 * 1024 * 1024) or None for no limit"
        )
    return limit


def too_large(environ: Mapping[str, Any], limit: int) -> errorpages.Page:
    """413 page naming the limit (bytes)."""
    return errorpages.render(
        exc.HTTPRequestEntityTooLarge(
            detail=f"The request body is larger than this tracker accepts "
            f"({limit} bytes)."
        ),
        environ,
    )


def check_request_body(
    environ: MutableMapping[str, Any], limit: int | None
) -> errorpages.Page | None:
    """Check the request body's announced size before anything reads it.

    :param environ: the request's environ (the dispatcher's copy: a body
        without ``Content-Length`` on a server that sets
        ``wsgi.input_terminated`` gets its ``wsgi.input`` wrapped).
    :param limit: the largest accepted body in bytes; ``None``: no limit.
    :returns: a 400 or 413 page to answer instead of calling Roundup, or
        ``None`` when the request may go on.
    """
    raw = environ.get("CONTENT_LENGTH")
    raw = raw.strip() if isinstance(raw, str) else raw
    if raw:
        if not isinstance(raw, str) or not _DIGITS.match(raw):
            return errorpages.bad_request(
                environ,
                "Malformed request: the Content-Length header is not a "
                "non-negative decimal number of bytes.",
            )
        if limit is not None and int(raw) > limit:
            return too_large(environ, limit)
        return None
    if limit is not None and environ.get("wsgi.input_terminated"):
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = io.BufferedReader(_BodyReader(stream, limit=limit))
    return None


#: Modules whose ``wsgi.input`` objects need the wrapper.
BROKEN_READLINE_MODULES = ("granian",)


def readable_input(environ: MutableMapping[str, Any]) -> None:
    """Replace ``environ["wsgi.input"]`` by a buffered reader if it comes
    from a server whose ``readline`` is broken (see the module docstring);
    other servers' streams are left alone.

    :param environ: the dispatcher's copy of the request's environ.
    """
    stream = environ.get("wsgi.input")
    module = type(stream).__module__ or ""
    if stream is None or module.split(".")[0] not in BROKEN_READLINE_MODULES:
        return
    raw = str(environ.get("CONTENT_LENGTH") or "").strip()
    length = int(raw) if raw.isdigit() else None
    environ["wsgi.input"] = io.BufferedReader(_BodyReader(stream, length=length))
