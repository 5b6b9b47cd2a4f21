"""Several trackers in one WSGI application, each under ``/<name>/``.

:class:`TrackerMount` looks at the first segment of ``PATH_INFO``, moves it
to ``SCRIPT_NAME`` (PEP 3333, "environ Variables": ``SCRIPT_NAME`` is "the
initial portion of the request URL's path that corresponds to the
application object", ``PATH_INFO`` "the remainder") and calls that
tracker's application.  Like ``roundup-server`` it answers ``/`` with an
index page listing the trackers and redirects ``/name`` to ``/name/``;
an unknown name is a 404.

Each tracker's ``[tracker] web`` must end in its mount point, e.g.
``https://bugs.example/bugs/``: Roundup builds its links from that setting,
not from ``SCRIPT_NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote
from wsgiref.util import application_uri

from webob import exc

from . import errorpages
from .types import WSGIApp

__all__ = ["TRACKER_NAME", "TrackerMount"]

#: A tracker name in a URL: one path segment of URL-unreserved characters
#: (RFC 3986, section 2.3), so it needs no quoting.
TRACKER_NAME = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$")


class TrackerMount:
    """Serve several tracker applications under ``/<name>/``.

    :param apps: ``{name: WSGI application}``, e.g. ``{"bugs":
        RequestDispatcher("/srv/bugs")}``; a name is one URL path segment of
        letters, digits and ``-._~`` (matched case-sensitively).
    :raises ValueError: no application, or a name that is not such a
        segment (the message names it).
    """

    def __init__(self, apps: Mapping[str, WSGIApp]) -> None:
        if not apps:
            raise ValueError("TrackerMount needs at least one tracker: {name: app}")
        for name in apps:
            if not TRACKER_NAME.match(name) or name in (".", ".."):
                raise ValueError(
                    f"tracker name {name!r} cannot be a URL path segment: use "
                    "letters, digits and - . _ ~ only (e.g. bugs)"
                )
        self.apps = dict(apps)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """Dispatch one request (PEP 3333 application interface)."""
        path = environ.get("PATH_INFO", "")
        if path in ("", "/"):
            if path == "" and environ.get("SCRIPT_NAME"):
                return self._redirect(environ, start_response, "")
            return self._index(environ, start_response)
        name, slash, rest = path.lstrip("/").partition("/")
        app = self.apps.get(name)
        if app is None:
            return _send(
                errorpages.render(
                    exc.HTTPNotFound(
                        detail=f"There is no tracker named {name!r} here; the "
                        "index at / lists the trackers."
                    ),
                    environ,
                ),
                start_response,
            )
        if not slash:
            return self._redirect(environ, start_response, name)
        env = dict(environ)  # the server's environ stays as it was
        env["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "").rstrip("/") + "/" + name
        env["PATH_INFO"] = "/" + rest
        return app(env, start_response)

    def _redirect(
        self, environ: dict[str, Any], start_response: Callable[..., Any], name: str
    ) -> Iterable[bytes]:
        """301 to the same URL with a trailing slash (query kept); the URL is
        built from ``wsgi.url_scheme``, ``HTTP_HOST`` and ``SCRIPT_NAME``, so
        it is right behind a trusted proxy (see :mod:`roundup_wsgi.wsgi.proxy`)."""
        base = application_uri(environ).rstrip("/")
        location = base + "/" + (quote(name) + "/" if name else "")
        if environ.get("QUERY_STRING"):
            location += "?" + environ["QUERY_STRING"]
        return _send(
            errorpages.render(exc.HTTPMovedPermanently(location=location), environ),
            start_response,
        )

    def _index(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The index page: a list of links to the trackers, sorted by name,
        as ``roundup-server`` shows; GET and HEAD only."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            error = exc.HTTPMethodNotAllowed(
                detail="The tracker index only answers GET and HEAD."
            )
            error.allow = ("GET", "HEAD")
            return _send(errorpages.render(error, environ), start_response)
        base = quote(environ.get("SCRIPT_NAME", "").rstrip("/"), encoding="latin-1")
        items = "".join(
            f'<li><a href="{base}/{quote(name)}/">{escape(name)}</a></li>\n'
            for name in sorted(self.apps)
        )
        body = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            "<title>Roundup trackers index</title></head>\n"
            f"<body><h1>Roundup trackers index</h1>\n<ol>\n{items}</ol>\n"
            "</body></html>\n"
        ).encode()
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        start_response("200 OK", headers)
        return [] if method == "HEAD" else [body]


def _send(page: errorpages.Page, start_response: Callable[..., Any]) -> list[bytes]:
    status, headers, body = page
    start_response(status, headers)
    return [body]
