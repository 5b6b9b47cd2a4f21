"""Several WSGI applications in one, each under ``/<name>/``.

:class:`Mount` looks at the first segment of ``PATH_INFO``, moves it to
``SCRIPT_NAME`` (PEP 3333, "environ Variables": ``SCRIPT_NAME`` is "the
initial portion of the request URL's path that corresponds to the
application object", ``PATH_INFO`` "the remainder") and calls that
application, as Werkzeug's ``DispatcherMiddleware`` does.  It answers ``/``
with an index page of links to the applications, redirects ``/name`` to
``/name/`` and answers an unknown name with 404; the page texts are its
parameters.

An application that builds absolute links from its own setting rather than
``SCRIPT_NAME`` must be configured with its mount point.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote
from wsgiref.util import application_uri

from webob import exc

from . import errorpages
from .types import WSGIApp

__all__ = ["MOUNT_NAME", "Mount"]

#: A mount name: one path segment of URL-unreserved characters (RFC 3986,
#: section 2.3), so it needs no quoting.
MOUNT_NAME = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$")


class Mount:
    """Serve several WSGI applications under ``/<name>/``.

    :param apps: ``{name: WSGI application}``; a name is one URL path
        segment of letters, digits and ``-._~`` (:data:`MOUNT_NAME`,
        matched case-sensitively).
    :param title: the index page's title and heading.
    :param noun: what an application is called in the texts of the 404 and
        405 pages and of errors (``"There is no {noun} named 'x' here"``).
    :param plural: ``noun``'s plural; default ``noun + "s"``.
    :raises ValueError: no application, or a name that is not such a
        segment (the message names it).
    """

    def __init__(
        self,
        apps: Mapping[str, WSGIApp],
        *,
        title: str = "Index",
        noun: str = "application",
        plural: str | None = None,
    ) -> None:
        if not apps:
            raise ValueError(
                f"{type(self).__name__} needs at least one {noun}: {{name: app}}"
            )
        for name in apps:
            if not MOUNT_NAME.match(name) or name in (".", ".."):
                raise ValueError(
                    f"{noun} name {name!r} cannot be a URL path segment: use "
                    "letters, digits and - . _ ~ only (e.g. bugs)"
                )
        self.apps = dict(apps)
        self.title = title
        self.noun = noun
        self.plural = plural if plural is not None else noun + "s"

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
                        detail=f"There is no {self.noun} named {name!r} here; "
                        f"the index at / lists the {self.plural}."
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
        """The index page: links to the applications, sorted by name; GET
        and HEAD only."""
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            error = exc.HTTPMethodNotAllowed(
                detail=f"The {self.noun} index only answers GET and HEAD."
            )
            error.allow = ("GET", "HEAD")
            return _send(errorpages.render(error, environ), start_response)
        base = quote(environ.get("SCRIPT_NAME", "").rstrip("/"), encoding="latin-1")
        items = "".join(
            f'<li><a href="{base}/{quote(name)}/">{escape(name)}</a></li>\n'
            for name in sorted(self.apps)
        )
        title = escape(self.title)
        body = (
            '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
            f"<title>{title}</title></head>\n"
            f"<body><h1>{title}</h1>\n<ol>\n{items}</ol>\n"
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


def __getattr__(name: str) -> Any:
    """``TrackerMount``, this class's old name (in the README's source map),
    as a deprecated alias of :class:`Mount`."""
    if name == "TrackerMount":
        warnings.warn(
            "roundup_wsgi.wsgi.mount.TrackerMount is deprecated: use Mount",
            DeprecationWarning,
            stacklevel=2,
        )
        return Mount
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
