"""Hyperdb classes counting the writes they begin
(roundup_wsgi/patches/fire_auditors.py), on a real sqlite database."""

from __future__ import annotations

from typing import Any

from roundup_wsgi.patches import fire_auditors


def test_writes_are_counted_reads_are_not(db: Any) -> None:
    writes = [0]
    fire_auditors.install(db, writes)
    db.issue.list()
    db.user.get("1", "username")
    assert writes == [0]
    issue = db.issue.create(title="counted")
    db.issue.set(issue, title="counted twice")
    db.issue.retire(issue)
    assert writes == [3]
    fire_auditors.remove(db)
    db.issue.restore(issue)
    assert writes == [3]
