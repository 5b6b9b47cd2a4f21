"""Remembered search permissions (roundup_wsgi/permissions.py,
``hasSearchPermission``): Roundup's answer for every question, the same
node-cache effects, and a permission change seen at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import roundup.instance
from roundup.security import Security

from roundup_wsgi import permissions

needs_support = pytest.mark.skipif(
    not permissions.SUPPORTED,
    reason="Roundup 2.4 has no Role.hasPermission: the permission memory stays off",
)


@pytest.fixture
def databases(make_tracker: Callable[[str], Path]) -> Iterator[Callable[[str], Any]]:
    """``open(user)``: a database of a seeded tracker, closed at the end."""
    tracker = roundup.instance.open(str(make_tracker("http://localhost/")))
    opened: list[Any] = []

    def open_db(user: str) -> Any:
        db = tracker.open(user)
        opened.append(db)
        return db

    yield open_db
    for db in opened:
        db.close()


def search_questions(db: Any) -> Iterator[tuple[str, str, str]]:
    """(userid, classname, property): every property of every class, a
    transitive one per Link, one that does not exist, for every user and a
    user id that does not exist."""
    for userid in [*db.user.list(), "999"]:
        for classname in sorted(db.classes):
            cl = db.getclass(classname)
            for name, prop in sorted(cl.getprops().items()):
                yield (userid, classname, name)
                target = getattr(prop, "classname", None)
                if target is not None:
                    label = db.getclass(target).labelprop()
                    yield (userid, classname, f"{name}.{label}")
                    yield (userid, classname, f"{name}.nonexistent")
            yield (userid, classname, "nonexistent")


def answer(db: Any, question: tuple[str, str, str]) -> tuple[str, Any]:
    try:
        return ("answered", db.security.hasSearchPermission(*question))
    except Exception as error:
        return ("raised", type(error))


@needs_support
def test_every_search_answer_is_roundups(databases: Callable[[str], Any]) -> None:
    ours, stock = databases("admin"), databases("admin")
    assert permissions.install(ours)
    asked = 0
    for _ in range(2):
        for question in search_questions(stock):
            assert answer(ours, question) == answer(stock, question), question
            asked += 1
    assert asked > 300
    assert ours.cache_lru == stock.cache_lru
    assert ours.stats["cache_hits"] == stock.stats["cache_hits"]


@needs_support
def test_a_role_or_permission_change_is_seen_at_once(
    databases: Callable[[str], Any],
) -> None:
    db = databases("admin")
    assert permissions.install(db)
    anonymous = db.user.lookup("anonymous")
    assert not db.security.hasSearchPermission(anonymous, "query", "name")
    db.security.addPermissionToRole("Anonymous", "View", "query")
    assert db.security.hasSearchPermission(anonymous, "query", "name")
    demo = db.user.lookup("demo")
    assert db.security.hasSearchPermission(demo, "issue", "title")
    db.user.set(demo, roles="Anonymous")
    assert db.security.hasSearchPermission(demo, "query", "name")
    db.user.set(demo, roles="")
    assert not db.security.hasSearchPermission(demo, "issue", "title")


@needs_support
def test_not_installed_over_a_replaced_search_method(
    databases: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = databases("admin")
    mine.security.hasSearchPermission = lambda *args: 1
    assert not permissions.install(mine)
    monkeypatch.setattr(Security, "roleHasSearchPermission", lambda *a: 1)
    assert not permissions.install(databases("admin"))
