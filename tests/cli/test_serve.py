"""Tests of roundup_wsgi.cli.serve: ``roundup-wsgi serve``.

Most tests call :func:`roundup_wsgi.cli.main` in-process with a fake
waitress server whose ``run()`` raises KeyboardInterrupt (Ctrl-C), so it
returns at once.  Slow tests run the real command as a subprocess.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.servers import ServerProcess, free_port
from helpers.wsgi import FakeServer
from webtest import TestApp

from roundup_wsgi.cli import demo
from roundup_wsgi.tracker import tracker_web

#: urllib opener that ignores any ``*_proxy`` environment variables.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
#: The ``serve`` fixture (tests/cli/conftest.py): ``serve(*argv, status=0)``.
Serve = Callable[..., tuple[str, str]]


def test_serve_repoints_the_demo_at_a_new_port(in_tmp: Path, serve: Serve) -> None:
    home = in_tmp / "trackers" / "demo"
    serve("--port", "8125")
    out, err = serve("--port", "8126")
    assert (
        f"Demo tracker {home}: [tracker] web changed from "
        "http://127.0.0.1:8125/ to http://127.0.0.1:8126/"
    ) in out
    assert err == ""
    assert tracker_web(home) == "http://127.0.0.1:8126/"


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


def test_serve_web_is_the_demos_public_url(in_tmp: Path, serve: Serve) -> None:
    home = in_tmp / "trackers" / "demo"
    argv = ["--host", "0.0.0.0", "--port", "8132"]
    _, err = serve(*argv, "--web", "https://bugs.example/tracker", status=2)
    assert "its path must end in '/'" in err
    assert not home.exists()  # nothing made before the arguments are checked

    out, err = serve(*argv, "--web", "https://bugs.example/")
    assert tracker_web(home) == "https://bugs.example/"
    assert "[tracker] web: https://bugs.example/" in out
    assert f"Serving {home} at https://bugs.example/ (waitress" in out
    assert err == ""

    # Without --web the wildcard host gets localhost, and a note says so.
    out, err = serve(*argv)
    assert "changed from https://bugs.example/ to http://localhost:8132/" in out
    assert "[tracker] web: http://localhost:8132/" in out
    assert "logins from other machines fail" in err
    assert "--web http://" in err


def test_serve_logs_start_and_stop_at_info(
    in_tmp: Path, serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="roundup_wsgi")
    serve("--port", "8134", "--log-level", "info")
    messages = [
        r.getMessage() for r in caplog.records if r.name == "roundup_wsgi.serve"
    ]
    assert messages[0].startswith("serving ")
    assert "at http://127.0.0.1:8134/" in messages[0]
    assert messages[-1] == "stopped"


# --- trusted proxies, usage errors ------------------------------------------------


def test_serve_with_a_trusted_proxy(
    make_tracker: Callable[[str], Path], serve: Serve, servers_made: list[FakeServer]
) -> None:
    home = make_tracker("http://127.0.0.1:8131/bugs/")
    serve(f"bugs={home}", "--port", "8131", "--trusted-proxy", "10.0.0.0/8")
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
    tracker_home: Path, serve_error: Callable[..., str], extra: list[str], message: str
) -> None:
    args = [item.format(home=tracker_home) for item in extra]
    if not any("=" in item or item == str(tracker_home) for item in args):
        args.insert(0, str(tracker_home))
    assert message in serve_error(*args)


def test_serve_gives_the_app_every_flag_of_the_options_table(
    tracker_home: Path, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roundup_wsgi.cli import serve as serve_module
    from roundup_wsgi.options import Settings

    made: list[Any] = []

    def make_app(target: object, settings: Any) -> Callable[..., list[bytes]]:
        made.append(settings)
        return lambda environ, start_response: []

    monkeypatch.setattr(serve_module, "make_app", make_app)
    flags = ["--write-mode", "server", "--no-static-fast-path", "--access-log", "off"]
    flags += ["--request-id-header", "X-Trace", "--trusted-proxy", "10.0.0.1"]
    serve(str(tracker_home), *flags)
    (settings,) = made
    assert settings == Settings.from_kwargs(
        write_mode="server",
        static_fast_path=False,
        access_log=False,
        request_id_header="X-Trace",
        trusted_proxies=["10.0.0.1"],
    )
    assert settings.trusted_proxies == ("10.0.0.1",)
