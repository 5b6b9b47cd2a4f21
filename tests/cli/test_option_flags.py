"""Tests of roundup_wsgi.cli.option_flags: ``serve``'s flags made from the
options table."""

from __future__ import annotations

import argparse

import pytest

from roundup_wsgi.cli.option_flags import GROUP_TITLE, add_option_flags
from roundup_wsgi.options import OPTIONS


class RefusedError(Exception):
    """What the test parser raises instead of exiting."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise RefusedError(message)


@pytest.fixture
def parser() -> Parser:
    made = Parser(prog="test")
    add_option_flags(made)
    return made


def test_every_option_with_a_flag_is_in_one_group(parser: Parser) -> None:
    (group,) = [g for g in parser._action_groups if g.title == GROUP_TITLE]
    flags = [action.option_strings[0] for action in group._group_actions]
    assert flags == [option.cli_flag for option in OPTIONS if option.cli_flag]


def test_defaults_are_the_tables(parser: Parser) -> None:
    args = parser.parse_args([])
    for option in OPTIONS:
        if option.cli_flag:
            assert getattr(args, option.name) == option.default, option.name


def test_booleans_get_a_no_flag_and_lists_repeat(parser: Parser) -> None:
    args = parser.parse_args(
        [
            *("--no-static-fast-path", "--write-mode", "stream"),
            *("--trusted-proxy", "10.0.0.1", "--trusted-proxy", "::1"),
        ]
    )
    assert args.static_fast_path is False
    assert args.trusted_proxies == ["10.0.0.1", "::1"]
    assert args.write_mode == "stream"
    assert "(repeatable)" in parser.format_help()


def test_a_bad_value_names_the_flag_and_the_values(parser: Parser) -> None:
    with pytest.raises(RefusedError) as refused:
        parser.parse_args(["--write-mode", "x"])
    assert str(refused.value).startswith("argument --write-mode: 'x': expected")
    with pytest.raises(RefusedError) as refused:
        parser.parse_args(["--reuse-db-max", "many"])
    assert str(refused.value).startswith("argument --reuse-db-max: 'many': ")
