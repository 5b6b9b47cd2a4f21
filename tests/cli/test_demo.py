"""Tests of roundup_wsgi.cli.demo: creating, finding and re-pointing the demo."""

from __future__ import annotations

from pathlib import Path

import pytest
from roundup import instance

from roundup_wsgi.cli import demo
from roundup_wsgi.tracker import TrackerHomeError, tracker_web

WEB = "http://127.0.0.1:8123/"


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo tracker created once for this module's read-only tests."""
    home = tmp_path_factory.mktemp("demo") / "demo"
    demo.create_demo(home, web=WEB, admin_password="admin-pw", demo_password="demo-pw")
    return home


def test_create_demo_returns_home_and_given_passwords(tmp_path: Path) -> None:
    credentials = demo.create_demo(
        tmp_path / "demo", web=WEB, admin_password="a", demo_password="d"
    )
    assert credentials == demo.DemoCredentials(str(tmp_path / "demo"), "a", "d")


def test_create_demo_generates_distinct_passwords(tmp_path: Path) -> None:
    credentials = demo.create_demo(tmp_path / "demo", web=WEB)
    assert len(credentials.admin_password) == 16
    assert len(credentials.demo_password) == 16
    assert credentials.admin_password != credentials.demo_password


def test_create_demo_seeds_the_demo_and_marks_it(demo_home: Path) -> None:
    database = instance.open(str(demo_home)).open("admin")
    try:
        assert len(database.issue.list()) == len(demo.SAMPLE_ISSUES)
        user = database.user.lookup(demo.DEMO_USERNAME)
        assert database.user.get(user, "password") == "demo-pw"
    finally:
        database.close()
    assert demo.is_demo(demo_home)
    assert "roundup-wsgi serve" in (demo_home / demo.DEMO_MARKER).read_text()


def test_demo_nosy_mail_goes_to_the_debug_file(demo_home: Path) -> None:
    assert "Subject:" in (demo_home / "mail-debug.log").read_text()


def test_create_demo_removes_the_tracker_when_seeding_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(home: object, *, demo_password: str) -> None:
        raise RuntimeError("seeding failed")

    monkeypatch.setattr(demo, "seed_demo", fail)
    with pytest.raises(RuntimeError, match="seeding failed"):
        demo.create_demo(tmp_path / "demo", web=WEB)
    assert not (tmp_path / "demo").exists()


def test_demo_exists(tmp_path: Path, demo_home: Path) -> None:
    assert not demo.demo_exists(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    assert not demo.demo_exists(tmp_path / "empty")
    assert demo.demo_exists(demo_home)


def test_demo_exists_rejects_a_directory_that_is_not_a_tracker(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a tracker")
    with pytest.raises(TrackerHomeError, match="delete it") as caught:
        demo.demo_exists(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_repoint_demo(tmp_path: Path) -> None:
    home = demo.create_demo(tmp_path / "demo", web=WEB).home
    assert demo.repoint_demo(home, WEB) is None
    assert demo.repoint_demo(home, "http://localhost:9000/") == WEB
    assert tracker_web(home) == "http://localhost:9000/"
