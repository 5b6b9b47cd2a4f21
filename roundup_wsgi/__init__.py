"""roundup-wsgi: serve the Roundup issue tracker on any PEP 3333 server.

The public entry point is :class:`RequestDispatcher`, a drop-in replacement
for ``roundup.cgi.wsgi_handler.RequestDispatcher`` that returns the response
body as the app_iter instead of writing it through the server's write
callable (PEP 3333, "The write() Callable").

The package is in three layers, each importing only those below it:

* :mod:`roundup_wsgi.wsgi`: WSGI tools that know nothing of Roundup;
* the Roundup glue, the modules at this level:

  - serving: :mod:`.dispatcher` (the WSGI application: routes a request),
    :mod:`.parts` (its parts made from the settings), :mod:`.clientrun`
    (Roundup's ``Client`` run for a request), :mod:`.request` (the request
    object Roundup's ``Client`` writes to), :mod:`.stream` (the
    ``stream``/``auto`` write modes), :mod:`.static` (static files without
    the database), :mod:`.staticanswer` (static answers kept: key, files,
    keep-or-not), :mod:`.compression` (files compressed as Roundup does),
    :mod:`.request_body` (size limit, chunked bodies), :mod:`.failures`
    (errors inside ``Client`` as 500/503 pages), :mod:`.erroranswers`
    (the dispatcher's 500/503/404 answers), :mod:`.traceids` (trace ids
    and Roundup's log context);
  - Roundup's objects: :mod:`.tracker` (tracker homes), :mod:`.install`
    (making them), :mod:`.dbstate` (is the database initialised),
    :mod:`.dbpool` (databases kept between requests), :mod:`.dbrecycle`
    (one kept database: opened, recycled, found stale, closed),
    :mod:`.nodecache` (their rows kept too), :mod:`.permissions`
    (remembered permission checks), :mod:`.isolation` (trackers kept apart
    in one process), :mod:`.authmemo` (successful password checks
    remembered), :mod:`.pgversion` (PostgreSQL's write counter for the row
    cache), :mod:`.roundupversion` (what the installed Roundup can do);
  - :mod:`roundup_wsgi.patches`: every replacement of a Roundup object's
    attribute (one module each, in one install order);
  - configuration: :mod:`.options` (the options table), :mod:`.settings`
    (:class:`.Settings`, the one validated object built from it),
    :mod:`.values` (the options' types, checks and conversion from text);
  - assembly and operations: :mod:`.app` (``make_app`` and
    ``application``), :mod:`.operations` (the layers around the trackers),
    :mod:`.paste` (PasteDeploy), :mod:`.health` (``/-/health``, ``/-/ready``),
    :mod:`.readiness` (the checks of ``/-/ready``), :mod:`.metrics`
    (Prometheus), :mod:`.collectors` (where the metrics' numbers are kept),
    :mod:`.webcheck` (the ``[tracker] web`` warning);
  - old import paths: :mod:`.adapters`, :mod:`.proxy` (re-exports of
    :mod:`roundup_wsgi.wsgi`'s);

* :mod:`roundup_wsgi.cli`: the ``roundup-wsgi`` command (also ``python -m
  roundup_wsgi``, :mod:`.__main__`).

The names below are imported lazily (PEP 562), so ``import
roundup_wsgi.wsgi`` works without Roundup installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0.dev0"

__all__ = [
    "WRITE_MODES",
    "RequestDispatcher",
    "Settings",
    "WriteMode",
    "Writer",
    "__version__",
    "make_app",
]

#: Public name -> the module defining it.
_LAZY = {
    "WRITE_MODES": ".values",
    "RequestDispatcher": ".dispatcher",
    "Settings": ".settings",
    "WriteMode": ".values",
    "Writer": ".request",
    "make_app": ".app",
}

if TYPE_CHECKING:
    from .app import make_app
    from .dispatcher import RequestDispatcher
    from .request import Writer
    from .settings import Settings
    from .values import WRITE_MODES, WriteMode


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
