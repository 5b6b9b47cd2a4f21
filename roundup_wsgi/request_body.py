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
* a body without ``Content-Length`` (``Transfer-Encoding: chunked``) is
  spooled, see below; more than the limit answers 413 as it arrives.

**Bodies without Content-Length** (:func:`check_request_body`).
Roundup's ``BinaryFieldStorage`` (``cgi.FieldStorage``) needs
``CONTENT_LENGTH``: without it a JSON body to the REST API arrives as
``str`` and Roundup answers 500 (``AttributeError: 'str' object has no
attribute 'decode'`` in ``roundup.anypy.strings.b2s``).  waitress de-chunks
and sets ``CONTENT_LENGTH``; gunicorn, granian and hypercorn give a chunked
body without it.  Such a body is read whole before Roundup runs, into a
:class:`tempfile.SpooledTemporaryFile` (in memory up to
:data:`SPOOL_IN_MEMORY` bytes, then on disk), counted against the limit,
and Roundup gets ``CONTENT_LENGTH`` and a ``wsgi.input`` reading the spool.
It is read to its end only where the end is known: the server sets
``wsgi.input_terminated`` (gunicorn, granian, waitress; mod_wsgi documents
it; PEP 3333 does not define it), or ``wsgi.input`` is an in-memory
``io.BytesIO`` (hypercorn reads the body before it calls the application).
A chunked body on another server answers ``411 Length Required``
(RFC 9110, section 15.5.12): reading it to EOF could wait for ever.

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
import tempfile
from collections.abc import Mapping, MutableMapping
from typing import Any

from webob import exc

from .wsgi import errorpages

__all__ = [
    "DEFAULT_MAX_REQUEST_BODY",
    "SPOOL_IN_MEMORY",
    "check_max_request_body",
    "check_request_body",
    "readable_input",
    "release_body",
    "release_form",
    "too_large",
]

#: The default limit, in bytes (64 MiB): room for Roundup's usual attachments
#: (logs, screenshots) with the form around them.  ``None`` disables it.
DEFAULT_MAX_REQUEST_BODY = 64 * 1024 * 1024

#: Bytes of a spooled body (one without ``Content-Length``) kept in memory;
#: a larger one goes to a temporary file.
SPOOL_IN_MEMORY = 1024 * 1024

#: Bytes read from ``wsgi.input`` at a time while spooling.
_BLOCK = 64 * 1024

#: The environ key holding the spool of this request's body.
_SPOOL_KEY = "roundup_wsgi.spooled_body"

_DIGITS = re.compile(r"[0-9]+\Z")


class _BodyReader(io.RawIOBase):
    """A raw stream over ``wsgi.input`` that reads it only by ``read(size)``.

    :param stream: the server's ``wsgi.input``.
    :param length: read at most this many bytes (the request's
        ``CONTENT_LENGTH``); ``None``: until ``stream`` returns ``b""``.
    """

    def __init__(self, stream: Any, *, length: int | None = None) -> None:
        super().__init__()
        self._stream = stream
        self._remaining = length

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
            f"(an int >= 0, e.g. {DEFAULT_MAX_REQUEST_BODY}) or None for no limit"
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
    """Check the request body's size before Roundup reads it; spool a body
    without ``Content-Length`` (see the module docstring).

    :param environ: the request's environ (the dispatcher's copy: a spooled
        body's ``wsgi.input`` and ``CONTENT_LENGTH`` are set in it; call
        :func:`release_body` once the request is answered).
    :param limit: the largest accepted body in bytes; ``None``: no limit.
    :returns: a 400, 411 or 413 page to answer instead of calling Roundup,
        or ``None`` when the request may go on.
    :raises OSError: the spool's temporary file cannot be written.
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
    if environ.get("REQUEST_METHOD", "GET") in ("GET", "HEAD"):
        return None  # Roundup reads no body for these
    stream = environ.get("wsgi.input")
    if stream is None:
        return None
    chunked = "chunked" in str(environ.get("HTTP_TRANSFER_ENCODING", "")).lower()
    if environ.get("wsgi.input_terminated") or (
        chunked and isinstance(stream, io.BytesIO)
    ):
        return _spool(environ, stream, limit)
    if chunked:
        return errorpages.render(
            exc.HTTPLengthRequired(
                detail="This server cannot tell where a chunked request body "
                "ends: send a Content-Length header."
            ),
            environ,
        )
    return None


def _spool(
    environ: MutableMapping[str, Any], stream: Any, limit: int | None
) -> errorpages.Page | None:
    """Read ``stream`` to its end into a spool that becomes ``wsgi.input``;
    413 (the spool discarded) once more than ``limit`` bytes arrived."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    size = 0
    try:
        while True:
            block = stream.read(_BLOCK)
            if not block:
                break
            size += len(block)
            if limit is not None and size > limit:
                spool.close()
                return too_large(environ, limit)
            spool.write(block)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    environ[_SPOOL_KEY] = spool
    environ["wsgi.input"] = spool
    environ["CONTENT_LENGTH"] = str(size)
    return None


def release_body(environ: Mapping[str, Any]) -> None:
    """Close the spool :func:`check_request_body` made (its temporary file
    is deleted); nothing if there is none."""
    spool = environ.get(_SPOOL_KEY)
    if spool is not None:
        spool.close()


def release_form(form: Any) -> None:
    """Close the temporary files ``cgi.FieldStorage`` made for uploads
    (``form`` may be ``None``)."""
    if form is None:
        return
    parts = form.list if isinstance(getattr(form, "list", None), list) else []
    for item in [form, *parts]:
        file = getattr(item, "file", None)
        if file is not None:
            file.close()


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
