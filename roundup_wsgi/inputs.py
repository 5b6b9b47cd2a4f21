"""``wsgi.input`` that Roundup's form parser can read on every server.

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
from collections.abc import MutableMapping
from typing import Any

__all__ = ["readable_input"]

#: Modules whose ``wsgi.input`` objects need the wrapper.
BROKEN_READLINE_MODULES = ("granian",)


class _SizedReads(io.RawIOBase):
    """A raw stream reading ``stream`` only by ``read(size)``, at most
    ``limit`` bytes (``None``: until it returns ``b""``)."""

    def __init__(self, stream: Any, limit: int | None) -> None:
        super().__init__()
        self._stream = stream
        self._remaining = limit

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
    limit = int(raw) if raw.isdigit() else None
    environ["wsgi.input"] = io.BufferedReader(_SizedReads(stream, limit))
