"""Static files (``@@file/...``, ``_file/...``) without opening the tracker database.

Roundup's ``Client.inner_main`` serves a static file only after
``determine_charset`` and ``determine_user``; the latter opens the tracker
database (as ``admin``, then as the user), which is most of the cost of a
``@@file/style.css`` request.  Nothing of it is used for the file:
``determine_context`` raises ``SendStaticFile`` before the anonymous-access
check, the CSRF and ``[tracker] web`` (Host/Origin) checks, and Roundup's
``Client.serve_static_file`` checks no permission.

:func:`serve_static_file` takes the same steps with an instance of the
tracker's own ``Client`` class (:func:`make_client`; a tracker's
``interfaces.py`` override of ``serve_static_file`` is honoured) and
Roundup's own code for everything that decides the response:
``determine_charset`` (a ``@charset`` query parameter still sets its
cookie), ``serve_static_file`` (``[tracker] static_files`` then
``templates`` lookup, mime type,
``Cache-Control``, ``ETag``, ``Last-Modified``, ``If-None-Match`` and
``If-Modified-Since`` giving 304, ``Range``, precompressed files chosen by
``Accept-Encoding``) and ``header``.  The database is replaced by an object
that holds only the tracker's config, which is all those methods read
from it.  Roundup's path-traversal check lets a sibling directory through
(``html_private`` beside ``html``); :func:`leaves_static_directories`
answers 404 for those first, here and (:mod:`.patches.serve_static_file`)
on Roundup's own path.

Requests whose answer could depend on the user are left to the slow path
(:func:`is_static_request`): those with an ``Authorization`` header (an
invalid password answers 401/403 there, and a valid one is verified with
PBKDF2 first).  So are all static files of a tracker whose ``Client``
overrides a method the fast path skips (:func:`client_allows_fast_path`).
The answers are kept and given again by :mod:`.staticanswer`.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from roundup.cgi import TranslationService
from roundup.cgi.client import BinaryFieldStorage, Client, LiberalCookie
from roundup.cgi.exceptions import NotFound, NotModified

__all__ = [
    "BYPASSED_METHODS",
    "STATIC_PREFIXES",
    "client_allows_fast_path",
    "inside_directory",
    "is_static_request",
    "leaves_static_directories",
    "make_client",
    "serve_static_file",
]

#: The first path segments Roundup's ``determine_context`` serves as static
#: files (``SendStaticFile``), with the separating slash.
STATIC_PREFIXES = ("@@file/", "_file/")


#: The ``Client`` methods on Roundup's way to ``serve_static_file`` that the
#: fast path does not run.  A tracker whose ``interfaces.py`` overrides one
#: of them may act on static files there (deny, log, redirect), so its
#: static files take Roundup's whole path.
BYPASSED_METHODS = (
    "main",
    "inner_main",
    "determine_user",
    "determine_context",
    "opendb",
)


def client_allows_fast_path(client_class: type) -> bool:
    """True if ``client_class`` (a tracker's ``Client``) overrides none of
    :data:`BYPASSED_METHODS` of Roundup's ``roundup.cgi.client.Client``."""
    return all(
        getattr(client_class, name, None) is getattr(Client, name, None)
        for name in BYPASSED_METHODS
    )


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


def make_client(
    tracker: Any, request: Any, environ: dict[str, Any], translator: Any = None
) -> Any:
    """An instance of the tracker's ``Client`` class ready to serve a static file.

    ``Client.__init__`` costs more than serving the file (it seeds two
    random generators, makes a CSP nonce and a ``Mailer``, and parses the
    query string into a ``cgi.FieldStorage``), so the instance is made
    without it, with the attributes that ``determine_charset``,
    ``serve_static_file`` and the methods they call read, set as
    ``__init__`` sets them.  An attribute a Roundup version needs and this
    does not set raises ``AttributeError``, and the dispatcher then answers
    through Roundup's own path instead.

    :param tracker: the tracker instance (``roundup.instance.Tracker``).
    :param request: the request object (:class:`roundup_wsgi.request.Request`).
    :param environ: the request's environ, ``PATH_INFO`` without its leading
        slash.
    :param translator: a Roundup ``TranslationService``, or ``None`` for
        Roundup's ``NullTranslationService``.
    :returns: the client; :func:`serve_static_file` gives it its ``db``.
    """
    cls = tracker.Client
    client = cls.__new__(cls)
    client.instance = tracker
    client.request = request
    client.env = environ
    # Only a query string can hold @charset (the one form field used here).
    client.form = (
        BinaryFieldStorage(fp=environ.get("wsgi.input"), environ=environ)
        if environ.get("QUERY_STRING")
        else {}
    )
    client.setTranslator(translator or TranslationService.NullTranslationService())
    try:
        client.language = translator.info()["language"] if translator else ""
    except (AttributeError, KeyError):
        client.language = ""
    client.path = environ["PATH_INFO"]
    base = tracker.config.TRACKER_WEB
    client.base = base if base.endswith("/") else base + "/"
    client.secure = client.base.startswith("https")
    client.cookie_path = urllib.parse.urlsplit(client.base)[2]
    client._cookies = {}
    try:
        client.debug = int(environ.get("ROUNDUP_DEBUG", 0))
    except ValueError:
        client.debug = 0
    client.headers_done = 0
    client.headers_sent = []
    client.additional_headers = {}
    client.response_code = 200
    client.charset = client.STORAGE_CHARSET
    client.cookie = LiberalCookie(environ.get("HTTP_COOKIE", ""))
    client.form_wins = False
    client._ok_message = []
    client._error_message = []
    client.user = client.userid = client.nodeid = None
    client.classname = client.template = None
    return client


def serve_static_file(client: Any) -> None:
    """Answer a static-file request with Roundup's own code, without a database.

    :param client: from :func:`make_client` (its ``db`` is set here); its
        ``path`` starts with one of :data:`STATIC_PREFIXES`.
    :raises roundup.cgi.exceptions.NotFound: no such file, or the path
        leaves the static-file directories (Roundup's answer: 404); the
        caller answers it as for any other request.

    The ``NotModified`` that Roundup raises for a matching ``If-None-Match``
    or ``If-Modified-Since`` becomes a 304, as in ``Client.inner_main``.
    """
    config = client.instance.config
    client.db = _ConfigOnlyDatabase(config)
    # Roundup's determine_context: the file is the rest of the path.
    file = os.path.join(*client.path.split("/")[1:])
    client.determine_charset()
    try:
        if leaves_static_directories(config, file):
            raise NotFound(file)
        client.serve_static_file(file)
    except NotModified:
        client.response_code = 304
        client.header()


# -- the static directories' bounds ------------------------------------------


def inside_directory(filename: str, directory: str) -> bool:
    """True if ``filename`` is below ``directory`` (both ``os.path.normpath``'d).

    Roundup 2.4-2.7's ``Client.serve_static_file`` tests
    ``filename.startswith(directory)``, which ``html_private/secret.txt``
    passes for a directory ``html``; this tests against ``directory +
    os.sep``.  Lexical: a symbolic link inside the directory is followed
    wherever it points, as in Roundup (the admin put it there).
    """
    prefix = directory if directory.endswith(os.sep) else directory + os.sep
    return filename.startswith(prefix)


def _static_directories(config: Any) -> list[tuple[str, str]]:
    """``(option, directory)`` in the order Roundup's ``serve_static_file``
    searches them: each of ``[tracker] static_files``, then ``templates``."""
    found = []
    for option in ("STATIC_FILES", "TEMPLATES"):
        prefix = config[option]
        if prefix:
            for directory in [prefix] if isinstance(prefix, str) else prefix:
                found.append((option, directory))
    return found


def _ends_search(option: str, directory: str) -> bool:
    """Roundup's rule: a ``static_files`` entry ending in ``/-`` (or ``\\-``)
    stops the search (404) before ``templates``."""
    return (
        option == "STATIC_FILES"
        and directory[-1:] == "-"
        and directory[-2:-1] in ("/", "\\")
    )


def _may_leave(file: str) -> bool:
    """False if ``file`` (relative to a directory) stays inside whatever
    directory it is joined to: relative, no drive, no leading ``..``."""
    norm = os.path.normpath(file)
    return (
        os.path.isabs(norm)
        or bool(os.path.splitdrive(norm)[0])
        or norm == os.pardir
        or norm.startswith(os.pardir + os.sep)
    )


def leaves_static_directories(config: Any, file: str) -> bool:
    """True if Roundup's ``Client.serve_static_file`` would serve ``file``
    from outside the directory it searched.

    Roundup's lookup, step for step (``[tracker] static_files`` then
    ``templates``; the first directory whose ``normpath(join(directory,
    file))`` is a file starting with the directory's name serves it), and
    then :func:`inside_directory` on what it found: ``../html_private/x``
    with ``templates = html`` is ``True``.  A ``file`` that cannot leave
    any directory (relative, no ``..`` first after ``normpath``) is
    ``False`` without looking at the disk.

    :param config: the tracker's config.
    :param file: the path after ``@@file/`` or ``_file/``.
    """
    if not _may_leave(file):
        return False
    for option, directory in _static_directories(config):
        if _ends_search(option, directory):
            return False
        directory = os.path.normpath(directory)
        filename = os.path.normpath(os.path.join(directory, file))
        if os.path.isfile(filename) and filename.startswith(directory):
            return not inside_directory(filename, directory)
    return False


#: Names now in :mod:`.staticanswer`, still importable from here.
_MOVED = (
    "CACHED_METHODS",
    "PRECOMPRESSED_SUFFIXES",
    "client_allows_response_cache",
    "file_dependencies",
    "response_cache_key",
)


def __getattr__(name: str) -> Any:
    """The old import path of the names in :data:`_MOVED` (PEP 562)."""
    if name in _MOVED:
        from . import staticanswer

        return getattr(staticanswer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
