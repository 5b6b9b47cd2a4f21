"""Tests of roundup_wsgi.cli.demo: creating, seeding and re-pointing the demo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture
def db(demo_home: Path) -> Iterator[Any]:
    """The demo tracker's database, opened as admin."""
    database = instance.open(str(demo_home)).open("admin")
    try:
        yield database
    finally:
        database.close()


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


def test_demo_users_log_in_with_their_passwords(db: Any) -> None:
    admin = db.user.lookup(demo.ADMIN_USERNAME)
    user = db.user.lookup(demo.DEMO_USERNAME)
    assert db.user.get(admin, "password") == "admin-pw"
    assert db.user.get(user, "password") == "demo-pw"
    assert db.user.get(user, "roles") == "User"


def test_demo_has_the_sample_issues(db: Any) -> None:
    issues = [db.issue.getnode(issue_id) for issue_id in db.issue.list()]
    assert [issue.title for issue in issues] == [s.title for s in demo.SAMPLE_ISSUES]
    for issue, sample in zip(issues, demo.SAMPLE_ISSUES, strict=True):
        assert db.priority.get(issue.priority, "name") == sample.priority
        assert db.status.get(issue.status, "name") == sample.status
        assert len(issue.messages) == len(sample.messages)
        keywords = [db.keyword.get(k, "name") for k in issue.keyword]
        assert keywords == list(sample.keywords)
        assigned = (
            db.user.get(issue.assignedto, "username") if issue.assignedto else None
        )
        assert assigned == sample.assignedto


def test_demo_messages_have_authors_and_content(db: Any) -> None:
    first = db.issue.getnode(db.issue.list()[0])
    message = db.msg.getnode(first.messages[0])
    sample = demo.SAMPLE_ISSUES[0].messages[0]
    assert db.user.get(message.author, "username") == sample.author
    assert message.content == sample.content


def test_demo_has_one_text_attachment_on_issue_and_message(db: Any) -> None:
    samples = [
        (issue, message, sample_file)
        for issue in demo.SAMPLE_ISSUES
        for message in issue.messages
        for sample_file in message.files
    ]
    assert len(samples) == 1
    issue_sample, message_sample, file_sample = samples[0]
    (file_id,) = db.file.list()
    assert db.file.get(file_id, "name") == file_sample.name
    assert db.file.get(file_id, "type") == "text/plain"
    assert db.file.get(file_id, "binary_content") == file_sample.content
    (issue_id,) = db.issue.stringFind(title=issue_sample.title)
    assert db.issue.get(issue_id, "files") == [file_id]
    (message_id,) = db.msg.find(files=file_id)
    assert db.msg.get(message_id, "content") == message_sample.content


def test_demo_nosy_mail_goes_to_the_debug_file(demo_home: Path) -> None:
    assert "Subject:" in (demo_home / "mail-debug.log").read_text()


def test_seed_demo_twice_refuses_and_adds_nothing(demo_home: Path, db: Any) -> None:
    with pytest.raises(ValueError, match="already has a 'demo' user"):
        demo.seed_demo(demo_home, demo_password="again")
    assert len(db.issue.list()) == len(demo.SAMPLE_ISSUES)


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
