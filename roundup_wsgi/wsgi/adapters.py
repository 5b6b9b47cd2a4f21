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
      kept in a list and sent first, then its app_iter is streamed.
  ``"greenlet"``
      the application runs in a greenlet; each write() switches back to
      the server, whose iteration yields that chunk at once.  Memory: one chunk.
  ``"thread"``
      the application runs in a worker thread that hands each write() over
      a bounded queue (a write blocks while the queue is full).

* :func:`iterable_only` chains the two: a WSGI 1 application whose writes
  are delivered through its app_iter, for servers whose ``start_response``
  returns no write callable (granian, bjoern, hypercorn).

PEP 3333 rules kept in every mode (section names of PEP 3333 in quotes):

* "The start_response() Callable": it must be called before the first
  non-empty body chunk; an application that returns (or yields a non-empty
  chunk) without calling it raises :class:`StartResponseError`.  A second
  call needs ``exc_info``; with ``exc_info`` the status and headers are
  replaced if they are not out yet, and the exception is re-raised (in the
  application) once they are.  Headers are *out* after the first write()
  or once the adapter has handed the response over.
* "Specification Details": the app_iter's ``close()`` is called exactly once,
  also when the server closes the response before its end (the client went
  away).  A still-running application is then interrupted: ``GeneratorExit``
  is raised by its pending or next write() (thrown into the greenlet; the
  worker thread's write() raises it), and it is waited for, so no greenlet
  or thread is left behind.
* "Error Handling": an exception after part of the body was sent propagates
  out of the body's iteration to the server.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from contextvars import copy_context
from typing import Any

import greenlet

from .types import ExcInfo, HeaderList, StartResponse, WriteCallable, WSGIApp

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

#: What a WSGI 2 application returns: status line, headers, body iterable.
WSGI2Response = tuple[str, HeaderList, Iterable[bytes]]
#: A WSGI 2 application: ``app(environ) -> (status, headers, body)``.
WSGI2App = Callable[[dict[str, Any]], WSGI2Response]

#: The ways :func:`wsgi1_to_wsgi2` runs a WSGI 1 application.
MODES = ("buffer", "greenlet", "thread")


class StartResponseError(RuntimeError):
    """A WSGI 1 application broke the ``start_response`` protocol (PEP 3333,
    "The start_response() Callable"): it never called it, called it twice
    without ``exc_info``, or wrote before calling it."""


def _name(app: object) -> str:
    """A readable name of an application, for error messages."""
    name = getattr(app, "__qualname__", None) or type(app).__qualname__
    module = getattr(app, "__module__", None) or type(app).__module__
    return f"{module}.{name}"


def _close(iterable: object) -> None:
    close = getattr(iterable, "close", None)
    if close is not None:
        close()


class _Call:
    """One call of a WSGI 1 application: its ``start_response`` and write
    callable.  Subclasses decide where written bytes go (:meth:`emit`)."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self.status: str | None = None
        self.headers: HeaderList = []
        #: The headers are out: a later start_response(exc_info) re-raises.
        self.committed = False
        #: The application has returned its app_iter.
        self.returned = False

    def start_response(
        self, status: str, headers: HeaderList, exc_info: ExcInfo | None = None, /
    ) -> WriteCallable:
        if exc_info is not None:
            try:
                if self.committed:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle (PEP 3333's advice)
        elif self.status is not None:
            raise StartResponseError(
                f"{_name(self.app)} called start_response() a second time "
                "without exc_info (PEP 3333, 'The start_response() Callable': "
                "only an error handler may, passing exc_info)"
            )
        if not isinstance(status, str):
            raise TypeError(f"start_response() status must be str, not {status!r}")
        header_list = list(headers)
        for header in header_list:
            if not (
                isinstance(header, tuple)
                and len(header) == 2
                and all(isinstance(part, str) for part in header)
            ):
                raise TypeError(
                    f"start_response() headers must be (str, str) tuples, "
                    f"not {header!r}"
                )
        self.status, self.headers = status, header_list
        return self.write

    def write(self, data: bytes) -> None:
        """The write callable (PEP 3333, "The write() Callable")."""
        if self.status is None:
            raise StartResponseError(
                f"{_name(self.app)} called write() before start_response()"
            )
        if self.returned:
            raise StartResponseError(
                f"{_name(self.app)} called write() after it returned its "
                "iterable: yield the bytes from the iterable instead"
            )
        if not isinstance(data, bytes):
            raise TypeError(f"write() needs bytes, not {type(data).__name__}")
        self.committed = True
        self.emit(data)

    def emit(self, data: bytes) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def start_iterable(
        self, app_iter: Iterable[bytes]
    ) -> tuple[Iterator[bytes], bytes]:
        """After the application returned ``app_iter``: iterate it until
        ``start_response`` has been called (an application may call it at
        its first iteration); return the iterator and the first non-empty
        chunk (or ``b""``).  The headers are then out.

        :raises StartResponseError: it was never called; ``app_iter`` is
            closed first.
        """
        self.returned = True
        first = b""
        try:
            iterator = iter(app_iter)
            while self.status is None:
                chunk = next(iterator, None)
                if chunk is None:
                    break
                if chunk:
                    first = chunk
                    break
            if self.status is None:
                raise StartResponseError(
                    f"{_name(self.app)} "
                    + ("yielded body bytes" if first else "returned")
                    + " without calling start_response() (PEP 3333, 'The "
                    "start_response() Callable')"
                )
        except BaseException:
            _close(app_iter)
            raise
        self.committed = True
        return iterator, first


class _Body:
    """The WSGI 2 body: an iterator of bytes whose ``close()`` runs once.

    ``close()`` stops the generator, interrupts the application if it still
    runs (:meth:`interrupt`), then closes the application's app_iter.
    """

    def __init__(self) -> None:
        self._app_iter: Iterable[bytes] | None = None
        self._closed = False
        self._chunks = self.chunks()

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def chunks(self) -> Generator[bytes, None, None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def interrupt(self) -> None:
        """Stop the application if it is still running (mode-specific)."""

    def close(self) -> None:
        """Interrupt the application if still running and close its app_iter;
        later calls do nothing (PEP 3333, "Specification Details")."""
        if self._closed:
            return
        self._closed = True
        try:
            self._chunks.close()
            self.interrupt()
        finally:
            app_iter, self._app_iter = self._app_iter, None
            _close(app_iter)

    def rest(self, call: _Call, app_iter: Iterable[bytes]) -> Iterator[bytes]:
        """Chunks of ``app_iter`` once the application has returned it."""
        self._app_iter = app_iter
        iterator, first = call.start_iterable(app_iter)
        if first:
            yield first
        # Not ``yield from``: that would call the app_iter's close() when this
        # generator is closed, and close() below would call it again.
        for chunk in iterator:  # noqa: UP028
            yield chunk


# -- buffer -------------------------------------------------------------------


class _BufferCall(_Call):
    def __init__(self, app: WSGIApp) -> None:
        super().__init__(app)
        self.written: deque[bytes] = deque()

    def emit(self, data: bytes) -> None:
        self.written.append(data)


class _BufferBody(_Body):
    def __init__(self, call: _BufferCall, app_iter: Iterable[bytes]) -> None:
        self.call = call
        super().__init__()
        self._app_iter = app_iter
        self._iterator, self._first = call.start_iterable(app_iter)

    def chunks(self) -> Generator[bytes, None, None]:
        written = self.call.written
        while written:  # release each chunk as it is sent
            yield written.popleft()
        if self._first:
            yield self._first
        for chunk in self._iterator:  # noqa: UP028 - not yield from: see _Body.rest
            yield chunk


def _run_buffered(app: WSGIApp, environ: dict[str, Any]) -> WSGI2Response:
    call = _BufferCall(app)
    app_iter = app(environ, call.start_response)
    if call.status is not None and not call.written:
        # Nothing written: hand the app_iter over as is (a wsgi.file_wrapper
        # keeps the server's fast path).
        call.returned = call.committed = True
        return call.status, call.headers, app_iter
    body = _BufferBody(call, app_iter)
    assert call.status is not None
    return call.status, call.headers, body


# -- greenlet -----------------------------------------------------------------


class _GreenletCall(_Call):
    def __init__(self, app: WSGIApp) -> None:
        super().__init__(app)
        self.getcurrent = greenlet.getcurrent
        self.child = greenlet.greenlet(self.run)
        # The application sees the caller's context variables (log context).
        self.child.gr_context = copy_context()
        self.pending: deque[bytes] = deque()
        self.closing = False

    def run(self, environ: dict[str, Any]) -> Iterable[bytes]:
        return self.app(environ, self.start_response)

    def resume(self, *args: Any) -> Any:
        """Run the application until its next write() or its end; returns its
        app_iter if it ended (exceptions propagate)."""
        self.child.parent = self.getcurrent()
        return self.child.switch(*args)

    def emit(self, data: bytes) -> None:
        if self.closing:
            raise GeneratorExit("the server closed the response")
        self.pending.append(data)
        if self.getcurrent() is self.child:
            self.child.parent.switch()


class _GreenletBody(_Body):
    def __init__(self, call: _GreenletCall, app_iter: Iterable[bytes] | None) -> None:
        self.call = call
        super().__init__()
        if app_iter is not None:  # the application has returned already
            self._rest: Iterator[bytes] | None = self.rest(call, app_iter)
            next_chunk = next(self._rest, None)
            self._first = b"" if next_chunk is None else next_chunk
        else:
            self._rest, self._first = None, b""

    def chunks(self) -> Generator[bytes, None, None]:
        call = self.call
        while self._rest is None:
            while call.pending:
                yield call.pending.popleft()
            app_iter = call.resume()
            if call.child.dead:
                while call.pending:
                    yield call.pending.popleft()
                self._rest = self.rest(call, app_iter)
        if self._first:
            yield self._first
        yield from self._rest

    def interrupt(self) -> None:
        call = self.call
        call.pending.clear()
        if call.child.dead or not call.child:
            return
        call.closing = True
        call.child.parent = call.getcurrent()
        try:
            app_iter = call.child.throw(GeneratorExit)
        except GeneratorExit:
            return
        # It caught GeneratorExit and returned: its app_iter is closed too.
        self._app_iter = app_iter


def _run_greenlet(app: WSGIApp, environ: dict[str, Any]) -> WSGI2Response:
    call = _GreenletCall(app)
    result = call.resume(environ)
    if not call.child.dead:  # stopped in its first write()
        body = _GreenletBody(call, None)
    elif call.status is not None and not call.pending:
        call.returned = call.committed = True
        return call.status, call.headers, result
    else:  # returned without writing; start_response may come at iteration
        body = _GreenletBody(call, result)
    assert call.status is not None
    return call.status, call.headers, body


# -- thread -------------------------------------------------------------------


class _Channel:
    """A bounded FIFO from the worker thread to the server's thread, plus one
    final message (the application's return value or exception)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Condition()
        self.chunks: deque[bytes] = deque()
        self.final: tuple[str, Any] | None = None
        self.closed = False

    def put(self, data: bytes) -> None:
        """Queue a chunk; block while the queue is full.

        :raises GeneratorExit: the server closed the response.
        """
        with self.lock:
            while len(self.chunks) >= self.size and not self.closed:
                self.lock.wait()
            if self.closed:
                raise GeneratorExit("the server closed the response")
            self.chunks.append(data)
            self.lock.notify_all()

    def finish(self, kind: str, value: Any) -> None:
        with self.lock:
            self.final = (kind, value)
            self.lock.notify_all()

    def get(self) -> tuple[str, Any]:
        """The next chunk as ``("chunk", bytes)``, else the final message."""
        with self.lock:
            while not self.chunks and self.final is None:
                self.lock.wait()
            if self.chunks:
                data = self.chunks.popleft()
                self.lock.notify_all()
                return "chunk", data
            assert self.final is not None
            final, self.final = self.final, None
            return final

    def close(self) -> None:
        """Drop queued chunks; from now on :meth:`put` raises GeneratorExit."""
        with self.lock:
            self.closed = True
            self.chunks.clear()
            self.lock.notify_all()


class _ThreadCall(_Call):
    def __init__(self, app: WSGIApp, queue_size: int) -> None:
        super().__init__(app)
        self.channel = _Channel(queue_size)
        self.worker = threading.Thread(
            target=copy_context().run,
            args=(self.run,),
            name=f"wsgi1_to_wsgi2 worker for {_name(app)}",
            daemon=True,
        )
        self.environ: dict[str, Any] | None = None

    def run(self) -> None:
        environ, self.environ = self.environ, None
        try:
            app_iter = self.app(environ or {}, self.start_response)
        except BaseException as error:
            self.channel.finish("raise", error)
        else:
            self.returned = True
            self.channel.finish("return", app_iter)

    def emit(self, data: bytes) -> None:
        if threading.current_thread() is not self.worker:
            raise StartResponseError(
                f"{_name(self.app)} called write() outside its worker thread"
            )
        self.channel.put(data)


class _ThreadBody(_Body):
    def __init__(
        self, call: _ThreadCall, first: bytes, app_iter: Iterable[bytes] | None
    ) -> None:
        self.call = call
        super().__init__()
        self._first = first
        self._rest: Iterator[bytes] | None = None
        if app_iter is not None:
            self._rest = self.rest(call, app_iter)
            next_chunk = next(self._rest, None)
            self._first = b"" if next_chunk is None else next_chunk

    def chunks(self) -> Generator[bytes, None, None]:
        if self._first:
            yield self._first
        if self._rest is None:
            while True:
                kind, value = self.call.channel.get()
                if kind == "chunk":
                    yield value
                    continue
                self.call.worker.join()
                if kind == "raise":
                    raise value
                self._rest = self.rest(self.call, value)
                break
        yield from self._rest

    def interrupt(self) -> None:
        call = self.call
        if not call.worker.is_alive() and call.channel.final is None:
            return
        call.channel.close()
        call.worker.join()
        final, call.channel.final = call.channel.final, None
        if final is None:
            return
        kind, value = final
        if kind == "return":
            self._app_iter = value
        elif not isinstance(value, GeneratorExit):
            raise value


def _run_threaded(
    app: WSGIApp, environ: dict[str, Any], queue_size: int
) -> WSGI2Response:
    call = _ThreadCall(app, queue_size)
    call.environ = environ
    call.worker.start()
    kind, value = call.channel.get()
    if kind == "chunk":
        body = _ThreadBody(call, value, None)
    else:
        call.worker.join()
        if kind == "raise":
            raise value
        if call.status is not None:
            call.committed = True
            return call.status, call.headers, value
        body = _ThreadBody(call, b"", value)
    assert call.status is not None
    return call.status, call.headers, body


# -- the public adapters --------------------------------------------------------


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


#: Modules of servers whose ``start_response`` sends nothing until the first
#: chunk of the app_iter (hypercorn's WSGI wrapper, ``hypercorn.app_wrappers``).
FIRST_CHUNK_SERVERS = ("hypercorn",)
#: Their submodules' prefixes (``"hypercorn."``).
_FIRST_CHUNK_PACKAGES = tuple(name + "." for name in FIRST_CHUNK_SERVERS)

#: ``environ`` key where a middleware that passes its own ``start_response``
#: on (:class:`roundup_wsgi.wsgi.finish.FinishHooks`, for one) records
#: :func:`waits_for_first_chunk` of the server's, which the layers below can
#: no longer see (:func:`note_first_chunk`).  A ``bool``.
FIRST_CHUNK_KEY = "roundup_wsgi.waits_for_first_chunk"

#: ``environ`` key where such a middleware leaves the server's own
#: ``start_response`` (:func:`note_first_chunk`), for
#: :func:`waits_for_first_chunk` to look at only when a layer below asks
#: (an empty body): most responses never need the answer.
SERVER_START_RESPONSE_KEY = "roundup_wsgi.server_start_response"

#: How many ``__wrapped__`` links :func:`waits_for_first_chunk` follows.
_MAX_WRAPPED = 8


def waits_for_first_chunk(
    start_response: object, environ: dict[str, Any] | None = None
) -> bool:
    """True if ``start_response`` is one of a server that sends the status
    line only with the first chunk of the app_iter (:data:`FIRST_CHUNK_SERVERS`),
    so an empty app_iter never starts the response there.

    PEP 3333 ("Buffering and Streaming") allows an application to yield an
    empty bytestring, which starts such a response; on other servers an
    empty chunk would change the headers (wsgiref then drops its
    ``Content-Length: 0``), so it is given only to these.

    The answer recorded in ``environ`` under :data:`FIRST_CHUNK_KEY` by a
    middleware above wins; otherwise ``start_response``'s module decides,
    following ``__wrapped__`` (:func:`functools.wraps`) through wrappers.
    """
    if environ is not None:
        known = environ.get(FIRST_CHUNK_KEY)
        if known is not None:
            return bool(known)
        server = environ.get(SERVER_START_RESPONSE_KEY)
        if server is not None:
            start_response = server
    current: object = start_response
    for _ in range(_MAX_WRAPPED):
        module = getattr(current, "__module__", None)
        if module and (
            module in FIRST_CHUNK_SERVERS or module.startswith(_FIRST_CHUNK_PACKAGES)
        ):
            return True
        # A bound method's function first: getattr() of a name a bound
        # method lacks raises and catches an AttributeError, which costs
        # more than the rest of the check; on a function it does not.
        current = getattr(getattr(current, "__func__", current), "__wrapped__", None)
        if current is None:
            break
    return False


def note_first_chunk(environ: dict[str, Any], start_response: object) -> None:
    """Leave the server's ``start_response`` in ``environ``
    (:data:`SERVER_START_RESPONSE_KEY`; the outermost middleware's is kept),
    before a middleware passes a ``start_response`` of its own to the
    application below, so that :func:`waits_for_first_chunk` with that
    ``environ`` still answers for the server."""
    environ.setdefault(SERVER_START_RESPONSE_KEY, start_response)


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
