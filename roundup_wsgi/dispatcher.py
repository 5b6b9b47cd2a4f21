"""The WSGI application: a drop-in for Roundup's ``RequestDispatcher``.

Data flows one way::

    server -> RequestDispatcher(environ, start_response)
           -> Roundup Client.main()  (writes to a roundup_wsgi.request.Request)
           -> Request.finish(): start_response(status, headers), app_iter
           -> server

Roundup 2.6's ``roundup.cgi.wsgi_handler.RequestDispatcher`` writes the body
through the write callable that ``start_response`` returns; servers that
return ``None`` (granian, bjoern, hypercorn) answer every page with 500.
This one returns the body as the app_iter (PEP 3333, "The write() Callable":
applications "should produce their output via their returned iterable").
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
import random
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from roundup.anypy.html import html_escape
from roundup.cgi import TranslationService
from roundup.cgi import wsgi_handler as _roundup_wsgi_handler
from roundup.cgi.client import BinaryFieldStorage, NotFound

from . import authmemo, dbpool, failures, request_body, static
from .compression import MAX_CACHED_FILE, FileCompressor
from .options import DEFAULTS, DISPATCHER_OPTIONS, WRITE_MODES, Settings, WriteMode
from .patches import pythonexpr, serve_static_file
from .request import Request
from .stream import streaming
from .tracker import (
    check_tracker_home,
    check_tracker_ready,
    create_session_tables,
    open_tracker,
)
from .wsgi import errorpages, finish
from .wsgi.accesslog import escape
from .wsgi.requestid import REQUEST_ID
from .wsgi.responsecache import ResponseCache
from .wsgi.types import ExcInfo, StartResponse

__all__ = ["WRITE_MODES", "RequestDispatcher", "WriteMode", "new_request_id"]

logger = logging.getLogger("roundup_wsgi")

_F = TypeVar("_F", bound=Callable[..., Any])

try:  # Roundup >= 2.5 labels the log lines of one request with a trace id.
    from roundup import logcontext as _logcontext
except ImportError:  # pragma: no cover - Roundup 2.4
    _logcontext = None
_TRACE_ID: Any = _logcontext.ctx_vars["trace_id"] if _logcontext is not None else None


def _with_log_context(func: _F) -> _F:
    """Decorate a WSGI ``__call__`` with Roundup's log context, as Roundup's own
    handler does (process name ``wsgi_handler``, a trace id, and the path as
    the trace reason); unchanged where Roundup has no ``logcontext``.

    The request's id, when a :class:`~.wsgi.requestid.RequestIds` above
    gave it one (``environ[REQUEST_ID]``), is the trace id.

    Static-file requests (``/@@file/...``, ``/_file/...``) get the process
    name and trace id but no trace reason: Roundup's ``store_trace_reason``
    compiles its ``extract`` expression with ``eval`` on every call, a third
    of the cost of a static file on the fast path (:mod:`.static`).
    """
    if _logcontext is None:
        return func
    log = _logcontext
    reason = log.store_trace_reason("wsgi", extract="args[1]['PATH_INFO'][1:]")
    full = log.set_processName("wsgi_handler")(log.gen_trace_id()(reason(func)))
    light = log.set_processName("wsgi_handler")(log.gen_trace_id()(func))

    @functools.wraps(func)
    def wrapper(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        answer = light if path.startswith(_STATIC_PATHS) else full
        request_id = environ.get(REQUEST_ID)
        if request_id is None:
            return answer(self, environ, start_response)
        # The request's id (the balancer's, :mod:`.wsgi.requestid`) is
        # Roundup's trace id: gen_trace_id keeps one already set.
        token = _TRACE_ID.set(request_id)
        try:
            return answer(self, environ, start_response)
        finally:
            _TRACE_ID.reset(token)

    return cast(_F, wrapper)


def _new_trace_id() -> str:
    """A trace id for the access log line of an answer from the response
    cache (no Roundup code runs, so none is made for it), or a request id
    (:func:`new_request_id`): Roundup's
    ``logcontext.idgen()``, except that its default without the nanoid
    package (``short_uuid``: a uuid4 in base 62, some 20 us) is replaced by
    this process's random prefix (40 bits, always 10 hex digits, made anew
    in a forked child) and a count of its answers from the cache, in
    decimal: ``3f09a1c2d41``, ``3f09a1c2d42``...

    A trace id tells log lines apart; it guards nothing, so it need not be
    unpredictable: the count costs a tenth of 72 random bits made into
    base 64 (a decimal one half of a zero-padded hex one), and letters and
    digits alone go into the access log unescaped.
    """
    generate = _logcontext.idgen if _logcontext is not None else None
    if generate is None or generate is _logcontext.short_uuid:
        return f"{_trace_prefix}{next(_trace_count)}"
    return str(generate())


def _new_trace_prefix() -> None:
    """Start this process's trace ids: a random prefix, the count at 1."""
    global _trace_prefix, _trace_count
    _trace_prefix = f"{random.getrandbits(40):010x}"
    _trace_count = itertools.count(1)


