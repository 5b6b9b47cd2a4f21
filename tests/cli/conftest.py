"""Fixtures of the ``roundup-wsgi`` command's tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import error_line
from helpers.wsgi import FakeServer

from roundup_wsgi import cli


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run the test in ``tmp_path``, where the demo is ``trackers/demo``."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def serve(
    servers_made: list[FakeServer], capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[str, str]]:
    """``roundup-wsgi serve *argv`` on fake waitress servers
    (``servers_made``, stopped at once as by Ctrl-C): asserts the exit
    status (keyword ``status``, default 0), returns ``(stdout, stderr)``."""

    def run(*argv: str, status: int = 0) -> tuple[str, str]:
        assert cli.main(["serve", *argv]) == status
        out, err = capsys.readouterr()
        return out, err

    return run


@pytest.fixture
def serve_error(
    servers_made: list[FakeServer], capsys: pytest.CaptureFixture[str]
) -> Callable[..., str]:
    """``roundup-wsgi serve *argv`` that fails: exit status 2, nothing on
    stdout, one ``roundup-wsgi: error:`` line on stderr, returned."""

    def run(*argv: str) -> str:
        assert cli.main(["serve", *argv]) == 2
        return error_line(capsys)

    return run
