"""The options table: every option of an application, declared once.

Like waitress's ``adjustments.py``, :data:`OPTIONS` lists each option with
its name, type, default, check and help text (:class:`Option`).  Everything
that configures an application reads it: :class:`~.settings.Settings` (one
field per row; importable from here too, as are :mod:`roundup_wsgi.values`'
names), the keywords of :func:`~roundup_wsgi.app.make_app` and
:class:`~roundup_wsgi.dispatcher.RequestDispatcher` (a test keeps them
equal), ``ROUNDUP_WSGI_<NAME>`` variables (:func:`options_from_environ`),
PasteDeploy's ``name = value`` lines (:func:`options_from_text`) and
``roundup-wsgi serve``'s flags.
"""

from __future__ import annotations

import logging
import os
import typing
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .compression import DEFAULT_STATIC_CACHE_SIZE, check_static_cache_size
from .request_body import DEFAULT_MAX_REQUEST_BODY, check_max_request_body
from .values import (
    DEFAULT_AUTH_MEMO_LIFETIME,
    DEFAULT_AUTH_MEMO_SIZE,
    DEFAULT_IDLE_LIMIT,
    DEFAULT_MAX_KEPT,
    WRITE_MODES,
    ConfigError,
    WriteMode,
    check_access_log_format,
    check_auth_memo_lifetime,
    check_auth_memo_size,
    check_drain_file,
    check_networks,
    check_reuse_db_idle,
    check_reuse_db_max,
    check_static_response_cache_size,
    check_trusted_proxies,
    convert,
    parse_trackers,
    split_list,
)
from .wsgi.requestid import DEFAULT_HEADER as DEFAULT_REQUEST_ID_HEADER
from .wsgi.requestid import check_header_name
from .wsgi.responsecache import DEFAULT_MAX_BYTES

if TYPE_CHECKING:
    from .settings import DEFAULTS, Settings

__all__ = [
    "APP_OPTIONS",
    "DEFAULTS",
    "DEFAULT_AUTH_MEMO_LIFETIME",
    "DEFAULT_AUTH_MEMO_SIZE",
    "DEFAULT_IDLE_LIMIT",
    "DEFAULT_MAX_KEPT",
    "DISPATCHER_OPTIONS",
    "ENV_PREFIX",
    "OPTIONS",
    "WRITE_MODES",
    "ConfigError",
    "Option",
    "Settings",
    "WriteMode",
    "check_option",
    "convert",
    "options_from_environ",
    "options_from_text",
    "parse_trackers",
    "split_list",
]

#: Prefix of the variables setting options: ``ROUNDUP_WSGI_<OPTION>``.
ENV_PREFIX = "ROUNDUP_WSGI_"


class Option(typing.NamedTuple):
    """One option of an application.

    :param name: the keyword argument (``write_mode``); the environment
        variable is ``ROUNDUP_WSGI_`` + its upper case, the ``serve`` flag
        ``--`` + it with ``-`` for ``_`` unless :attr:`flag` says otherwise.
    :param hint: its type, as :func:`~roundup_wsgi.values.convert` takes it.
    :param default: the value when it is not given.
    :param help: one line for ``--help`` and the options table of
        ``docs/configuration.rst``.
    :param scope: ``"dispatcher"`` (a keyword of ``RequestDispatcher``, for
        each tracker) or ``"app"`` (of :func:`~roundup_wsgi.app.make_app`,
        around all trackers).
    :param flag: the ``serve`` flag, if not the one derived from the name;
        ``""``: no flag.
    :param check: validates a value given in Python (not text) and returns
        it normalised (e.g. ``"buffer"`` to ``WriteMode.BUFFER``); raises
        ``ValueError`` naming the option and the fix.  None: taken as given.
    """

    name: str
    hint: Any
    default: Any
    help: str
    scope: Literal["dispatcher", "app"] = "dispatcher"
    flag: str | None = None
    check: Callable[[Any], Any] | None = None

    @property
    def variable(self) -> str:
        """The environment variable, e.g. ``ROUNDUP_WSGI_WRITE_MODE``."""
        return ENV_PREFIX + self.name.upper()

    @property
    def cli_flag(self) -> str:
        """The ``serve`` flag, e.g. ``--write-mode`` (``""``: none)."""
        if self.flag is not None:
            return self.flag
        return "--" + self.name.replace("_", "-")


