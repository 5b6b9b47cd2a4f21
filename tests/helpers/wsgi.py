"""Calling WSGI applications in-process, as a server would (no Roundup here).

:class:`StartResponseRecorder` is the one fake ``start_response`` of the
tests: it checks what PEP 3333 requires of the application's call, records
it, and returns a write callable or ``None`` as real servers do.
:func:`call_wsgi` drives a whole request with it; :class:`FakeServer` stands
in for a waitress server; ``normalise_*`` mask what differs between two
renderings of one page.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from webob import Request

NONCE = re.compile(rb'\bnonce="[^"]*"')
# The token is in value="..." after or before name="@csrf" in the same tag.
CSRF_AFTER = re.compile(rb'(name="@csrf"[^>]*?value=")[^"]*"', re.DOTALL)
CSRF_BEFORE = re.compile(rb'(value=")[^"]*("[^>]*?name="@csrf")', re.DOTALL)
DATE = re.compile(rb"\d{4}-\d{2}-\d{2}(?:\.|\s|&nbsp;)\d{2}:\d{2}(?::\d{2})?")
# Relative dates ("just now", "3 minutes ago") change while tests run.
RELATIVE_DATE = re.compile(
    rb"\b(?:just now|in a moment|yesterday|tomorrow"
    rb"|(?:an?|[\d /]+) (?:second|minute|hour|day|week|month|year)s? ago"
    rb"|in (?:an?|[\d /]+) (?:second|minute|hour|day|week|month|year)s?)\b"
)
VARYING_HEADERS = {"date", "expires", "set-cookie"}


def normalise_body(body: bytes, base_url: str | None = None) -> bytes:
    """Mask what differs between two renderings of one page: script nonces,
    CSRF tokens, absolute and relative dates, and (if given) the tracker's
    base URL (``[tracker] web``, which holds the server's port)."""
    if base_url:
        body = body.replace(base_url.encode(), b"BASE/")
        body = body.replace(base_url.rstrip("/").encode(), b"BASE")
    body = NONCE.sub(b'nonce="NONCE"', body)
    body = CSRF_AFTER.sub(rb'\1CSRF"', body)
    body = CSRF_BEFORE.sub(rb"\1CSRF\2", body)
    body = DATE.sub(b"DATE", body)
    return RELATIVE_DATE.sub(b"RELDATE", body)


def mask_gzip(body: bytes) -> bytes:
    """``body`` with a gzip header's MTIME (bytes 4-7, RFC 1952 2.3) zeroed:
    Roundup writes the time of compression there, so two compressions of one
    file a second apart differ in those bytes alone."""
    if body[:3] == b"\x1f\x8b\x08":
        return body[:4] + b"\0\0\0\0" + body[8:]
    return body


def normalise_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Headers as a sorted list, lower-case names, without per-request ones
    (Date, Expires, Set-Cookie)."""
    return sorted(
        (name.lower(), value)
        for name, value in headers
        if name.lower() not in VARYING_HEADERS
    )


@dataclass
class StartResponseRecorder:
    """A PEP 3333 ``start_response`` that records its calls.

    :param returns_write: return a write callable (as waitress, gunicorn) or
        ``None`` (as granian, bjoern, hypercorn).

    It asserts the rules of "The start_response() Callable": a status line
    and native-string headers; a second call only with ``exc_info``, which
    is re-raised once body bytes went out through the write callable.
    """

    returns_write: bool = False
    #: ``(status, headers, exc_info)`` of each call.
    calls: list[tuple[str, list[tuple[str, str]], Any]] = field(default_factory=list)
    #: What the application passed to the write callable.
    written: list[bytes] = field(default_factory=list)

    @property
    def status(self) -> str | None:
        """The status of the last call (``None``: never called)."""
        return self.calls[-1][0] if self.calls else None

    @property
    def headers(self) -> list[tuple[str, str]] | None:
        """The headers of the last call."""
        return self.calls[-1][1] if self.calls else None

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        assert isinstance(status, str), status
        assert re.match(r"^\d\d\d \S", status), status
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers), (
            headers
        )
        if self.calls:
            assert exc_info is not None, "start_response() called twice"
            if self.written:
                raise exc_info[1].with_traceback(exc_info[2])
        self.calls.append((status, headers, exc_info))
        return self.write if self.returns_write else None

    def write(self, data: bytes) -> None:
        """The write callable."""
        assert self.calls, "write() before start_response()"
        assert isinstance(data, bytes), f"write() of {type(data)}"
        self.written.append(data)


@dataclass
class Result:
    """What a fake server saw: status, headers, body, and how the body came."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes
    written: bytes  # the part that came through the write callable
    close_calls: int


class _CountingClose:
    def __init__(self, app_iter: Iterable[bytes]) -> None:
        self.app_iter = app_iter
        self.calls = 0

    def close(self) -> None:
        self.calls += 1
        close = getattr(self.app_iter, "close", None)
        if close is not None:
            close()


def call_wsgi(app: Any, environ: dict[str, Any], *, server_write: bool) -> Result:
    """Call ``app`` like a PEP 3333 server whose ``start_response`` returns a
    write callable (``server_write=True``, as waitress or gunicorn) or
    ``None`` (as granian or bjoern).

    Checks the PEP 3333 rules a server relies on (see
    :class:`StartResponseRecorder`), bytes chunks; calls ``close()``.
    """
    recorder = StartResponseRecorder(returns_write=server_write)
    app_iter = app(environ, recorder)
    closer = _CountingClose(app_iter)
    try:
        chunks = list(app_iter)
    finally:
        closer.close()
    assert all(isinstance(chunk, bytes) for chunk in chunks)
    assert recorder.status is not None, "start_response() never called"
    written = b"".join(recorder.written)
    return Result(
        recorder.status,
        recorder.headers or [],
        written + b"".join(chunks),
        written,
        closer.calls,
    )


class FakeServer:
    """Stands in for a waitress server: Ctrl-C as soon as it runs."""

    def __init__(self, app: Any, **options: Any) -> None:
        self.app = app
        self.options = options
        self.closed = False
        #: The port "chosen" (waitress's attribute): 0 becomes 8999.
        self.effective_port = options.get("port") or 8999

    def run(self) -> None:
        raise KeyboardInterrupt

    def close(self) -> None:
        self.closed = True

    def serve_until_stopped(self, graceful_timeout: float) -> None:
        """Stands in for ``serve``'s loop: Ctrl-C at once, then closed."""
        try:
            self.run()
        except KeyboardInterrupt:
            pass
        finally:
            self.close()


def make_environ(
    method: str, path: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """A WSGI environ (PEP 3333) for ``method path`` with ``headers``, built
    by ``webob.Request.blank``, Host ``localhost`` (the seeded trackers'
    ``[tracker] web`` host)."""
    environ: dict[str, Any] = Request.blank(
        path, method=method, headers=headers or {}
    ).environ
    environ["HTTP_HOST"] = "localhost"
    return environ


#: ``Origin`` and ``Referer`` of the seeded trackers' web (http://localhost/):
#: what Roundup's CSRF checks want on a POST.
SAME_ORIGIN = {"Origin": "http://localhost", "Referer": "http://localhost/"}
#: Headers of a JSON POST to Roundup's REST API from the same origin.
REST_HEADERS = {
    "Content-Type": "application/json",
    "X-Requested-With": "rest",
    **SAME_ORIGIN,
}


def as_hypercorn(start_response: Any) -> Any:
    """``start_response`` posing as hypercorn's (its ``__module__``), the
    server that sends the status line only with the first chunk."""

    def hypercorn_start_response(*args: Any) -> Any:
        return start_response(*args)

    hypercorn_start_response.__module__ = "hypercorn.app_wrappers"
    return hypercorn_start_response


def request_garbage(
    run: Callable[[], object], modules: str = "roundup_wsgi"
) -> list[str]:
    """What ``run()`` leaves to the cyclic garbage collector: the type names
    of the unreachable objects that are environs (dicts holding
    ``REQUEST_METHOD``) or instances of classes from ``modules`` (a module
    name prefix).

    The collector is off while ``run`` runs, and ``gc.DEBUG_SAVEALL`` keeps
    what it then finds, so only these objects count: garbage other threads
    make meanwhile (a server thread of an earlier test, the ``reuse_db``
    reaper closing a kept database) is not this request's.
    """
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        run()
        gc.collect()
        return sorted(
            type(item).__name__
            for item in gc.garbage
            # type(), not isinstance(): a dead weakref.proxy raises on the latter
            if (type(item) is dict and "REQUEST_METHOD" in item)
            or type(item).__module__.startswith(modules)
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def live_greenlets() -> int:
    """How many greenlets are alive and not a thread's main greenlet, after a
    collection (``type()``, not ``isinstance()``: a dead ``weakref.proxy``
    among the collector's objects raises ``ReferenceError`` on the latter)."""
    import greenlet

    gc.collect()
    return sum(
        1
        for obj in gc.get_objects()
        if issubclass(type(obj), greenlet.greenlet) and obj and obj.parent is not None
    )
