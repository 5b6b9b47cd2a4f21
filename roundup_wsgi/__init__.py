"""roundup-wsgi: serve the Roundup issue tracker on any PEP 3333 server.

The public entry point is :class:`RequestDispatcher`, a drop-in replacement
for ``roundup.cgi.wsgi_handler.RequestDispatcher`` that returns the response
body as the WSGI app_iter instead of writing it through the server's write
callable (PEP 3333, "The write() Callable").
"""

from __future__ import annotations

__version__ = "0.1.0"

from .dispatcher import WRITE_MODES, RequestDispatcher
from .response import Writer

__all__ = ["WRITE_MODES", "RequestDispatcher", "Writer", "__version__"]