#: A new request id (:class:`~.wsgi.requestid.RequestIds` calls it when no
#: trusted proxy gave one): a trace id as :func:`_new_trace_id` makes them.
new_request_id = _new_trace_id

_trace_prefix: str
_trace_count: itertools.count[int]
_new_trace_prefix()
if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_new_trace_prefix)


#: True where Roundup's own ``RequestDispatcher`` always caches the tracker
#: and warns about a ``cache_tracker`` feature flag (Roundup after 2.6.0,
#: commits ffeb728e and 2f2c7300: its ``get_tracker`` and ``preload``,
#: there since 2.4, are gone).  Found from Roundup's class, not its version
#: string (the development snapshot still calls itself 2.6.0).
ROUNDUP_ALWAYS_CACHES = not hasattr(
    _roundup_wsgi_handler.RequestDispatcher, "get_tracker"
)

#: Roundup's warning for a ``cache_tracker`` flag it ignores, word for word.
CACHE_TRACKER_IGNORED = (
    "The 'cache_tracker' feature flag is ignored. Please remove it from "
    "your RequestDispatcher call."
)

#: The 501 page's text for OPTIONS outside ``/rest`` (Roundup answers CORS
#: preflights only for its REST API).
OPTIONS_OUTSIDE_REST = (
    "OPTIONS is only supported for the tracker's REST API (/rest/...)."
)
#: The 500 page's text (without ``debug``) for an exception that escaped
#: Roundup's ``Client``.
ERROR_LOGGED = (
    "The tracker could not complete this request; "
    "the error has been logged for the administrator."
)

#: ``PATH_INFO`` prefixes of static files, as the server gives them.
_STATIC_PATHS = tuple("/" + prefix for prefix in static.STATIC_PREFIXES)


def _given(value: object, default: object) -> bool:
    """False for a keyword left at (or given as) its default."""
    return value is not default and not (
        type(value) is type(default) and value == default
    )


