"""The static answer: what decides it, when it may be kept, and what is kept.

The dispatcher keeps the static-file fast path's answers (:mod:`.static`)
in a :class:`~.wsgi.responsecache.ResponseCache` and gives them again
without Roundup's code while the files that decided them are unchanged.
This module holds what that takes:

* the lookup: the files Roundup's ``serve_static_file`` searches and
  serves (:func:`file_dependencies`, stamped);
* the key: what of the request decides the answer (:func:`response_cache_key`);
* :func:`plan`: whether a request's answer may be kept, and under what;
* :func:`keep`: whether the answer made may be kept (a whole 200 with a
  ``Content-Length``, or a 304), and which variant of the body: the
  compressed bytes :mod:`.compression` gave, or the file's own;
* the snapshot kept: :class:`~.wsgi.responsecache.CachedResponse`
  (immutable: status, headers, body, dependencies).

What decides an answer of Roundup's static-file code (Roundup 2.4-2.6
``Client`` methods, :data:`CACHED_METHODS`): the path; the method (HEAD:
no body); Accept-Encoding (the coding, Vary, precompressed file);
If-None-Match and If-Modified-Since (304, and its ETag); the charset
cookie (``determine_charset``); and the files: which of the ``[tracker]
static_files`` and ``templates`` directories holds the file, its inode,
size and mtime, and its precompressed copies.  Requests with a query
string (``@charset`` sets a cookie with an expiry date), ``Range`` or
``If-Range`` (206/416), or ``Authorization`` are never kept.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Hashable, Mapping
from typing import Any

from roundup.cgi.client import Client

from .compression import MAX_CACHED_FILE
from .request import Request
from .static import (
    _ends_search,
    _static_directories,
    client_allows_fast_path,
    inside_directory,
)
from .wsgi.encoding import FileStamp
from .wsgi.responsecache import Dependencies, ResponseCache, stamp_of

__all__ = [
    "CACHED_METHODS",
    "PRECOMPRESSED_SUFFIXES",
    "client_allows_response_cache",
    "file_dependencies",
    "keep",
    "plan",
    "response_cache_key",
    "snapshot_body",
]

#: The ``Client`` methods whose Roundup code decides a static answer; a
#: tracker whose ``interfaces.py`` overrides one may answer by other rules
#: (a cookie, the time of day), so its static answers are not kept.
CACHED_METHODS = (
    "serve_static_file",
    "_serve_file",
    "write_file",
    "determine_charset",
    "determine_content_encoding",
    "if_not_modified_since",
    "handle_range_header",
    "header",
    "setHeader",
    "setVary",
    "add_cookie",
    "_socket_op",
)

#: The suffixes Roundup's ``write_file`` tries for a precompressed copy
#: (``style.css.gzip``) when ``[web] use_precompressed_files`` is on.
PRECOMPRESSED_SUFFIXES = (".zstd", ".br", ".gzip")

#: Request headers that make an answer partial or not the fast path's (a
#: request body may answer 413): never cached.
_UNCACHED_HEADERS = (
    "HTTP_AUTHORIZATION",
    "HTTP_RANGE",
    "HTTP_IF_RANGE",
    "HTTP_TRANSFER_ENCODING",
)


def client_allows_response_cache(client_class: type) -> bool:
    """True if ``client_class`` (a tracker's ``Client``) overrides none of
    :data:`CACHED_METHODS` nor :data:`BYPASSED_METHODS`."""
    return client_allows_fast_path(client_class) and all(
        getattr(client_class, name, None) is getattr(Client, name, None)
        for name in CACHED_METHODS
    )


def response_cache_key(
    environ: Mapping[str, Any], path: str
) -> tuple[str | None, ...] | None:
    """The key of a static request's answer in the response cache, or
    ``None`` if it must not be cached.

    :param environ: the request's environ.
    :param path: its ``PATH_INFO`` as Roundup sees it (no leading slash),
        starting with one of :data:`STATIC_PREFIXES`.
    :returns: ``(path, method, Accept-Encoding, If-None-Match,
        If-Modified-Since, Cookie)`` (a header not sent is ``None``; the
        cookie header only when it holds Roundup's ``roundup_charset``
        cookie, else ``""``); ``None`` for a method other than
        ``GET``/``HEAD``, a query string, a request body, or an
        ``Authorization``, ``Range`` or ``If-Range`` header.
    """
    method = environ.get("REQUEST_METHOD", "GET")
    if method != "GET" and method != "HEAD":
        return None
    if environ.get("QUERY_STRING"):
        return None
    for name in _UNCACHED_HEADERS:
        if name in environ:
            return None
    if environ.get("CONTENT_LENGTH", "0") not in ("", "0"):
        return None
    cookie = environ.get("HTTP_COOKIE", "")
    return (
        path,
        method,
        environ.get("HTTP_ACCEPT_ENCODING"),
        environ.get("HTTP_IF_NONE_MATCH"),
        environ.get("HTTP_IF_MODIFIED_SINCE"),
        cookie if "roundup_charset" in cookie else "",
    )


def file_dependencies(config: Any, path: str) -> Dependencies | None:
    """The files that decide the answer to a static ``path``, stamped now.

    Follows Roundup's ``Client.serve_static_file`` lookup: each directory of
    ``[tracker] static_files`` (up to a final ``/-``), then ``templates``;
    the first that holds ``path`` as a regular file serves it.  Listed: the
    path in each directory up to that one (absent or not a file there, with
    their stamps: a file created there would be served instead), the file,
    and with ``[web] use_precompressed_files`` its precompressed copies
    (:data:`PRECOMPRESSED_SUFFIXES`).

    :param config: the tracker's config.
    :param path: ``PATH_INFO`` without its leading slash (``@@file/a.css``).
    :returns: ``((filename, stamp or None), ...)``, or ``None`` when no file
        is found or the path leaves a directory (Roundup answers 404 then,
        which is not cached).
    """
    file = os.path.join(*path.split("/")[1:])
    found: list[tuple[str, FileStamp | None]] = []
    served = None
    for option, directory in _static_directories(config):
        if _ends_search(option, directory):
            return None
        directory = os.path.normpath(directory)
        filename = os.path.normpath(os.path.join(directory, file))
        if not inside_directory(filename, directory):
            return None
        try:
            st: os.stat_result | None = os.stat(filename)
        except (OSError, ValueError):  # ValueError: a NUL byte (as isfile)
            st = None
        found.append((filename, FileStamp.of(st) if st is not None else None))
        if st is not None and stat.S_ISREG(st.st_mode):  # os.path.isfile
            served = filename
            break
    if served is None:
        return None
    if config.WEB_USE_PRECOMPRESSED_FILES:
        for suffix in PRECOMPRESSED_SUFFIXES:
            found.append((served + suffix, stamp_of(served + suffix)))
    return tuple(found)


def plan(tracker: Any, env: Mapping[str, Any]) -> tuple[Hashable, Dependencies] | None:
    """``(key, files)`` under which the fast path's answer to this request
    may be kept, the files stamped now (before Roundup looks, so a change
    while it answers shows); ``None``: not to be kept (a ``Client``
    overriding :data:`CACHED_METHODS`, an uncacheable request, no file).

    :param tracker: the tracker instance (its ``Client`` and ``config``).
    :param env: the environ, ``PATH_INFO`` without its leading slash.
    """
    if not client_allows_response_cache(tracker.Client):
        return None
    key = response_cache_key(env, env["PATH_INFO"])
    if key is None:
        return None
    files = file_dependencies(tracker.config, env["PATH_INFO"])
    return None if files is None else (key, files)


def snapshot_body(request: Request) -> bytes | None:
    """The body to keep of a fast-path answer about to go to the server, or
    ``None`` if it may not be kept: a 200 with a ``Content-Length`` and its
    whole body (the compressed bytes, or the file's, up to
    :data:`~.compression.MAX_CACHED_FILE`), or an empty 304 or HEAD answer.
    """
    status = request.status
    if status is None or request.chunks or request.exc_info is not None:
        return None
    code = status[:3]
    if code == "200" and not any(
        name.lower() == "content-length" for name, _ in request.headerlist
    ):
        return None
    if code == "304" or request.environ.get("REQUEST_METHOD") == "HEAD":
        return b"" if request.file_body is None else None
    if code != "200" or request.sent_file is None:
        return None
    if request.file_encoded:
        if not isinstance(request.file_body, list):
            return None  # compressed as it is sent: too large
        return b"".join(request.file_body)
    filename, offset, length = request.sent_file
    if length > MAX_CACHED_FILE:
        return None
    try:
        with open(filename, "rb") as file:
            file.seek(offset)
            body = file.read(length)
    except OSError:
        return None
    return body if len(body) == length else None


def keep(cache: ResponseCache, request: Request, config: Any) -> bool:
    """Keep ``request``'s answer in ``cache`` under its
    :attr:`~.request.Request.cache_as` (from :func:`plan`) if
    :func:`snapshot_body` allows and its files did not change meanwhile.

    :param config: the tracker's config (the files looked up again).
    :returns: ``True`` if kept.
    """
    if request.cache_as is None:
        return False
    body = snapshot_body(request)
    if body is None:
        return False
    key, files = request.cache_as
    if file_dependencies(config, request.environ["PATH_INFO"]) != files:
        return False
    assert request.status is not None
    return cache.put(key, request.status, request.headerlist, body, files)
