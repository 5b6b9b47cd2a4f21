"""Option values: their types, their checks and their conversion from text.

:class:`WriteMode` is the ``write_mode`` option's type; the ``check_*``
functions validate a value given in Python (the table
:data:`roundup_wsgi.options.OPTIONS` names each option's check); the
``DEFAULT_*`` constants are the defaults the table gives (and the checks
cite).  :func:`convert` turns the text of an environment variable, an ini
option or a ``roundup-wsgi serve`` flag into a value of an option's type;
:func:`parse_trackers` reads ``NAME=TRACKER_HOME`` entries;
:class:`ConfigError` is the start-up error naming the setting and the fix.
"""

from __future__ import annotations

import enum
import json
import os
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

from .wsgi.accesslog import FORMATS as ACCESS_LOG_FORMATS
from .wsgi.mount import MOUNT_NAME
from .wsgi.proxy import parse_networks
from .wsgi.responsecache import DEFAULT_MAX_BYTES

__all__ = [
    "DEFAULT_AUTH_MEMO_LIFETIME",
    "DEFAULT_AUTH_MEMO_SIZE",
    "DEFAULT_IDLE_LIMIT",
    "DEFAULT_MAX_KEPT",
    "WRITE_MODES",
    "ConfigError",
    "WriteMode",
    "check_access_log_format",
    "check_auth_memo_lifetime",
    "check_auth_memo_size",
    "check_drain_file",
    "check_networks",
    "check_reuse_db_idle",
    "check_reuse_db_max",
    "check_static_response_cache_size",
    "check_trusted_proxies",
    "convert",
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


class ConfigError(RuntimeError):
    """Wrong or missing configuration found at start-up.

    The message names the environment variable or ini option and says how to
    fix it.
    """


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


def check_static_response_cache_size(size: Any) -> int:
    """Validate ``static_response_cache_size`` (bytes >= 0), else ``ValueError``."""
    if not isinstance(size, int) or size < 0:
        raise ValueError(
            f"static_response_cache_size={size!r} is "
            "not a size: give the bytes of static-file answers to keep, "
            f"e.g. {DEFAULT_MAX_BYTES} (0: keep none)"
        )
    return size


def check_reuse_db_max(count: Any) -> int:
    """Validate ``reuse_db_max`` (a count >= 0), else ``ValueError``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(
            f"reuse_db_max={count!r} is not a count: give the most "
            f"databases kept open, e.g. {DEFAULT_MAX_KEPT} (0: none)"
        )
    return count


def check_reuse_db_idle(seconds: Any) -> float:
    """Validate ``reuse_db_idle`` (seconds >= 0), else ``ValueError``."""
    if not seconds >= 0:
        raise ValueError(
            f"reuse_db_idle={seconds!r} is not a duration: give the "
            f"seconds a kept database may sit unused, e.g. {DEFAULT_IDLE_LIMIT:g}"
        )
    return seconds  # type: ignore[no-any-return]


def check_auth_memo_lifetime(seconds: Any) -> float:
    """Validate ``auth_memo_lifetime`` (seconds >= 0; 0: off), else ``ValueError``."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(
            f"auth_memo_lifetime={seconds!r} is not a duration: give "
            f"seconds, e.g. {DEFAULT_AUTH_MEMO_LIFETIME:g} (0: off)"
        )
    if not seconds >= 0:  # NaN too
        raise ValueError(
            f"auth_memo_lifetime={seconds!r} must be positive: give "
            f"seconds, e.g. {DEFAULT_AUTH_MEMO_LIFETIME:g} (0: off)"
        )
    return seconds


def check_auth_memo_size(count: Any) -> int:
    """Validate ``auth_memo_size`` (a count >= 0; 0: off), else ``ValueError``."""
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


def check_networks(value: Any) -> tuple[str, ...] | None:
    """Addresses or networks as a tuple (a text split by :func:`split_list`)."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(split_list(value))
    return tuple(value)


def check_trusted_proxies(value: Any) -> tuple[str, ...] | None:
    """Validate ``trusted_proxies``: networks that parse, else ``ValueError``."""
    proxies = check_networks(value)
    if proxies is not None:
        parse_networks(proxies)  # a bad one is named as a trusted proxy
    return proxies


def check_drain_file(value: Any) -> str | None:
    """``drain_file`` as a ``str`` path (None: none)."""
    return None if value is None else os.fspath(value)


def check_access_log_format(value: Any) -> str:
    """Validate ``access_log_format``: ``combined`` or ``json``, else ``ValueError``."""
    if value not in ACCESS_LOG_FORMATS:
        raise ValueError(
            f"access_log_format={value!r} is unknown: use combined or json"
        )
    return value  # type: ignore[no-any-return]


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
        return _convert_union(text, args)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _one_of(text, list(hint), [member.value for member in hint])
    if origin is typing.Literal:
        return _one_of(text, list(args), list(args))
    if hint in (bool, int, float):
        return _convert_scalar(text, hint)
    if hint is dict or origin in (dict, Mapping):
        return _convert_mapping(text)
    if hint in (list, tuple) or origin in (list, tuple):
        items = split_list(text)
        return tuple(items) if tuple in (hint, origin) else items
    return text


def _convert_union(text: str, args: tuple[Any, ...]) -> Any:
    """``text`` as the first of ``args`` it fits (``None`` for ``none``)."""
    if type(None) in args and text.lower() in _NONE:
        return None
    errors = []
    for choice in args:
        if choice is type(None):
            continue
        try:
            return convert(text, choice)
        except ValueError as exc:
            errors.append(str(exc))
    raise ValueError("; or ".join(errors))


def _one_of(text: str, values: list[Any], texts: list[Any]) -> Any:
    """The value of ``values`` whose ``texts`` entry is ``text``."""
    for value, written in zip(values, texts, strict=True):
        if text == str(written):
            return value
    raise ValueError("expected one of " + ", ".join(str(t) for t in texts))


def _convert_scalar(text: str, hint: type) -> Any:
    """``text`` as a ``bool``, ``int`` or ``float``."""
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
    try:
        return float(text)
    except ValueError:
        raise ValueError("expected a number, e.g. 2.5") from None


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
