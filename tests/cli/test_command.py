"""Tests of roundup_wsgi.cli.command: ``main()``, ``--version`` and
``init`` (``serve`` is in test_serve.py, ``check`` in test_check.py,
``wsgi-script`` in test_wsgi_script.py)."""

from __future__ import annotations

import re
import shlex
import sys
import urllib.request
from pathlib import Path

import pytest
import roundup
from helpers.cli import admin_password_verifies, error_line
from helpers.servers import ServerProcess, free_port
from roundup import instance

from roundup_wsgi import __version__, cli
from roundup_wsgi.tracker import tracker_web

#: urllib opener that ignores any ``*_proxy`` environment variables.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert __version__ in out
    assert f"Roundup {roundup.__version__}" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "required" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["sqlite", "anydbm"])
def test_init_creates_a_working_tracker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    home = tmp_path / "bugs"
    argv = ["init", str(home), "--backend", backend, "--admin-password", "s3cret"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"Created a Roundup tracker at {home}" in out
    assert f"backend {backend}" in out
    assert "web URL: http://127.0.0.1:8080/" in out
    assert "log in as admin / s3cret" in out
    assert f"roundup-wsgi serve {home}" in out
    assert admin_password_verifies(home, "s3cret")
    config = instance.open(str(home)).config
    assert config["RDBMS_BACKEND"] == backend


def test_init_generates_and_prints_the_admin_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "bugs"
    assert cli.main(["init", str(home), "--web", "http://localhost:9000"]) == 0
    out = capsys.readouterr().out
    match = re.search(r"log in as admin / (\S+)", out)
    assert match
    assert "generated password" in out
    assert admin_password_verifies(home, match.group(1))
    assert tracker_web(home) == "http://localhost:9000/"
    assert f"roundup-wsgi serve {home} --host localhost --port 9000" in out


def test_init_refuses_a_non_empty_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    assert cli.main(["init", str(tmp_path)]) == 2
    line = error_line(capsys)
    assert f"cannot create a tracker in {tmp_path}" in line
    assert "choose a new path or remove it" in line
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_init_db_options_need_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["init", str(tmp_path / "bugs"), "--db-host", "db", "--db-name", "bugs"]
    assert cli.main(argv) == 2
    line = error_line(capsys)
    assert "--db-host, --db-name: only valid with --backend postgresql" in line
    assert not (tmp_path / "bugs").exists()


def test_init_unreachable_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "bugs"
    argv = ["init", str(home), "--backend", "postgresql"]
    argv += ["--db-host", "127.0.0.1", "--db-port", str(free_port())]
    assert cli.main(argv) == 2
    line = error_line(capsys)
    assert f"cannot create a tracker at {home}: " in line
    assert "check --db-host, --db-port" in line
    assert not home.exists()


def test_init_unknown_template(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["init", str(tmp_path / "bugs"), "--template", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nosuch'" in err
    assert "classic" in err


def test_init_prints_the_serve_command_of_a_web_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "bugs"
    web = "http://127.0.0.1:8080/bugs/"
    assert cli.main(["init", str(home), "--web", web, "--admin-password", "x"]) == 0
    assert f"Next, serve it with: roundup-wsgi serve bugs={home}\n" in (
        capsys.readouterr().out
    )
    other = tmp_path / "other"
    web = "https://example.org/trackers/other/"
    assert cli.main(["init", str(other), "--web", web, "--admin-password", "x"]) == 0
    assert (
        f"roundup-wsgi serve other={other} --web https://example.org/trackers/\n"
    ) in capsys.readouterr().out


@pytest.mark.slow
def test_the_serve_command_init_prints_serves_the_tracker_at_its_web(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The printed command, run: the page at [tracker] web answers 200."""
    port = free_port()
    home = tmp_path / "bugs"
    web = f"http://127.0.0.1:{port}/bugs/"
    assert cli.main(["init", str(home), "--web", web, "--admin-password", "x"]) == 0
    out = capsys.readouterr().out
    printed = re.search(r"^Next, serve it with: (.*)$", out, re.MULTILINE)
    assert printed
    words = shlex.split(printed.group(1))
    assert words[0] == "roundup-wsgi"
    command = [sys.executable, "-m", "roundup_wsgi", *words[1:]]
    with (
        ServerProcess(command, port, tmp_path, name="init-serve", ready_path="/"),
        OPENER.open(web + "issue", timeout=30) as response,
    ):
        assert response.status == 200
        assert b"<title>" in response.read()