class RequestDispatcher:
    """Serve one Roundup tracker as a WSGI application.

    Constructor and behaviour as Roundup's
    ``roundup.cgi.wsgi_handler.RequestDispatcher``, except that: the body is
    returned as the app_iter (:mod:`.request`, :mod:`.stream`); files are
    streamed (``wsgi.file_wrapper`` or 64 KiB blocks, Range honoured) and
    compressed in bounded memory (:mod:`.compression`); static files are
    answered without the database (:mod:`.static`); OPTIONS outside
    ``/rest`` answers 501; a body over ``max_request_body`` answers 413
    unread (:mod:`.request_body`); an unusable database (locked, read-only,
    server down) answers 503 with ``Retry-After``, and any other exception
    from Roundup's ``Client`` a logged 500 page (:mod:`.failures`).

    :param home: the tracker home directory.
    :param settings: the options as one :class:`~roundup_wsgi.options.Settings`
        (its ``"dispatcher"`` options are used); the keywords below, where
        they differ from the defaults (:data:`~roundup_wsgi.options.DEFAULTS`),
        override it.  Without it the keywords alone, checked by
        :meth:`~roundup_wsgi.options.Settings.from_kwargs`.
    :param debug: open the tracker unoptimised (templates reloaded) and show
        tracebacks and causes in error pages (also shown when the tracker's
        ``[web] debug`` is set; otherwise they only go to the log).
    :param timing: Roundup's ``CGI_SHOW_TIMING`` (timings in pages).
    :param lang: default UI language, e.g. ``"de"``.
    :param feature_flags: Roundup's feature flags; ``{"cache_tracker":
        False}`` opens the tracker for every request, as Roundup 2.4-2.6 do,
        except where Roundup always caches (:data:`ROUNDUP_ALWAYS_CACHES`:
        then Roundup's ``FutureWarning``).
    :param write_mode: a :class:`~roundup_wsgi.options.WriteMode` or its
        text (``"auto"``, ``"buffer"``, ``"server"``, ``"stream"``).
    :param static_fast_path: answer ``GET``/``HEAD`` of ``@@file/...`` and
        ``_file/...`` without opening the database, with Roundup's own code
        (:mod:`.static`; not for requests with ``Authorization`` nor a
        ``Client`` overriding the methods it bypasses).
    :param max_request_body: the largest request body accepted, in bytes
        (default 64 MiB, :data:`~.request_body.DEFAULT_MAX_REQUEST_BODY`;
        ``None``: no limit).
    :param static_cache_size: bytes of compressed static files kept in
        memory (default 4 MiB; 0: none).
    :param static_response_cache_size: bytes of whole static-file answers
        kept in memory and given again, without Roundup's code, while the
        file and the directories searched before it are unchanged (checked
        with ``os.stat`` per request; default 4 MiB; 0: none;
        :data:`~.static.CACHED_METHODS`).
    :param reuse_db: keep each worker thread's database open between
        requests (:mod:`.dbpool`).
    :param reuse_db_max: most databases kept, per tracker and process
        (0: none).
    :param reuse_db_idle: seconds a kept database may sit unused; closed at
        most 1.5 times that after its last request.
    :param node_cache: with ``reuse_db``, give a request the rows (the node
        cache) the thread's previous request read when nothing wrote since
        (:mod:`.dbpool`; on PostgreSQL a write counter,
        :mod:`.pgversion`).
    :param auth_memo_lifetime: seconds a successful password check of
        Roundup's login (Basic auth, the login form) is remembered, so the
        same credentials with the same stored hash skip the hash
        (:mod:`.authmemo`); 0: off.
    :param auth_memo_size: most successful checks remembered, per tracker
        and process (least recently used evicted); 0: off.
    :raises ValueError: a size or count out of range, an unknown
        ``write_mode``, or ``home`` not a tracker home
        (:class:`~.tracker.TrackerHomeError`) or not ready to serve
        (:class:`~.tracker.TrackerNotReadyError`); the message names the
        fix.
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
        given = {
            name: value
            for name, value in locals().items()
            if name in DISPATCHER_OPTIONS and _given(value, getattr(DEFAULTS, name))
        }
        if settings is None:
            settings = Settings.from_kwargs(**given)
        elif given:
            settings = settings.replace(**given)
        #: The options this dispatcher was built with.
        self.settings = settings
        mode = settings.write_mode
        self.home = check_tracker_home(home)
        # Before anything opens the database (which Roundup would create).
        check_tracker_ready(self.home)
        self.debug = settings.debug
        self.timing = settings.timing
        self.feature_flags = settings.feature_flags or {}
        if ROUNDUP_ALWAYS_CACHES and "cache_tracker" in self.feature_flags:
            warnings.warn(CACHE_TRACKER_IGNORED, FutureWarning, stacklevel=2)
        self.write_mode = mode
        #: ``STREAM`` and ``AUTO`` run :meth:`respond` in a greenlet
        #: (:mod:`roundup_wsgi.stream`); the others call it directly.
        self._streaming = (
            streaming(self.respond)
            if mode in (WriteMode.STREAM, WriteMode.AUTO)
            else None
        )
        self.static_fast_path = settings.static_fast_path
        #: The tracker the static-file fast path reads its config from when
        #: trackers are not cached (opened on first use, then kept).
        self._static_tracker: Any = None
        self.max_request_body = settings.max_request_body
        #: Compresses the files Roundup sends (:mod:`.compression`).
        self.compressor = FileCompressor(settings.static_cache_size)
        #: Whole static-file answers (None: not kept).
        self.response_cache = (
            ResponseCache(settings.static_response_cache_size)
            if settings.static_response_cache_size and settings.static_fast_path
            else None
        )
        self.reuse_db = settings.reuse_db
        # Template expressions keep no request's objects (nor share them
        # between threads): roundup_wsgi/patches/pythonexpr.py.
        pythonexpr.install()
        #: Successful password checks remembered (None: off).
        self.auth_memo = authmemo.make_memo(
            settings.auth_memo_lifetime, settings.auth_memo_size
        )
        if self.auth_memo is not None and not authmemo.install():
            logger.info(
                "auth_memo: LoginAction.verifyPassword was replaced by "
                "something else; every login hashes the password"
            )
            self.auth_memo = None
        #: Each worker thread's kept database (:mod:`roundup_wsgi.dbpool`).
        self.db_pool = (
            dbpool.DatabasePool(
                self.home, settings.reuse_db_idle, settings.reuse_db_max
            )
            if settings.reuse_db
            else None
        )
        if self.db_pool is not None:
            self.db_pool.keep_nodes = bool(settings.node_cache)
        lang = settings.lang
        self.translator = (
            TranslationService.get_translation(lang, tracker_home=self.home)
            if lang
            else None
        )
        self.tracker: Any = None
        if self.use_cached_tracker():
            self.tracker = open_tracker(self.home, not self.debug)
            create_session_tables(self.tracker)
        else:
            self.preload()

    def use_cached_tracker(self) -> bool:
        """True unless ``feature_flags["cache_tracker"]`` is ``False``
        (Roundup 2.4-2.6's rule); always True where Roundup always caches
        (:data:`ROUNDUP_ALWAYS_CACHES`)."""
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
                key = static.response_cache_key(environ, path[1:])
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

    @_with_log_context
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
            if request.cache_as is not None:
                self._keep(request)
            return request.finish()
        except Exception:
            self._fail(env, request, sys.exc_info())  # type: ignore[arg-type]
            return request.finish()
        finally:
            request_body.release_body(env)  # a spooled chunked body

    def _handle(self, env: dict[str, Any], request: Request) -> None:
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
            and self._serve_static_file(env, request)
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
                self._run_client(self.tracker, env, form, request)
            else:
                with self.get_tracker() as tracker:
                    self._run_client(tracker, env, form, request)
        finally:
            _release_form(form)

    def _serve_static_file(self, env: dict[str, Any], request: Request) -> bool:
        """Try the static-file fast path; ``False`` if Roundup's own path
        must answer instead.

        Roundup's ``Client.inner_main`` turns an unexpected exception while
        serving a file into its own error page (and mails the admin), which
        needs the database: such a request is handed back, unless its status
        line has already been given to the server (then the error goes on).
        """
        tracker = self._tracker_for_static_files()
        if not static.client_allows_fast_path(tracker.Client):
            return False
        cache_as = None
        if self.response_cache is not None and static.client_allows_response_cache(
            tracker.Client
        ):
            key = static.response_cache_key(env, env["PATH_INFO"])
            if key is not None:
                # Stamped before Roundup looks: a change while it answers shows.
                files = static.file_dependencies(tracker.config, env["PATH_INFO"])
                if files is not None:
                    cache_as = (key, files)
        try:
            self._run_client(tracker, env, None, request, True)
        except Exception:
            if request.status is not None:
                raise
            logger.debug(
                "static-file fast path failed for %s; Roundup's path answers",
                escape(str(env.get("PATH_INFO", ""))),
                exc_info=True,
            )
            return False
        request.cache_as = cache_as
        return True

    def _keep(self, request: Request) -> None:
        """Keep a fast-path answer in :attr:`response_cache`, as the server
        is about to get it: a 200 with a ``Content-Length`` and its whole
        body (the compressed bytes, or the file's, up to
        :data:`~roundup_wsgi.compression.MAX_CACHED_FILE`), or a 304; only
        if the files it came from did not change while it was made."""
        if self.response_cache is None or request.cache_as is None:
            return
        if request.status is None:
            return
        key, files = request.cache_as
        status, headers = request.status, request.headerlist
        code = status[:3]
        if request.chunks or request.exc_info is not None:
            return
        if code == "304" or request.environ.get("REQUEST_METHOD") == "HEAD":
            if request.file_body is not None:
                return
            body = b""
        elif code != "200" or request.sent_file is None:
            return
        elif request.file_encoded:
            if not isinstance(request.file_body, list):
                return  # compressed as it is sent: too large
            body = b"".join(request.file_body)
        else:
            filename, offset, length = request.sent_file
            if length > MAX_CACHED_FILE:
                return
            try:
                with open(filename, "rb") as file:
                    file.seek(offset)
                    body = file.read(length)
            except OSError:
                return
            if len(body) != length:
                return
        if code == "200" and not any(
            name.lower() == "content-length" for name, _ in headers
        ):
            return
        config = self._tracker_for_static_files().config
        if static.file_dependencies(config, request.environ["PATH_INFO"]) != files:
            return
        self.response_cache.put(key, status, headers, body, files)

    def _tracker_for_static_files(self) -> Any:
        """The tracker instance (config, ``Client`` class) for the static-file
        fast path: the cached one, else one opened once for this dispatcher."""
        if self.tracker is not None:
            return self.tracker
        if self._static_tracker is None:
            self._static_tracker = open_tracker(self.home, not self.debug)
        return self._static_tracker

    def _run_client(
        self,
        tracker: Any,
        env: dict[str, Any],
        form: Any,
        request: Request,
        static_file: bool = False,
    ) -> None:
        watch: failures.ClientGuard | None = None
        if static_file:
            client = static.make_client(tracker, request, env, self.translator)
        else:
            client = tracker.Client(tracker, request, env, form, self.translator)
            watch = failures.ClientGuard(client)
            if self.auth_memo is not None:
                authmemo.attach(client, self.auth_memo)
            # Roundup's check lets a sibling directory through (html_private
            # beside html): 404 for a file outside the static directories.
            serve_static_file.install(client, tracker.config)
        request.file_encoder = functools.partial(self.compressor.body, client)
        try:
            if watch is None:
                static.serve_static_file(client)
            elif self.db_pool is None:
                client.main()
                watch.check(request.status)
            else:
                with self.db_pool.lease(tracker, client, watch):
                    client.main()
                watch.check(request.status)
        except NotFound:
            # Roundup's own body, byte for byte, plus a Content-Length.
            # (A lone surrogate, which no PEP 3333 server puts in PATH_INFO,
            # made Roundup's .encode() raise: written as \udcxx instead.)
            body = f"Not found: {html_escape(client.path)}".encode(
                "utf-8", "backslashreplace"
            )
            request.start_response(
                [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                404,
            )
            if env.get("REQUEST_METHOD") != "HEAD":
                request.wfile.write(body)
        finally:
            # The request and the client refer to each other through the
            # encoder, and the client to itself through the guard: let go,
            # so that reference counting frees them when the response ends
            # (cycles left per request set off the cyclic collector, whose
            # passes over a large process cost more than the page).
            request.file_encoder = None
            if watch is not None:
                watch.release()
                # The Roundup user, for the access log (format_json).
                finish.note(env, "user", getattr(client, "user", None))
            # Roundup's Client and its Session refer to each other.
            vars(client).pop("session_api", None)
            vars(client).pop("serve_static_file", None)

    def _show_detail(self) -> bool:
        """True if error pages may show internal detail (tracebacks, causes,
        paths): ``debug`` or the tracker's ``[web] debug`` (Roundup's own
        rule for its traceback pages, ``Client.inner_main``)."""
        if self.debug:
            return True
        try:
            return bool(self._tracker_for_static_files().config.WEB_DEBUG)
        except Exception:  # the tracker cannot be opened: no detail
            return False

    def _fail(self, env: dict[str, Any], request: Request, exc_info: ExcInfo) -> None:
        cause = failures.database_unavailable_cause(exc_info[1])
        if cause is not None:
            self._unavailable(env, request, exc_info, cause)
            return
        logger.error(
            "%s %s failed in tracker %s",
            *_logged_request(env),
            self.home,
            exc_info=exc_info,
        )
        detail = (
            "".join(traceback.format_exception(*exc_info))
            if self._show_detail()
            else None
        )
        page = errorpages.internal_server_error(env, detail, ERROR_LOGGED)
        request.send_page(page, exc_info)

    def _unavailable(
        self, env: dict[str, Any], request: Request, exc_info: ExcInfo, cause: str
    ) -> None:
        """503 + Retry-After for a database outage
        (:func:`~.failures.service_unavailable`)."""
        logger.error(
            "%s %s: database of tracker %s unavailable, answered 503: %s",
            *_logged_request(env),
            self.home,
            cause,  # one line, escaped (failures.database_unavailable_cause)
            exc_info=exc_info,
        )
        detail = (
            "".join(traceback.format_exception(*exc_info))
            if self._show_detail()
            else None
        )
        finish.note(env, "database_unavailable", cause)
        page = failures.service_unavailable(env, cause, detail)
        request.send_page(page, exc_info)


def _logged_request(env: dict[str, Any]) -> tuple[str, str]:
    """The method and path of a request as a log line shows them: escaped
    (:func:`~roundup_wsgi.wsgi.accesslog.escape`), so a ``%0a`` or other
    control character in the path cannot start a line of its own."""
    path = str(env.get("PATH_INFO", "")).lstrip("/")
    method = str(env.get("REQUEST_METHOD", "-"))
    return escape(method), escape(f"{env.get('SCRIPT_NAME', '')}/{path}")


def _release_form(form: Any) -> None:
    """Close the temporary files ``cgi.FieldStorage`` made for uploads."""
    if form is None:
        return
    parts = form.list if isinstance(getattr(form, "list", None), list) else []
    for item in [form, *parts]:
        file = getattr(item, "file", None)
        if file is not None:
            file.close()
