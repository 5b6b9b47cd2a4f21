"""The ``"thread"`` mode of :func:`~.adapters.wsgi1_to_wsgi2`.

The WSGI 1 application runs in a worker thread (with the caller's context
variables) that hands each write() to the server's thread over a bounded
queue: a write() blocks while ``queue_size`` chunks wait.  Closing the body
early makes the pending or next write() raise ``GeneratorExit`` and waits
for the thread (PEP 3333, "Specification Details"); an application blocked
elsewhere holds ``close()`` up until it writes or returns.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from contextvars import copy_context
from typing import Any

from .types import WSGIApp
from .wsgi1call import StartResponseError, WSGI2Response, _Body, _Call, _name

__all__: list[str] = []


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
    """Start ``app`` in its worker; wait for its first write() or its end."""
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
