"""Finish hooks: callbacks run exactly once when a response has ended.

A WSGI application returns before its body is sent: the server iterates the
app_iter afterwards and then calls its ``close()`` (PEP 3333, "Specification
Details": the server "must call the close() method ... upon completion of the
request, whether the request was completed normally, or terminated early due
to an application error during iteration or an early disconnect of the
browser").  So only the app_iter's ``close()`` knows how many bytes went out,
how long the response took and whether the client stayed.

:class:`FinishHooks` is the one place that knows it: a middleware that wraps
``start_response`` (to see the status line, the headers and each write
callable call) and the app_iter (to count the bytes handed to the server),
and at ``close()`` calls every registered callback once with a
:class:`Finished` record.  Callbacks are registered for every request
(``FinishHooks(app, hooks=[...])``) or, from inside the application, for the
current one (:func:`add_finish_hook`).  The access log
(:mod:`roundup_wsgi.wsgi.accesslog`) and the metrics are its first users.

The idea comes from the "finish hooks" of the WSGI-X proposal.

A body given as the server's own ``wsgi.file_wrapper`` is passed through
unwrapped, so the server keeps its ``sendfile(2)`` path; its bytes are then
taken from the ``Content-Length`` header (the server does not say how much
of the file it sent).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .adapters import SERVER_START_RESPONSE_KEY
from .types import ExcInfo, HeaderList, StartResponse, WriteCallable

__all__ = [
    "ENVIRON_KEY",
    "FinishHook",
    "FinishHooks",
    "Finished",
    "add_finish_hook",
    "note",
]

logger = logging.getLogger("roundup_wsgi.finish")

#: The environ key holding the current request's :class:`Finished` record.
#: Applications below may copy the environ: the record is shared by the
#: copies, so hooks and notes added through any of them count.
ENVIRON_KEY = "roundup_wsgi.finish"


class Finished:
    """What is known about one response when it has ended.

    :ivar environ: the environ the middleware was called with.
    :ivar status: the status line given to ``start_response`` (``"200 OK"``),
        ``None`` if it was never called.
    :ivar headers: the response headers given with it.
    :ivar bytes_sent: body bytes handed to the server, from the app_iter and
        the write callable (``Content-Length`` for a ``wsgi.file_wrapper``).
    :ivar started: the request's start, seconds since the epoch
        (``time.time()``).
    :ivar duration: seconds from the application's call to ``close()``
        (``time.perf_counter()`` differences).
    :ivar client_gone: True when ``close()`` came before the app_iter was
        exhausted without an error from it: the client went away.
    :ivar error: the exception the application or its app_iter raised, if
        any.
    :ivar notes: values the application left for the hooks with
        :func:`note`, e.g. ``{"trace_id": "..."}``.
    :ivar hooks: the hooks still to run (a sequence; :func:`add_finish_hook`
        replaces it with a longer one).
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
        """Run the hooks, once: later calls do nothing.  An exception from a
        hook is logged (logger ``roundup_wsgi.finish``) and the next hook
        still runs.  Then the record leaves the environ (its
        :data:`ENVIRON_KEY` entry is removed): hooks and notes added later
        would never run."""
        if self._done:
            return
        self._done = True
        self.duration = time.perf_counter() - self._start
        for hook in self.hooks:
            try:
                hook(self)
            except Exception:
                logger.exception("finish hook %r failed", hook)
        # The environ and its record refer to each other: a reference cycle
        # that only the cyclic garbage collector would free, with the whole
        # environ, and the collections it sets off (one every few hundred
        # requests) cost a server more than the hooks themselves.  The
        # record is done with: the environ lets go of it.
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
        answer, its value the note ``trace_id`` the application left before
        calling ``start_response`` (:func:`note`), or else a new one from
        ``new_id`` (then noted too).  Sent here, in the ``start_response``
        this layer wraps anyway, it costs a list of headers, not a layer of
        its own (:class:`~.requestid.RequestIds` sends it where there are no
        hooks).  None: no such header.
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
        self.hooks: tuple[FinishHook, ...] = tuple(hooks)
        self.id_header = id_header
        self.new_id = new_id
        # With an id header, the records are of a subclass knowing it (class
        # attributes: nothing more to set per request).
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
        """Answer one request (PEP 3333 middleware); the app_iter returned
        runs the hooks at ``close()``."""
        response = self._response(environ, self.hooks, start_response)
        environ[ENVIRON_KEY] = response
        # The application below sees response.start_response, not the
        # server's: tell it whether the server waits for the first chunk
        # (note_first_chunk, inlined).
        if SERVER_START_RESPONSE_KEY not in environ:
            environ[SERVER_START_RESPONSE_KEY] = start_response
        try:
            result = self.app(environ, response.start_response)
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


class _Response(Finished):
    """The record of one response, which is also the app_iter handed to
    the server: it counts the bytes of each chunk, and ``close()`` closes the
    application's app_iter and runs the hooks (one object per request)."""

    __slots__ = (
        "_closed",
        "_exhausted",
        "_result",
        "_server_start",
        "_server_write",
    )

    def __init__(
        self,
        environ: dict[str, Any],
        hooks: Sequence[FinishHook],
        start_response: StartResponse,
    ) -> None:
        # Finished.__init__, inlined: this runs for every request.
        self.environ = environ
        self.status = None
        self.headers = []
        self.bytes_sent = 0
        self.started = time.time()
        self.duration = 0.0
        self.client_gone = False
        self.error = None
        self.notes = {}
        self.hooks = hooks
        self._done = False
        self._start = time.perf_counter()
        self._server_start = start_response
        self._result: Iterable[bytes] = ()
        self._exhausted = False
        self._closed = False

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
        """The write callable: the server's, counting the bytes written."""
        result = self._server_write(data)
        self.bytes_sent += len(data)
        return result

    def __iter__(self) -> Iterator[bytes]:
        """The application's chunks, counted as they are handed over (a
        generator: its end costs no ``StopIteration`` object, unlike a
        ``__next__`` method).  Closing the iterator itself (what a server
        that calls ``close()`` on ``iter(app_iter)`` does) closes the
        response too."""
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
    """A :class:`_Response` whose answer carries the request's id in the
    header ``id_header`` (see :class:`FinishHooks`); subclassed per layer
    with its ``id_header`` and ``new_id``."""

    __slots__ = ()
    id_header: str
    new_id: Callable[[], str]

    def start_response(
        self, status: str, headers: HeaderList, exc_info: ExcInfo | None = None
    ) -> WriteCallable | None:
        """:meth:`_Response.start_response` with the id header added (its
        body repeated, not called: one call less per request)."""
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
    """Make the server's own file wrapper run the hooks at ``close()``,
    keeping it unwrapped (and so its ``sendfile(2)`` path); False if its
    ``close`` cannot be replaced."""
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
            # The wrapper, this function and the wrapper's own close()
            # refer to each other: let go, as finish() does of the environ.
            with contextlib.suppress(AttributeError, TypeError):
                result.close = _closed

    try:
        result.close = close
    except (AttributeError, TypeError):
        return False
    return True


def _closed() -> None:
    """``close()`` of a file wrapper whose response has ended: the file
    is closed and the hooks have run, so a second call does nothing."""
