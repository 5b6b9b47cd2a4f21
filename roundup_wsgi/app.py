"""Ready-made WSGI applications for servers that import ``module:callable``.

``gunicorn roundup_wsgi.app:application`` (or granian, uWSGI, mod_wsgi)
serves the tracker named by the environment variable
``ROUNDUP_TRACKER_HOME``, or the trackers named by ``ROUNDUP_TRACKERS``
(``bugs=/srv/bugs,support=/srv/support``, each under ``/<name>/``), with the
options given as ``ROUNDUP_WSGI_<OPTION>`` variables.  The application is
built on its first call (:class:`LazyApplication`), so importing this
module for :func:`make_app` needs no environment; a missing or wrong
setting is logged then, as one line naming the variable and the fix.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from .dispatcher import RequestDispatcher, new_request_id
from .health import DEFAULT_NETWORKS, Operations
from .metrics import Metrics
from .options import (
    APP_OPTIONS,
    DEFAULTS,
    DISPATCHER_OPTIONS,
    ENV_PREFIX,
    OPTIONS,
    ConfigError,
    Settings,
    options_from_environ,
    parse_trackers,
)
from .tracker import TrackerHomeError
from .webcheck import WebAddressCheck
from .wsgi.accesslog import LOGGER_NAME as ACCESS_LOGGER
from .wsgi.accesslog import AccessLog, LineHandler
from .wsgi.finish import FinishHook, FinishHooks, direct_call
from .wsgi.mount import Mount
from .wsgi.requestid import RequestIds
from .wsgi.types import StartResponse, WSGIApp

__all__ = [
    "APP_OPTIONS",
    "ENV_PREFIX",
    "ENV_TRACKERS",
    "ENV_TRACKER_HOME",
    "ENV_WRITE_MODE",
    "AccessLogHandler",
    "ConfigError",
    "LazyApplication",
    "Settings",
    "application",
    "find_layer",
    "make_app",
    "options_from_environment",
]

logger = logging.getLogger("roundup_wsgi")

#: Environment variable naming the tracker home served by ``application``.
ENV_TRACKER_HOME = "ROUNDUP_TRACKER_HOME"
#: Environment variable naming several trackers: ``bugs=/srv/bugs,support=/srv/s``.
ENV_TRACKERS = "ROUNDUP_TRACKERS"
#: Environment variable choosing the write mode of ``application``.
ENV_WRITE_MODE = ENV_PREFIX + "WRITE_MODE"


def make_app(
    tracker_home_or_mapping: str | os.PathLike[str] | Mapping[str, Any],
    *,
    settings: Settings | None = None,
    trusted_proxies: str | Iterable[str] | None = DEFAULTS.trusted_proxies,
    access_log: bool = DEFAULTS.access_log,
    metrics: bool = DEFAULTS.metrics,
    health_networks: str | Iterable[str] | None = DEFAULTS.health_networks,
    drain_file: str | os.PathLike[str] | None = DEFAULTS.drain_file,
    request_id_header: str = DEFAULTS.request_id_header,
    send_request_id: bool = DEFAULTS.send_request_id,
    access_log_format: str = DEFAULTS.access_log_format,
    **options: Any,
) -> WSGIApp:
    """Return the WSGI application serving one tracker, or several.

    :param tracker_home_or_mapping: a tracker home directory, giving a
        :class:`~roundup_wsgi.dispatcher.RequestDispatcher`; or ``{name:
        tracker home}``, giving a :class:`~roundup_wsgi.wsgi.mount.Mount`
        that serves each under ``/<name>/``.
    :param settings: all options as one :class:`~roundup_wsgi.options.Settings`
        (given to every tracker's dispatcher); the keywords below, where
        they differ from the defaults, override it.  Without it the
        keywords alone, checked by
        :meth:`~roundup_wsgi.options.Settings.from_kwargs`.
    :param trusted_proxies: addresses or networks of reverse proxies whose
        ``X-Forwarded-*`` headers are honoured (``"127.0.0.1 ::1"``); the
        application is then wrapped in
        :class:`~roundup_wsgi.wsgi.proxy.TrustedProxyFix`.  None: no proxy.
    :param access_log: log one line per response to the logger
        ``roundup_wsgi.access`` (:mod:`roundup_wsgi.wsgi.accesslog`); when
        neither that logger nor the root logger has a handler, one writing
        to stderr is added.
    :param metrics: answer ``GET /-/metrics`` (:mod:`roundup_wsgi.metrics`;
        needs ``prometheus_client``).
    :param health_networks: addresses or networks allowed to read
        ``/-/health``, ``/-/ready`` and ``/-/metrics``
        (:mod:`roundup_wsgi.health`); None: loopback and ``trusted_proxies``.
    :param drain_file: while this file exists ``/-/ready`` answers 503.
    :param request_id_header: the header of each request's id
        (:mod:`roundup_wsgi.wsgi.requestid`): read from ``trusted_proxies``
        only (or their ``traceparent``), else a new id; it is Roundup's
        trace id for the request and the access log's.
    :param send_request_id: send the id back in ``request_id_header``
        (with the access log or metrics on, their
        :class:`~roundup_wsgi.wsgi.finish.FinishHooks` adds it, else
        :class:`~roundup_wsgi.wsgi.requestid.RequestIds`); on by default.
    :param access_log_format: ``"combined"`` or ``"json"``
        (:mod:`roundup_wsgi.wsgi.accesslog`).
    :param options: the ``"dispatcher"`` options of the table
        :data:`roundup_wsgi.options.OPTIONS` (``debug``, ``write_mode``,
        ...), applied to every tracker.
    :raises TypeError: an option ``RequestDispatcher`` does not have (the
        message lists those it has).
    :raises ValueError: a bad tracker home, tracker name, trusted proxy or
        option value (the message names it).
    """
    unknown = sorted(set(options) - set(DISPATCHER_OPTIONS))
    if unknown:
        raise TypeError(
            f"make_app() got unknown option(s) {', '.join(unknown)}: the "
            f"options are {', '.join(option.name for option in OPTIONS)}"
        )
    given = {
        "trusted_proxies": trusted_proxies,
        "access_log": access_log,
        "metrics": metrics,
        "health_networks": health_networks,
        "drain_file": drain_file,
        "request_id_header": request_id_header,
        "send_request_id": send_request_id,
        "access_log_format": access_log_format,
    }
    given = {
        name: value
        for name, value in given.items()
        if value is not getattr(DEFAULTS, name)
    }
    given.update(options)
    if settings is None:
        settings = Settings.from_kwargs(**given)
    elif given:
        settings = settings.replace(**given)
    return _build(tracker_home_or_mapping, settings)


def _build(
    tracker_home_or_mapping: str | os.PathLike[str] | Mapping[str, Any],
    settings: Settings,
) -> WSGIApp:
    """:func:`make_app`'s application from checked ``settings``."""
    app: WSGIApp
    dispatchers: dict[str, RequestDispatcher]
    labels: dict[str, str]
    if isinstance(tracker_home_or_mapping, Mapping):
        dispatchers = {
            name: RequestDispatcher(os.fspath(home), settings=settings)
            for name, home in tracker_home_or_mapping.items()
        }
        labels = {name: name for name in dispatchers}
        # The index page and texts of roundup-server's.
        app = Mount(dispatchers, title="Roundup trackers index", noun="tracker")
    else:
        dispatcher = RequestDispatcher(
            os.fspath(tracker_home_or_mapping), settings=settings
        )
        dispatchers = {"": dispatcher}
        labels = {"": os.path.basename(os.path.normpath(dispatcher.home))}
        app = dispatcher
    trusted_proxies = settings.trusted_proxies
    networks = (
        list(settings.health_networks)
        if settings.health_networks is not None
        else [*DEFAULT_NETWORKS, *(trusted_proxies or [])]
    )
    counters = Metrics(labels) if settings.metrics else None
    app = Operations(
        app,
        dispatchers,
        networks=networks,
        drain_file=settings.drain_file,
        metrics=counters,
        check=WebAddressCheck(dispatchers).check,
    )
    request_id_header = settings.request_id_header
    send_request_id = settings.send_request_id
    hooks: list[FinishHook] = []
    if counters is not None:
        hooks.append(counters.finished)
    if settings.access_log:
        _log_to_stderr_unless_configured()
        hooks.append(
            AccessLog(
                format=settings.access_log_format,  # type: ignore[arg-type]
                names=labels,
                name_field="tracker",
            )
        )
    # The response's id header: sent by FinishHooks when there are hooks
    # (it wraps start_response anyway: one list of headers more, no layer),
    # else by RequestIds.  Without a proxy's id to take, Roundup's trace id
    # (made by the dispatcher, and noted for FinishHooks) is the request's:
    # no RequestIds layer under FinishHooks.
    respond = send_request_id and not hooks
    if respond or trusted_proxies is not None:
        app = RequestIds(app, new_request_id, header=request_id_header, respond=respond)
    if trusted_proxies is not None:
        from .wsgi.proxy import TrustedProxyFix

        app = TrustedProxyFix(app, list(trusted_proxies))
    if hooks:
        app = FinishHooks(
            app,
            hooks,
            id_header=request_id_header if send_request_id else None,
            new_id=new_request_id,
        )
    return app


_L = TypeVar("_L")


def find_layer(app: object, kind: type[_L]) -> _L:
    """The first layer of an application built by :func:`make_app` that is
    a ``kind`` (following the middlewares' ``app`` attributes), e.g.
    ``find_layer(app, RequestDispatcher).home``.

    :raises LookupError: no layer is a ``kind``.
    """
    layer: object = app
    while layer is not None:
        if isinstance(layer, kind):
            return layer
        layer = getattr(layer, "app", None)
    raise LookupError(f"{app!r} has no {kind.__name__} layer")


def _log_to_stderr_unless_configured() -> None:
    """Give the access logger a stderr handler (the bare line, level INFO,
    not propagated) unless it has handlers of its own: an admin's logging
    configuration for ``roundup_wsgi.access`` wins, while a server's setup
    of the root logger (a ``levelname:name:`` prefix, level WARNING) does
    not swallow or prefix the lines."""
    access = logging.getLogger(ACCESS_LOGGER)
    if access.handlers:
        return
    access.addHandler(AccessLogHandler())
    access.setLevel(logging.INFO)
    access.propagate = False


class AccessLogHandler(LineHandler):
    """The access log's handler when none is configured (and that of
    ``roundup-wsgi serve``): a
    :class:`~roundup_wsgi.wsgi.accesslog.LineHandler` (the bare line to a
    stream, default ``sys.stderr``, flushed) that declines Roundup's
    ``context_filter``.

    Roundup adds that filter (``roundup.configuration.CoreConfig``) to every
    handler of every logger each time it loads a tracker's configuration,
    one more per load.  It sets context attributes for formatters and
    formats messages that have no arguments; this handler writes the bare
    message of records whose line is their argument, so the filter changes
    nothing here but costs microseconds per line.
    """

    def addFilter(self, filter: Any) -> None:  # noqa: N802 - logging's name
        """Add ``filter`` unless it is Roundup's ``context_filter``."""
        owner = getattr(filter, "__self__", None)
        if getattr(filter, "__name__", "") == "context_filter" and type(
            owner
        ).__module__.startswith("roundup."):
            return
        super().addFilter(filter)


def options_from_environment(
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """:func:`roundup_wsgi.options.options_from_environ` (its old place)."""
    return options_from_environ(environ)


def _from_environment() -> WSGIApp:
    home = os.environ.get(ENV_TRACKER_HOME)
    several = os.environ.get(ENV_TRACKERS)
    if home and several:
        raise ConfigError(
            f"both {ENV_TRACKER_HOME} and {ENV_TRACKERS} are set: unset one "
            f"({ENV_TRACKER_HOME} serves one tracker at /, {ENV_TRACKERS} "
            "several under /<name>/)"
        )
    if not home and not several:
        raise ConfigError(
            f"roundup_wsgi.app:application needs the environment variable "
            f"{ENV_TRACKER_HOME} set to a tracker home, e.g. "
            f"{ENV_TRACKER_HOME}=/srv/roundup/bugs (or {ENV_TRACKERS}="
            "bugs=/srv/roundup/bugs,support=/srv/roundup/support for several)"
        )
    settings = Settings.from_environ()
    target: str | dict[str, str] = (
        parse_trackers(several, ENV_TRACKERS) if several else str(home)
    )
    source = ENV_TRACKERS if several else ENV_TRACKER_HOME
    try:
        return make_app(target, settings=settings)
    except TrackerHomeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


class LazyApplication:
    """The WSGI application ``roundup_wsgi.app:application``: a real
    callable (found in the module's namespace, as hypercorn and uWSGI's
    ``module=`` look it up) that builds the application from the
    environment on its first call, once per process.

    The build is thread-safe (a lock, checked again inside it), and happens
    after a preloading server's fork (``gunicorn --preload`` imports this
    module in its master but calls the application only in its workers).
    :meth:`build` builds it at once, e.g. from a server's start-up hook.

    A build that fails (a setting the message names with its fix: no
    tracker home, a tracker not initialised, a required option unset) is
    logged once, as one ERROR line of the logger ``roundup_wsgi``; every
    request then answers ``500`` with a page that says no more.  Fix the
    setting and restart the server.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._app: WSGIApp | None = None
        self._error: BaseException | None = None
        self._logged = False

    @property
    def app(self) -> WSGIApp | None:
        """The built application, None before (:func:`find_layer` follows
        it)."""
        return self._app

    def build(self) -> WSGIApp:
        """Build the application now (if not yet built) and return it.

        :raises ConfigError: a missing or wrong setting, a tracker that
            cannot serve pages (the message names it and the fix).
        :raises Exception: what Roundup raises opening a broken tracker
            (e.g. a ``SyntaxError`` in its schema.py).
        """
        app = self._app
        if app is not None:
            return app
        with self._lock:
            if self._app is None:
                if self._error is not None:
                    raise self._error
                try:
                    app = _from_environment()
                except BaseException as exc:
                    self._error = exc
                    raise
                self._app = app
                # From now on a call goes straight to the built application's
                # own __call__ (a class attribute of a subclass made for this
                # instance): no frame of this class per request.
                self.__class__ = type(
                    "BuiltApplication",
                    (LazyApplication,),
                    {"__slots__": (), "__call__": staticmethod(direct_call(app))},
                )
            return self._app

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        """Answer one request (PEP 3333), building the application first."""
        app = self._app
        if app is None:
            try:
                app = self.build()
            except Exception as exc:
                return self._failed(exc, environ, start_response)
        return app(environ, start_response)

    def _failed(
        self, exc: Exception, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        with self._lock:
            first = not self._logged
            self._logged = True
        if first:
            if isinstance(exc, (ConfigError, ValueError)):  # says it all
                logger.error(
                    "roundup_wsgi.app:application cannot be built: %s; every "
                    "request answers 500 until it is fixed and the server "
                    "restarted",
                    " ".join(str(exc).split()),
                )
            else:
                logger.error(
                    "roundup_wsgi.app:application cannot be built; every "
                    "request answers 500 until it is fixed and the server "
                    "restarted",
                    exc_info=exc,
                )
        body = b"The tracker is not available: see the server's log.\n"
        start_response(
            "500 Internal Server Error",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


#: The application servers import as ``roundup_wsgi.app:application``.
application = LazyApplication()
