"""Adapters between WSGI 1 (PEP 3333), WSGI 2 and write()-free serving.

A *WSGI 1* application is ``app(environ, start_response) -> app_iter`` and
may send body bytes through the *write callable* ``start_response`` returns.
A *WSGI 2* application (the Web-SIG sketch) is ``app(environ) -> (status,
headers, body)``: no ``start_response``, no write callable, ``body`` an
iterable of bytes.

* :func:`wsgi2_to_wsgi1` serves a WSGI 2 application on a WSGI 1 server.
* :func:`wsgi1_to_wsgi2` turns a WSGI 1 application, write() calls included,
  into a WSGI 2 one, in one of :data:`MODES`:

  ``"buffer"``
      the application runs to its return inside the call; what it wrote is
      kept in a list and sent first, then its app_iter is streamed
      (:mod:`.wsgi1call`).
  ``"greenlet"``
      the application runs in a greenlet; each write() is yielded at once
      (:mod:`.greenletmode`).
  ``"thread"``
      the application runs in a worker thread that hands each write() over
      a bounded queue (:mod:`.threadmode`).

* :func:`iterable_only` chains the two: a WSGI 1 application whose writes
  are delivered through its app_iter, for servers whose ``start_response``
  returns no write callable (granian, bjoern, hypercorn).

The PEP 3333 rules every mode keeps are listed in :mod:`.wsgi1call`.  This
module also re-exports :mod:`.firstchunk`'s names (their old path).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from .firstchunk import (
    FIRST_CHUNK_KEY,
    FIRST_CHUNK_SERVERS,
    SERVER_START_RESPONSE_KEY,
    note_first_chunk,
    waits_for_first_chunk,
)
from .greenletmode import _run_greenlet
from .threadmode import _run_threaded
from .types import StartResponse, WSGIApp
from .wsgi1call import (
    StartResponseError,
    WSGI2App,
    WSGI2Response,
    _close,
    _name,
    _run_buffered,
)

__all__ = [
    "FIRST_CHUNK_KEY",
    "FIRST_CHUNK_SERVERS",
    "MODES",
    "SERVER_START_RESPONSE_KEY",
    "StartResponseError",
    "WSGI2App",
    "WSGI2Response",
    "WSGIApp",
    "iterable_only",
    "note_first_chunk",
    "waits_for_first_chunk",
    "wsgi1_to_wsgi2",
    "wsgi2_to_wsgi1",
]

#: The ways :func:`wsgi1_to_wsgi2` runs a WSGI 1 application.
MODES = ("buffer", "greenlet", "thread")


def wsgi1_to_wsgi2(
    app: WSGIApp, mode: str = "buffer", *, queue_size: int = 1
) -> WSGI2App:
    """Return a WSGI 2 application, ``app2(environ) -> (status, headers, body)``,
    running the WSGI 1 application ``app`` (write() calls included).

    ``body`` yields the bytes passed to write(), in order, then the chunks of
    ``app``'s own app_iter; its ``close()`` (call it once done, as a server
    does) closes ``app``'s app_iter exactly once and, if ``app`` is still
    running, interrupts it (``GeneratorExit`` raised by its write()) and
    waits for it (in ``"thread"`` mode an application blocked elsewhere
    than in write() holds ``close()`` up until it writes or returns).  If
    ``app`` wrote nothing and called start_response during its call, its
    app_iter is returned unwrapped (a ``wsgi.file_wrapper`` stays
    recognisable to the server).

    :param app: a PEP 3333 application.
    :param mode: one of :data:`MODES` (see the module docstring): where
        ``app`` runs and when its writes are handed over.  ``"greenlet"`` and
        ``"thread"`` return as soon as ``app`` has written its first chunk
        (or returned), and the body must be iterated in the same thread.
    :param queue_size: ``"thread"`` mode: how many written chunks may wait
        for the server before a write() blocks (>= 1).
    :raises ValueError: unknown ``mode`` or ``queue_size`` < 1.

    ``app2`` raises :class:`StartResponseError` when ``app`` breaks the
    start_response protocol, and whatever ``app`` raises before its first
    write (``"buffer"``: before it returned); later exceptions are raised
    by the body's iteration (PEP 3333, "Error Handling").
    """
    if mode not in MODES:
        raise ValueError(
            f"mode={mode!r} is not an adapter mode: use one of "
            + ", ".join(repr(each) for each in MODES)
        )
    if queue_size < 1:
        raise ValueError(f"queue_size={queue_size!r}: it must be 1 or more")
    if mode == "greenlet":

        def app2(environ: dict[str, Any]) -> WSGI2Response:
            return _run_greenlet(app, environ)
    elif mode == "thread":

        def app2(environ: dict[str, Any]) -> WSGI2Response:
            return _run_threaded(app, environ, queue_size)
    else:

        def app2(environ: dict[str, Any]) -> WSGI2Response:
            return _run_buffered(app, environ)

    app2.__doc__ = f"{_name(app)} as a WSGI 2 application ({mode} mode)."
    return app2


class _AtLeastOneChunk:
    """``body``, or one empty chunk if it yields none (see
    :func:`wsgi2_to_wsgi1`); ``close()`` closes ``body``."""

    __slots__ = ("_body",)

    def __init__(self, body: Iterable[bytes]) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        empty = True
        for chunk in self._body:
            empty = False
            yield chunk
        if empty:
            yield b""

    def close(self) -> None:
        _close(self._body)


def _has_chunks(body: Iterable[bytes], environ: dict[str, Any]) -> bool:
    """True if ``body`` surely yields a chunk: a non-empty list, or the
    server's own ``wsgi.file_wrapper`` object (left as it is, so the server
    keeps its fast path)."""
    if isinstance(body, list):
        return bool(body)
    wrapper = environ.get("wsgi.file_wrapper")
    return isinstance(wrapper, type) and isinstance(body, wrapper)


def wsgi2_to_wsgi1(app: WSGI2App) -> WSGIApp:
    """Return a WSGI 1 (PEP 3333) application serving the WSGI 2 application
    ``app`` (``app(environ) -> (status, headers, body)``).

    It calls ``start_response(status, headers)`` and returns ``body`` as the
    app_iter (any iterable of bytes, generators included), so the server
    calls its ``close()`` exactly once; if ``start_response`` raises,
    ``body`` is closed and the error propagates.  The write callable is
    never used.  On a server that sends the status line only with the first
    chunk of the app_iter (:func:`waits_for_first_chunk`: hypercorn), a body
    that yields nothing yields one empty chunk ``b""`` instead.

    :raises TypeError: (from the returned application) ``app`` did not return
        a ``(status, headers, body)`` triple.
    """

    def application(
        environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        result = app(environ)
        if not (isinstance(result, tuple) and len(result) == 3):
            _close(result)
            raise TypeError(
                f"WSGI 2 application {_name(app)} must return (status, "
                f"headers, body), not {type(result).__name__}"
            )
        status, headers, body = result
        try:
            start_response(status, headers)
        except BaseException:
            _close(body)
            raise
        if waits_for_first_chunk(start_response, environ) and not _has_chunks(
            body, environ
        ):
            return _AtLeastOneChunk(body)
        return body

    application.__doc__ = f"{_name(app)} as a WSGI 1 application."
    return application


def iterable_only(
    app: WSGIApp, mode: str = "buffer", *, queue_size: int = 1
) -> WSGIApp:
    """Middleware: serve the WSGI 1 application ``app``, write() calls
    included, without the server's write callable.

    ``app``'s writes and app_iter reach the server as the returned app_iter
    (``wsgi2_to_wsgi1(wsgi1_to_wsgi2(app, mode))``), so it runs on servers
    whose ``start_response`` returns ``None`` (granian, bjoern, hypercorn).
    Parameters and errors as :func:`wsgi1_to_wsgi2`.
    """
    return wsgi2_to_wsgi1(wsgi1_to_wsgi2(app, mode, queue_size=queue_size))
