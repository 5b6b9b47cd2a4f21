"""Tests of roundup_wsgi.cli.check: the diagnostics of ``roundup-wsgi check``."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.checks import TRACKER_CHECKS, by_check
from roundup.configuration import CoreConfig

from roundup_wsgi import cli
from roundup_wsgi.cli.check import ServingUser, run_checks

WEB = "http://localhost/"


@pytest.fixture
def nobody() -> str:
    try:
        return pwd.getpwnam("nobody").pw_name
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")


def test_a_good_tracker_passes(tracker_home: Path) -> None:
    findings = run_checks(tracker_home, url=WEB)
    assert [f.check for f in findings] == [*TRACKER_CHECKS, "tracker web"]
    assert all(f.ok for f in findings), findings
    assert "sqlite database opens (3 users)" in by_check(findings)["backend"].message


def test_without_url_the_web_setting_is_not_compared(tracker_home: Path) -> None:
    web = by_check(run_checks(tracker_home))["tracker web"]
    assert web.ok is None
    assert "--url" in web.message


@pytest.mark.parametrize(
    "url", ["https://localhost/", "http://localhost:8080/", "http://localhost/bugs/"]
)
def test_web_must_match_the_url(tracker_home: Path, url: str) -> None:
    web = by_check(run_checks(tracker_home, url=url))["tracker web"]
    assert web.ok is False
    assert f"set 'web = {url}' in the [tracker] section" in web.fix


def test_missing_home(tmp_path: Path) -> None:
    (finding,) = run_checks(tmp_path / "nope")
    assert finding.ok is False
    assert "does not exist" in finding.message
    assert "roundup-wsgi init" in finding.fix


def test_broken_config(tracker_home: Path) -> None:
    config = tracker_home / "config.ini"
    config.write_text(config.read_text() + "\n[tracker\nweb = x\n")
    findings = run_checks(tracker_home)
    assert findings[-1].check == "config.ini"
    assert findings[-1].ok is False
    assert "config.ini" in findings[-1].fix


def test_broken_schema_stops_the_checks(tracker_home: Path) -> None:
    (tracker_home / "schema.py").write_text("def open(:\n")
    findings = run_checks(tracker_home)
    assert findings[-1].check == "tracker opens"
    assert findings[-1].ok is False
    assert "SyntaxError" in findings[-1].message
    assert "schema.py" in findings[-1].fix


def test_uninitialised_database(tracker_home: Path) -> None:
    (tracker_home / "db" / "db").unlink()
    backend = by_check(run_checks(tracker_home))["backend"]
    assert backend.ok is False
    assert "not initialised" in backend.message
    assert f"roundup-admin -i {tracker_home} initialise" in backend.fix


def test_unreachable_postgresql(make_tracker: Callable[[str], Path]) -> None:
    home = make_tracker(WEB)
    config = CoreConfig(str(home))
    config["RDBMS_BACKEND"] = "postgresql"
    config["RDBMS_HOST"] = "127.0.0.1"
    config["RDBMS_PORT"] = 1  # nothing listens there
    config.save(str(home / "config.ini"))
    backend = by_check(run_checks(home))["backend"]
    assert backend.ok is False
    assert "rdbms_host" in backend.fix


def test_serving_user_must_write_the_db_directory(
    tracker_home: Path, nobody: str
) -> None:
    os.chmod(tracker_home / "db", 0o755)
    findings = by_check(run_checks(tracker_home, user=nobody))
    assert findings["readable"].ok is True
    writable = findings["db writable"]
    assert writable.ok is False
    assert f"user {nobody} cannot write {tracker_home / 'db'}" in writable.message
    assert f"chown -R {nobody} {tracker_home / 'db'}" in writable.fix


def test_serving_user_must_read_the_home(tracker_home: Path, nobody: str) -> None:
    os.chmod(tracker_home, 0o700)
    readable = by_check(run_checks(tracker_home, user=nobody))["readable"]
    assert readable.ok is False
    assert str(tracker_home) in readable.message
    assert "chmod -R o+rX" in readable.fix


def test_unknown_user(tracker_home: Path) -> None:
    finding = by_check(run_checks(tracker_home, user="no-such-user-x"))
    assert finding["serving user"].ok is False


def test_mode_bits(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_text("")
    os.chmod(path, 0o640)
    owner = ServingUser("o", os.stat(path).st_uid + 1, frozenset({12345}))
    assert not owner.may(str(path), os.R_OK)
    group = ServingUser("g", owner.uid, frozenset({os.stat(path).st_gid}))
    assert group.may(str(path), os.R_OK)
    assert not group.may(str(path), os.W_OK)


def test_a_util_name_registered_twice_names_both_files(tracker_home: Path) -> None:
    """Roundup 2.4-2.6 keep the last registration silently, 2.7 refuses the
    tracker: the check names both places, on every Roundup."""
    extensions = tracker_home / "extensions"
    extensions.mkdir(exist_ok=True)
    (extensions / "a_banner.py").write_text(
        "def banner():\n    return 'a'\n\n\n"
        "def init(instance):\n    instance.registerUtil('banner', banner)\n"
    )
    (extensions / "b_banner.py").write_text(
        "def banner():\n    return 'b'\n\n\n"
        "def init(instance):\n    instance.registerUtil('motto', banner)\n"
        "    instance.registerUtil('banner', banner)\n"
    )
    findings = by_check(run_checks(tracker_home, url=WEB))
    utils = findings["template utils"]
    assert utils.ok is False
    assert "utils.banner is registered in extensions/" in utils.message
    assert "a_banner.py:6" in utils.message
    assert "b_banner.py:7" in utils.message
    assert "motto" not in utils.message
    assert "rename or remove" in utils.fix
    assert findings["tracker opens"].ok is True
    assert findings["tracker web"].ok is True  # the other checks still ran


def test_util_names_once_each_pass(tracker_home: Path) -> None:
    extensions = tracker_home / "extensions"
    extensions.mkdir(exist_ok=True)
    (extensions / "motto.py").write_text(
        "def motto():\n    return 'm'\n\n\n"
        "def init(instance):\n    instance.registerUtil('motto', motto)\n"
    )
    utils = by_check(run_checks(tracker_home))["template utils"]
    assert utils.ok is True
    assert utils.message == "1 registered by extensions, no name twice"


# -- the check subcommand ------------------------------------------------------


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
