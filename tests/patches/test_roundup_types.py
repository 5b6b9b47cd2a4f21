"""Roundup's real objects have the shapes the patches' Protocols describe
(roundup_wsgi/patches/roundup_types.py)."""

from __future__ import annotations

from typing import Any

from roundup_wsgi.patches.roundup_types import (
    Auditable,
    ClientLike,
    DatabaseLike,
    SecurityLike,
    TrackerLike,
)


def test_a_tracker_its_database_classes_security_and_client_fit(
    tracker: Any, db: Any
) -> None:
    assert isinstance(tracker, TrackerLike)
    assert isinstance(db, DatabaseLike)
    assert isinstance(db.security, SecurityLike)
    assert all(isinstance(cl, Auditable) for cl in db.classes.values())
    assert isinstance(object.__new__(tracker.Client), ClientLike)


def test_other_objects_do_not_fit(db: Any) -> None:
    assert not isinstance(object(), DatabaseLike)
    assert not isinstance(db, ClientLike)
    assert not isinstance(db.security, DatabaseLike)
