"""Tests of roundup_wsgi.cli.targets: what ``roundup-wsgi serve`` serves,
the demo made on first run, and the warnings where a tracker's ``[tracker]
web`` is not where it is served."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import admin_password_verifies
from helpers.wsgi import FakeServer
from roundup import instance
from webtest import TestApp

from roundup_wsgi import cli
from roundup_wsgi.cli import demo
from roundup_wsgi.cli.targets import Targets, prepare_targets
from roundup_wsgi.tracker import tracker_web

#: The ``serve`` fixture (tests/cli/conftest.py): ``serve(*argv, status=0)``.
Serve = Callable[..., tuple[str, str]]


def test_serve_missing_home(tmp_path: Path, serve_error: Callable[..., str]) -> None:
    home = tmp_path / "nowhere"
    line = serve_error(str(home))
    assert f"{home} does not exist" in line
    assert f"roundup-wsgi init {home}" in line


def test_serve_directory_that_is_not_a_tracker(
    tmp_path: Path, serve_error: Callable[..., str]
) -> None:
    line = serve_error(str(tmp_path))
    assert f"{tmp_path} is not a Roundup tracker home" in line
    assert "no config.ini" in line
    assert f"roundup-wsgi init {tmp_path}" in line


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda text: text.replace("\nweb = ", "\nweb = not-a-url\n#"), "TRACKER_WEB"),
        (lambda text: text + "\nthis is not ini syntax\n", "parsing errors"),
    ],
    ids=["bad-value", "bad-syntax"],
)
def test_serve_broken_config(
    make_tracker: Callable[[str], Path],
    serve_error: Callable[..., str],
    edit: Callable[[str], str],
    named: str,
) -> None:
    home = make_tracker("http://127.0.0.1:8080/")
    config = home / "config.ini"
    config.write_text(edit(config.read_text()))
    line = serve_error(str(home))
    assert f"cannot read {config}" in line
    assert named in line
    assert "fix that setting or line in config.ini" in line


def test_serve_creates_the_demo_and_prints_passwords_once(
    in_tmp: Path, serve: Serve
) -> None:
    home = in_tmp / "trackers" / "demo"
    first, _ = serve("--port", "8123", "--admin-password", "pw")
    match = re.search(
        rf"^Demo tracker created at {re.escape(str(home))}; "
        r"log in as admin / pw \(or demo / (\S+)\)$",
        first,
        re.MULTILINE,
    )
    assert match, first
    assert (
        f"Serving {home} at http://127.0.0.1:8123/ (waitress, 4 threads, "
        "write mode auto); press Ctrl-C to stop"
    ) in first
    assert admin_password_verifies(home, "pw")

    second, _ = serve("--port", "8123")
    assert "created" not in second
    assert match.group(1) not in second
    assert f"Serving {home} at http://127.0.0.1:8123/" in second

    db = instance.open(str(home)).open("admin")
    try:
        assert len(db.issue.list()) == len(demo.SAMPLE_ISSUES)
        assert db.user.get(db.user.lookup("demo"), "password") == match.group(1)
    finally:
        db.close()


def test_serve_generates_the_demo_admin_password(in_tmp: Path, serve: Serve) -> None:
    match = re.search(r"log in as admin / (\S+) ", serve()[0])
    assert match
    assert admin_password_verifies(in_tmp / "trackers" / "demo", match.group(1))


def test_serve_refuses_a_demo_directory_that_is_not_a_tracker(
    in_tmp: Path, serve_error: Callable[..., str]
) -> None:
    home = in_tmp / "trackers" / "demo"
    home.mkdir(parents=True)
    (home / "stray.txt").write_text("left over")
    line = serve_error()
    assert str(home) in line
    assert "delete it" in line


def test_serve_warns_when_tracker_web_differs(tracker_home: Path, serve: Serve) -> None:
    out, err = serve(str(tracker_home), "--port", "8127")
    assert err.startswith("roundup-wsgi: warning: ")
    for expected in (
        "http://localhost/",  # tracker_home's [tracker] web
        "http://127.0.0.1:8127/",  # where it is served
        "CSRF",
        f"in the [tracker] section of {tracker_home / 'config.ini'}",
        "--host localhost --port 80",
    ):
        assert expected in err
    assert f"Serving {tracker_home} at http://127.0.0.1:8127/" in out
    assert tracker_web(tracker_home) == "http://localhost/"  # not changed


def test_serve_does_not_warn_when_tracker_web_matches(
    make_tracker: Callable[[str], Path], serve: Serve
) -> None:
    home = make_tracker("http://127.0.0.1:8128/")
    out, err = serve(str(home), "--port", "8128")
    assert err == ""
    assert f"Serving {home} at http://127.0.0.1:8128/" in out


def test_serve_never_changes_a_tracker_the_user_made_at_the_demo_path(
    in_tmp: Path,
    serve: Serve,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = in_tmp / "trackers" / "demo"
    assert cli.main(["init", "trackers/demo", "--admin-password", "x"]) == 0
    before = (home / "config.ini").read_bytes()
    capsys.readouterr()
    out, err = serve("--port", "8131")
    assert (home / "config.ini").read_bytes() == before
    assert "changed" not in out
    assert f"{home} has no {demo.DEMO_MARKER}" in err
    assert "web = http://127.0.0.1:8131/" in err  # the usual warning
    assert "[tracker] web: http://127.0.0.1:8080/" in out
    with pytest.raises(ValueError, match="not the demo tracker"):
        demo.repoint_demo(home, "http://127.0.0.1:8131/")


def test_serve_warns_when_it_mounts_a_tracker_elsewhere_than_its_web_path(
    make_tracker: Callable[[str], Path], serve: Serve
) -> None:
    home = make_tracker("http://127.0.0.1:8133/bugs/")
    _, err = serve(str(home), "--port", "8133")
    assert err.startswith("roundup-wsgi: warning: ")
    assert "mounts the tracker at / (http://127.0.0.1:8133/)" in err
    assert "answer 404" in err
    assert f"roundup-wsgi serve bugs={home}" in err
    # Served where its web says: no warning.
    assert serve(f"bugs={home}", "--port", "8133")[1] == ""
    # Mounted under another name: the same warning as for another host.
    _, err = serve(f"support={home}", "--port", "8133")
    assert "mounts the tracker at /support/" in err


def test_serve_several_trackers(
    make_tracker: Callable[[str], Path],
    serve: Serve,
    servers_made: list[FakeServer],
) -> None:
    bugs = make_tracker("http://127.0.0.1:8130/bugs/")
    other = make_tracker("http://127.0.0.1:8130/elsewhere/")
    out, err = serve(f"bugs={bugs}", f"support={other}", "--port", "8130")
    assert f"Serving bugs={bugs}, support={other} at http://127.0.0.1:8130/" in out
    # Only the tracker whose [tracker] web is not its mount point is warned of.
    assert err.count("warning") == 1
    assert "set 'web = http://127.0.0.1:8130/support/'" in err
    web = TestApp(servers_made[0].app, extra_environ={"HTTP_HOST": "x"})
    assert "Sample issue one" in web.get("/bugs/issue1").text
    assert 'href="/support/"' in web.get("/").text


def test_prepare_targets_of_several_trackers(
    make_tracker: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bugs = make_tracker("https://bugs.example/bugs/")
    targets = prepare_targets(
        None, {"bugs": str(bugs)}, "https://bugs.example/", "http://x/", None
    )
    assert targets == Targets(
        {"bugs": str(bugs)},
        f"bugs={bugs}",
        "https://bugs.example/",
        {"bugs": "https://bugs.example/bugs/"},
    )
    assert capsys.readouterr().err == ""


def test_prepare_targets_behind_a_unix_socket_compares_nothing(
    tracker_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --web with --unix-socket: the public URL is not known, so the
    [tracker] web (http://localhost/) is neither compared nor changed."""
    targets = prepare_targets(str(tracker_home), {}, None, "unix:/run/r.sock", "pw")
    assert targets == Targets(
        str(tracker_home),
        str(tracker_home),
        "http://localhost/",
        {"": "http://localhost/"},
    )
    assert capsys.readouterr().err == (
        "roundup-wsgi: note: --admin-password ignored: it only sets up the demo "
        "tracker\n"
    )
