"""Tests of roundup_wsgi.cli.output: what the command prints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roundup_wsgi import cli
from roundup_wsgi.cli.output import (
    EXIT_ERROR,
    PROG,
    CliError,
    config_path,
    note,
    one_line,
    plural,
    warn,
)


def test_note_and_warn_go_to_stderr_with_the_prefix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    note("the demo is at trackers/demo")
    warn("[tracker] web differs")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "roundup-wsgi: note: the demo is at trackers/demo\n"
        "roundup-wsgi: warning: [tracker] web differs\n"
    )


def test_one_line_collapses_whitespace() -> None:
    error = RuntimeError('could not connect\n\tIs the server running on "db"?\n')
    assert one_line(error) == 'could not connect Is the server running on "db"?'


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 threads"), (1, "1 thread"), (4, "4 threads")]
)
def test_plural(count: int, text: str) -> None:
    assert plural(count, "thread") == text


def test_config_path_is_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert config_path("bugs") == os.path.join(str(tmp_path), "bugs", "config.ini")


def test_a_cli_error_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() prints a CliError as ``roundup-wsgi: error: ...`` and returns
    EXIT_ERROR (here from ``wsgi-script`` on a directory that is no tracker)."""
    assert issubclass(CliError, Exception)
    assert cli.main(["wsgi-script", str(tmp_path)]) == EXIT_ERROR == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"{PROG}: error: ")
    assert "is not a Roundup tracker home" in line
