"""Tests of roundup_wsgi.tracker: tracker homes made and read with Roundup's API."""

from __future__ import annotations

import builtins
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from roundup import instance

from roundup_wsgi.tracker import (
    OPTIONAL_PACKAGES,
    MissingPackageError,
    TrackerHomeError,
    check_tracker_home,
    create_tracker,
    host_port,
    list_templates,
    name_missing_package,
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


def test_create_tracker_refuses_bad_input_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown tracker template 'nosuch'"):
        create_tracker(tmp_path / "a", admin_password="x", template="nosuch")
    with pytest.raises(ValueError, match="unknown backend 'oracle'"):
        create_tracker(tmp_path / "a", admin_password="x", backend="oracle")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="exists and is not an empty"):
        create_tracker(busy, admin_password="x")
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    assert not (tmp_path / "a").exists()


def test_list_templates_has_roundups_own() -> None:
    templates = list_templates()
    assert {"classic", "minimal"} <= set(templates)
    assert all(Path(path).is_dir() for path in templates.values())


def test_a_missing_optional_package_is_named_with_its_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Creating (and opening) a tracker that needs a package not installed
    names the package and the pip command, and leaves no half-made home."""
    real_import = builtins.__import__

    def no_jinja2(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "jinja2":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jinja2)
    home = tmp_path / "j2"
    with pytest.raises(MissingPackageError) as error:
        create_tracker(home, admin_password="x", template="jinja2")
    assert "needs the jinja2 package" in str(error.value)
    assert OPTIONAL_PACKAGES["jinja2"] in str(error.value)
    assert not home.exists()


def test_other_missing_modules_pass_through() -> None:
    error = ModuleNotFoundError("No module named 'nosuch'", name="nosuch")
    assert name_missing_package(error, "x") is None
    with pytest.raises(MissingPackageError, match=r"roundup-wsgi\[compression\]"):
        name_missing_package(ModuleNotFoundError(name="brotli"), "gzip")


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
