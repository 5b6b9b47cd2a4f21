"""Servers that send the status line only with the app_iter's first chunk.

On such a server (hypercorn's WSGI wrapper) an empty app_iter never starts
the response, so an application must yield one empty bytestring, which
PEP 3333 ("Buffering and Streaming") allows; on other servers that chunk
would change the headers (wsgiref then drops its ``Content-Length: 0``).
:func:`waits_for_first_chunk` tells the two apart, also through
middleware that passes a ``start_response`` of its own
(:func:`note_first_chunk`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "FIRST_CHUNK_KEY",
    "FIRST_CHUNK_SERVERS",
    "SERVER_START_RESPONSE_KEY",
    "note_first_chunk",
    "waits_for_first_chunk",
]

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
    line only with the first chunk of the app_iter
    (:data:`~.firstchunk.FIRST_CHUNK_SERVERS`).

    The answer a middleware above recorded in ``environ`` under
    :data:`~.firstchunk.FIRST_CHUNK_KEY` wins; else the server's
    ``start_response`` noted under
    :data:`~.firstchunk.SERVER_START_RESPONSE_KEY` stands for
    ``start_response``.  Its module decides, following ``__wrapped__``
    (:func:`functools.wraps`) through wrappers, at most 8 links.
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
    (:data:`~.firstchunk.SERVER_START_RESPONSE_KEY`; the outermost
    middleware's is kept) before a middleware passes its own to the
    application below, so that :func:`waits_for_first_chunk` with that
    ``environ`` still answers for the server."""
    environ.setdefault(SERVER_START_RESPONSE_KEY, start_response)
