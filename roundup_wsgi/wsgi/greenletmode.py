"""The ``"greenlet"`` mode of :func:`~.adapters.wsgi1_to_wsgi2`.

The WSGI 1 application runs in a greenlet; each write() switches back to
the server's greenlet, whose iteration of the body yields that chunk at
once (memory: one chunk).  The application sees the caller's context
variables.  Closing the body early throws ``GeneratorExit`` into the
application at its pending write() (PEP 3333, "Specification Details").
Needs the ``greenlet`` package.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterable, Iterator
from contextvars import copy_context
from typing import Any

import greenlet

from .types import WSGIApp
from .wsgi1call import WSGI2Response, _Body, _Call

__all__: list[str] = []


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
    """Run ``app`` until its first write() or its return (``"greenlet"`` mode)."""
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
