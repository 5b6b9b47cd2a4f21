"""Tests of roundup_wsgi.cli.arguments: the subcommands' parsers, their
usage errors and help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from roundup_wsgi import cli


def test_serve_unknown_option_points_to_serves_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["serve", "--frobnicate"]) == 2
    assert capsys.readouterr().err == (
        "roundup-wsgi serve: error: unrecognized arguments: --frobnicate "
        "(see roundup-wsgi serve --help)\n"
    )
    assert cli.main(["init", "x", "--frobnicate"]) == 2
    assert "(see roundup-wsgi init --help)" in capsys.readouterr().err


def test_init_database_options_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["init", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for flag, setting in [
        ("--db-host H", "[rdbms] host"),
        ("--db-port P", "[rdbms] port"),
        ("--db-name N", "[rdbms] name"),
        ("--db-user U", "[rdbms] user"),
        ("--db-password P", "[rdbms] password"),
    ]:
        assert re.search(rf"{re.escape(flag)} \w[^-]*\({re.escape(setting)}", text)


def test_docs_serve_synopsis_names_every_write_mode() -> None:
    from roundup_wsgi.dispatcher import WRITE_MODES

    page = Path(__file__).resolve().parents[2] / "docs" / "command.rst"
    synopsis = next(
        line
        for line in page.read_text().splitlines()
        if line.startswith("``roundup-wsgi serve [TRACKER_HOME]")
    )
    modes = re.search(r"--write-mode ([a-z|]+)", synopsis)
    assert modes
    assert sorted(modes.group(1).split("|")) == sorted(WRITE_MODES)
