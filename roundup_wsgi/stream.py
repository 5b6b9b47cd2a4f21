"""The ``"stream"`` write mode of :class:`~roundup_wsgi.dispatcher.RequestDispatcher`.

Roundup's ``Client`` writes a response piece by piece to ``request.wfile``:
the CSV export (``ExportCSVAction``) one row per write.  The ``"buffer"``
mode holds all of it until ``Client.main`` returns; the ``"server"`` mode
hands each write to the server's write callable, which PEP 3333 ("The
write() Callable") calls a hack and which granian, bjoern and hypercorn do
not provide.

In ``"stream"`` mode the dispatcher answers in its ``"server"`` way, but
under :func:`roundup_wsgi.wsgi.adapters.iterable_only` in ``"greenlet"`` mode:
``Client.main`` runs in a greenlet, the write callable it is given switches
back to the server with each chunk, and the server sends it from the
app_iter before Roundup makes the next one.  So the headers go out first,
memory stays at one chunk, the server's write callable is never used, and
every server works.  A file (``request.sendfile``) is still returned as the
server's ``wsgi.file_wrapper``.

When the server closes the response early (the client went away),
``GeneratorExit`` is raised by Roundup's pending write: ``Client.main``'s
``finally`` closes the database and the greenlet ends.  An exception after
part of the body was sent propagates to the server, which aborts the
response (PEP 3333, "Error Handling").
"""

from __future__ import annotations

from .wsgi.adapters import iterable_only
from .wsgi.types import WSGIApp

__all__ = ["streaming"]


def streaming(respond: WSGIApp) -> WSGIApp:
    """Wrap ``respond``, a dispatcher answering through the write callable
    (its ``"server"`` write mode), so each write reaches the server at once
    as a chunk of the app_iter.

    :raises ImportError: the greenlet package is missing (the message names
        the extra ``roundup-wsgi[stream]``).
    """
    return iterable_only(respond, mode="greenlet")
