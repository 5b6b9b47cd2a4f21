"""The WSGI application: a drop-in for Roundup's ``RequestDispatcher``.

Data flows one way::

    server -> RequestDispatcher(environ, start_response)
           -> Roundup Client.main()  (writes to a roundup_wsgi.response.Response)
           -> Response.finish(): start_response(status, headers), app_iter
           -> server

Roundup 2.6's ``roundup.cgi.wsgi_handler.RequestDispatcher`` writes the body
through the write callable that ``start_response`` returns; servers that
return ``None`` (granian, bjoern, hypercorn) answer every page with 500.
This one returns the body as the app_iter (PEP 3333, "The write() Callable":
applications "should produce their output via their returned iterable").
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import roundup.instance
from roundup.anypy.html import html_escape
from roundup.cgi import TranslationService
from roundup.cgi.client import BinaryFieldStorage, NotFound

from . import guard, inputs, limits, pages, unavailable
from .response import ExcInfo, Response, StartResponse
from .tracker import check_tracker_home

__all__ = ["WRITE_MODES", "RequestDispatcher"]

logger = logging.getLogger("roundup_wsgi")

#: ``"buffer"``: the body is collected and returned as the app_iter; the
#: server's write callable is never used (the default, and the same bytes on
#: every server).  ``"server"``: Roundup's writes go to the server's write
#: callable when ``start_response`` returns one, else to the buffer.
WRITE_MODES = ("buffer", "server")

_F = TypeVar("_F", bound=Callable[..., Any])

try:  # Roundup >= 2.5 labels the log lines of one request with a trace id.
    from roundup import logcontext as _logcontext
except ImportError:  # pragma: no cover - Roundup 2.4
    _logcontext = None


def _with_log_context(func: _F) -> _F:
    """Decorate a WSGI ``__call__`` with Roundup's log context, as Roundup's own
    handler does (process name ``wsgi_handler``, a trace id, and the path as
    the trace reason); unchanged where Roundup has no ``logcontext``."""
    if _logcontext is None:
        return func
    func = _logcontext.store_trace_reason("wsgi", extract="args[1]['PATH_INFO'][1:]")(
        func
    )
    func = _logcontext.gen_trace_id()(func)
    return cast(_F, _logcontext.set_processName("wsgi_handler")(func))


class RequestDispatcher:
    """Serve one Roundup tracker as a WSGI application.

    Same constructor and behaviour as Roundup's
    ``roundup.cgi.wsgi_handler.RequestDispatcher``, except that the response
    body is returned as the app_iter, files are streamed
    (``wsgi.file_wrapper`` or 64 KiB blocks, Range honoured), OPTIONS outside
    ``/rest`` answers 501 Not Implemented, and an exception escaping Roundup's
    ``Client`` becomes a logged 500 page.

    Also: a request body over ``max_request_body`` answers 413 unread
    (:mod:`.limits`); a database that cannot be used (locked, read-only,
    server down) answers 503 with ``Retry-After`` (:mod:`.unavailable`); an
    exception Roundup's own last-resort handler caught becomes the same
    logged 500 page (:mod:`.guard`).

    :param home: the tracker home directory.
    :param debug: open the tracker without optimisation (templates reloaded)
        and show tracebacks in 500 pages.
    :param timing: passed to Roundup as ``CGI_SHOW_TIMING`` (timing
        information in pages).
    :param lang: default UI language, e.g. ``"de"``.
    :param feature_flags: Roundup's feature flags;
        ``{"cache_tracker": False}`` opens the tracker anew for every
        request, as Roundup 2.4-2.6 do (by default it is opened once).
    :param write_mode: one of :data:`WRITE_MODES`.
    :param max_request_body: the largest request body accepted, in bytes
        (default :data:`~roundup_wsgi.limits.DEFAULT_MAX_REQUEST_BODY`,
        64 MiB); larger ones answer 413 before Roundup reads them
        (:mod:`roundup_wsgi.limits`).  ``None``: no limit.
    :raises ValueError: ``max_request_body`` is not a size,
        ``write_mode`` is unknown or ``home`` is not a tracker home
        (:class:`~roundup_wsgi.tracker.TrackerHomeError`); the message
        names it and the fix.
    :raises roundup.configuration.ConfigurationError: the tracker's
        config.ini is invalid (the message names the option).
    """

    def __init__(
        self,
        home: str,
        debug: bool = False,
        timing: bool = False,
        lang: str | None = None,
        feature_flags: dict[str, Any] | None = None,
        *,
        write_mode: str = "buffer",
        max_request_body: int | None = limits.DEFAULT_MAX_REQUEST_BODY,
    ) -> None:
        if write_mode not in WRITE_MODES:
            raise ValueError(
                f"write_mode={write_mode!r} is not a write mode: use one of "
                + ", ".join(repr(mode) for mode in WRITE_MODES)
            )
        self.home = check_tracker_home(home)
        self.debug = debug
        self.timing = timing
        self.feature_flags = feature_flags or {}
        self.write_mode = write_mode
        self.max_request_body = limits.check_max_request_body(max_request_body)
        self.translator = (
            TranslationService.get_translation(lang, tracker_home=self.home)
            if lang
            else None
        )
        self.tracker: Any = None
        if self.use_cached_tracker():
            self.tracker = roundup.instance.open(self.home, not self.debug)
        else:
            self.preload()

    def use_cached_tracker(self) -> bool:
        """True unless ``feature_flags["cache_tracker"]`` is ``False``
        (Roundup 2.4-2.6's rule)."""
        return self.feature_flags.get("cache_tracker") is not False

    def preload(self) -> None:
        """Open the tracker once, so imports and templates are loaded at start-up."""
        with self.get_tracker():
            pass

    @contextmanager
    def get_tracker(self) -> Iterator[Any]:
        """Yield a newly opened tracker instance (the non-cached mode)."""
        yield roundup.instance.open(self.home, not self.debug)

    @_with_log_context
    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request (PEP 3333 application interface).

        :returns: the app_iter; it has ``close()`` (idempotent) which releases
            any file being sent.
        """
        # Roundup's Client changes the environ (PATH_INFO, CONTENT_LENGTH);
        # work on a copy so the server's and middlewares' one is untouched.
        env = dict(environ)
        response = Response(env, start_response, self.write_mode)
        try:
            self._handle(env, response)
            if response.sendfile_error is not None:
                raise response.sendfile_error[1]
            return response.finish()
        except Exception:
            self._fail(env, response, sys.exc_info())  # type: ignore[arg-type]
            return response.finish()

    def _handle(self, env: dict[str, Any], response: Response) -> None:
        method = env.get("REQUEST_METHOD", "GET")
        path = env.get("PATH_INFO", "")
        if method == "OPTIONS":
            if not (path == "/rest" or path.startswith("/rest/")):
                response.send_page(pages.not_implemented(env))
                return
            # A CORS preflight for Roundup's REST API: no request body.
            env["CONTENT_LENGTH"] = "0"
        # Roundup's paths have no leading slash (as its own handler strips).
        env["PATH_INFO"] = path[1:] if path.startswith("/") else path
        if self.timing:
            env["CGI_SHOW_TIMING"] = self.timing

        page = limits.check_request_body(env, self.max_request_body)
        if page is not None:
            response.send_page(page)
            return
        inputs.readable_input(env)
        form = None
        if method not in ("OPTIONS", "DELETE"):
            # (Roundup's Client builds an empty form itself for these.)
            try:
                form = BinaryFieldStorage(fp=env.get("wsgi.input"), environ=env)
            except ValueError as error:
                response.send_page(
                    pages.bad_request(env, f"Malformed request: {error}")
                )
                return
            except limits.RequestBodyTooLargeError:
                response.send_page(limits.too_large(env, self.max_request_body or 0))
                return
        try:
            if self.use_cached_tracker():
                self._run_client(self.tracker, env, form, response)
            else:
                with self.get_tracker() as tracker:
                    self._run_client(tracker, env, form, response)
        finally:
            _release_form(form)

    def _run_client(
        self, tracker: Any, env: dict[str, Any], form: Any, response: Response
    ) -> None:
        client = tracker.Client(tracker, response, env, form, self.translator)
        watch = guard.ClientGuard(client)
        try:
            client.main()
            watch.check(response.status)
        except NotFound:
            # Roundup's own body, byte for byte, plus a Content-Length.
            body = f"Not found: {html_escape(client.path)}".encode()
            response.start_response(
                [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                404,
            )
            if env.get("REQUEST_METHOD") != "HEAD":
                response.wfile.write(body)

    def _fail(self, env: dict[str, Any], response: Response, exc_info: ExcInfo) -> None:
        cause = unavailable.database_unavailable_cause(exc_info[1])
        if cause is not None:
            self._unavailable(env, response, exc_info, cause)
            return
        logger.error(
            "%s %s failed in tracker %s",
            env.get("REQUEST_METHOD"),
            env.get("SCRIPT_NAME", "") + "/" + env.get("PATH_INFO", "").lstrip("/"),
            self.home,
            exc_info=exc_info,
        )
        detail = "".join(traceback.format_exception(*exc_info)) if self.debug else None
        response.send_page(pages.internal_server_error(env, detail), exc_info)

    def _unavailable(
        self, env: dict[str, Any], response: Response, exc_info: ExcInfo, cause: str
    ) -> None:
        """503 + Retry-After for a database outage (:mod:`.unavailable`)."""
        logger.error(
            "%s %s: database of tracker %s unavailable, answered 503: %s",
            env.get("REQUEST_METHOD"),
            env.get("SCRIPT_NAME", "") + "/" + env.get("PATH_INFO", "").lstrip("/"),
            self.home,
            cause,
            exc_info=exc_info,
        )
        detail = "".join(traceback.format_exception(*exc_info)) if self.debug else None
        page = unavailable.service_unavailable(env, cause, detail)
        response.send_page(page, exc_info)


def _release_form(form: Any) -> None:
    """Close the temporary files ``cgi.FieldStorage`` made for uploads."""
    if form is None:
        return
    parts = form.list if isinstance(getattr(form, "list", None), list) else []
    for item in [form, *parts]:
        file = getattr(item, "file", None)
        if file is not None:
            file.close()
