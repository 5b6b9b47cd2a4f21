"""The options table: every setting of an application, in one place.

Like waitress's ``adjustments.py``, :data:`OPTIONS` lists each option once
with its name, type, default, check and help text, and :class:`Settings`
is the one immutable, validated object built from it (one field per
option).  Everything that configures an application makes a
:class:`Settings` and passes it down:

* :func:`~roundup_wsgi.app.make_app` and
  :class:`~roundup_wsgi.dispatcher.RequestDispatcher` take it as
  ``settings=``, or their keywords (defaults from :data:`DEFAULTS`; a test
  keeps their signatures and the table equal), checked by
  :meth:`Settings.from_kwargs`; ``make_app`` gives the same object to each
  tracker's dispatcher;
* ``roundup_wsgi.app:application`` reads ``ROUNDUP_WSGI_<NAME>`` variables
  (:meth:`Settings.from_environ`), PasteDeploy ini files read ``name =
  value`` lines, and ``roundup-wsgi serve`` has a flag for each
  (``--write-mode``, ``--debug``, ...): all three convert the text with
  :func:`convert` to the option's type, then build the :class:`Settings`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import os
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .compression import DEFAULT_STATIC_CACHE_SIZE, check_static_cache_size
from .request_body import DEFAULT_MAX_REQUEST_BODY, check_max_request_body
from .wsgi.accesslog import FORMATS as ACCESS_LOG_FORMATS
from .wsgi.mount import MOUNT_NAME
from .wsgi.proxy import parse_networks
from .wsgi.requestid import DEFAULT_HEADER as DEFAULT_REQUEST_ID_HEADER
from .wsgi.requestid import check_header_name
from .wsgi.responsecache import DEFAULT_MAX_BYTES

__all__ = [
    "APP_OPTIONS",
    "DEFAULTS",
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

#: ``reuse_db_idle``'s default, in seconds (:mod:`roundup_wsgi.dbpool`).
DEFAULT_IDLE_LIMIT = 60.0
#: ``reuse_db_max``'s default: databases kept per tracker and process.
DEFAULT_MAX_KEPT = 32
#: ``auth_memo_lifetime``'s default, in seconds (:mod:`roundup_wsgi.authmemo`).
DEFAULT_AUTH_MEMO_LIFETIME = 300.0
#: ``auth_memo_size``'s default: successful verifications kept per tracker
#: and process.
DEFAULT_AUTH_MEMO_SIZE = 1024

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("", "none")


class WriteMode(str, enum.Enum):
    """How response bodies reach the server; its values are the option's
    texts (``write_mode = buffer``, ``--write-mode buffer``).

    ``AUTO`` (the default): a body whose length Roundup declared
    (``Content-Length``: pages, files, REST and XML-RPC answers) is held
    whole as in ``BUFFER``; one of unknown length (the CSV export) is
    streamed from its first write as in ``STREAM``.  ``BUFFER``: the body
    is returned as the app_iter; the server's write callable is never used.
    ``SERVER``: writes go to the write callable ``start_response`` returns,
    else to the buffer.  ``STREAM``: ``Client.main`` runs in a greenlet and
    each write is sent at once as a chunk of the app_iter
    (:mod:`roundup_wsgi.stream`).
    """

    AUTO = "auto"
    BUFFER = "buffer"
    SERVER = "server"
    STREAM = "stream"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: str) -> WriteMode:
        """The member named by ``value`` (a member or its text).

        :raises ValueError: no such mode (the message lists them).
        """
        mode = _WRITE_MODES_BY_TEXT.get(value) if isinstance(value, str) else None
        if mode is None:
            raise ValueError(
                f"write_mode={value!r} is not a write mode: use one of "
                + ", ".join(repr(mode.value) for mode in cls)
            )
        return mode


#: The write modes, the first the default.
WRITE_MODES: tuple[WriteMode, ...] = tuple(WriteMode)
#: The write modes by their texts (and by themselves: they are ``str``).
_WRITE_MODES_BY_TEXT: dict[str, WriteMode] = {mode.value: mode for mode in WriteMode}


class ConfigError(RuntimeError):
    """Wrong or missing configuration found at start-up.

    The message names the environment variable or ini option and says how to
    fix it.
    """


class Option(typing.NamedTuple):
    """One option of an application.

    :param name: the keyword argument (``write_mode``); the environment
        variable is ``ROUNDUP_WSGI_`` + its upper case, the ``serve`` flag
        ``--`` + it with ``-`` for ``_`` unless :attr:`flag` says otherwise.
    :param hint: its type, as :func:`convert` understands it.
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
        return "ROUNDUP_WSGI_" + self.name.upper()

    @property
    def cli_flag(self) -> str:
        """The ``serve`` flag, e.g. ``--write-mode`` (``""``: none)."""
        if self.flag is not None:
            return self.flag
        return "--" + self.name.replace("_", "-")


