"""Static files (``@@file/...``, ``_file/...``) without opening the tracker database.

Roundup's ``Client.inner_main`` serves a static file only after
``determine_charset`` and ``determine_user``; the latter opens the tracker
database (as ``admin``, then as the user), which is most of the cost of a
``@@file/style.css`` request.  Nothing of it is used for the file:
``determine_context`` raises ``SendStaticFile`` before the anonymous-access
check, the CSRF and ``[tracker] web`` (Host/Origin) checks, and Roundup's
``Client.serve_static_file`` checks no permission.

:func:`serve_static_file` takes the same steps with the tracker's own
``Client`` class (so a tracker's ``interfaces.py`` override of
``serve_static_file`` is honoured) and Roundup's own code for everything
that decides the response: ``determine_charset`` (a ``@charset`` query
parameter still sets its cookie), ``serve_static_file`` (``[web]
static_files`` then ``templates`` lookup, path-traversal check, mime type,
``Cache-Control``, ``ETag``, ``Last-Modified``, ``If-None-Match`` and
``If-Modified-Since`` giving 304, ``Range``, precompressed files chosen by
``Accept-Encoding``) and ``header``.  The database is replaced by an object
that holds only the tracker's config, which is all those methods read
from it.

Requests whose answer could depend on the user are left to the slow path
(:func:`is_static_request`): those with an ``Authorization`` header (an
invalid password answers 401/403 there, and a valid one is verified with
PBKDF2 first).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from roundup.cgi.exceptions import NotModified

__all__ = ["STATIC_PREFIXES", "is_static_request", "serve_static_file"]

#: The first path segments Roundup's ``determine_context`` serves as static
#: files (``SendStaticFile``), with the separating slash.
STATIC_PREFIXES = ("@@file/", "_file/")


class _ConfigOnlyDatabase:
    """Stands in for ``client.db`` on the fast path: only ``config``.

    Roundup's static-file methods read ``self.db.config`` (precompressed
    files, the SameSite setting of a cookie) and nothing else of the
    database; any other attribute raises ``AttributeError`` naming this
    class.
    """

    __slots__ = ("config",)

    def __init__(self, config: Any) -> None:
        self.config = config


def is_static_request(environ: Mapping[str, Any]) -> bool:
    """True if Roundup would answer this request with a static file and the
    answer does not depend on who asks.

    :param environ: the request's environ with ``PATH_INFO`` as Roundup sees
        it (leading slash stripped).
    :returns: ``True`` for ``GET``/``HEAD`` of ``@@file/...`` or
        ``_file/...`` without an ``Authorization`` header.
    """
    if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
        return False
    if environ.get("HTTP_AUTHORIZATION"):
        return False
    path = str(environ.get("PATH_INFO", ""))
    return path.startswith(STATIC_PREFIXES)


def serve_static_file(client: Any) -> None:
    """Answer a static-file request with Roundup's own code, without a database.

    :param client: a newly made instance of the tracker's ``Client`` (its
        ``db`` is set here); its ``path`` starts with one of
        :data:`STATIC_PREFIXES`.
    :raises roundup.cgi.exceptions.NotFound: no such file, or the path
        leaves the static-file directories (Roundup's answer: 404); the
        caller answers it as for any other request.

    The ``NotModified`` that Roundup raises for a matching ``If-None-Match``
    or ``If-Modified-Since`` becomes a 304, as in ``Client.inner_main``.
    """
    client.db = _ConfigOnlyDatabase(client.instance.config)
    # Roundup's determine_context: the file is the rest of the path.
    file = os.path.join(*client.path.split("/")[1:])
    client.determine_charset()
    try:
        client.serve_static_file(file)
    except NotModified:
        client.response_code = 304
        client.header()
