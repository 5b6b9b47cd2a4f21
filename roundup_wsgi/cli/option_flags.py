"""``serve``'s flags of the application options, made from the options
table :data:`roundup_wsgi.options.OPTIONS`: an option added there with a
``cli_flag`` gets its flag here without edits."""

from __future__ import annotations

import argparse
import enum
import typing
from collections.abc import Callable
from typing import Any

from ..options import OPTIONS, Option, convert

__all__ = ["add_option_flags"]

#: The title of ``serve --help``'s group of these flags.
GROUP_TITLE = "application options (also ROUNDUP_WSGI_<NAME> for roundup_wsgi.app)"


def add_option_flags(parser: argparse.ArgumentParser) -> None:
    """Add a group with the flag of every table option that has a
    ``cli_flag``, in the table's order; each stores the option's name."""
    group = parser.add_argument_group(GROUP_TITLE)
    for option in OPTIONS:
        if option.cli_flag:
            _add_option_flag(group, option)


def _add_option_flag(group: Any, option: Option) -> None:
    """Add the flag of one table option: ``--name``/``--no-name`` for a
    boolean, a repeatable flag for a list, ``choices`` for a ``Literal`` or
    an :class:`enum.Enum`,
    otherwise a value converted by :func:`~roundup_wsgi.options.convert`."""
    kwargs: dict[str, Any] = {"dest": option.name, "default": option.default}
    help_text = option.help
    origin = typing.get_origin(option.hint)
    if option.hint is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
    elif _is_list(option.hint):
        kwargs.update(action="append", metavar="ADDR")
        help_text += " (repeatable)"
    elif origin is typing.Literal:
        kwargs["choices"] = typing.get_args(option.hint)
    elif isinstance(option.hint, type) and issubclass(option.hint, enum.Enum):
        kwargs.update(type=_converter(option), choices=tuple(option.hint))
    else:
        kwargs.update(type=_converter(option), metavar=option.name.upper())
    if option.default is not None and option.hint is not bool:
        help_text += " (default: %(default)s)"
    group.add_argument(option.cli_flag, help=help_text, **kwargs)


def _is_list(hint: Any) -> bool:
    return any(
        typing.get_origin(part) is list or part is list
        for part in (hint, *typing.get_args(hint))
    )


def _converter(option: Option) -> Callable[[str], Any]:
    def convert_text(text: str) -> Any:
        try:
            return convert(text, option.hint)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None

    convert_text.__name__ = option.name  # argparse names it in errors
    return convert_text
