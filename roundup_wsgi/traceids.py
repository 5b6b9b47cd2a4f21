"""Trace ids: Roundup's log context around a request, and ids made cheaply.

A request's trace id labels Roundup's log lines and the access log line
(Roundup >= 2.5, :data:`~.roundupversion.logcontext`).  The id a
:class:`~.wsgi.requestid.RequestIds` above gave the request
(``environ[REQUEST_ID]``) is the trace id; otherwise Roundup makes one, or
:func:`new_trace_id` for an answer no Roundup code runs for.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
from collections.abc import Callable
from typing import Any, TypeVar, cast

from .roundupversion import TRACE_ID, logcontext
from .wsgi.requestid import REQUEST_ID

__all__ = ["new_request_id", "new_trace_id", "with_log_context"]

_F = TypeVar("_F", bound=Callable[..., Any])


def with_log_context(func: _F, static_paths: tuple[str, ...]) -> _F:
    """Wrap a WSGI ``__call__`` in Roundup's log context, as Roundup's own
    handler does: process name ``wsgi_handler``, a trace id, and the path
    as the trace reason; ``func`` itself where Roundup has no logcontext.

    :param static_paths: ``PATH_INFO`` prefixes answered without a trace
        reason (Roundup's ``store_trace_reason`` compiles its ``extract``
        with ``eval`` on every call: a third of a static file's cost).
    """
    if logcontext is None:
        return func
    log = logcontext
    reason = log.store_trace_reason("wsgi", extract="args[1]['PATH_INFO'][1:]")
    full = log.set_processName("wsgi_handler")(log.gen_trace_id()(reason(func)))
    light = log.set_processName("wsgi_handler")(log.gen_trace_id()(func))

    @functools.wraps(func)
    def wrapper(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        answer = light if path.startswith(static_paths) else full
        request_id = environ.get(REQUEST_ID)
        if request_id is None:
            return answer(self, environ, start_response)
        # gen_trace_id keeps a trace id already set: the request's id.
        token = TRACE_ID.set(request_id)
        try:
            return answer(self, environ, start_response)
        finally:
            TRACE_ID.reset(token)

    return cast(_F, wrapper)


def new_trace_id() -> str:
    """A trace id for an answer no Roundup code runs for (the response
    cache's), or a request id: Roundup's ``logcontext.idgen()``, except
    that its default without nanoid (``short_uuid``, some 20 us) is
    replaced by this process's random prefix (40 bits, 10 hex digits, made
    anew in a forked child) and a decimal count: ``3f09a1c2d41``.

    Trace ids tell log lines apart and guard nothing, so they need not be
    unpredictable; letters and digits go into the access log unescaped.
    """
    generate = logcontext.idgen if logcontext is not None else None
    if generate is None or generate is logcontext.short_uuid:
        return f"{_trace_prefix}{next(_trace_count)}"
    return str(generate())


def _new_trace_prefix() -> None:
    """Start this process's trace ids: a random prefix, the count at 1."""
    global _trace_prefix, _trace_count
    _trace_prefix = f"{random.getrandbits(40):010x}"
    _trace_count = itertools.count(1)


#: A new request id (:class:`~.wsgi.requestid.RequestIds` calls it when no
#: trusted proxy gave one): a trace id as :func:`new_trace_id` makes them.
new_request_id = new_trace_id

_trace_prefix: str
_trace_count: itertools.count[int]
_new_trace_prefix()
if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_new_trace_prefix)