#: Every option, in the order ``--help`` shows them.
OPTIONS: tuple[Option, ...] = (
    Option(
        "debug",
        bool,
        False,
        "open the tracker unoptimised (templates reloaded on change) and show "
        "tracebacks in error pages",
    ),
    Option("timing", bool, False, "Roundup's CGI_SHOW_TIMING: timings in pages"),
    Option("lang", str | None, None, "default UI language, e.g. de"),
    Option(
        "feature_flags",
        dict[str, Any] | None,
        None,
        "Roundup's feature flags, e.g. cache_tracker=false (open the tracker "
        "anew for every request)",
    ),
    Option(
        "write_mode",
        WriteMode,
        WriteMode.AUTO,
        "how response bodies reach the server: auto (pages whole, exports "
        "streamed), buffer, server or stream",
        check=WriteMode.of,
    ),
    Option(
        "static_fast_path",
        bool,
        True,
        "answer @@file/ and _file/ requests without opening the database",
    ),
    Option(
        "max_request_body",
        int | None,
        DEFAULT_MAX_REQUEST_BODY,
        "largest request body accepted, in bytes (none: no limit); larger "
        "ones answer 413",
        check=check_max_request_body,
    ),
    Option(
        "static_cache_size",
        int,
        DEFAULT_STATIC_CACHE_SIZE,
        "bytes of compressed static files (@@file/) kept in memory, least "
        "recently used evicted (0: none)",
        check=check_static_cache_size,
    ),
    Option(
        "static_response_cache_size",
        int,
        DEFAULT_MAX_BYTES,
        "bytes of whole static-file answers (@@file/) kept in memory and "
        "given again while the file is unchanged (0: none)",
        check=check_static_response_cache_size,
    ),
    Option(
        "reuse_db",
        bool,
        True,
        "keep each worker thread's tracker database open between requests "
        "(rolled back and reset after each); false: open it per request",
    ),
    Option(
        "reuse_db_max",
        int,
        DEFAULT_MAX_KEPT,
        "most databases reuse_db keeps open between requests, per tracker "
        "and process (0: none)",
        check=check_reuse_db_max,
    ),
    Option(
        "reuse_db_idle",
        float,
        DEFAULT_IDLE_LIMIT,
        "seconds a kept database may sit unused; it is closed at most 1.5 "
        "times that after its last request",
        check=check_reuse_db_idle,
    ),
    Option(
        "node_cache",
        bool,
        True,
        "with reuse_db: give a request the rows the thread's previous one "
        "read while nothing wrote (sqlite: PRAGMA data_version; PostgreSQL: "
        "a write counter with triggers it installs); false: read them anew",
    ),
    Option(
        "auth_memo_lifetime",
        float,
        DEFAULT_AUTH_MEMO_LIFETIME,
        "seconds a successful Basic auth password check is remembered (an "
        "HMAC of user, password and stored hash; 0: off, every request "
        "hashes the password)",
        check=check_auth_memo_lifetime,
    ),
    Option(
        "auth_memo_size",
        int,
        DEFAULT_AUTH_MEMO_SIZE,
        "most successful password checks remembered, per tracker and "
        "process, least recently used evicted (0: off)",
        check=check_auth_memo_size,
    ),
    Option(
        "trusted_proxies",
        list[str] | None,
        None,
        "addresses or networks of reverse proxies whose X-Forwarded-* "
        "headers are honoured, e.g. 127.0.0.1 ::1",
        scope="app",
        flag="--trusted-proxy",
        check=check_trusted_proxies,
    ),
    Option(
        "access_log",
        bool,
        False,
        "log one line per request (Apache combined format, duration in "
        "microseconds, trace id) to the logger roundup_wsgi.access; to stderr "
        "unless logging is configured",
        scope="app",
        flag="",
    ),
    Option(
        "metrics",
        bool,
        False,
        "answer GET /-/metrics with Prometheus metrics (needs roundup-wsgi[metrics])",
        scope="app",
    ),
    Option(
        "health_networks",
        list[str] | None,
        None,
        "addresses or networks allowed to read /-/health, /-/ready and "
        "/-/metrics (none: loopback and the trusted proxies)",
        scope="app",
        flag="--health-network",
        check=check_networks,
    ),
    Option(
        "drain_file",
        str | None,
        None,
        "while this file exists /-/ready answers 503 (check 'drain'): take "
        "the server out of a load balancer before a restart",
        scope="app",
        check=check_drain_file,
    ),
    # Request ids (issue 23): roundup_wsgi.wsgi.requestid.
    Option(
        "request_id_header",
        str,
        DEFAULT_REQUEST_ID_HEADER,
        "header carrying each request's id: taken from trusted proxies (or "
        "their W3C traceparent's trace-id), else made; Roundup's trace id and "
        "the access log's",
        scope="app",
        check=check_header_name,
    ),
    Option(
        "send_request_id",
        bool,
        True,
        "send the request's id back in the response's request_id_header",
        scope="app",
    ),
    Option(
        "access_log_format",
        Literal["combined", "json"],
        "combined",
        "the access log's lines: combined (Apache's, duration and request id "
        "added) or json (one object per line)",
        scope="app",
        check=check_access_log_format,
    ),
)

