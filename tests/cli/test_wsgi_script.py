"""Tests of the deployment parts of the ``roundup-wsgi`` command: ``serve``
with several trackers and trusted proxies, ``wsgi-script`` and ``check``."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.wsgi import FakeServer
from webtest import TestApp

import roundup_wsgi.app
from roundup_wsgi import RequestDispatcher, cli
from roundup_wsgi.cli.wsgi_script import wsgi_script


def the_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The last stderr line, asserted to be a ``roundup-wsgi: error:``."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith("roundup-wsgi: error: "), err
    return last


def test_serve_several_trackers(
    make_tracker: Callable[[str], Path],
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    bugs = make_tracker("http://127.0.0.1:8130/bugs/")
    other = make_tracker("http://127.0.0.1:8130/elsewhere/")
    argv = ["serve", f"bugs={bugs}", f"support={other}", "--port", "8130"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert f"Serving bugs={bugs}, support={other} at http://127.0.0.1:8130/" in out
    # Only the tracker whose [tracker] web is not its mount point is warned of.
    assert err.count("warning") == 1
    assert "set 'web = http://127.0.0.1:8130/support/'" in err
    web = TestApp(servers_made[0].app, extra_environ={"HTTP_HOST": "x"})
    assert "Sample issue one" in web.get("/bugs/issue1").text
    assert 'href="/support/"' in web.get("/").text


def test_serve_with_a_trusted_proxy(
    make_tracker: Callable[[str], Path], servers_made: list[FakeServer]
) -> None:
    home = make_tracker("http://127.0.0.1:8131/bugs/")
    argv = ["serve", f"bugs={home}", "--port", "8131", "--trusted-proxy", "10.0.0.0/8"]
    assert cli.main(argv) == 0
    app = TestApp(servers_made[0].app)
    moved = app.get(
        "/bugs",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bugs.example"},
        extra_environ={"REMOTE_ADDR": "10.2.3.4"},
    )
    assert moved.headers["Location"] == "https://bugs.example/bugs/"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--trusted-proxy", "proxy.lan"],
            "--trusted-proxy: trusted proxy 'proxy.lan'",
        ),
        (["bugs=/nowhere"], "bugs=/nowhere: tracker home /nowhere does not exist"),
        (["bugs={home}", "bugs={home}"], "'bugs' is given twice"),
        (["bugs={home}", "{home}"], "give every tracker as NAME=TRACKER_HOME"),
        (["{home}", "{home}"], "serve takes one TRACKER_HOME, or NAME=TRACKER_HOME"),
    ],
)
def test_serve_errors(
    tracker_home: Path,
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    args = [item.format(home=tracker_home) for item in extra]
    if not any("=" in item or item == str(tracker_home) for item in args):
        args.insert(0, str(tracker_home))
    assert cli.main(["serve", *args]) == 2
    assert message in the_error(capsys)


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


def test_check_passes(tracker_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", str(tracker_home), "--url", "http://localhost"]) == 0
    out = capsys.readouterr().out
    assert out.count("\nok  ") + out.startswith("ok  ") == 9
    assert "ok    template utils: 0 registered by extensions, no name twice" in out
    assert out.rstrip().endswith("All checks passed.")


def test_check_fails_with_the_fix(
    tracker_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://bugs.example/tracker/"
    assert cli.main(["check", str(tracker_home), "--url", url]) == 1
    out = capsys.readouterr().out
    assert "FAIL  tracker web: [tracker] web = http://localhost/" in out
    assert f"      fix: set 'web = {url}' in the [tracker] section" in out
    assert out.rstrip().endswith("1 check failed.")


def test_check_missing_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", str(tmp_path / "none")]) == 1
    assert "roundup-wsgi init" in capsys.readouterr().out
