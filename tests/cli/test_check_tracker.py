"""Tests of roundup_wsgi.cli.check_tracker: the tracker opens, registers
each template util once, and its database is initialised and opens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers.checks import by_check
from roundup.configuration import CoreConfig

from roundup_wsgi.cli.check import run_checks

WEB = "http://localhost/"


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
