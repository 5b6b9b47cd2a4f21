"""One call of a WSGI 1 application answered as a WSGI 2 response.

The machinery under :func:`~.adapters.wsgi1_to_wsgi2`: ``_Call`` checks
``start_response`` and the write callable, ``_Body`` is the WSGI 2 body
whose ``close()`` runs once.  The ``"buffer"`` mode is here; the others are
in :mod:`.greenletmode` and :mod:`.threadmode`.

PEP 3333 rules kept in every mode (its section names in quotes):

* "The start_response() Callable": it must be called before the first
  non-empty body chunk, else :class:`StartResponseError`.  A second call
  needs ``exc_info``; with it the status and headers are replaced if they
  are not out yet, and the exception is re-raised (in the application) once
  they are.  Headers are *out* after the first write() or once the adapter
  has handed the response over.
* "Specification Details": the app_iter's ``close()`` is called exactly
  once, also when the server closes the response early.  A still-running
  application is then interrupted (``GeneratorExit`` from its pending or
  next write()) and waited for, so no greenlet or thread is left behind.
* "Error Handling": an exception after part of the body was sent
  propagates out of the body's iteration to the server.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from .types import ExcInfo, HeaderList, WriteCallable, WSGIApp

__all__ = ["StartResponseError", "WSGI2App", "WSGI2Response"]

#: What a WSGI 2 application returns: status line, headers, body iterable.
WSGI2Response = tuple[str, HeaderList, Iterable[bytes]]
#: A WSGI 2 application: ``app(environ) -> (status, headers, body)``.
WSGI2App = Callable[[dict[str, Any]], WSGI2Response]


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
    """``"buffer"`` mode: run ``app`` to its return; its writes come first."""
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
