"""``Client.serve_static_file`` that stays inside the static directories.

Wraps ``serve_static_file`` on one ``roundup.cgi.client.Client`` instance
(each request's, set by the dispatcher).  Roundup 2.4 to the 2.7
snapshot's check (``filename.startswith(prefix)``, no path separator) lets
a sibling directory through: with ``static_files = html``, ``@@file/``
can serve a file of ``html_private/``.  The wrapper answers 404
(``NotFound``, Roundup's own answer for a missing file) for a file outside
(``leaves_static_directories`` of :mod:`roundup_wsgi.static`), and calls
Roundup's method (or the tracker's own) otherwise.
"""

from __future__ import annotations

from typing import Any

from roundup.cgi.client import NotFound

from ..static import leaves_static_directories
from .roundup_types import ClientLike
from .targets import Target

__all__ = ["TARGETS", "install", "remove"]

TARGETS = (Target("roundup.cgi.client:Client.serve_static_file", "(self, file)"),)


def install(client: ClientLike, config: Any) -> None:
    """Wrap ``client.serve_static_file`` (before ``main()``).

    :param config: the tracker's config (its static directories).
    """
    serve = client.serve_static_file

    def serve_static_file_inside(file: str) -> Any:
        if leaves_static_directories(config, file):
            raise NotFound(file)
        return serve(file)

    client.serve_static_file = serve_static_file_inside  # type: ignore[method-assign]


def remove(client: object) -> None:
    """Give ``client`` its class's ``serve_static_file`` back."""
    vars(client).pop("serve_static_file", None)
