"""The WSGI application: a drop-in for Roundup's ``RequestDispatcher``.

It routes each request to one answer: a kept static answer
(:mod:`.staticanswer`), a static file without the database
(:mod:`.static`), Roundup's ``Client``, or an error page
(:mod:`.erroranswers`, :mod:`.request_body`).  Data flows one way::

    server -> RequestDispatcher(environ, start_response)
           -> Roundup Client.main()  (writes to a roundup_wsgi.request.Request)
           -> Request.finish(): start_response(status, headers), app_iter
           -> server

Roundup 2.6's own dispatcher writes the body through the write callable
``start_response`` returns (``None`` on granian, bjoern, hypercorn: 500
for every page); this one returns it as the app_iter (PEP 3333, "The
write() Callable").
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from roundup.cgi.client import BinaryFieldStorage

from . import (
    clientrun,
    erroranswers,
    parts,
    request_body,
    roundupversion,
    static,
    staticanswer,
)
from .compression import FileCompressor
from .options import DEFAULTS, WRITE_MODES, Settings, WriteMode
from .patches import pythonexpr
from .request import Request
from .roundupversion import ROUNDUP_ALWAYS_CACHES
from .roundupversion import TRACE_ID as _TRACE_ID
from .roundupversion import logcontext as _logcontext
from .stream import streaming
from .traceids import new_request_id, with_log_context
from .traceids import new_trace_id as _new_trace_id
from .tracker import (
    check_tracker_home,
    check_tracker_ready,
    create_session_tables,
    open_tracker,
)
from .wsgi import errorpages, finish
from .wsgi.requestid import REQUEST_ID
from .wsgi.types import StartResponse

__all__ = [
    "ROUNDUP_ALWAYS_CACHES",
    "WRITE_MODES",
    "RequestDispatcher",
    "WriteMode",
    "new_request_id",
]

#: The 501 page's text for OPTIONS outside ``/rest`` (Roundup answers CORS
#: preflights only for its REST API).
OPTIONS_OUTSIDE_REST = (
    "OPTIONS is only supported for the tracker's REST API (/rest/...)."
)

#: The write modes that run :meth:`RequestDispatcher.respond` in a greenlet.
_STREAMED = (WriteMode.STREAM, WriteMode.AUTO)

#: ``PATH_INFO`` prefixes of static files, as the server gives them.
_STATIC_PATHS = tuple("/" + prefix for prefix in static.STATIC_PREFIXES)


class RequestDispatcher:
    """Serve one Roundup tracker as a WSGI application.

    Constructor and behaviour as Roundup's
    ``roundup.cgi.wsgi_handler.RequestDispatcher``, except that the body is
    the app_iter (:mod:`.request`, :mod:`.stream`), files are streamed and
    compressed in bounded memory (:mod:`.compression`), static files are
    answered without the database (:mod:`.static`) and kept
    (:mod:`.staticanswer`), and errors answer 413, 501, 503 or a logged 500
    (:mod:`.request_body`, :mod:`.erroranswers`).

    :param home: the tracker home directory.
    :param settings: the options as one :class:`~roundup_wsgi.settings.Settings`
        (its ``"dispatcher"`` options are used); the keywords, where they
        differ from the defaults (:data:`~roundup_wsgi.settings.DEFAULTS`),
        override it.  Without it the keywords alone, checked by
        :meth:`~roundup_wsgi.settings.Settings.from_kwargs`.
    :param debug: open the tracker unoptimised (templates reloaded) and show
        tracebacks and causes in error pages (also shown when the tracker's
        ``[web] debug`` is set; otherwise they only go to the log).
    :param timing: Roundup's ``CGI_SHOW_TIMING`` (timings in pages).
    :param lang: default UI language, e.g. ``"de"``.
    :param feature_flags: Roundup's feature flags; ``{"cache_tracker":
        False}`` opens the tracker for every request, as Roundup 2.4-2.6 do,
        except where Roundup always caches
        (:data:`~.roundupversion.ROUNDUP_ALWAYS_CACHES`: then Roundup's
        ``FutureWarning``).
    :param write_mode: a :class:`~roundup_wsgi.options.WriteMode` or its
        text (``"auto"``, ``"buffer"``, ``"server"``, ``"stream"``).
    :param static_fast_path: and the other keywords: the options of
        :data:`~roundup_wsgi.options.OPTIONS` of the same name (sizes in
        bytes, times in seconds; :doc:`configuration`); a static file's
        answer is kept by the rules of :mod:`.staticanswer`
        (:data:`~.staticanswer.CACHED_METHODS`).
    :raises ValueError: an option out of range, or ``home`` not a tracker
        home (:class:`~.tracker.TrackerHomeError`) or not ready to serve
        (:class:`~.tracker.TrackerNotReadyError`); the message names the fix.
    :raises roundup.configuration.ConfigurationError: the tracker's
        config.ini is invalid (the message names the option).
    """

    def __init__(
        self,
        home: str,
        debug: bool = DEFAULTS.debug,
        timing: bool = DEFAULTS.timing,
        lang: str | None = DEFAULTS.lang,
        feature_flags: dict[str, Any] | None = DEFAULTS.feature_flags,
        *,
        settings: Settings | None = None,
        write_mode: WriteMode | str = DEFAULTS.write_mode,
        static_fast_path: bool = DEFAULTS.static_fast_path,
        max_request_body: int | None = DEFAULTS.max_request_body,
        static_cache_size: int = DEFAULTS.static_cache_size,
        static_response_cache_size: int = DEFAULTS.static_response_cache_size,
        reuse_db: bool = DEFAULTS.reuse_db,
        reuse_db_max: int = DEFAULTS.reuse_db_max,
        reuse_db_idle: float = DEFAULTS.reuse_db_idle,
        node_cache: bool = DEFAULTS.node_cache,
        auth_memo_lifetime: float = DEFAULTS.auth_memo_lifetime,
        auth_memo_size: int = DEFAULTS.auth_memo_size,
    ) -> None:
        #: The options this dispatcher was built with.
        self.settings = settings = parts.merged_settings(settings, locals())
        self.home = check_tracker_home(home)
        # Before anything opens the database (which Roundup would create).
        check_tracker_ready(self.home)
        self.debug, self.timing = settings.debug, settings.timing
        self.feature_flags = settings.feature_flags or {}
        roundupversion.warn_if_cache_tracker_ignored(
            self.feature_flags, ROUNDUP_ALWAYS_CACHES
        )
        self.write_mode = mode = settings.write_mode
        #: ``STREAM`` and ``AUTO`` run :meth:`respond` in a greenlet
        #: (:mod:`roundup_wsgi.stream`); the others call it directly.
        self._streaming = streaming(self.respond) if mode in _STREAMED else None
        self.static_fast_path = settings.static_fast_path
        #: The tracker the static-file fast path reads its config from when
        #: trackers are not cached (opened on first use, then kept).
        self._static_tracker: Any = None
        self.max_request_body = settings.max_request_body
        #: Compresses the files Roundup sends (:mod:`.compression`).
        self.compressor = FileCompressor(settings.static_cache_size)
        #: Whole static-file answers (None: not kept).
        self.response_cache = parts.response_cache(settings)
        self.reuse_db = settings.reuse_db
        # Template expressions keep no request's objects (nor share them
        # between threads): roundup_wsgi/patches/pythonexpr.py.
        pythonexpr.install()
        #: Successful password checks remembered (None: off).
        self.auth_memo = parts.auth_memo(settings)
        #: Each worker thread's kept database (:mod:`roundup_wsgi.dbpool`).
        self.db_pool = parts.db_pool(self.home, settings)
        self.translator = parts.translator(settings.lang, self.home)
        self.tracker: Any = None
        if self.use_cached_tracker():
            self.tracker = open_tracker(self.home, not self.debug)
            create_session_tables(self.tracker)
        else:
            self.preload()

    def use_cached_tracker(self) -> bool:
        """True unless ``feature_flags["cache_tracker"]`` is ``False``
        (Roundup 2.4-2.6's rule); always True where Roundup always caches
        (:data:`~.roundupversion.ROUNDUP_ALWAYS_CACHES`)."""
        if ROUNDUP_ALWAYS_CACHES:
            return True
        return self.feature_flags.get("cache_tracker") is not False

    def preload(self) -> None:
        """Open the tracker once, so imports and templates are loaded at
        start-up (and a sqlite tracker's session tables exist,
        ``roundup_wsgi.tracker.create_session_tables()``)."""
        with self.get_tracker() as tracker:
            create_session_tables(tracker)

    @contextmanager
    def get_tracker(self) -> Iterator[Any]:
        """Yield a newly opened tracker instance (the non-cached mode)."""
        yield open_tracker(self.home, not self.debug)

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request (PEP 3333 application interface).

        A static-file request whose answer is in :attr:`response_cache` and
        still valid gets it at once (no Roundup code runs, so no log
        context is set up: nothing is logged).

        :returns: the app_iter; it has ``close()`` (idempotent) which releases
            any file being sent.
        """
        cache = self.response_cache
        if cache is not None:
            path = environ.get("PATH_INFO", "")
            if path.startswith(_STATIC_PATHS):
                key = staticanswer.response_cache_key(environ, path[1:])
                if key is not None:
                    entry = cache.get(key)
                    if entry is not None:
                        # finish.note, inlined: the access log's trace id.
                        record = environ.get(finish.ENVIRON_KEY)
                        if (
                            record is not None
                            and _logcontext is not None
                            and REQUEST_ID not in environ
                        ):
                            record.notes["trace_id"] = _new_trace_id()
                        return entry.send(start_response, environ)
        return self._answer(environ, start_response)

    def _answer(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request in Roundup's log context."""
        if (
            _logcontext is not None
            and finish.ENVIRON_KEY in environ
            and REQUEST_ID not in environ
        ):
            # The access log's trace id: the one Roundup's log lines carry.
            finish.note(environ, "trace_id", str(_TRACE_ID.get()))
        if self._streaming is not None:
            return self._streaming(environ, start_response)
        return self.respond(environ, start_response)

    _answer = with_log_context(_answer, _STATIC_PATHS)

    def respond(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request without the ``"stream"`` machinery (in that mode,
        as ``"server"`` does; :mod:`roundup_wsgi.stream` runs it)."""
        # Roundup's Client changes the environ (PATH_INFO, CONTENT_LENGTH);
        # work on a copy so the server's and middlewares' one is untouched.
        env = dict(environ)
        request = Request(env, start_response, self.write_mode)
        try:
            self._handle(env, request)
            if request.sendfile_error is not None:
                raise request.sendfile_error[1]
            if request.cache_as is not None and self.response_cache is not None:
                config = self._tracker_for_static_files().config
                staticanswer.keep(self.response_cache, request, config)
            return request.finish()
        except Exception:
            detail = self._show_detail()
            exc_info: Any = sys.exc_info()
            erroranswers.fail(env, request, exc_info, self.home, detail)
            return request.finish()
        finally:
            request_body.release_body(env)  # a spooled chunked body

    def _handle(self, env: dict[str, Any], request: Request) -> None:
        """Route one request: an error page, the static fast path, or
        Roundup's ``Client``."""
        method = env.get("REQUEST_METHOD", "GET")
        path = env.get("PATH_INFO", "")
        if method == "OPTIONS":
            if not (path == "/rest" or path.startswith("/rest/")):
                request.send_page(errorpages.not_implemented(env, OPTIONS_OUTSIDE_REST))
                return
            # A CORS preflight for Roundup's REST API: no request body.
            env["CONTENT_LENGTH"] = "0"
        # Roundup's paths have no leading slash (as its own handler strips).
        env["PATH_INFO"] = path[1:] if path.startswith("/") else path
        if self.timing:
            env["CGI_SHOW_TIMING"] = self.timing
        page = request_body.check_request_body(env, self.max_request_body)
        if page is not None:
            request.send_page(page)
            return
        if (
            self.static_fast_path
            and static.is_static_request(env)
            and clientrun.serve_static_file(self, env, request)
        ):
            return
        request_body.readable_input(env)
        form = None
        if method not in ("OPTIONS", "DELETE"):
            # (Roundup's Client builds an empty form itself for these.)
            try:
                form = BinaryFieldStorage(fp=env.get("wsgi.input"), environ=env)
            except ValueError as error:
                # cgi's text (e.g. the boundary sent) only in debug mode.
                reason = "Malformed request: the body cannot be parsed as a form."
                if self._show_detail():
                    reason += f" ({error})"
                request.send_page(errorpages.bad_request(env, reason))
                return
        try:
            if self.use_cached_tracker():
                clientrun.run_client(self, self.tracker, env, form, request)
            else:
                with self.get_tracker() as tracker:
                    clientrun.run_client(self, tracker, env, form, request)
        finally:
            request_body.release_form(form)

    def _tracker_for_static_files(self) -> Any:
        """The tracker instance (config, ``Client`` class) for the static-file
        fast path: the cached one, else one opened once for this dispatcher."""
        if self.tracker is not None:
            return self.tracker
        if self._static_tracker is None:
            self._static_tracker = open_tracker(self.home, not self.debug)
        return self._static_tracker

    def _show_detail(self) -> bool:
        """True if error pages may show internal detail
        (:func:`~.erroranswers.show_detail`)."""
        return erroranswers.show_detail(self.debug, self._tracker_for_static_files)
