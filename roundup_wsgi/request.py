"""The per-request object Roundup's ``Client`` writes its response to.

Roundup's ``Client`` is given a *request* object and calls, in order:

* ``request.start_response(headers, code)`` once it knows the status and
  headers (``Client.header``);
* ``request.wfile.write(bytes)`` for each piece of the body, or
  ``request.sendfile(filename, offset, length)`` for a file.

:class:`Request` collects status, headers and body (chunks and/or a file
body); :meth:`Request.finish` hands them to the server as
``start_response(status, headers)`` and the app_iter.  The server's write
callable (PEP 3333: "strictly a hack") is used only in the ``"server"``,
``"stream"`` and ``"auto"`` write modes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

from roundup.cgi.wsgi_handler import Headers

from .compression import roundup_accept_encoding
from .options import WriteMode
from .wsgi.adapters import waits_for_first_chunk
from .wsgi.errorpages import Page, status_line
from .wsgi.files import open_file_body
from .wsgi.responsecache import Dependencies
from .wsgi.types import ExcInfo, HeaderList, StartResponse, WriteCallable

__all__ = [
    "STREAM_BLOCK",
    "FileEncoder",
    "Request",
    "RequestHeaders",
    "ResponseBody",
    "StartResponse",
    "Writer",
]

#: The most bytes handed to the server at once when ``"auto"`` streams a
#: body of unknown length (Roundup's writes joined; the first sent at once).
#: Under half of waitress 3.0's ``STRBUF_LIMIT`` (8192) with chunked
#: framing: larger writes make its output buffer a ``BytesIO`` that keeps
#: every byte until the response ends.
STREAM_BLOCK = 4000

_AUTO, _SERVER, _STREAM = WriteMode.AUTO, WriteMode.SERVER, WriteMode.STREAM

#: ``encoder(status, headers, filename, offset, length)``: a compressed body
#: for a ``sendfile`` call (``headers`` changed to match, in place), or
#: ``None`` to send the file as stored
#: (``roundup_wsgi.compression.FileCompressor.body()`` with its Client).
FileEncoder = Callable[[str, HeaderList, str, int, int], "Iterable[bytes] | None"]


class RequestHeaders(Headers):  # type: ignore[misc]
    """Roundup's ``Headers`` (read from the environ), ``Accept-Encoding``
    read as the codings accepted by RFC 9110 12.5.3
    (``roundup_wsgi.compression.roundup_accept_encoding()``; Roundup's
    substring test takes ``gzip;q=0`` for a yes)."""

    def get(self, name: str, default: Any = None) -> Any:
        """The header ``name`` (any case) or ``default``."""
        value = super().get(name, default)
        if value and name.lower() == "accept-encoding":
            return roundup_accept_encoding(value)
        return value

    getheader = get


class Writer:
    """The ``wfile`` Roundup's Client writes body bytes to.

    Until the response's status is set, :meth:`write` raises
    :class:`ValueError` (as Roundup's own handler does: headers first).
    Afterwards each write goes to the sink the :class:`Request` chose:
    its body buffer, or in ``"server"`` mode the server's write callable.
    """

    __slots__ = ("sink",)

    def __init__(self) -> None:
        #: Where bytes go: ``list.append`` of the body buffer or the
        #: server's write callable; ``None`` before ``start_response``.
        self.sink: WriteCallable | None = None

    def write(self, data: bytes | str) -> None:
        """Send ``data`` (bytes; ``str`` is UTF-8 encoded, as Roundup's ``s2b``
        does).  Empty data is ignored.

        :raises ValueError: called before ``start_response``.
        """
        if self.sink is None:
            raise ValueError(
                "start_response() not called: Roundup's Client wrote body "
                "data before sending its headers"
            )
        if data:
            self.sink(data.encode("utf-8") if isinstance(data, str) else bytes(data))

    def writelines(self, lines: Iterable[bytes | str]) -> None:
        """Write each item of ``lines`` (file-object protocol)."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Nothing to flush: file-object protocol only."""


class ResponseBody:
    """The app_iter returned to the server: buffered chunks, then a file body.

    ``close()`` is idempotent and closes the file body, also when the server
    stops iterating early (PEP 3333: "the server or gateway must call the
    close() method upon completion of the current request").

    Without a body on hypercorn the app_iter is ``[b""]`` instead (see
    :meth:`Request.finish`).
    """

    __slots__ = ("_chunks", "_closed", "_file_body")

    def __init__(
        self, chunks: list[bytes], file_body: Iterable[bytes] | None = None
    ) -> None:
        self._chunks = chunks
        self._file_body = file_body
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        if self._file_body is not None:
            yield from self._file_body

    def close(self) -> None:
        """Release the file body (if any); later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        self._chunks = []
        close = getattr(self._file_body, "close", None)
        self._file_body = None
        if close is not None:
            close()


def _close(body: Iterable[bytes] | None) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


class Request:
    """The request object handed to Roundup's ``Client`` for one request.

    Attributes Roundup's ``Client`` uses: ``headers`` (request headers, read
    from the environ), ``rfile`` (``wsgi.input``), ``wfile`` (a
    :class:`Writer`), :meth:`start_response` and :meth:`sendfile`.

    :param environ: the request's WSGI environ.
    :param start_response: the server's ``start_response``.
    :param write_mode: how the body reaches the server
        (:class:`~roundup_wsgi.options.WriteMode`, or its text): ``BUFFER``:
        the app_iter; ``SERVER``, ``STREAM``: the write callable (buffered
        if ``None``); ``AUTO``: ``BUFFER`` for a body with a
        ``Content-Length``, else streamed from its first write.
    :raises ValueError: ``write_mode`` is no write mode.
    """

    def __init__(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        write_mode: WriteMode | str = WriteMode.BUFFER,
    ) -> None:
        if not isinstance(write_mode, WriteMode):
            write_mode = WriteMode.of(write_mode)
        self.environ = environ
        self.headers = RequestHeaders(environ)
        self.rfile = environ.get("wsgi.input")
        self.wfile = Writer()
        #: Status line, e.g. ``"200 OK"``; ``None`` until Roundup sets it.
        self.status: str | None = None
        self.headerlist: HeaderList = []
        self.chunks: list[bytes] = []
        self.file_body: Iterable[bytes] | None = None
        #: ``sys.exc_info()`` of an error that replaced the response.
        self.exc_info: ExcInfo | None = None
        #: ``sys.exc_info()`` of a failed ``sendfile`` (see :meth:`sendfile`).
        self.sendfile_error: ExcInfo | None = None
        #: Compresses a file body (set by the dispatcher for each Client).
        self.file_encoder: FileEncoder | None = None
        #: The last :meth:`sendfile` call: ``(filename, offset, length)``,
        #: and whether :attr:`file_encoder` gave its body (then a list of
        #: bytes) rather than the file as stored.
        self.sent_file: tuple[str, int, int] | None = None
        self.file_encoded = False
        #: ``(key, files)`` under which the dispatcher keeps this answer in
        #: its response cache (a static file; ``None``: not kept).
        self.cache_as: tuple[Hashable, Dependencies] | None = None
        self._server_start_response = start_response
        # (identity with module globals: an Enum class's attributes and a
        # str-Enum's == cost ten times as much, once per request)
        self._write_through = write_mode is _SERVER or write_mode is _STREAM
        self._auto = write_mode is _AUTO
        self._declared_length = False  # "auto": Roundup gave a Content-Length
        #: "auto" once streaming: the write callable and the writes not sent.
        self._stream_write: WriteCallable | None = None
        self._pending = bytearray()
        self._started = False  # the server's start_response has been called

    # -- the interface Roundup's Client calls ---------------------------------

    def start_response(self, headers: HeaderList, response_code: int) -> None:
        """Set the status and headers (Roundup's ``request.start_response``).

        Called again, it replaces the response (the buffered body dropped).
        In ``"server"`` mode the server's ``start_response`` is called at
        the first write or by :meth:`finish` (until then :meth:`sendfile`
        may change the headers).

        :param headers: ``[(name, value), ...]`` as Roundup builds them.
        :param response_code: the HTTP status code.
        """
        self.status = status_line(response_code)
        self.headerlist = list(headers)
        self.chunks = []
        self._drop_file_body()
        sink: Callable[[bytes], object] = self.chunks.append
        if self._auto and not self._started:
            self._declared_length = _has_header(self.headerlist, "content-length")
            sink = self._hold_or_stream
        elif self._write_through:
            sink = self._start_on_first_write
        elif self._auto:
            write = self._server_start_response(self.status, self.headerlist)
            self._started = True
            if write is not None:
                sink = write
        self.wfile.sink = sink

    def _start_on_first_write(self, data: bytes) -> None:
        """The ``"server"`` mode's first write: the server's
        ``start_response`` now, then its write callable (or the buffer)."""
        assert self.status is not None
        write = self._server_start_response(self.status, self.headerlist)
        self._started = True
        self.wfile.sink = write if write is not None else self.chunks.append
        self.wfile.sink(data)

    def _hold_or_stream(self, data: bytes) -> None:
        """The ``"auto"`` sink: a body with a ``Content-Length`` (every page,
        file, REST answer) or for HEAD is held whole; one of unknown length
        (the CSV export) starts the response at its first write and streams.
        """
        if self._declared_length or self.environ.get("REQUEST_METHOD") == "HEAD":
            self.chunks.append(data)
            return
        assert self.status is not None
        write = self._server_start_response(self.status, self.headerlist)
        self._started = True
        if write is None:  # no write callable: stay buffered
            self.chunks.append(data)
            self.wfile.sink = self.chunks.append
            return
        held, self.chunks = self.chunks, []
        self._stream_write = write
        self.wfile.sink = self._coalesce
        for chunk in held:
            self._pending += chunk
        self._pending += data
        self._flush_pending()  # the first bytes go out at once

    def _coalesce(self, data: bytes) -> None:
        """The ``"auto"`` sink once streaming: writes joined into blocks of
        :data:`STREAM_BLOCK` bytes (not a send per CSV row); :meth:`finish`
        sends the rest."""
        self._pending += data
        if len(self._pending) >= STREAM_BLOCK:
            self._flush_pending(whole_blocks=True)

    def _flush_pending(self, whole_blocks: bool = False) -> None:
        """Send the pending bytes through the write callable in chunks of at
        most :data:`STREAM_BLOCK` bytes; with ``whole_blocks`` a last
        shorter chunk is kept for the next writes."""
        pending, write = self._pending, self._stream_write
        if not pending or write is None:
            return
        end = len(pending)
        if whole_blocks:
            end -= end % STREAM_BLOCK
        for start in range(0, end, STREAM_BLOCK):
            write(bytes(pending[start : min(start + STREAM_BLOCK, end)]))
        del pending[:end]

    def sendfile(self, filename: str, offset: int, length: int) -> None:
        """Make ``length`` bytes of ``filename`` from ``offset`` the body.

        Roundup's ``Client.write_file`` calls it after ``start_response``,
        the Range worked out.  The file is streamed later (never read
        whole), or :attr:`file_encoder`'s compressed body is sent instead
        (headers changed to match, :mod:`roundup_wsgi.compression`).  An
        ``OSError`` is kept in :attr:`sendfile_error` (Roundup's
        ``_socket_op`` would swallow it), and the dispatcher answers 500.
        """
        self._drop_file_body()
        self.sent_file = (filename, offset, length)
        try:
            body = None
            if self.file_encoder is not None and self.status is not None:
                body = self.file_encoder(
                    self.status, self.headerlist, filename, offset, length
                )
            self.file_encoded = body is not None
            if body is None:
                body = open_file_body(self.environ, filename, offset, length)
            self.file_body = body
        except OSError:
            self.sendfile_error = sys.exc_info()  # type: ignore[assignment]

    # -- the dispatcher's side ------------------------------------------------

    def send_page(self, page: Page, exc_info: ExcInfo | None = None) -> None:
        """Replace the response with ``page`` (from
        :mod:`roundup_wsgi.wsgi.errorpages`).

        With ``exc_info``, the server's ``start_response`` is called with it
        if it was called before: a server that has sent the headers
        re-raises it (PEP 3333, "The start_response() Callable").
        """
        status, headers, body = page
        self._pending = bytearray()  # never sent after an error page
        self.status, self.headerlist = status, headers
        self.chunks = [body] if body else []
        self._drop_file_body()
        self.exc_info = exc_info
        if self._started:
            self._server_start_response(status, headers, exc_info)

    def finish(self) -> ResponseBody | Iterable[bytes]:
        """Call the server's ``start_response`` (unless done) and return the app_iter.

        A known body without ``Content-Length`` gets one (not for HEAD, 1xx,
        204, 304); HEAD drops any body; a file body alone is returned as the
        server's ``wsgi.file_wrapper`` object.  ``wfile`` lets go of its
        sink (a method of this request: a reference cycle).

        :raises RuntimeError: no status was ever set.
        """
        try:
            return self._app_iter()
        finally:
            self.wfile.sink = None

    def _app_iter(self) -> ResponseBody | Iterable[bytes]:
        if self.status is None:
            raise RuntimeError("Roundup's Client finished without sending a response")
        self._flush_pending()
        if self.environ.get("REQUEST_METHOD") == "HEAD":
            self.chunks = []
            self._drop_file_body()
        if not self._started:
            if (
                self.file_body is None
                and not (self._write_through and self.wfile.sink is not None)
                and not _has_header(self.headerlist, "content-length")
            ):
                code = int(self.status[:3])
                if (
                    code >= 200
                    and code not in (204, 304)
                    and (self.environ.get("REQUEST_METHOD") != "HEAD")
                ):
                    length = sum(map(len, self.chunks))
                    self.headerlist.append(("Content-Length", str(length)))
            self._started = True
            self._server_start_response(self.status, self.headerlist, self.exc_info)
        if self.file_body is not None and not self.chunks:
            return self.file_body
        if (
            not self.chunks
            and self.file_body is None
            and waits_for_first_chunk(self._server_start_response, self.environ)
        ):
            # hypercorn starts a response only with its first chunk; others
            # get the empty app_iter (wsgiref would drop "Content-Length: 0").
            return [b""]
        return ResponseBody(self.chunks, self.file_body)

    def _drop_file_body(self) -> None:
        body, self.file_body = self.file_body, None
        _close(body)


def _has_header(headers: HeaderList, name: str) -> bool:
    return any(key.lower() == name for key, _ in headers)
