"""Finish hooks: callbacks run exactly once when a response has ended.

A WSGI application returns before its body is sent; the server iterates the
app_iter and then calls its ``close()`` (PEP 3333, "Specification
Details": "upon completion of the request, whether the request was
completed normally, or terminated early").  So only ``close()`` knows how
many bytes went out, how long the response took and whether the client
stayed.  :class:`FinishHooks` wraps ``start_response`` and the app_iter and
at ``close()`` calls every registered callback once with a
:class:`Finished` record; callbacks are given for every request or, from
inside the application, for the current one (:func:`add_finish_hook`).
The idea comes from the "finish hooks" of the WSGI-X proposal.

A body given as the server's own ``wsgi.file_wrapper`` is passed through
unwrapped (the server keeps its ``sendfile(2)`` path); its bytes are then
taken from the ``Content-Length`` header.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FunctionType, MethodType
from typing import Any

from .adapters import SERVER_START_RESPONSE_KEY
from .types import ExcInfo, HeaderList, StartResponse, WriteCallable

__all__ = [
    "ENVIRON_KEY",
    "FinishHook",
    "FinishHooks",
    "Finished",
    "add_finish_hook",
    "direct_call",
    "note",
]

logger = logging.getLogger("roundup_wsgi.finish")
_new = object.__new__

#: The environ key of the current request's :class:`Finished` record (shared
#: by copies of the environ made below).
ENVIRON_KEY = "roundup_wsgi.finish"


class Finished:
    """What is known about one response when it has ended.

    :ivar environ: the environ the middleware was called with.
    :ivar status: the status line (``"200 OK"``), None if never started.
    :ivar headers: the response headers given with it.
    :ivar bytes_sent: body bytes handed to the server (``Content-Length``
        for a ``wsgi.file_wrapper``).
    :ivar started: the request's start, seconds since the epoch.
    :ivar duration: seconds from the application's call to ``close()``.
    :ivar client_gone: ``close()`` came before the app_iter was exhausted,
        without an error from it.
    :ivar error: the exception the application or its app_iter raised.
    :ivar notes: values left with :func:`note`, e.g. ``{"trace_id": ...}``.
    :ivar hooks: the hooks still to run (a sequence).
    """

    __slots__ = (
        "_done",
        "_start",
        "bytes_sent",
        "client_gone",
        "duration",
        "environ",
        "error",
        "headers",
        "hooks",
        "notes",
        "started",
        "status",
    )

    def __init__(
        self,
        environ: dict[str, Any],
        *,
        status: str | None = None,
        headers: HeaderList | None = None,
        bytes_sent: int = 0,
        started: float = 0.0,
        duration: float = 0.0,
        notes: dict[str, Any] | None = None,
        hooks: Sequence[FinishHook] = (),
    ) -> None:
        self.environ = environ
        self.status = status
        self.headers: HeaderList = headers if headers is not None else []
        self.bytes_sent = bytes_sent
        self.started = started
        self.duration = duration
        self.client_gone = False
        self.error: BaseException | None = None
        self.notes: dict[str, Any] = notes if notes is not None else {}
        self.hooks: Sequence[FinishHook] = hooks
        self._start = 0.0
        self._done = False

    def __repr__(self) -> str:
        return (
            f"<Finished {self.status!r} {self.bytes_sent} bytes "
            f"{self.duration:.6f} s{' client gone' if self.client_gone else ''}>"
        )

    @property
    def status_code(self) -> int:
        """The status code as a number (500 when no status was given)."""
        if self.status is None:
            return 500
        try:
            return int(self.status[:3])
        except ValueError:
            return 500

    def header(self, name: str) -> str | None:
        """The first response header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def finish(self) -> None:
        """Run the hooks, once; a hook's exception is logged (logger
        ``roundup_wsgi.finish``) and the next still runs.  Then the record
        leaves the environ (:data:`ENVIRON_KEY` removed)."""
        if self._done:
            return
        self._done = True
        self.duration = time.perf_counter() - self._start
        for hook in self.hooks:
            try:
                hook(self)
            except Exception:
                logger.exception("finish hook %r failed", hook)
        # Break the environ <-> record cycle (reference counting frees both).
        environ = self.environ
        if environ.get(ENVIRON_KEY) is self:
            del environ[ENVIRON_KEY]


#: A finish hook: called with the :class:`Finished` record of a response.
FinishHook = Callable[[Finished], object]


def add_finish_hook(environ: dict[str, Any], hook: FinishHook) -> bool:
    """Register ``hook`` for the current request.

    :param environ: the request's environ (or a copy made below
        :class:`FinishHooks`).
    :returns: False when no :class:`FinishHooks` is above the application
        (the hook will not run).
    """
    record = environ.get(ENVIRON_KEY)
    if not isinstance(record, Finished):
        return False
    record.hooks = (*record.hooks, hook)
    return True


def note(environ: dict[str, Any], key: str, value: Any) -> None:
    """Leave ``value`` for the finish hooks as ``Finished.notes[key]``;
    nothing happens without a :class:`FinishHooks` above."""
    record = environ.get(ENVIRON_KEY)
    if isinstance(record, Finished):
        record.notes[key] = value


