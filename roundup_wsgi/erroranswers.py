"""The dispatcher's own error answers: 400, 500, 503 and Roundup's 404 text.

An exception that escaped Roundup's ``Client`` is logged and answered 500
(:data:`ERROR_LOGGED`), or 503 with ``Retry-After`` when the database is
unusable (:func:`~.failures.database_unavailable_cause`), or 400 when the
request's Basic credentials cannot be decoded
(:func:`malformed_basic_credentials`).  Internal detail (a traceback) is
shown only where Roundup shows it (:func:`show_detail`).
"""

from __future__ import annotations

import base64
import logging
import traceback
from collections.abc import Callable
from typing import Any

from roundup.anypy.html import html_escape

from . import failures
from .request import Request
from .wsgi import errorpages, finish
from .wsgi.accesslog import escape
from .wsgi.types import ExcInfo

__all__ = [
    "BAD_CREDENTIALS",
    "ERROR_LOGGED",
    "fail",
    "logged_request",
    "malformed_basic_credentials",
    "not_found",
    "show_detail",
    "unavailable",
]

logger = logging.getLogger("roundup_wsgi")

#: The 500 page's text (without ``debug``) for an exception that escaped
#: Roundup's ``Client``.
ERROR_LOGGED = (
    "The tracker could not complete this request; "
    "the error has been logged for the administrator."
)

#: The 400 page's text for Basic credentials Roundup cannot decode.
BAD_CREDENTIALS = (
    "Malformed request: the Authorization header's Basic credentials are "
    "not base64-encoded UTF-8 (RFC 7617)."
)


def malformed_basic_credentials(env: dict[str, Any]) -> bool:
    """True if ``HTTP_AUTHORIZATION`` is ``Basic <credentials>`` that
    Roundup's ``Client.determine_user`` cannot decode: not base64, or not
    UTF-8 once decoded (RFC 7617 2; Roundup 2.4 to the 2.7 snapshot catch
    only ``TypeError`` there, so the ``ValueError`` escapes its ``Client``)."""
    scheme, space, credentials = str(env.get("HTTP_AUTHORIZATION", "")).partition(" ")
    if not space or scheme.lower() != "basic":
        return False
    try:
        base64.b64decode(credentials).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII text
        return True
    return False


def show_detail(debug: bool, tracker: Callable[[], Any]) -> bool:
    """True if error pages may show internal detail (tracebacks, causes,
    paths): ``debug`` or the tracker's ``[web] debug`` (Roundup's rule for
    its traceback pages, ``Client.inner_main``).

    :param tracker: gives the tracker instance; if it raises, no detail.
    """
    if debug:
        return True
    try:
        return bool(tracker().config.WEB_DEBUG)
    except Exception:  # the tracker cannot be opened: no detail
        return False


def fail(
    env: dict[str, Any], request: Request, exc_info: ExcInfo, home: str, detail: bool
) -> None:
    """Answer an exception from Roundup's ``Client``: logged, then a 500 page
    (with the traceback if ``detail``), :func:`unavailable`'s 503, or a 400
    for Basic credentials that cannot be decoded."""
    cause = failures.database_unavailable_cause(exc_info[1])
    if cause is not None:
        unavailable(env, request, exc_info, home, detail, cause)
        return
    error: BaseException | None = exc_info[1]
    if isinstance(error, failures.RoundupCaughtError):
        error = error.__cause__
    if isinstance(error, ValueError) and malformed_basic_credentials(env):
        # A client's error, not the tracker's: Roundup answers 500 (and
        # mails the admin) or lets the exception reach the server.
        logger.info(
            "%s %s: malformed Basic credentials, answered 400", *logged_request(env)
        )
        request.send_page(errorpages.bad_request(env, BAD_CREDENTIALS), exc_info)
        return
    logger.error(
        "%s %s failed in tracker %s",
        *logged_request(env),
        home,
        exc_info=exc_info,
    )
    text = "".join(traceback.format_exception(*exc_info)) if detail else None
    page = errorpages.internal_server_error(env, text, ERROR_LOGGED)
    request.send_page(page, exc_info)


def unavailable(
    env: dict[str, Any],
    request: Request,
    exc_info: ExcInfo,
    home: str,
    detail: bool,
    cause: str,
) -> None:
    """503 + Retry-After for a database outage
    (:func:`~.failures.service_unavailable`); ``cause`` is one escaped line
    (:func:`~.failures.database_unavailable_cause`)."""
    logger.error(
        "%s %s: database of tracker %s unavailable, answered 503: %s",
        *logged_request(env),
        home,
        cause,
        exc_info=exc_info,
    )
    text = "".join(traceback.format_exception(*exc_info)) if detail else None
    finish.note(env, "database_unavailable", cause)
    page = failures.service_unavailable(env, cause, text)
    request.send_page(page, exc_info)


def not_found(request: Request, env: dict[str, Any], path: str) -> None:
    """Roundup's 404 for ``NotFound``, byte for byte, plus a Content-Length.

    A lone surrogate in ``path`` (no PEP 3333 server puts one in
    ``PATH_INFO``) made Roundup's ``.encode()`` raise: written as ``\\udcxx``.
    """
    body = f"Not found: {html_escape(path)}".encode("utf-8", "backslashreplace")
    request.start_response(
        [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
        404,
    )
    if env.get("REQUEST_METHOD") != "HEAD":
        request.wfile.write(body)


def logged_request(env: dict[str, Any]) -> tuple[str, str]:
    """The method and path of a request as a log line shows them: escaped
    (:func:`~roundup_wsgi.wsgi.accesslog.escape`), so a ``%0a`` or other
    control character in the path cannot start a line of its own."""
    path = str(env.get("PATH_INFO", "")).lstrip("/")
    method = str(env.get("REQUEST_METHOD", "-"))
    return escape(method), escape(f"{env.get('SCRIPT_NAME', '')}/{path}")
