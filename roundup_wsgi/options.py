"""The options table: every setting of an application, in one place.

Like waitress's ``adjustments.py``, :data:`OPTIONS` lists each option once
with its name, type, default and help text.  Everything that configures an
application reads it:

* :class:`~roundup_wsgi.dispatcher.RequestDispatcher` takes the
  ``"dispatcher"`` options as keyword arguments, with these defaults (a
  test keeps its signature and the table equal);
* :func:`~roundup_wsgi.app.make_app` takes all of them;
* ``roundup_wsgi.app:application`` reads ``ROUNDUP_WSGI_<NAME>`` variables,
  PasteDeploy ini files read ``name = value`` lines, and ``roundup-wsgi
  serve`` has a flag for each (``--write-mode``, ``--debug``, ...): all
  three convert the text with :func:`convert` to the option's type.
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal

from .compression import DEFAULT_STATIC_CACHE_SIZE
from .request_body import DEFAULT_MAX_REQUEST_BODY
from .wsgi.mount import TRACKER_NAME
from .wsgi.requestid import DEFAULT_HEADER as DEFAULT_REQUEST_ID_HEADER
from .wsgi.responsecache import DEFAULT_MAX_BYTES

__all__ = [
    "APP_OPTIONS",
    "DISPATCHER_OPTIONS",
    "OPTIONS",
    "WRITE_MODES",
    "ConfigError",
    "Option",
    "WriteMode",
    "convert",
    "options_from_text",
    "parse_trackers",
    "split_list",
]

#: ``reuse_db_idle``'s default, in seconds (:mod:`roundup_wsgi.dbpool`).
DEFAULT_IDLE_LIMIT = 60.0
#: ``reuse_db_max``'s default: databases kept per tracker and process.
DEFAULT_MAX_KEPT = 32

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("", "none")

#: ``"auto"`` (the default): a response whose length Roundup declared
#: (``Content-Length``: every page, file, REST and XML-RPC answer) is held
#: whole as in ``"buffer"`` (an error before its end is a clean 500 page);
#: one of unknown length (the CSV export) is streamed from its first write
#: as in ``"stream"``.
#: Without greenlet it falls back to ``"buffer"`` (logged).
#: ``"buffer"``: the body is collected and returned as the app_iter; the
#: server's write callable is never used (the same bytes on every server).
#: ``"server"``: Roundup's writes go to the server's write callable when
#: ``start_response`` returns one, else to the buffer.
#: ``"stream"``: ``Client.main`` runs in a greenlet and each write is sent
#: at once as a chunk of the app_iter (:mod:`roundup_wsgi.stream`).
WriteMode = Literal["auto", "buffer", "server", "stream"]
#: The write modes, the first the default.
WRITE_MODES: tuple[str, ...] = typing.get_args(WriteMode)


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
    :param help: one line for ``--help`` and the README.
    :param scope: ``"dispatcher"`` (a keyword of ``RequestDispatcher``, for
        each tracker) or ``"app"`` (of :func:`~roundup_wsgi.app.make_app`,
        around all trackers).
    :param flag: the ``serve`` flag, if not the one derived from the name;
        ``""``: no flag.
    """

    name: str
    hint: Any
    default: Any
    help: str
    scope: Literal["dispatcher", "app"] = "dispatcher"
    flag: str | None = None

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
        "auto",
        "how response bodies reach the server: auto (pages whole, exports "
        "streamed), buffer, server or stream",
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
    ),
    Option(
        "static_cache_size",
        int,
        DEFAULT_STATIC_CACHE_SIZE,
        "bytes of compressed static files (@@file/) kept in memory, least "
        "recently used evicted (0: none)",
    ),
    Option(
        "static_response_cache_size",
        int,
        DEFAULT_MAX_BYTES,
        "bytes of whole static-file answers (@@file/) kept in memory and "
        "given again while the file is unchanged (0: none)",
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
    ),
    Option(
        "reuse_db_idle",
        float,
        DEFAULT_IDLE_LIMIT,
        "seconds a kept database may sit unused; it is closed at most 1.5 "
        "times that after its last request",
    ),
    Option(
        "trusted_proxies",
        list[str] | None,
        None,
        "addresses or networks of reverse proxies whose X-Forwarded-* "
        "headers are honoured, e.g. 127.0.0.1 ::1",
        scope="app",
        flag="--trusted-proxy",
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
    ),
    Option(
        "drain_file",
        str | None,
        None,
        "while this file exists /-/ready answers 503 (check 'drain'): take "
        "the server out of a load balancer before a restart",
        scope="app",
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
    ),
    Option(
        "send_request_id",
        bool,
        False,
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
    empty text or ``none`` is ``None``; ``Literal[...]``: one of the values;
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
        if not TRACKER_NAME.match(name) or name in (".", ".."):
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