class FinishHooks:
    """WSGI middleware running finish hooks when each response ends.

    :param app: the WSGI application.
    :param hooks: callbacks run for every request, in order, before those
        added with :func:`add_finish_hook`.
    :param id_header: a response header (``"X-Request-ID"``) sent with every
        answer: the note ``trace_id`` left before ``start_response``
        (:func:`note`), else a new one from ``new_id`` (then noted too).
        None: no such header.
    :param new_id: makes an id for ``id_header`` (a string of letters,
        digits and ``. _ : -``); required with it.
    :raises ValueError: ``id_header`` without ``new_id``.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        hooks: Sequence[FinishHook] = (),
        *,
        id_header: str | None = None,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        self.app = app
        self._call: Callable[..., Iterable[bytes]] = direct_call(app)
        self.hooks: tuple[FinishHook, ...] = tuple(map(direct_call, hooks))
        self.id_header = id_header
        self.new_id = new_id
        # With an id header, records of a subclass knowing it.
        self._response: type[_Response] = _Response
        if id_header is not None:
            if new_id is None:
                raise ValueError(
                    f"FinishHooks(id_header={id_header!r}) needs new_id, a "
                    "function making an id for answers that have none"
                )
            self._response = type(
                "_IdResponse",
                (_IdResponse,),
                {
                    "__slots__": (),
                    "id_header": id_header,
                    "new_id": staticmethod(new_id),  # not a method of it
                },
            )

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request (PEP 3333); the app_iter runs the hooks."""
        # The record without a call of __init__: every slot set here.
        response = _new(self._response)
        response.environ = environ
        response.status = None
        response.headers = []
        response.bytes_sent = 0
        response.started = time.time()
        response.duration = 0.0
        response.client_gone = False
        response.error = None
        response.notes = {}
        response.hooks = self.hooks
        response._done = False
        response._start = time.perf_counter()
        response._server_start = start_response
        response._result = ()
        response._exhausted = False
        response._closed = False
        environ[ENVIRON_KEY] = response
        # note_first_chunk, inlined: the app below gets our start_response.
        if SERVER_START_RESPONSE_KEY not in environ:
            environ[SERVER_START_RESPONSE_KEY] = start_response
        try:
            result = self._call(environ, response.start_response)
        except BaseException as exc:
            response.error = exc
            response.finish()
            raise
        if result.__class__ is list:  # most answers: no file wrapper
            response._result = result
            return response
        wrapper = environ.get("wsgi.file_wrapper")
        if (
            wrapper is not None
            and isinstance(wrapper, type)
            and isinstance(result, wrapper)
            and _hook_close(result, response)
        ):
            return result
        response._result = result
        return response


def direct_call(app: Callable[..., Any]) -> Callable[..., Any]:
    """``app``'s ``__call__`` bound to it when its class defines one in
    Python, else ``app``: a layer calling the bound method skips the type's
    ``__call__`` lookup (some 600 instructions a call)."""
    function = inspect.getattr_static(type(app), "__call__", None)
    if isinstance(function, FunctionType):
        return MethodType(function, app)
    return app


class _Response(Finished):
    """The record of one response, also the app_iter handed to the server:
    it counts the bytes; ``close()`` closes the app's app_iter, runs hooks."""

    __slots__ = (
        "_closed",
        "_exhausted",
        "_result",
        "_server_start",
        "_server_write",
    )

    _closed: bool
    _result: Iterable[bytes]
    _server_start: StartResponse

    def start_response(
        self, status: str, headers: HeaderList, exc_info: ExcInfo | None = None
    ) -> WriteCallable | None:
        """The ``start_response`` the application gets: the server's, noting
        the status and headers; its write callable counts the bytes."""
        write = self._server_start(status, headers, exc_info)
        self.status = status
        self.headers = headers
        if write is None:
            return None
        self._server_write = write
        return self._write

    def _write(self, data: bytes) -> object:
        """The server's write callable, counting the bytes written."""
        result = self._server_write(data)
        self.bytes_sent += len(data)
        return result

    def __iter__(self) -> Iterator[bytes]:
        """The application's chunks, counted as handed over (a generator:
        no ``StopIteration`` object; closing it closes the response)."""
        try:
            for chunk in self._result:
                self.bytes_sent += len(chunk)
                yield chunk
        except GeneratorExit:
            self.close()
            raise
        except BaseException as exc:
            self.error = exc
            raise
        self._exhausted = True

    def close(self) -> None:
        """Close the application's app_iter, then run the hooks (once)."""
        if self._closed:
            return
        self._closed = True
        try:
            result = self._result
            if result.__class__ is not list:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        finally:
            if not self._exhausted and self.error is None:
                self.client_gone = True
            self.finish()


class _IdResponse(_Response):
    """A :class:`_Response` sending the request's id in ``id_header``;
    subclassed per layer with its ``id_header`` and ``new_id``."""

    __slots__ = ()
    id_header: str
    new_id: Callable[[], str]

    def start_response(
        self, status: str, headers: HeaderList, exc_info: ExcInfo | None = None
    ) -> WriteCallable | None:
        """:meth:`_Response.start_response` (repeated, not called) with the
        id header added."""
        value = self.notes.get("trace_id")
        if value is None:
            value = self.notes["trace_id"] = self.new_id()
        headers = [*headers, (self.id_header, value)]
        write = self._server_start(status, headers, exc_info)
        self.status = status
        self.headers = headers
        if write is None:
            return None
        self._server_write = write
        return self._write


def _hook_close(result: Any, record: Finished) -> bool:
    """Make the server's file wrapper run the hooks at ``close()``, kept
    unwrapped (its ``sendfile(2)`` path); False if ``close`` is read-only."""
    original = getattr(result, "close", None)
    length = record.header("Content-Length")

    def close() -> None:
        try:
            if original is not None:
                original()
        finally:
            if length is not None and length.isdigit():
                record.bytes_sent += int(length)
            record.finish()
            with contextlib.suppress(AttributeError, TypeError):
                result.close = _closed

    try:
        result.close = close
    except (AttributeError, TypeError):
        return False
    return True


def _closed() -> None:
    """``close()`` of a file wrapper whose response has ended: nothing."""