#: The options of ``RequestDispatcher``, by name.
DISPATCHER_OPTIONS: dict[str, Option] = {
    option.name: option for option in OPTIONS if option.scope == "dispatcher"
}
#: The options of :func:`~roundup_wsgi.app.make_app` around the trackers.
APP_OPTIONS: dict[str, Option] = {
    option.name: option for option in OPTIONS if option.scope == "app"
}

_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
logger = logging.getLogger("roundup_wsgi")


def check_option(name: str, value: Any) -> Any:
    """``value`` for the option ``name``, validated and normalised by the
    table's check (e.g. ``"buffer"`` to ``WriteMode.BUFFER``).

    :raises ValueError: a bad value (the message names the option and the fix).
    :raises KeyError: ``name`` is no option.
    """
    check = _BY_NAME[name].check
    return value if check is None else check(value)


def options_from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the ``ROUNDUP_WSGI_<OPTION>`` variables, converted to the
    options' types (not yet checked: see
    :meth:`~roundup_wsgi.settings.Settings.from_environ`); one that names no
    option is logged as a warning (a typo is not silently ignored).

    :param environ: the variables; ``os.environ`` if None.
    :returns: ``{option name: value}``.
    :raises ConfigError: a value of the wrong type (the message names the
        variable and what it expects).
    """
    environ = os.environ if environ is None else environ
    found: dict[str, Any] = {}
    for variable, text in environ.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        name = variable[len(ENV_PREFIX) :].lower()
        if name not in _BY_NAME:
            logger.warning(
                "%s is not an option of roundup_wsgi.app and is ignored; the "
                "options are %s",
                variable,
                ", ".join(ENV_PREFIX + option.upper() for option in _BY_NAME),
            )
            continue
        try:
            found[name] = convert(text, _BY_NAME[name].hint)
        except ValueError as exc:
            raise ConfigError(f"{variable}={text!r}: {exc}") from None
    return found


def options_from_text(
    settings: Mapping[str, str], source: str, also: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Convert textual settings to option values, by the table.

    :param settings: ``{option name: text}``, e.g. from an ini file section.
    :param source: what to name in errors, e.g. ``"paste.ini [app:main]"``.
    :param also: other names the source accepts, listed in the error for an
        unknown name (e.g. ``tracker_home``).
    :returns: ``{option name: value}``.
    :raises ConfigError: a name that is no option, or a text that does not
        fit the option's type (the message names both and the fix).
    """
    values: dict[str, Any] = {}
    for name, text in settings.items():
        option = _BY_NAME.get(name)
        if option is None:
            raise ConfigError(
                f"{source}: unknown option {name!r}; the options are "
                + ", ".join([*also, *_BY_NAME])
            )
        try:
            values[name] = convert(text, option.hint)
        except ValueError as exc:
            raise ConfigError(f"{source}: {name} = {text}: {exc}") from None
    return values


def __getattr__(name: str) -> Any:
    """:class:`~roundup_wsgi.settings.Settings` and ``DEFAULTS``, imported
    on first use (:mod:`roundup_wsgi.settings` imports this module)."""
    if name in ("DEFAULTS", "Settings"):
        from . import settings

        return getattr(settings, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