def _check_static_response_cache_size(size: Any) -> int:
    if not isinstance(size, int) or size < 0:
        raise ValueError(
            f"static_response_cache_size={size!r} is "
            "not a size: give the bytes of static-file answers to keep, "
            "e.g. 4194304 (0: keep none)"
        )
    return size


def _check_reuse_db_max(count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(
            f"reuse_db_max={count!r} is not a count: give the most "
            f"databases kept open, e.g. {DEFAULT_MAX_KEPT} (0: none)"
        )
    return count


def _check_reuse_db_idle(seconds: Any) -> float:
    if not seconds >= 0:
        raise ValueError(
            f"reuse_db_idle={seconds!r} is not a duration: give the "
            f"seconds a kept database may sit unused, e.g. {DEFAULT_IDLE_LIMIT:g}"
        )
    return seconds  # type: ignore[no-any-return]


def _check_auth_memo_lifetime(seconds: Any) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(
            f"auth_memo_lifetime={seconds!r} is not a duration: give "
            f"seconds, e.g. {DEFAULT_AUTH_MEMO_LIFETIME:g} (0: off)"
        )
    if seconds < 0:
        raise ValueError(
            f"auth_memo_lifetime={seconds!r} must be positive: give "
            f"seconds, e.g. {DEFAULT_AUTH_MEMO_LIFETIME:g} (0: off)"
        )
    return seconds


def _check_auth_memo_size(count: Any) -> int:
    if isinstance(count, bool) or not isinstance(count, int):
        raise ValueError(
            f"auth_memo_size={count!r} is not a count: give the most entries "
            f"kept, e.g. {DEFAULT_AUTH_MEMO_SIZE} (0: off)"
        )
    if count < 0:
        raise ValueError(
            f"auth_memo_size={count!r} is not a positive count: give the "
            f"most entries kept, e.g. {DEFAULT_AUTH_MEMO_SIZE} (0: off)"
        )
    return count


def _networks(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(split_list(value))
    return tuple(value)


def _check_trusted_proxies(value: Any) -> tuple[str, ...] | None:
    proxies = _networks(value)
    if proxies is not None:
        parse_networks(proxies)  # a bad one is named as a trusted proxy
    return proxies


def _check_drain_file(value: Any) -> str | None:
    return None if value is None else os.fspath(value)


def _check_access_log_format(value: Any) -> str:
    if value not in ACCESS_LOG_FORMATS:
        raise ValueError(
            f"access_log_format={value!r} is unknown: use combined or json"
        )
    return value  # type: ignore[no-any-return]


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
        check=_check_static_response_cache_size,
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
        check=_check_reuse_db_max,
    ),
    Option(
        "reuse_db_idle",
        float,
        DEFAULT_IDLE_LIMIT,
        "seconds a kept database may sit unused; it is closed at most 1.5 "
        "times that after its last request",
        check=_check_reuse_db_idle,
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
        check=_check_auth_memo_lifetime,
    ),
    Option(
        "auth_memo_size",
        int,
        DEFAULT_AUTH_MEMO_SIZE,
        "most successful password checks remembered, per tracker and "
        "process, least recently used evicted (0: off)",
        check=_check_auth_memo_size,
    ),
    Option(
        "trusted_proxies",
        list[str] | None,
        None,
        "addresses or networks of reverse proxies whose X-Forwarded-* "
        "headers are honoured, e.g. 127.0.0.1 ::1",
        scope="app",
        flag="--trusted-proxy",
        check=_check_trusted_proxies,
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
        check=_networks,
    ),
    Option(
        "drain_file",
        str | None,
        None,
        "while this file exists /-/ready answers 503 (check 'drain'): take "
        "the server out of a load balancer before a restart",
        scope="app",
        check=_check_drain_file,
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
        check=_check_access_log_format,
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


#: Prefix of the variables setting options: ``ROUNDUP_WSGI_<OPTION>``.
ENV_PREFIX = "ROUNDUP_WSGI_"

_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}
_DEFAULT: dict[str, Any] = {option.name: option.default for option in OPTIONS}
logger = logging.getLogger("roundup_wsgi")


def check_option(name: str, value: Any) -> Any:
    """``value`` for the option ``name``, validated and normalised by the
    table's check (e.g. ``"buffer"`` to ``WriteMode.BUFFER``).

    :raises ValueError: a bad value (the message names the option and the fix).
    :raises KeyError: ``name`` is no option.
    """
    check = _BY_NAME[name].check
    return value if check is None else check(value)


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Every option of an application, validated, in one immutable object.

    Built from the table :data:`OPTIONS` (one field per option, with its
    default; a test keeps them equal), like waitress's ``Adjustments``:
    :func:`~roundup_wsgi.app.make_app`,
    :class:`~roundup_wsgi.dispatcher.RequestDispatcher`, ``roundup-wsgi
    serve``, ``ROUNDUP_WSGI_*`` variables and PasteDeploy all make one and
    pass it down.  Build it with :meth:`from_kwargs` (which checks the
    values; the plain constructor does not), :meth:`from_environ`, or
    :meth:`replace`.  ``Settings()`` holds the defaults (:data:`DEFAULTS`).
    """

    debug: bool = _DEFAULT["debug"]
    timing: bool = _DEFAULT["timing"]
    lang: str | None = _DEFAULT["lang"]
    feature_flags: dict[str, Any] | None = _DEFAULT["feature_flags"]
    write_mode: WriteMode = _DEFAULT["write_mode"]
    static_fast_path: bool = _DEFAULT["static_fast_path"]
    max_request_body: int | None = _DEFAULT["max_request_body"]
    static_cache_size: int = _DEFAULT["static_cache_size"]
    static_response_cache_size: int = _DEFAULT["static_response_cache_size"]
    reuse_db: bool = _DEFAULT["reuse_db"]
    reuse_db_max: int = _DEFAULT["reuse_db_max"]
    reuse_db_idle: float = _DEFAULT["reuse_db_idle"]
    node_cache: bool = _DEFAULT["node_cache"]
    auth_memo_lifetime: float = _DEFAULT["auth_memo_lifetime"]
    auth_memo_size: int = _DEFAULT["auth_memo_size"]
    trusted_proxies: tuple[str, ...] | None = _DEFAULT["trusted_proxies"]
    access_log: bool = _DEFAULT["access_log"]
    metrics: bool = _DEFAULT["metrics"]
    health_networks: tuple[str, ...] | None = _DEFAULT["health_networks"]
    drain_file: str | None = _DEFAULT["drain_file"]
    request_id_header: str = _DEFAULT["request_id_header"]
    send_request_id: bool = _DEFAULT["send_request_id"]
    access_log_format: str = _DEFAULT["access_log_format"]

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> Settings:
        """Settings from option values given in Python, each checked by the
        table (the others default).

        :raises TypeError: a name that is no option (the message lists them).
        :raises ValueError: a bad value (the message names the option and
            the fix).
        """
        unknown = sorted(set(kwargs) - set(_BY_NAME))
        if unknown:
            raise TypeError(
                f"unknown option(s) {', '.join(unknown)}: the options are "
                + ", ".join(_BY_NAME)
            )
        return cls(**{name: check_option(name, v) for name, v in kwargs.items()})

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from the ``ROUNDUP_WSGI_<OPTION>`` variables
        (:func:`options_from_environ`).

        :raises ConfigError: a value of the wrong type or refused by the
            option's check (the message names the variables).
        """
        environ = os.environ if environ is None else environ
        found = options_from_environ(environ)
        try:
            return cls.from_kwargs(**found)
        except ValueError as exc:
            given = ", ".join(
                f"{ENV_PREFIX}{name.upper()}={environ[ENV_PREFIX + name.upper()]!r}"
                for name in found
            )
            raise ConfigError(f"{exc} (set in the environment: {given})") from None

    def replace(self, **kwargs: Any) -> Settings:
        """A copy with the options ``kwargs`` changed (checked as by
        :meth:`from_kwargs`)."""
        checked = Settings.from_kwargs(**kwargs)
        return dataclasses.replace(
            self, **{name: getattr(checked, name) for name in kwargs}
        )

    def dispatcher_options(self) -> dict[str, Any]:
        """``{name: value}`` of the ``"dispatcher"`` options."""
        return {name: getattr(self, name) for name in DISPATCHER_OPTIONS}


if [field.name for field in dataclasses.fields(Settings)] != list(_BY_NAME):
    raise AssertionError("Settings' fields are not the options of OPTIONS")

#: The default settings.
DEFAULTS = Settings()


def options_from_environ(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read the ``ROUNDUP_WSGI_<OPTION>`` variables, converted to the
    options' types (see :func:`convert`; not yet checked: see
    :meth:`Settings.from_environ`).

    A ``ROUNDUP_WSGI_`` variable that names no option is logged as a
    warning (a typo would otherwise be silently ignored).

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
    known = {option.name: option for option in OPTIONS}
    values: dict[str, Any] = {}
    for name, text in settings.items():
        option = known.get(name)
        if option is None:
            raise ConfigError(
                f"{source}: unknown option {name!r}; the options are "
                + ", ".join([*also, *known])
            )
        try:
            values[name] = convert(text, option.hint)
        except ValueError as exc:
            raise ConfigError(f"{source}: {name} = {text}: {exc}") from None
    return values


def convert(text: str, hint: Any) -> Any:
    """Convert the text of a setting to the type ``hint``.

    ``bool``: ``1/true/yes/on`` or ``0/false/no/off`` (any case); ``int``,
    ``float``: Python's syntax (``_`` separators allowed); ``X | None``: an
    empty text or ``none`` is ``None``; ``Literal[...]`` or an
    :class:`enum.Enum`: one of the values;
    ``dict``: a JSON object or ``key=value`` pairs separated by commas or
    newlines, each value converted as JSON when it parses (``false``,
    ``3``) and kept as text otherwise; ``list``/``tuple``: items separated
    by commas, spaces or newlines; anything else: the text unchanged.

    :raises ValueError: the text does not fit ``hint`` (the message says what
        would).
    """
    text = text.strip()
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        choices = [arg for arg in args if arg is not type(None)]
        if type(None) in args and text.lower() in _NONE:
            return None
        errors = []
        for choice in choices:
            try:
                return convert(text, choice)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; or ".join(errors))
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        for member in hint:
            if text == str(member.value):
                return member
        raise ValueError("expected one of " + ", ".join(str(m.value) for m in hint))
    if origin is typing.Literal:
        for value in args:
            if text == str(value):
                return value
        raise ValueError("expected one of " + ", ".join(str(a) for a in args))
    if hint is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("expected a boolean: true/false, yes/no, on/off or 1/0")
    if hint is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number, e.g. 1048576") from None
    if hint is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number, e.g. 2.5") from None
    if hint is dict or origin in (dict, Mapping):
        return _convert_mapping(text)
    if hint in (list, tuple) or origin in (list, tuple):
        items = split_list(text)
        return tuple(items) if tuple in (hint, origin) else items
    return text


def _convert_mapping(text: str) -> dict[str, Any]:
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value
    result: dict[str, Any] = {}
    for item in re.split(r"[,\n]", text):
        item = item.strip()
        if not item:
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{item!r} is not key=value (e.g. cache_tracker=false)")
        raw = raw.strip()
        try:
            result[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            result[key.strip()] = raw
    return result


def split_list(text: str) -> list[str]:
    """Split a list setting at commas, spaces and newlines; empty items dropped."""
    return [item for item in re.split(r"[,\s]+", text) if item]


def parse_trackers(
    entries: str | list[str] | tuple[str, ...], source: str
) -> dict[str, str]:
    """Parse ``NAME=TRACKER_HOME`` entries into ``{name: home}``.

    :param entries: one text with entries separated by commas or newlines
        (``"bugs=/srv/bugs,support=/srv/support"``), or a list of entries.
    :param source: what to name in errors, e.g. ``"ROUNDUP_TRACKERS"``.
    :raises ConfigError: an entry without ``=``, a name that is not one URL
        path segment of letters, digits and ``-._~``, a name given twice, or
        no entry at all.
    """
    if isinstance(entries, str):
        items = [item for item in re.split(r"[,\n]", entries) if item.strip()]
    else:
        items = list(entries)
    trackers: dict[str, str] = {}
    example = "bugs=/srv/roundup/bugs,support=/srv/roundup/support"
    for item in items:
        name, sep, home = (part.strip() for part in item.partition("="))
        if not sep or not home:
            raise ConfigError(
                f"{source}: {item.strip()!r} is not NAME=TRACKER_HOME; "
                f"write e.g. {example}"
            )
        if not MOUNT_NAME.match(name) or name in (".", ".."):
            raise ConfigError(
                f"{source}: tracker name {name!r} cannot be a URL path segment: "
                "use letters, digits and - . _ ~ only (e.g. bugs)"
            )
        if name in trackers:
            raise ConfigError(f"{source}: tracker name {name!r} is given twice")
        trackers[name] = os.path.expanduser(home)
    if not trackers:
        raise ConfigError(f"{source} names no tracker: write e.g. {example}")
    return trackers
