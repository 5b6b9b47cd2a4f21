"""The ``stream`` (and ``auto``) write mode of
:class:`~roundup_wsgi.dispatcher.RequestDispatcher`: Roundup's writes as the app_iter.

Roundup's ``Client`` writes a response piece by piece to ``request.wfile``
(the CSV export: one row per write).  Here ``Client.main`` runs in a
greenlet (:func:`roundup_wsgi.wsgi.adapters.iterable_only`, ``"greenlet"``
mode): each write switches back to the server, which sends it as a chunk of
the app_iter before Roundup makes the next one.  Headers go out first,
memory stays at one chunk and the server's write callable (PEP 3333, "The
write() Callable") is never used, so granian, bjoern and hypercorn work.

A client that goes away closes the app_iter: ``GeneratorExit`` is raised by
Roundup's pending write, ``Client.main``'s ``finally`` closes the database.
An exception after part of the body was sent propagates to the server,
which aborts the response (PEP 3333, "Error Handling").
"""

from __future__ import annotations

from .wsgi.adapters import iterable_only
from .wsgi.types import WSGIApp

__all__ = ["streaming"]


def streaming(respond: WSGIApp) -> WSGIApp:
    """Wrap ``respond``, a dispatcher writing through the write callable
    (``SERVER`` or ``AUTO`` write mode), so that each write reaches the
    server at once as a chunk of the app_iter."""
    return iterable_only(respond, mode="greenlet")
