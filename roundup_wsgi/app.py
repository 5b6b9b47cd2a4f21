"""Ready-made WSGI applications for servers that import ``module:callable``.

``gunicorn roundup_wsgi.app:application`` (or granian, uWSGI, mod_wsgi)
serves the tracker named by the environment variable
``ROUNDUP_TRACKER_HOME``, or the trackers named by ``ROUNDUP_TRACKERS``
(``bugs=/srv/bugs,support=/srv/support``, each under ``/<name>/``), with the
options given as ``ROUNDUP_WSGI_<OPTION>`` variables.  The application is
built on its first call (:class:`LazyApplication`), so importing this
module for :func:`make_app` needs no environment; a missing or wrong
setting is logged then, as one line naming the variable and the fix.

:func:`make_app` assembles an application in two steps: the trackers
mounted (one dispatcher, or a :class:`~roundup_wsgi.wsgi.mount.Mount` of
them), then the operations layers around them
(:func:`~roundup_wsgi.operations.operations_stack`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from .dispatcher import RequestDispatcher
from .operations import AccessLogHandler, operations_stack
from .options import (
    APP_OPTIONS,
    DISPATCHER_OPTIONS,
    ENV_PREFIX,
    OPTIONS,
    options_from_environ,
)
from .settings import DEFAULTS, Settings
from .tracker import TrackerHomeError
from .values import ConfigError, parse_trackers
from .wsgi.finish import direct_call
from .wsgi.mount import Mount
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
    :param settings: all options as one :class:`~roundup_wsgi.settings.Settings`
        (given to every tracker's dispatcher); the keywords, where they
        differ from the defaults, override it.  Without it the keywords
        alone, checked by :meth:`~roundup_wsgi.settings.Settings.from_kwargs`.
    :param trusted_proxies: reverse proxies (addresses or networks) whose
        ``X-Forwarded-*`` headers are honoured
        (:class:`~roundup_wsgi.wsgi.proxy.TrustedProxyFix`).  None: no proxy.
    :param access_log: log one line per response to the logger
        ``roundup_wsgi.access`` (to stderr unless logging is configured).
    :param metrics: answer ``GET /-/metrics`` (needs ``prometheus_client``).
    :param health_networks: who may read ``/-/health``, ``/-/ready`` and
        ``/-/metrics``; None: loopback and ``trusted_proxies``.
    :param drain_file: while this file exists ``/-/ready`` answers 503.
    :param request_id_header: the header of each request's id, read from
        ``trusted_proxies`` only (:mod:`roundup_wsgi.wsgi.requestid`); it is
        Roundup's trace id for the request and the access log's.
    :param send_request_id: send the id back in ``request_id_header``.
    :param access_log_format: ``"combined"`` or ``"json"``.
    :param options: the ``"dispatcher"`` options of
        :data:`roundup_wsgi.options.OPTIONS` (``debug``, ``write_mode``,
        ...), applied to every tracker.
    :raises TypeError: an option ``RequestDispatcher`` does not have (the
        message lists those it has).
    :raises ValueError: a bad tracker home, tracker name, trusted proxy or
        option value (the message names it).
    """
    keywords = {
        "trusted_proxies": trusted_proxies,
        "access_log": access_log,
        "metrics": metrics,
        "health_networks": health_networks,
        "drain_file": drain_file,
        "request_id_header": request_id_header,
        "send_request_id": send_request_id,
        "access_log_format": access_log_format,
    }
    settings = _settings(settings, keywords, options)
    app, dispatchers, labels = _mount_trackers(tracker_home_or_mapping, settings)
    return operations_stack(app, dispatchers, labels, settings)


def _settings(
    settings: Settings | None, keywords: dict[str, Any], options: dict[str, Any]
) -> Settings:
    """:func:`make_app`'s settings: ``settings`` (or the defaults) with the
    ``keywords`` not at their defaults and the dispatcher ``options``.

    :raises TypeError: an option that is no dispatcher's (the message lists
        the options).
    """
    unknown = sorted(set(options) - set(DISPATCHER_OPTIONS))
    if unknown:
        raise TypeError(
            f"make_app() got unknown option(s) {', '.join(unknown)}: the "
            f"options are {', '.join(option.name for option in OPTIONS)}"
        )
    given = {
        name: value
        for name, value in keywords.items()
        if value is not getattr(DEFAULTS, name)
    }
    given.update(options)
    if settings is None:
        return Settings.from_kwargs(**given)
    return settings.replace(**given) if given else settings


def _mount_trackers(
    tracker_home_or_mapping: str | os.PathLike[str] | Mapping[str, Any],
    settings: Settings,
) -> tuple[WSGIApp, dict[str, RequestDispatcher], dict[str, str]]:
    """The trackers' application: one dispatcher, or a
    :class:`~roundup_wsgi.wsgi.mount.Mount` of one per name; with the
    dispatchers and their labels by mount name (``""``: one tracker)."""
    if isinstance(tracker_home_or_mapping, Mapping):
        dispatchers = {
            name: RequestDispatcher(os.fspath(home), settings=settings)
            for name, home in tracker_home_or_mapping.items()
        }
        labels = {name: name for name in dispatchers}
        # The index page and texts of roundup-server's.
        mount = Mount(dispatchers, title="Roundup trackers index", noun="tracker")
        return mount, dispatchers, labels
    dispatcher = RequestDispatcher(
        os.fspath(tracker_home_or_mapping), settings=settings
    )
    labels = {"": os.path.basename(os.path.normpath(dispatcher.home))}
    return dispatcher, {"": dispatcher}, labels


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
