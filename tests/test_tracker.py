"""Tests of roundup_wsgi.tracker: tracker homes made and read with Roundup's API."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from roundup import instance

from roundup_wsgi import dbstate, install, tracker
from roundup_wsgi.install import create_tracker
from roundup_wsgi.tracker import (
    TrackerHomeError,
    check_tracker_home,
    host_port,
    open_tracker,
    same_origin,
    set_tracker_web,
    tracker_web,
    web_url,
)


def test_check_tracker_home_names_the_path_and_the_fix(tmp_path: Path) -> None:
    for path, what in [
        (tmp_path / "nope", "does not exist"),
        (tmp_path, "has no config.ini"),
    ]:
        with pytest.raises(TrackerHomeError, match=what) as error:
            check_tracker_home(path)
        assert str(path) in str(error.value)
        assert "roundup-wsgi init" in str(error.value)
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(TrackerHomeError, match="is not a directory"):
        check_tracker_home(file)


@pytest.mark.parametrize(
    ("host", "port", "path", "url"),
    [
        ("127.0.0.1", 8080, "/", "http://127.0.0.1:8080/"),
        ("0.0.0.0", 80, "bugs", "http://localhost:80/bugs/"),
        ("::1", 8080, "/t/", "http://[::1]:8080/t/"),
        ("", 9000, "/", "http://localhost:9000/"),
    ],
)
def test_web_url(host: str, port: int, path: str, url: str) -> None:
    assert web_url(host, port, path) == url


def test_host_port_and_same_origin() -> None:
    assert host_port("https://Bugs.Example/t/") == ("bugs.example", 443)
    assert host_port("http://bugs.example:8080") == ("bugs.example", 8080)
    assert same_origin("http://a.example/x/", "http://A.example:80/y/")
    assert not same_origin("http://a.example/", "https://a.example/")


def test_create_tracker_then_read_and_change_web(tmp_path: Path) -> None:
    home = create_tracker(
        tmp_path / "new" / "bugs",
        admin_password="pw",
        web="http://127.0.0.1:9001",
    )
    assert tracker_web(home) == "http://127.0.0.1:9001/"
    set_tracker_web(home, "https://bugs.example/bugs")
    assert tracker_web(home) == "https://bugs.example/bugs/"
    db = open_tracker(home).open("admin")
    try:
        assert db.user.get(db.user.lookup("admin"), "username") == "admin"
    finally:
        db.close()


def test_open_tracker_opens_a_tracker(tracker_home: Path) -> None:
    tracker = open_tracker(str(tracker_home))
    assert isinstance(tracker, instance.Tracker)


def test_session_tables_exist_before_the_first_request(tmp_path: Path) -> None:
    """Roundup's sqlite session store creates its tables on first use, and
    two threads doing so at once fail ("table sessions already exists"):
    the dispatcher creates them when it opens the tracker."""
    from roundup_wsgi import RequestDispatcher

    home = Path(create_tracker(tmp_path / "fresh", admin_password="x"))
    assert not (home / "db" / "db-session").exists()
    RequestDispatcher(str(home))
    for name, table in (("db-session", "sessions"), ("db-otk", "otks")):
        with sqlite3.connect(home / "db" / name) as conn:
            found = conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name=?",
                (table,),
            ).fetchall()
        assert found == [(table,)], name


def test_names_of_install_and_dbstate_are_importable_from_tracker() -> None:
    """``roundup_wsgi.tracker`` keeps the import path of the names that
    moved to :mod:`roundup_wsgi.install` and :mod:`roundup_wsgi.dbstate`."""
    for module in (install, dbstate):
        for name in module.__all__:
            assert getattr(tracker, name) is getattr(module, name), name
            assert name in tracker.__all__, name
