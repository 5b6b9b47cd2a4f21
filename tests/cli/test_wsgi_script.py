"""Tests of roundup_wsgi.cli.wsgi_script: ``roundup-wsgi wsgi-script``, the
mod_wsgi script it prints."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.cli import the_error

import roundup_wsgi.app
from roundup_wsgi import RequestDispatcher, cli
from roundup_wsgi.cli.wsgi_script import wsgi_script


def test_wsgi_script_prints_the_script(
    tracker_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["wsgi-script", str(tracker_home)]) == 0
    out = capsys.readouterr().out
    assert out == wsgi_script(str(tracker_home))
    # Run it as mod_wsgi would, with no tracker in the environment.
    namespace: dict[str, Any] = {}
    before = os.environ.get("ROUNDUP_TRACKER_HOME")
    with pytest.MonkeyPatch.context() as patch:
        # Empty (as if unset) and restored afterwards: the script sets one.
        patch.setenv("ROUNDUP_TRACKER_HOME", "")
        patch.setenv("ROUNDUP_TRACKERS", "")
        importlib.reload(roundup_wsgi.app)
        exec(compile(out, "roundup.wsgi", "exec"), namespace)
    importlib.reload(roundup_wsgi.app)
    dispatcher = roundup_wsgi.app.find_layer(
        namespace["application"], RequestDispatcher
    )
    assert dispatcher.home == str(tracker_home)
    assert os.environ.get("ROUNDUP_TRACKER_HOME") == before  # not leaked


def test_wsgi_script_for_several_trackers(
    make_tracker: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bugs = make_tracker("http://localhost/bugs/")
    assert cli.main(["wsgi-script", f"bugs={bugs}"]) == 0
    out = capsys.readouterr().out
    assert f'os.environ["ROUNDUP_TRACKERS"] = "bugs={bugs}"' in out


def test_wsgi_script_refuses_a_non_tracker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["wsgi-script", str(tmp_path)]) == 2
    assert "is not a Roundup tracker home" in the_error(capsys)
