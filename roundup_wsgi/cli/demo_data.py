"""The demo tracker's data: a ``demo`` user and the sample issues of
:data:`SAMPLE_ISSUES` (with messages, keywords and one small text
attachment), and :func:`seed_demo`, which adds them to a classic tracker
through Roundup's own API.  The data is plain data at module level, so it
is easy to read and to change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ADMIN_USERNAME",
    "DEMO_USERNAME",
    "SAMPLE_ISSUES",
    "SampleFile",
    "SampleIssue",
    "SampleMessage",
    "seed_demo",
]

#: The administrator Roundup's ``initialise`` creates.
ADMIN_USERNAME = "admin"
#: The ordinary (role ``User``) account :func:`seed_demo` adds.
DEMO_USERNAME = "demo"


@dataclass(frozen=True)
class SampleFile:
    """An attachment: file name, MIME type and content (bytes)."""

    name: str
    type: str
    content: bytes


@dataclass(frozen=True)
class SampleMessage:
    """A message on an issue.

    ``author`` is a username; ``date`` is a Roundup date spec, relative to
    now (``"-3d"`` is three days ago).
    """

    author: str
    date: str
    content: str
    files: tuple[SampleFile, ...] = ()


@dataclass(frozen=True)
class SampleIssue:
    """An issue of the classic schema.

    ``priority`` and ``status`` are names from the classic template's
    initial data; ``keywords`` are created as needed; ``assignedto`` is a
    username or None.
    """

    title: str
    priority: str
    status: str
    messages: tuple[SampleMessage, ...]
    keywords: tuple[str, ...] = ()
    assignedto: str | None = None


#: The issues :func:`seed_demo` creates, in order (issue1 first).
SAMPLE_ISSUES: tuple[SampleIssue, ...] = (
    SampleIssue(
        title="Login fails when the password contains non-ASCII characters",
        priority="bug",
        status="in-progress",
        keywords=("security",),
        assignedto=ADMIN_USERNAME,
        messages=(
            SampleMessage(
                author=DEMO_USERNAME,
                date="-6d",
                content=(
                    "Steps to reproduce:\n\n"
                    "1. Change your password to one with an umlaut, "
                    "e.g. Grüße-2024.\n"
                    "2. Log out.\n"
                    "3. Log in again with the new password.\n\n"
                    "Expected: you are logged in.\n"
                    "Actual: 'Invalid login'.  Passwords made of ASCII "
                    "characters only work fine."
                ),
            ),
            SampleMessage(
                author=ADMIN_USERNAME,
                date="-5d",
                content=(
                    "Confirmed on the test instance.  The login form is sent "
                    "as UTF-8 but the password was decoded as Latin-1 before "
                    "the comparison.  I'm working on a fix."
                ),
            ),
        ),
    ),
    SampleIssue(
        title="Uploading a large attachment ends with connection reset",
        priority="urgent",
        status="need-eg",
        keywords=("performance",),
        messages=(
            SampleMessage(
                author=DEMO_USERNAME,
                date="-4d",
                content=(
                    "Attaching a 30 MB log file to an issue never finishes: "
                    "after a minute the browser shows 'connection reset'.  "
                    "Small files are fine.  The proxy's error log is attached."
                ),
                files=(
                    SampleFile(
                        name="proxy-error.log",
                        type="text/plain",
                        content=(
                            b"[error] client 10.0.0.7: client intended to send "
                            b"too large body: 31457280 bytes\n"
                            b"[error] client 10.0.0.7: upstream closed "
                            b"connection while reading response header\n"
                        ),
                    ),
                ),
            ),
            SampleMessage(
                author=ADMIN_USERNAME,
                date="-3d",
                content=(
                    "Thanks for the log.  It looks like the proxy's request "
                    "body limit rather than the tracker.  Could you send the "
                    "proxy configuration, or the exact size at which it starts "
                    "failing?"
                ),
            ),
        ),
    ),
    SampleIssue(
        title="Send a daily digest of new issues by email",
        priority="feature",
        status="chatting",
        keywords=("email",),
        messages=(
            SampleMessage(
                author=DEMO_USERNAME,
                date="-10d",
                content=(
                    "Several people on the support team would rather get one "
                    "email a day listing the new issues than one email per "
                    "change.  Could the tracker send a daily digest?"
                ),
            ),
            SampleMessage(
                author=ADMIN_USERNAME,
                date="-9d",
                content=(
                    "A nightly cron job calling a short script over the REST "
                    "API could do it.  Who else would use it?"
                ),
            ),
            SampleMessage(
                author=DEMO_USERNAME,
                date="-8d",
                content=(
                    "All five of us.  A plain-text list with title, priority "
                    "and link is enough."
                ),
            ),
        ),
    ),
    SampleIssue(
        title="Spelling mistake in the password reset email",
        priority="bug",
        status="resolved",
        keywords=("email",),
        assignedto=DEMO_USERNAME,
        messages=(
            SampleMessage(
                author=DEMO_USERNAME,
                date="-14d",
                content=(
                    'The password reset email says "You will recieve a new '
                    'password shortly."  That should be "receive".'
                ),
            ),
            SampleMessage(
                author=ADMIN_USERNAME,
                date="-13d",
                content="Fixed in the email template.  Thanks for spotting it!",
            ),
        ),
    ),
    SampleIssue(
        title="Dark colour scheme for the issue pages",
        priority="wish",
        status="deferred",
        keywords=("ui",),
        messages=(
            SampleMessage(
                author=DEMO_USERNAME,
                date="-20d",
                content=(
                    "When working late the white pages are glaring.  A dark "
                    "colour scheme, or following the browser's "
                    "prefers-color-scheme setting, would be welcome."
                ),
            ),
            SampleMessage(
                author=ADMIN_USERNAME,
                date="-19d",
                content=(
                    "Good idea, but it needs a pass over every template.  "
                    "Deferred until after the next release."
                ),
            ),
        ),
    ),
    SampleIssue(
        title="Issue list takes eight seconds to load after the import",
        priority="critical",
        status="testing",
        keywords=("performance",),
        assignedto=ADMIN_USERNAME,
        messages=(
            SampleMessage(
                author=DEMO_USERNAME,
                date="-2d",
                content=(
                    "Since we imported the 20,000 issues from the old tracker, "
                    "the default issue list takes about eight seconds to show."
                ),
            ),
            SampleMessage(
                author=ADMIN_USERNAME,
                date="-1d",
                content=(
                    "The list is sorted by activity and that column had no "
                    "database index.  I added one on the test instance; can "
                    "you check whether it is fast again?"
                ),
            ),
        ),
    ),
)


def seed_demo(home: str | os.PathLike[str], *, demo_password: str) -> None:
    """Add the ``demo`` user and :data:`SAMPLE_ISSUES` to a classic tracker.

    Everything is created as ``admin`` through Roundup's API and committed
    in one transaction.

    :param home: a freshly initialised classic-template tracker home.
    :param demo_password: password for the new ``demo`` user.
    :raises ValueError: the tracker already has a ``demo`` user (it has been
        seeded before; seeding twice would duplicate the issues).
    :raises KeyError: a priority or status in the seed data is not in the
        tracker's schema (e.g. not the classic template).
    """
    from roundup import instance, password

    db = instance.open(os.fspath(home)).open(ADMIN_USERNAME)
    try:
        if db.user.stringFind(username=DEMO_USERNAME):
            raise ValueError(
                f"the tracker at {os.fspath(home)} already has a "
                f"{DEMO_USERNAME!r} user: it has been seeded already"
            )
        db.user.create(
            username=DEMO_USERNAME,
            password=password.Password(demo_password, config=db.config),
            realname="Demo User",
            address=f"{DEMO_USERNAME}@localhost",
            roles="User",
        )
        for issue in SAMPLE_ISSUES:
            _create_issue(db, issue)
        db.commit()
    finally:
        db.close()


def _create_issue(db: Any, issue: SampleIssue) -> str:
    """Create one sample issue with its messages and files; return its id."""
    from roundup import date

    user_id = db.user.lookup
    files: list[str] = []
    messages: list[str] = []
    for message in issue.messages:
        message_files = [_create_file(db, sample) for sample in message.files]
        files.extend(message_files)
        messages.append(
            db.msg.create(
                author=user_id(message.author),
                date=date.Date(message.date),
                content=message.content,
                files=message_files,
            )
        )
    return str(
        db.issue.create(
            title=issue.title,
            priority=db.priority.lookup(issue.priority),
            status=db.status.lookup(issue.status),
            keyword=[_keyword_id(db, name) for name in issue.keywords],
            assignedto=user_id(issue.assignedto) if issue.assignedto else None,
            messages=messages,
            files=files,
        )
    )


def _create_file(db: Any, sample: SampleFile) -> str:
    return str(
        db.file.create(name=sample.name, type=sample.type, content=sample.content)
    )


def _keyword_id(db: Any, name: str) -> str:
    """Return the id of keyword ``name``, creating it if needed."""
    found = db.keyword.stringFind(name=name)
    if found:
        return str(found[0])
    return str(db.keyword.create(name=name))
