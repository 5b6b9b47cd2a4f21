"""Tests of roundup_wsgi.cli.serve: ``roundup-wsgi serve``.

Most tests call :func:`roundup_wsgi.cli.main` in-process with a fake
waitress server whose ``run()`` raises KeyboardInterrupt (Ctrl-C), so it
returns at once.  Slow tests run the real command as a subprocess.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import admin_password_verifies, error_line, the_error
from helpers.servers import ServerProcess, free_port
from helpers.wsgi import FakeServer
from roundup import instance
from webtest import TestApp

from roundup_wsgi import cli
from roundup_wsgi.cli import demo
from roundup_wsgi.tracker import tracker_web

#: urllib opener that ignores any ``*_proxy`` environment variables.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- serve: errors -----------------------------------------------------------


def test_serve_missing_home(
    tmp_path: Path, servers_made: list[FakeServer], capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "nowhere"
    assert cli.main(["serve", str(home)]) == 2
    line = error_line(capsys)
    assert f"{home} does not exist" in line
    assert f"roundup-wsgi init {home}" in line


def test_serve_directory_that_is_not_a_tracker(
    tmp_path: Path, servers_made: list[FakeServer], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", str(tmp_path)]) == 2
    line = error_line(capsys)
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
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
    edit: Callable[[str], str],
    named: str,
) -> None:
    home = make_tracker("http://127.0.0.1:8080/")
    config = home / "config.ini"
    config.write_text(edit(config.read_text()))
    assert cli.main(["serve", str(home)]) == 2
    line = error_line(capsys)
    assert f"cannot read {config}" in line
    assert named in line
    assert "fix that setting or line in config.ini" in line


def test_serve_port_in_use(
    make_tracker: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        home = make_tracker(f"http://127.0.0.1:{port}/")
        assert cli.main(["serve", str(home), "--port", str(port)]) == 2
    line = error_line(capsys)
    assert f"cannot listen on 127.0.0.1:{port}" in line
    assert "--port" in line


# --- serve: the demo tracker -------------------------------------------------


def test_serve_creates_the_demo_and_prints_passwords_once(
    in_tmp: Path,
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = in_tmp / "trackers" / "demo"
    assert cli.main(["serve", "--port", "8123", "--admin-password", "pw"]) == 0
    first = capsys.readouterr().out
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

    assert cli.main(["serve", "--port", "8123"]) == 0
    second = capsys.readouterr().out
    assert "created" not in second
    assert match.group(1) not in second
    assert f"Serving {home} at http://127.0.0.1:8123/" in second

    db = instance.open(str(home)).open("admin")
    try:
        assert len(db.issue.list()) == len(demo.SAMPLE_ISSUES)
        assert db.user.get(db.user.lookup("demo"), "password") == match.group(1)
    finally:
        db.close()


def test_serve_passes_options_to_waitress_and_stops_on_ctrl_c(
    in_tmp: Path,
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["serve", "--port", "8124", "--threads", "2", "--write-mode", "server"]
    assert cli.main(argv) == 0
    (server,) = servers_made
    assert server.options == {
        "host": "127.0.0.1",
        "port": 8124,
        "threads": 2,
        "ident": "roundup-wsgi",
    }
    assert server.closed
    out = capsys.readouterr().out
    assert "(waitress, 2 threads, write mode server)" in out
    assert out.endswith("Stopped.\n")


def test_serve_generates_the_demo_admin_password(
    in_tmp: Path,
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["serve"]) == 0
    match = re.search(r"log in as admin / (\S+) ", capsys.readouterr().out)
    assert match
    assert admin_password_verifies(in_tmp / "trackers" / "demo", match.group(1))


def test_serve_repoints_the_demo_at_a_new_port(
    in_tmp: Path,
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = in_tmp / "trackers" / "demo"
    assert cli.main(["serve", "--port", "8125"]) == 0
    capsys.readouterr()
    assert cli.main(["serve", "--port", "8126"]) == 0
    out, err = capsys.readouterr()
    assert (
        f"Demo tracker {home}: [tracker] web changed from "
        "http://127.0.0.1:8125/ to http://127.0.0.1:8126/"
    ) in out
    assert err == ""
    assert tracker_web(home) == "http://127.0.0.1:8126/"


def test_serve_refuses_a_demo_directory_that_is_not_a_tracker(
    in_tmp: Path, servers_made: list[FakeServer], capsys: pytest.CaptureFixture[str]
) -> None:
    home = in_tmp / "trackers" / "demo"
    home.mkdir(parents=True)
    (home / "stray.txt").write_text("left over")
    assert cli.main(["serve"]) == 2
    line = error_line(capsys)
    assert str(home) in line
    assert "delete it" in line


# --- serve: a user's tracker -------------------------------------------------


def test_serve_warns_when_tracker_web_differs(
    tracker_home: Path,
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["serve", str(tracker_home), "--port", "8127"]) == 0
    out, err = capsys.readouterr()
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
    make_tracker: Callable[[str], Path],
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = make_tracker("http://127.0.0.1:8128/")
    assert cli.main(["serve", str(home), "--port", "8128"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert f"Serving {home} at http://127.0.0.1:8128/" in out


# --- the real command ----------------------------------------------------------


@pytest.mark.slow
def test_serve_demo_with_waitress(tmp_path: Path) -> None:
    """``python -m roundup_wsgi.cli serve`` in an empty directory creates the
    demo and serves it; ServerProcess runs it with cwd ``log_dir`` and stops
    it by its PID (terminate, wait, kill) on leaving the ``with``."""
    log_dir = tmp_path / "run"
    port = free_port()
    command = [sys.executable, "-m", "roundup_wsgi", "serve"]
    command += ["--port", str(port), "--admin-password", "x"]
    with ServerProcess(
        command, port, log_dir, name="roundup-wsgi", ready_path="/issue"
    ) as server:
        with OPENER.open(server.url + "issue", timeout=10) as response:
            assert response.status == 200
            body = response.read().decode()
        stdout = server.stdout_log.read_text()
    assert (log_dir / "trackers" / "demo" / "config.ini").is_file()
    assert demo.SAMPLE_ISSUES[0].title in body
    assert f"at http://127.0.0.1:{port}/ (waitress" in stdout
    assert "log in as admin / x" in stdout


# --- issue 24: the public URL, the demo's config.ini, usage ---------------------

#: Runs the command with ``sys.argv[1]`` (a module name) made unimportable,
#: as when that optional package is not installed.
WITHOUT_MODULE = (
    "import sys; sys.modules[sys.argv.pop(1)] = None; "
    "from roundup_wsgi.cli import main; sys.exit(main())"
)


@pytest.mark.parametrize(
    ("flags", "module"), [(["--metrics"], "prometheus_client")], ids=["metrics"]
)
def test_a_failed_start_leaves_the_demo_config_byte_identical(
    tmp_path: Path, flags: list[str], module: str
) -> None:
    """The real command, a package it needs missing: it fails before the
    demo's [tracker] web (8080) is pointed at the new port."""
    home = tmp_path / "trackers" / "demo"
    demo.create_demo(home, web="http://127.0.0.1:8080/", admin_password="x")
    before = (home / "config.ini").read_bytes()
    command = [sys.executable, "-c", WITHOUT_MODULE, module, "serve"]
    command += ["--port", str(free_port()), *flags]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(f"roundup-wsgi: error: {' '.join(flags)} needs the ")
    assert f"{module} package" in done.stderr
    assert (home / "config.ini").read_bytes() == before


