"""Request ids: the balancer's id for a request, or a new one, end to end.

A load balancer labels each request with an id and logs it (nginx's
``$request_id``, HAProxy's ``unique-id-format``) and passes it on as a
header (``X-Request-ID``), or a tracing client sends W3C Trace Context's
``traceparent``.  :class:`RequestIds` takes that id, from a trusted proxy
only (a request that :class:`~roundup_wsgi.wsgi.proxy.TrustedProxyFix`
marked with :data:`~roundup_wsgi.wsgi.proxy.TRUSTED_PEER`), or makes a new
one, and puts it where the layers below and around find it: the environ
(:data:`REQUEST_ID`), the access log (the finish note ``trace_id``) and a
response header.  A client could otherwise forge the id other log lines
are found by; so an id from anyone else is never used, and an id that is
too long or has other characters than :data:`SAFE_ID`'s is replaced by a
new one, never logged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from .adapters import SERVER_START_RESPONSE_KEY
from .finish import ENVIRON_KEY, direct_call
from .proxy import TRUSTED_PEER
from .types import ExcInfo, HeaderList, StartResponse, WriteCallable

__all__ = [
    "DEFAULT_HEADER",
    "MAX_LENGTH",
    "REQUEST_ID",
    "SAFE_ID",
    "RequestIds",
    "check_header_name",
    "request_id_from",
    "trace_id_of_traceparent",
    "valid_request_id",
]

#: The environ key holding the request's id (a string of :data:`SAFE_ID`).
REQUEST_ID = "roundup_wsgi.request_id"
#: The header read from a trusted proxy and sent with each response.
DEFAULT_HEADER = "X-Request-ID"
#: The longest id accepted, in characters.
MAX_LENGTH = 128
#: An id accepted as it is: letters, digits and ``. _ : -``, at most
#: :data:`MAX_LENGTH` (nginx's ``$request_id`` is 32 hex digits, HAProxy's
#: ``%{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid`` gives hex digits, ``:`` and
#: ``_``).
SAFE_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_LENGTH}}}")
#: ``traceparent`` (W3C Trace Context, section 3.2.2): version, trace-id,
#: parent-id and flags in lower-case hex; a later version may add fields
#: after a ``-``.
_TRACEPARENT = re.compile(
    r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?", re.DOTALL
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_ZERO_TRACE = "0" * 32
_ZERO_PARENT = "0" * 16


def check_header_name(header: str) -> str:
    """``header`` if it is an HTTP header name (RFC 9110, section 5.1: a
    token).

    :raises ValueError: it is not (the message names it and the fix).
    """
    if not _TOKEN.fullmatch(header):
        raise ValueError(
            f"request id header {header!r} is not a header name: use letters, "
            "digits and -, e.g. X-Request-ID"
        )
    return header


def valid_request_id(value: str) -> str | None:
    """``value`` if it is a safe id (:data:`SAFE_ID`), else None."""
    return value if SAFE_ID.fullmatch(value) else None


def trace_id_of_traceparent(value: str) -> str | None:
    """The trace-id (32 lower-case hex digits) of a ``traceparent`` header,
    None unless it is valid by W3C Trace Context (section 3.2.2): version
    ``00`` has exactly four fields, version ``ff`` is invalid, a later
    version may have more fields after a ``-``; neither the trace-id nor
    the parent-id may be all zeros.

    :param value: the header's value (surrounding blanks allowed).
    """
    match = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    version, trace, parent, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace == _ZERO_TRACE or parent == _ZERO_PARENT:
        return None
    return trace


def request_id_from(environ: dict[str, Any], key: str) -> str | None:
    """The id a trusted proxy gave the request: the header of environ key
    ``key`` (e.g. ``HTTP_X_REQUEST_ID``) if valid, else the trace-id of a
    valid ``traceparent``, else None.  Whether the sender is trusted is the
    caller's question."""
    value = environ.get(key)
    if value:
        found = valid_request_id(value)
        if found is not None:
            return found
    value = environ.get("HTTP_TRACEPARENT")
    if value:
        return trace_id_of_traceparent(value)
    return None


class RequestIds:
    """WSGI middleware giving each request an id (see the module).

    :param app: the WSGI application.
    :param generate: makes a new id (called when no trusted id came); must
        return a string of :data:`SAFE_ID`.
    :param header: the header read from trusted proxies and sent back
        (``X-Request-ID``).
    :param respond: send the id in the response's ``header``.
    :raises ValueError: ``header`` is not an HTTP header name (RFC 9110,
        section 5.1: a token).

    ``environ[ENVIRON_KEY]``, when set, is a :class:`~.finish.Finished`
    (:class:`~.finish.FinishHooks` sets it); its note ``trace_id`` is the id.
    """

    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        generate: Callable[[], str],
        *,
        header: str = DEFAULT_HEADER,
        respond: bool = True,
    ) -> None:
        check_header_name(header)
        self.app = app
        self._call: Callable[..., Iterable[bytes]] = direct_call(app)
        self.generate = generate
        self.header = header
        self.respond = respond
        #: The environ key of ``header`` (PEP 3333: ``HTTP_`` and upper case).
        self.key = "HTTP_" + header.upper().replace("-", "_")

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request (PEP 3333 middleware) with its id."""
        request_id = None
        if environ.get(TRUSTED_PEER):
            request_id = request_id_from(environ, self.key)
        if request_id is None:
            request_id = self.generate()
        environ[REQUEST_ID] = request_id
        record = environ.get(ENVIRON_KEY)
        if record is not None:
            record.notes["trace_id"] = request_id
        if not self.respond:
            return self._call(environ, start_response)
        header = (self.header, request_id)

        def start(
            status: str, headers: HeaderList, exc_info: ExcInfo | None = None
        ) -> WriteCallable | None:
            return start_response(status, [*headers, header], exc_info)

        if SERVER_START_RESPONSE_KEY not in environ:  # note_first_chunk, inlined
            environ[SERVER_START_RESPONSE_KEY] = start_response
        return self._call(environ, start)
