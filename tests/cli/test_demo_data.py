"""Tests of roundup_wsgi.cli.demo_data: the demo's sample data, seeded into
a classic tracker by ``seed_demo``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from roundup import instance

from roundup_wsgi.cli import demo_data
from roundup_wsgi.tracker import create_tracker


@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classic tracker seeded once for this module's read-only tests."""
    home = tmp_path_factory.mktemp("seeded") / "tracker"
    create_tracker(home, admin_password="admin-pw")
    demo_data.seed_demo(home, demo_password="demo-pw")
    return home


@pytest.fixture
def db(seeded_home: Path) -> Iterator[Any]:
    """The seeded tracker's database, opened as admin."""
    database = instance.open(str(seeded_home)).open("admin")
    try:
        yield database
    finally:
        database.close()


def test_demo_users_log_in_with_their_passwords(db: Any) -> None:
    admin = db.user.lookup(demo_data.ADMIN_USERNAME)
    user = db.user.lookup(demo_data.DEMO_USERNAME)
    assert db.user.get(admin, "password") == "admin-pw"
    assert db.user.get(user, "password") == "demo-pw"
    assert db.user.get(user, "roles") == "User"


def test_demo_has_the_sample_issues(db: Any) -> None:
    issues = [db.issue.getnode(issue_id) for issue_id in db.issue.list()]
    assert [issue.title for issue in issues] == [
        s.title for s in demo_data.SAMPLE_ISSUES
    ]
    for issue, sample in zip(issues, demo_data.SAMPLE_ISSUES, strict=True):
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
    sample = demo_data.SAMPLE_ISSUES[0].messages[0]
    assert db.user.get(message.author, "username") == sample.author
    assert message.content == sample.content


def test_demo_has_one_text_attachment_on_issue_and_message(db: Any) -> None:
    samples = [
        (issue, message, sample_file)
        for issue in demo_data.SAMPLE_ISSUES
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


def test_seed_demo_twice_refuses_and_adds_nothing(seeded_home: Path, db: Any) -> None:
    with pytest.raises(ValueError, match="already has a 'demo' user"):
        demo_data.seed_demo(seeded_home, demo_password="again")
    assert len(db.issue.list()) == len(demo_data.SAMPLE_ISSUES)
