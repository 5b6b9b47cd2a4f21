"""Dispatcher options from text: environment variables, ini files, the command line.

The options :class:`~roundup_wsgi.dispatcher.RequestDispatcher` accepts are
read from its signature (every keyword parameter after ``home``) with their
type hints, so an option added to the dispatcher is accepted by
``ROUNDUP_WSGI_<NAME>`` variables and PasteDeploy ini files without edits
here.  :func:`convert` turns the text of a setting into the hinted type.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ConfigError",
    "Option",
    "convert",
    "dispatcher_options",
    "parse_trackers",
    "split_list",
]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_NONE = ("", "none")

#: A tracker name in a URL: one path segment of URL-unreserved characters
#: (RFC 3986, section 2.3), so it needs no quoting.
TRACKER_NAME = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$")


class ConfigError(RuntimeError):
    """Wrong or missing configuration found at start-up.

    The message names the environment variable or ini option and says how to
    fix it.
    """


class Option(typing.NamedTuple):
    """One keyword option of ``RequestDispatcher``: its name, type hint
    (``str`` when it has none) and default value."""

    name: str
    hint: Any
    default: Any


def dispatcher_options() -> dict[str, Option]:
    """Return the keyword options of ``RequestDispatcher``, by name.

    Read from its ``__init__`` signature: every parameter but ``self`` and
    ``home``.  A parameter whose hint cannot be evaluated gets the type of its
    default value (``str`` if the default is ``None``).
    """
    from .dispatcher import RequestDispatcher

    init = RequestDispatcher.__init__
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # e.g. a hint imported only under TYPE_CHECKING
        hints = {}
    found: dict[str, Option] = {}
    for name, param in inspect.signature(init).parameters.items():
        if name in ("self", "home") or param.kind in (
            param.VAR_POSITIONAL,
            param.VAR_KEYWORD,
        ):
            continue
        default = None if param.default is param.empty else param.default
        hint = hints.get(name)
        if hint is None:
            hint = str if default is None else type(default)
        found[name] = Option(name, hint, default)
    return found


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