def test_serve_never_changes_a_tracker_the_user_made_at_the_demo_path(
    in_tmp: Path,
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = in_tmp / "trackers" / "demo"
    assert cli.main(["init", "trackers/demo", "--admin-password", "x"]) == 0
    before = (home / "config.ini").read_bytes()
    capsys.readouterr()
    assert cli.main(["serve", "--port", "8131"]) == 0
    out, err = capsys.readouterr()
    assert (home / "config.ini").read_bytes() == before
    assert "changed" not in out
    assert f"{home} has no {demo.DEMO_MARKER}" in err
    assert "web = http://127.0.0.1:8131/" in err  # the usual warning
    assert "[tracker] web: http://127.0.0.1:8080/" in out
    with pytest.raises(ValueError, match="not the demo tracker"):
        demo.repoint_demo(home, "http://127.0.0.1:8131/")


def test_serve_web_is_the_demos_public_url(
    in_tmp: Path,
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = in_tmp / "trackers" / "demo"
    argv = ["serve", "--host", "0.0.0.0", "--port", "8132"]
    assert cli.main([*argv, "--web", "https://bugs.example/tracker"]) == 2
    assert "its path must end in '/'" in capsys.readouterr().err
    assert not home.exists()  # nothing made before the arguments are checked

    assert cli.main([*argv, "--web", "https://bugs.example/"]) == 0
    out, err = capsys.readouterr()
    assert tracker_web(home) == "https://bugs.example/"
    assert "[tracker] web: https://bugs.example/" in out
    assert f"Serving {home} at https://bugs.example/ (waitress" in out
    assert err == ""

    # Without --web the wildcard host gets localhost, and a note says so.
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert "changed from https://bugs.example/ to http://localhost:8132/" in out
    assert "[tracker] web: http://localhost:8132/" in out
    assert "logins from other machines fail" in err
    assert "--web http://" in err


def test_serve_warns_when_it_mounts_a_tracker_elsewhere_than_its_web_path(
    make_tracker: Callable[[str], Path],
    servers_made: list[FakeServer],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = make_tracker("http://127.0.0.1:8133/bugs/")
    assert cli.main(["serve", str(home), "--port", "8133"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("roundup-wsgi: warning: ")
    assert "mounts the tracker at / (http://127.0.0.1:8133/)" in err
    assert "answer 404" in err
    assert f"roundup-wsgi serve bugs={home}" in err
    # Served where its web says: no warning.
    assert cli.main(["serve", f"bugs={home}", "--port", "8133"]) == 0
    assert capsys.readouterr().err == ""
    # Mounted under another name: the same warning as for another host.
    assert cli.main(["serve", f"support={home}", "--port", "8133"]) == 0
    err = capsys.readouterr().err
    assert "mounts the tracker at /support/" in err


def test_serve_logs_start_and_stop_at_info(
    in_tmp: Path,
    servers_made: list[FakeServer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="roundup_wsgi")
    assert cli.main(["serve", "--port", "8134", "--log-level", "info"]) == 0
    messages = [
        r.getMessage() for r in caplog.records if r.name == "roundup_wsgi.serve"
    ]
    assert messages[0].startswith("serving ")
    assert "at http://127.0.0.1:8134/" in messages[0]
    assert messages[-1] == "stopped"


def test_serve_logs_the_requests_it_waits_for_when_stopping(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A real waitress server, SIGTERM while a request is in progress."""
    import signal
    import threading

    import waitress

    from roundup_wsgi import health
    from roundup_wsgi.cli import serve

    monkeypatch.setattr(health, "begin_stop", lambda: None)  # keep /-/ready
    caplog.set_level(logging.INFO, logger="roundup_wsgi")
    started = threading.Event()

    def slow(
        environ: dict[str, object], start_response: Callable[..., object]
    ) -> list[bytes]:
        started.set()
        time.sleep(1.5)  # the stop signal may wait for a 0.5 s poll
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    port = free_port()
    server = waitress.create_server(slow, host="127.0.0.1", port=port, threads=1)
    answers: list[int] = []

    def fetch() -> None:
        with OPENER.open(f"http://127.0.0.1:{port}/", timeout=10) as response:
            answers.append(response.status)

    client = threading.Thread(target=fetch)
    client.start()
    threading.Thread(
        target=lambda: started.wait(10) and os.kill(os.getpid(), signal.SIGTERM)
    ).start()
    serve._serve_until_stopped(server, 5.0)
    client.join(10)
    assert answers == [200]
    messages = [
        r.getMessage() for r in caplog.records if r.name == "roundup_wsgi.serve"
    ]
    assert "stopping: no new connections accepted" in messages
    assert "stopping: waiting for 1 request in progress (at most 5 s)" in messages


# --- several trackers, trusted proxies ------------------------------------------


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
