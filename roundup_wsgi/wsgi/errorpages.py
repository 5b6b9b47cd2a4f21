"""Error pages an application writes itself, as ``(status, headers, body)``.

They are webob HTTP exceptions rendered, so the status line, the escaping of
details, content negotiation (HTML, JSON or plain text from the ``Accept``
header) and HEAD handling are webob's.  The texts are parameters; the
defaults name no application.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from http import HTTPStatus
from typing import Any

from webob import exc
from webob.util import status_generic_reasons

__all__ = [
    "LOGGED",
    "Page",
    "bad_request",
    "internal_server_error",
    "not_implemented",
    "render",
    "status_line",
]

#: ``(status line, response headers, body bytes)``.
Page = tuple[str, list[tuple[str, str]], bytes]

_DEBUG_TEMPLATE = "${explanation}<br /><br />\n<pre>${detail}</pre>\n${html_comment}"


@cache
def status_line(code: int) -> str:
    """Return the status line for ``code``, e.g. ``"404 Not Found"``.

    Reason phrases are Python's :class:`http.HTTPStatus` ones (those of
    ``http.server.BaseHTTPRequestHandler.responses``); a code outside it
    gets webob's generic reason for its class (e.g. ``"599 Unknown Server
    Error"``) instead of a ``KeyError``.
    """
    code = int(code)
    try:
        reason = HTTPStatus(code).phrase
    except ValueError:
        reason = status_generic_reasons.get(code // 100, "Unknown")
    return f"{code} {reason}"


def render(error: exc.WSGIHTTPException, environ: Mapping[str, Any]) -> Page:
    """Render a webob HTTP exception for ``environ`` (Accept, HEAD honoured).

    A request without an ``Accept`` header gets HTML (webob would pick
    plain text); one that asks for JSON or plain text gets that.

    :returns: ``(status, headers, body)``; for HEAD the body is empty and
        the headers are those of the GET response.
    """
    environ = dict(environ)
    if not environ.get("HTTP_ACCEPT"):
        environ["HTTP_ACCEPT"] = "text/html"
    captured: list[tuple[str, list[tuple[str, str]]]] = []

    def capture(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> None:
        captured.append((status, headers))

    body = b"".join(error(environ, capture))
    status, headers = captured[0]
    return status, list(headers), body


def not_implemented(environ: Mapping[str, Any], detail: str | None = None) -> Page:
    """501 for a request method not implemented here.

    :param detail: the page's text (escaped), e.g. where the method is
        supported; default ``"<METHOD> is not implemented here."``.
    """
    if detail is None:
        detail = f"{environ.get('REQUEST_METHOD', '')} is not implemented here."
    return render(exc.HTTPNotImplemented(detail=detail), environ)


def bad_request(environ: Mapping[str, Any], reason: str) -> Page:
    """400 for a request whose body or headers cannot be parsed; ``reason``
    is shown escaped."""
    return render(exc.HTTPBadRequest(detail=reason), environ)


#: :func:`internal_server_error`'s text without a traceback.
LOGGED = (
    "The server could not complete this request; "
    "the error has been logged for the administrator."
)


def internal_server_error(
    environ: Mapping[str, Any], traceback: str | None, detail: str = LOGGED
) -> Page:
    """500 for an exception that escaped the application.

    :param traceback: shown (escaped, preformatted) only when given, i.e. in
        debug mode; otherwise the page shows ``detail`` (escaped).
    """
    if traceback is None:
        error = exc.HTTPInternalServerError(detail=detail)
    else:
        error = exc.HTTPInternalServerError(
            detail=traceback, body_template=_DEBUG_TEMPLATE
        )
    return render(error, environ)
